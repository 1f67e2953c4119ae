// Start-up cost of the CLI, part of npm run bench (alone: BENCH_ONLY=startup npm run bench).
// Issue 29: `--help`, `--version` and `cert list` on a 1,000-certificate file store cost at most
// 2x a bare `node -e 0` in CPU time (user + sys), measured side by side.
//
// Each command runs as a child of bash, which prints the CPU time of its waited-for children
// with `times` (getrusage(RUSAGE_CHILDREN), millisecond resolution; /usr/bin/time prints
// centiseconds, a sixth of a bare node's 65 ms). One child per bash, so that is the command's
// own user + sys time, from exec to exit, whatever threads it started. The commands run
// interleaved, round after round, in a rotating order, so that each sees the same machine (these
// machines are shared); the result is each command's median and its ratio to `node -e 0`'s.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A file store of `count` certificates (half signing, half encryption), made once and kept in `cache`. */
async function startupStore(cache, count, lib, log) {
  const dir = join(cache, `startup-store-${count}`);
  const ready = join(cache, `startup-ready-${count}`);
  if (existsSync(ready)) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(cache, { recursive: true });
  log(`start-up: a file store with ${count} certificates (once; kept in bench/.cache)...`);
  const passphrase = 'bench start-up store';
  await lib.initStore(dir, { organization: 'Bench Start-up Corp', passphrase, kdfCost: 14 });
  const store = await lib.openStore(dir, { passphrase, durable: false }); // a bulk load
  const pool = Array.from({ length: 16 }, () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
  const tasks = [];
  for (let i = 0; i < count; i++) {
    const user = `user${Math.floor(i / 2)}@example.com`;
    const purpose = i % 2 ? 'smime-encryption' : 'smime-signing';
    tasks.push(() => store.issueCertificate({ user, name: `User ${Math.floor(i / 2)}`, purpose, privateKey: pool[i % pool.length] }));
  }
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (tasks.length) await tasks.shift()();
  }));
  writeFileSync(ready, new Date().toISOString());
  return dir;
}

/** user + sys seconds of one run of `argv` (its stdout discarded, its stderr kept for the error); throws if it fails. */
function cpuSeconds(argv, cwd, env) {
  const r = spawnSync('bash', ['-c', '"$@" >/dev/null; s=$?; times; exit $s', 'bench', ...argv], { cwd, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited with ${r.status}: ${r.stderr}`);
  // bash's `times`: its own user and sys, then its children's: "0m0.061s 0m0.012s".
  const children = r.stdout.trim().split('\n')[1];
  const m = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(children ?? '');
  if (!m) throw new Error(`unexpected output of times: ${r.stdout}`);
  return Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
}

/**
 * Runs the start-up measurement: the commands of issue 29, interleaved, `rounds` times.
 * Returns { certificates, rounds, seconds: {name: median}, ratios: {name: median / node's}, perRoundRatios }.
 */
export async function benchStartup({ root, cache, lib, log, rounds = Number(process.env.BENCH_STARTUP_ROUNDS ?? 41), certificates = 1000 }) {
  const store = await startupStore(cache, certificates, lib, log);
  const cli = join(root, 'dist', 'cli', 'main.js');
  const node = process.execPath;
  // The user's environment, less what would point the CLI elsewhere or make it print more.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PROFILESMITH_') && k !== 'NODE_OPTIONS'));
  const commands = {
    'node -e 0': [node, '-e', '0'],
    '--help': [node, cli, '--help'],
    '--version': [node, cli, '--version'],
    [`cert list (${certificates} certificates)`]: [node, cli, 'cert', 'list', '--store', store],
  };
  const names = Object.keys(commands);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  // A cert list that lists nothing would measure nothing.
  const listed = spawnSync(node, [cli, 'cert', 'list', '--store', store, '--json'], { cwd: cache, env, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (listed.status !== 0 || JSON.parse(listed.stdout).length !== certificates) throw new Error(`cert list of the start-up store: ${listed.stderr || `${JSON.parse(listed.stdout).length} certificates`}`);
  log(`start-up: ${rounds} interleaved rounds of ${names.join(', ')}...`);
  for (const n of names) cpuSeconds(commands[n], cache, env); // the file cache warm for all
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < names.length; i++) {
      const n = names[(r + i) % names.length];
      times[n].push(cpuSeconds(commands[n], cache, env));
    }
  }
  const seconds = Object.fromEntries(names.map((n) => [n, median(times[n])]));
  const base = seconds['node -e 0'];
  const ratios = Object.fromEntries(names.slice(1).map((n) => [n, seconds[n] / base]));
  // Each round's own ratio too (against that round's node -e 0), as a check on the spread.
  const roundRatios = Object.fromEntries(names.slice(1).map((n) => {
    const rs = times[n].map((t, r) => t / times['node -e 0'][r]);
    return [n, { median: median(rs), min: Math.min(...rs), max: Math.max(...rs) }];
  }));
  return { certificates, rounds, measure: 'user+sys CPU seconds of the child (bash times), median of the rounds', seconds, ratios, roundRatios, samples: times };
}

/** The report's lines. */
export function startupLines(s) {
  const ms = (x) => `${(x * 1000).toFixed(0)} ms`;
  return [
    `start-up, CPU time (user+sys), median of ${s.rounds} interleaved rounds:`,
    ...Object.entries(s.seconds).map(([n, x]) => `  ${n.padEnd(32)} ${ms(x).padStart(7)}${s.ratios[n] ? `  = ${s.ratios[n].toFixed(2)} × node -e 0 (per-round ratios: median ${s.roundRatios[n].median.toFixed(2)}, ${s.roundRatios[n].min.toFixed(2)}-${s.roundRatios[n].max.toFixed(2)})` : ''}`),
  ];
}
