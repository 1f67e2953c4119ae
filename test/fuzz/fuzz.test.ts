/**
 * A short fuzz run in every `npm test` (the long campaign is `npm run fuzz`). fast-check prints
 * the seed and the shrunk input of any failure; FUZZ_RUNS and FUZZ_SEED replay or lengthen it.
 */
import test from 'ava';
import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { tmp } from '../helpers/tools.js';
import { BOUND_MS, checkCli, checkProfileBytes, cliCase, makeCorpus, properties, type Property } from './properties.js';

const runs = Number(process.env.FUZZ_RUNS ?? 150);
const seed = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined;
const corpus = makeCorpus();

for (const p of Object.values(properties) as Property<unknown>[]) {
  test(`fuzz ${p.name}: every input ends in a result or a typed error (hang bound ${BOUND_MS / 1000} s)`, async (t) => {
    const c = await corpus;
    const result = await fc.check(fc.asyncProperty(p.arbitrary(c), (input) => p.check(c, input)), { numRuns: runs, ...(seed !== undefined ? { seed } : {}) });
    t.log(`${result.numRuns} inputs, seed ${result.seed}`);
    t.false(result.failed, `${fc.defaultReportMessage(result) ?? ''}\n${(result.errorInstance as Error | undefined)?.message ?? ''}`);
  });
}

test('fuzz CLI: lint, inspect, verify, sign and cert import on mutated files exit 0-3, one line, no stack, nothing left behind', async (t) => {
  const c = await corpus;
  const storeDir = join(tmp(t), 'store');
  await aliceStore(storeDir);
  const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
  const result = await fc.check(fc.property(cliCase, (input) => checkCli(c, storeDir, env, input)), { numRuns: Math.max(10, Math.round(runs / 6)), ...(seed !== undefined ? { seed } : {}) });
  t.log(`${result.numRuns} CLI runs, seed ${result.seed}`);
  t.false(result.failed, `${fc.defaultReportMessage(result) ?? ''}\n${(result.errorInstance as Error | undefined)?.message ?? ''}`);
});

// Every input a campaign found is kept in test/fuzz/corpus and replayed here, so a fixed bug stays fixed.
test('fuzz corpus: every saved finding is handled now', async (t) => {
  const c = await corpus;
  const dir = join(import.meta.dirname, 'corpus');
  const files = readdirSync(dir);
  t.true(files.length > 0);
  for (const f of files) {
    const bytes = readFileSync(join(dir, f));
    if (f.startsWith('profile-bytes-')) await t.notThrowsAsync(checkProfileBytes(c, bytes), f);
    else if (f.startsWith('csv-')) await t.notThrowsAsync(properties.csv.check(c, JSON.parse(bytes.toString('utf8'))), f);
    else t.fail(`no replay for ${f}`);
  }
});
