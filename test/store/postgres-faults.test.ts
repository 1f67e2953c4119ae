/**
 * The PostgreSQL server restarted or stopped in the middle of a batch (issue "When one machine
 * is not enough"): one clear line per failed row and exit 1, no half-written profile, and a
 * rerun with --only-changed finishes the job. This file has a cluster of its own (the tests
 * stop it), and the tests run one after another. No timing: one row's device certificate is a
 * named pipe, so the worker waits there while the test restarts or stops the server.
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres, type PgServer } from '../helpers/postgres.js';
import { BIN, cli, openssl, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres();

async function prepared(t: import('ava').ExecutionContext, pg: PgServer) {
  const dir = tmp(t);
  const url = await pg.createDatabase();
  t.is(cli(['init', '--store', url, '--org', 'Faults Corp'], { cwd: dir, env }).status, 0);
  const emails = Array.from({ length: 8 }, (_, i) => `user${i}@example.com`);
  writeFileSync(join(dir, 'issue.csv'), ['email', ...emails].join('\n') + '\n');
  for (const purpose of ['smime-signing', 'smime-encryption']) {
    const r = cli(['cert', 'issue-batch', '--store', url, '--users', 'issue.csv', '--purpose', purpose], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
  }
  const root = join(dir, 'root.pem');
  writeFileSync(root, cli(['ca', 'export', '--store', url], { cwd: dir, env }).stdout);
  execFileSync('mkfifo', [join(dir, 'device.pem')]);
  writeFileSync(join(dir, 'users.csv'), ['email,device_cert', ...emails.map((e, i) => `${e},${i === 5 ? 'device.pem' : ''}`)].join('\n') + '\n');
  const out = join(dir, 'out');
  const profiles = () => (existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('.mobileconfig')) : []);
  const args = ['batch', 'exchange-smime', '--store', url, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--jobs', '1', '--only-changed'];
  const device = readFileSync(root);
  /** Runs the batch until the worker waits on row 6, does `fault`, lets row 6 go on; resolves with the exit and stderr. */
  const interrupted = async (fault: () => void) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // A first profile written: the run is under way, and its worker blocks on row 6's pipe
    // (rows are handed over in small groups; bounded poll, nothing timed).
    for (let i = 0; profiles().length < 1; i++) {
      if (i > 2400) throw new Error(`no profiles were written: ${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    fault();
    // Let row 6 go on, if its worker reads the pipe at all: after the fault, its row may fail
    // at its first query, before it opens the pipe. So the pipe is opened without blocking
    // (ENXIO: no reader yet), again until a reader comes or the batch has exited.
    let done = false;
    void exited.then(() => (done = true));
    for (let i = 0; !done; i++) {
      if (i > 2400) throw new Error(`the batch neither read row 6 nor exited: ${stderr}`);
      let fd: number | undefined;
      try {
        fd = openSync(join(dir, 'device.pem'), constants.O_WRONLY | constants.O_NONBLOCK);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
      }
      if (fd !== undefined) {
        writeSync(fd, device);
        closeSync(fd);
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return { code: await exited, stderr };
  };
  const rerun = () => {
    rmSync(join(dir, 'device.pem'));
    writeFileSync(join(dir, 'device.pem'), device);
    return cli([...args, '--json'], { cwd: dir, env });
  };
  /** Every profile written is whole: openssl verifies each under the store's root. */
  const allVerify = () => {
    for (const f of profiles()) {
      const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', root, '-purpose', 'any', '-in', join(out, f), '-out', '/dev/null']);
      t.is(v.status, 0, `${f}: ${v.stderr}`);
    }
    t.deepEqual(readdirSync(out).filter((f) => !f.endsWith('.mobileconfig') && f !== '.profilesmith-batch.json'), [], 'no temporary files left');
  };
  return { interrupted, rerun, profiles, allVerify };
}

if (hasPostgres(server, 'PostgreSQL fault tests')) {
  test.serial('pg_ctl restart in the middle of a batch: the rows after it reconnect or fail with one line; no half-written profile; --only-changed finishes the job', async (t) => {
    const s = await prepared(t, server);
    const { code, stderr } = await s.interrupted(() => server.restart());
    t.true(code === 0 || code === 1, `exit ${code}: ${stderr}`);
    t.log(`exit ${code}; ${stderr.split("\n").filter((l) => l.startsWith("error:")).length} row(s) failed`);
    t.notRegex(stderr, /\n\s+at /, 'no stack trace');
    for (const line of stderr.split('\n').filter((l) => l.startsWith('error:'))) t.regex(line, /PostgreSQL server|connection/, line);
    s.allVerify();
    const again = s.rerun();
    t.is(again.status, 0, again.stderr);
    t.is(s.profiles().length, 8);
    s.allVerify();
  });

  test.serial('the server stopped in the middle of a batch: each later row fails with one line naming the server, exit 1; after a start, --only-changed finishes the job', async (t) => {
    const s = await prepared(t, server);
    const { code, stderr } = await s.interrupted(() => server.pgCtl(['-m', 'fast', 'stop']));
    t.teardown(() => {
      try {
        server.start();
      } catch {
        // running already
      }
    });
    t.is(code, 1, stderr);
    t.notRegex(stderr, /\n\s+at /, 'no stack trace');
    const errors = stderr.split('\n').filter((l) => l.startsWith('error:'));
    t.true(errors.length >= 1, stderr);
    for (const line of errors) t.regex(line, /Cannot reach the PostgreSQL server|connection to the PostgreSQL server .* was cut/, line);
    t.true(s.profiles().length >= 1 && s.profiles().length < 8);
    s.allVerify();
    server.start();
    const again = s.rerun();
    t.is(again.status, 0, again.stderr);
    t.is(s.profiles().length, 8);
    s.allVerify();
  });
}
