// A store writer for the multi-process tests: issues N certificates into the store in argv[2].
import { openStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from './fixture.js';

const [dir, count, tag] = process.argv.slice(2);
const store = await openStore(dir as string, { passphrase: PASSPHRASE });
for (let i = 0; i < Number(count); i++) {
  await store.issueCertificate({ user: `${tag}${i}@example.com`, name: `Writer ${tag} ${i}`, purpose: 'smime-encryption' });
  process.stdout.write(`${i}\n`);
}
