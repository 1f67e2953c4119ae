// Issues one certificate into the store in argv[2] for argv[3], and stops for good where a kill
// would stop it (argv[4]): `key` once the certificate is written into the new entry's temporary
// folder, `rename` once the whole entry is, just before the rename that records it. It prints
// the folder and waits there, for the test to kill it (SIGKILL).
import { promises as fs } from 'node:fs';
import { dirname } from 'node:path';
import { openStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from './fixture.js';

const [dir, user, stage] = process.argv.slice(2) as [string, string, 'key' | 'rename'];
const stop = (folder: string) => {
  process.stdout.write(`${folder}\n`);
  // A promise that never settles does not keep Node running by itself: a timer does, until the kill.
  setInterval(() => {}, 60_000);
  return new Promise<never>(() => {});
};
const { open, rename } = fs;
fs.open = ((path: Parameters<typeof open>[0], ...rest: unknown[]) =>
  stage === 'key' && /\/certs\/\.tmp-[0-9a-f]+\/key\.\d+$/.test(String(path)) ? stop(dirname(String(path))) : (open as (...a: unknown[]) => ReturnType<typeof open>)(path, ...rest)) as typeof open;
fs.rename = ((from: Parameters<typeof rename>[0], to: Parameters<typeof rename>[1]) =>
  stage === 'rename' && /\/certs\/\.tmp-[0-9a-f]+$/.test(String(from)) ? stop(String(from)) : rename(from, to)) as typeof rename;
const store = await openStore(dir, { passphrase: PASSPHRASE });
await store.issueCertificate({ user, name: 'Stopped Issue', purpose: 'smime-signing' });
