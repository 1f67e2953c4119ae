import { initStore, type FileStore } from '../../src/store/fs-store.js';

export const PASSPHRASE = 'correct horse battery staple';

/** A store with alice holding one signing and two encryption certificates. Cheap KDF: tests only. */
export async function aliceStore(dir: string, organization = 'Example Corp'): Promise<FileStore> {
  const store = await initStore(dir, { organization, passphrase: PASSPHRASE, kdfCost: 14 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption', days: 30 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
  return store;
}
