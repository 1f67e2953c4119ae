/**
 * The fuzz campaign: every property of test/fuzz/properties.ts for many more inputs than the
 * test suite runs, with a printed seed; a failing input is saved to fuzz-failures/.
 *
 *   npm run fuzz                          # FUZZ_RUNS=5000 per property (the CLI property: /50)
 *   FUZZ_RUNS=20000 FUZZ_SEED=123 npm run fuzz
 *   FUZZ_ONLY=csv,import npm run fuzz
 */
import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { initStore } from '../src/store/fs-store.js';
import { checkCli, cliCase, makeCorpus, mutatedBytes, properties, type Property } from '../test/fuzz/properties.js';

const runs = Number(process.env.FUZZ_RUNS ?? 5000);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const only = process.env.FUZZ_ONLY?.split(',');
const failures = resolve('fuzz-failures');
console.log(`fuzz campaign: seed ${seed}, ${runs} runs per property (replay: FUZZ_SEED=${seed})`);

const corpus = await makeCorpus();
let failed = 0;
let total = 0;
const started = Date.now();

async function campaign<T>(name: string, arbitrary: fc.Arbitrary<T>, check: (input: T) => Promise<void> | void, save: (input: T) => Buffer, numRuns: number) {
  if (only && !only.includes(name)) return;
  const t0 = Date.now();
  const result = await fc.check(fc.asyncProperty(arbitrary, async (input) => check(input)), { numRuns, seed });
  total += result.numRuns;
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  if (!result.failed) {
    console.log(`  ${name}: ${result.numRuns} inputs, no finding (${secs} s)`);
    return;
  }
  failed++;
  mkdirSync(failures, { recursive: true });
  const file = join(failures, `${name}-seed${seed}.bin`);
  writeFileSync(file, save(result.counterexample![0] as T));
  console.log(`  ${name}: FAILED after ${result.numRuns} inputs; the shrunk input is in ${file}`);
  // The counterexample is in the file; print what went wrong and how to replay it.
  console.log(`    ${(result.errorInstance as Error | undefined)?.message?.split('\n')[0] ?? 'failed'}`);
  console.log(`    replay: FUZZ_SEED=${seed} FUZZ_ONLY=${name} npm run fuzz (path ${result.counterexamplePath})`);
}

for (const p of Object.values(properties) as Property<unknown>[]) {
  await campaign(p.name, p.arbitrary(corpus), (input) => p.check(corpus, input), (input) => p.save(corpus, input), runs);
}

const dir = mkdtempSync(join(tmpdir(), 'profilesmith-fuzz-store-'));
try {
  const storeDir = join(dir, 'store');
  const store = await initStore(storeDir, { organization: 'Fuzz Corp', passphrase: 'fuzz campaign passphrase', kdfCost: 14 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  const env = { PROFILESMITH_PASSPHRASE: 'fuzz campaign passphrase' };
  await campaign('cli', cliCase, (input) => checkCli(corpus, storeDir, env, input), (input) => mutatedBytes(corpus, input), Math.max(20, Math.round(runs / 50)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${total} inputs in ${((Date.now() - started) / 1000).toFixed(0)} s, ${failed} properties failed (seed ${seed})`);
process.exitCode = failed ? 1 : 0;
