/**
 * The key files a passphrase change reseals: every `<rel>.<generation>` of the current
 * generation that is there (the CA keys, the signers', the responders' and RAs', and the user
 * certificates'), found by listing (keyFiles in admin.ts names them from store.json instead).
 *
 * @module file-port-rekey
 */
import { join } from 'node:path';
import type { SealedKey } from '../../port/port.js';
import { SERIAL } from '../record-index.js';
import { SERVICE_DIRS } from './credentials.js';
import { listDir, readSealed } from './layout.js';

/** Every sealed key of `generation` in the store at `dir`, with its path without the generation (its AAD). */
export async function keyFilesOf(dir: string, generation: number): Promise<{ rel: string; key: SealedKey }[]> {
  const suffix = `.key.${generation}`;
  const rels: string[] = [];
  for (const d of ['ca', 'signer', ...SERVICE_DIRS.map(([s]) => s)]) {
    for (const n of (await listDir(join(dir, d))).sort()) {
      // signer/key.<g> is the first signer's key; the rest are `<name>.key.<g>`.
      if (n.endsWith(suffix) || (d === 'signer' && n === `key.${generation}`)) rels.push(`${d}/${n.slice(0, -`.${generation}`.length)}`);
    }
  }
  for (const n of (await listDir(join(dir, 'certs'))).sort()) if (SERIAL.test(n)) rels.push(`certs/${n}/key`);
  const out: { rel: string; key: SealedKey }[] = [];
  for (const rel of rels) {
    // A device's certificate (SCEP) has no key in the store.
    const key = await readSealed(dir, rel, generation);
    if (key) out.push({ rel, key });
  }
  return out;
}
