// Child process of scripts/bench.mjs: one batch run from the built library, reporting its
// summary and the process's peak RSS (worker threads included: they share the process).
import { runBatch } from '../dist/batch/run.js';

const [storeDir, usersFile, outDir, jobs, passphraseEnv] = process.argv.slice(2);
const summary = await runBatch({
  storeDir,
  passphrase: process.env[passphraseEnv],
  template: 'exchange-smime',
  usersFile,
  outDir,
  sets: { 'exchange.host': 'mail.example.com' },
  jobs: Number(jobs),
});
process.stdout.write(JSON.stringify({ summary: { ...summary, failures: summary.failures.slice(0, 3) }, maxRssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
