import { createHash, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesFrom } from '../../src/certs/pem.js';
import { createMemoryStore, type MemoryStore } from '../../src/store/memory-store.js';
import { ROOT } from './tools.js';

export const FIXTURE_PASSPHRASE = 'profilesmith-test-fixture';
export const FIXTURE_NOW = new Date('2026-11-28T00:00:00Z');
const DIR = join(ROOT, 'test', 'fixtures', 'certs');

export function fixture(name: string) {
  return {
    certificate: certificatesFrom(readFileSync(join(DIR, `${name}.pem`), 'utf8'))[0] as Buffer,
    privateKey: createPrivateKey({ key: readFileSync(join(DIR, `${name}.key.pem`), 'utf8'), passphrase: FIXTURE_PASSPHRASE }),
  };
}

/** A deterministic random source, for byte-exact golden files. */
export function counterRandom(seed = 'golden') {
  let n = 0;
  return (size: number) => {
    const out = Buffer.alloc(size);
    for (let off = 0; off < size; off += 32) createHash('sha256').update(`${seed}:${n++}`).digest().copy(out, off);
    return out;
  };
}

/** A memory store over the committed fixtures: the same certificates on every run. */
export async function fixtureStore(): Promise<MemoryStore> {
  const store = await createMemoryStore({
    organization: 'TEST Example Corp',
    ca: { root: fixture('root'), intermediate: fixture('intermediate'), signer: fixture('signer') },
    now: () => FIXTURE_NOW,
  });
  await store.addIdentity({ ...fixture('alice-signing'), user: 'alice@example.com', purpose: 'smime-signing', source: 'issued' });
  await store.addIdentity({ ...fixture('alice-encryption-1'), user: 'alice@example.com', purpose: 'smime-encryption', source: 'issued' });
  await store.addIdentity({ ...fixture('alice-encryption-2'), user: 'alice@example.com', purpose: 'smime-encryption', source: 'issued' });
  return store;
}
