import type { ExecutionContext } from 'ava';
import { join } from 'node:path';
import { initStore, type FileStore } from '../../src/store/fs-store.js';
import { tmp } from './tools.js';

export const PASSPHRASE = 'correct horse battery staple';

/** A store with alice holding one signing and two encryption certificates. Cheap KDF: tests only. */
export async function aliceStore(dir: string, organization = 'Example Corp'): Promise<FileStore> {
  const store = await initStore(dir, { organization, passphrase: PASSPHRASE, kdfCost: 14 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption', days: 30 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
  return store;
}

/** {@link aliceStore} at `store/` in a temporary directory of the test's own. */
export async function aliceStoreIn(t: ExecutionContext): Promise<{ dir: string; storeDir: string; store: FileStore }> {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  return { dir, storeDir, store: await aliceStore(storeDir) };
}
