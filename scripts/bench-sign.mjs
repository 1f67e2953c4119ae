// Child process of scripts/bench.mjs: signProfile on one core over the bench's plists, in a
// fresh process (the parent's heap, full of batch results and node-forge, is not what a
// vendor's signing service looks like). Prints signatures per second (wall) for each slice.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, signProfile } from '../dist/index.js';

const [storeDir, plistDir, passphraseEnv, slices, seconds] = process.argv.slice(2);
const store = await openStore(storeDir, { passphrase: process.env[passphraseEnv] });
const signer = await store.profileSigner();
const sample = readdirSync(plistDir).filter((f) => f.endsWith('.xml')).map((f) => readFileSync(join(plistDir, f)));
for (let i = 0; i < 200; i++) await signProfile(sample[i % sample.length], signer); // warm-up
const rates = [];
for (let s = 0; s < Number(slices); s++) {
  // Per second of wall time, as `openssl speed -elapsed` counts (the parent runs it so): user CPU
  // time would charge this loop for V8's background threads too.
  let count = 0;
  const t0 = process.hrtime.bigint();
  while (Number(process.hrtime.bigint() - t0) < Number(seconds) * 1e9) await signProfile(sample[count++ % sample.length], signer);
  rates.push(count / (Number(process.hrtime.bigint() - t0) / 1e9));
}
process.stdout.write(JSON.stringify(rates) + '\n');
