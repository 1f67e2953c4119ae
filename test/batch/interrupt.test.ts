/**
 * Ctrl-C in a batch (issue "The admin's CLI, polished"): the rows in flight finish, the run
 * record and a summary are written, the exit code is 130, and a rerun with --only-changed does
 * the rest. No timing is involved: one row's device certificate is a named pipe, so its worker
 * blocks on it until the test writes it, after the SIGINT.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, ROOT, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

test('Ctrl-C in a batch: rows in flight finish, the run record holds them, a summary is printed, exit 130; --only-changed finishes the job', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  const emails = Array.from({ length: 12 }, (_, i) => `user${String(i + 1).padStart(2, '0')}@example.com`);
  writeFileSync(join(dir, 'issue.csv'), ['email', ...emails].join('\n') + '\n');
  for (const purpose of ['smime-signing', 'smime-encryption']) {
    t.is(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'issue.csv', '--purpose', purpose], { cwd: dir, env }).status, 0);
  }
  // Row 6 encrypts to a device certificate read from a FIFO: its worker waits there.
  execFileSync('mkfifo', [join(dir, 'device.pem')]);
  writeFileSync(join(dir, 'users.csv'), ['email,device_cert', ...emails.map((e, i) => `${e},${i === 5 ? 'device.pem' : ''}`)].join('\n') + '\n');
  const device = readFileSync(join(storeDir, 'ca', 'root.pem'));
  const out = join(dir, 'out');
  const profiles = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.mobileconfig')) : []);
  const args = [BIN, 'batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--jobs', '1', '--only-changed'];

  const child = spawn(process.execPath, args, { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // A first profile means the run is under way (the Ctrl-C handler is in place); the worker
  // then blocks on row 6 (bounded poll, no assertion on time).
  for (let i = 0; profiles().length < 1; i++) {
    if (i > 1200) throw new Error(`no profile was written: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGINT');
  for (let i = 0; !stderr.includes('Stopping'); i++) {
    if (i > 1200) throw new Error(`no "Stopping" note: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Unblock row 6: the rows already handed to the worker finish; no row after them starts.
  writeFileSync(join(dir, 'device.pem'), device);
  t.is(await exited, 130, stderr);

  const summary = /(\d+) generated, 0 unchanged, 0 failed in .*; interrupted after (\d+) of 12 rows: the run record holds them, and --only-changed does the rest/.exec(stderr);
  t.truthy(summary, stderr);
  const done = Number(summary![2]);
  t.is(Number(summary![1]), done);
  t.true(done >= 6 && done < 12, `done: ${done} (rows 1-6 were in flight, and at most 3 more)`);
  t.is(profiles().length, done);
  const record = JSON.parse(readFileSync(join(out, '.profilesmith-batch.json'), 'utf8')) as { entries: Record<string, string> };
  t.deepEqual(Object.keys(record.entries).sort(), profiles().map((f) => f.replace(/\.mobileconfig$/, '')).sort());

  // The rerun: the FIFO replaced by the same bytes in a file, so row 6 is unchanged.
  rmSync(join(dir, 'device.pem'));
  writeFileSync(join(dir, 'device.pem'), device);
  const rerun = cli(args.slice(1).concat('--json'), { cwd: dir, env });
  t.is(rerun.status, 0, rerun.stderr);
  t.like(JSON.parse(rerun.stdout), { generated: 12 - done, unchanged: done, failed: 0, interrupted: false });
  t.is(profiles().length, 12);
});

test('runBatch with an AbortSignal: aborted after the first row, the rows in flight finish whole, the run record holds exactly the files, the summary says interrupted', async (t) => {
  // The built package, as a vendor runs it: its worker threads are the built .js files.
  const { runBatch } = (await import(join(ROOT, 'dist', 'index.js'))) as typeof import('../../src/index.js');
  const { parseProfile } = await import('../../src/profile/parse.js');
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  const emails = Array.from({ length: 40 }, (_, i) => `row${String(i + 1).padStart(2, '0')}@example.com`);
  writeFileSync(join(dir, 'users.csv'), ['email', ...emails].join('\n') + '\n');
  for (const purpose of ['smime-signing', 'smime-encryption']) {
    t.is(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', purpose], { cwd: dir, env }).status, 0);
  }
  const controller = new AbortController();
  const summary = await runBatch({
    storeDir,
    passphrase: PASSPHRASE,
    template: 'exchange-smime',
    usersFile: join(dir, 'users.csv'),
    outDir: join(dir, 'out'),
    sets: { 'exchange.host': 'h.example.com' },
    jobs: 1,
    signal: controller.signal,
    // Aborted when the first row is done: whatever else was handed out finishes; nothing new starts.
    onProgress: () => controller.abort(),
  });
  t.true(summary.interrupted);
  t.true(summary.done >= 1 && summary.done < 40, `done: ${summary.done}`);
  t.is(summary.generated, summary.done);
  const files = readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.mobileconfig'));
  t.is(files.length, summary.done);
  t.deepEqual(readdirSync(join(dir, 'out')).filter((f) => f.startsWith('.tmp')), [], 'no half-written file');
  for (const f of files) t.notThrows(() => parseProfile(readFileSync(join(dir, 'out', f))), f);
  const record = JSON.parse(readFileSync(join(dir, 'out', '.profilesmith-batch.json'), 'utf8')) as { entries: Record<string, string> };
  t.deepEqual(Object.keys(record.entries).sort(), files.map((f) => f.replace(/\.mobileconfig$/, '')).sort());
});

test('issueBatch with an AbortSignal: no key is started after the abort, the keys being made are stored, and a rerun issues the rest', async (t) => {
  const { issueBatch } = await import('../../src/batch/issue-batch.js');
  const { createMemoryStore } = await import('../../src/store/memory-store.js');
  const dir = tmp(t);
  writeFileSync(join(dir, 'users.csv'), ['email', ...Array.from({ length: 12 }, (_, i) => `k${i}@example.com`)].join('\n') + '\n');
  const store = await createMemoryStore();
  const controller = new AbortController();
  const first = await issueBatch({ store, usersFile: join(dir, 'users.csv'), purpose: 'smime-signing', jobs: 1, signal: controller.signal, onProgress: () => controller.abort() });
  t.true(first.interrupted);
  t.true(first.done >= 1 && first.done < 12, `done: ${first.done}`);
  t.is((await store.listCertificates()).length, first.generated);
  const rest = await issueBatch({ store, usersFile: join(dir, 'users.csv'), purpose: 'smime-signing', jobs: 2 });
  t.like(rest, { interrupted: false, generated: 12 - first.generated, existing: first.generated });
  t.is((await store.listCertificates()).length, 12);
});
