/**
 * The PostgreSQL server stopped dead (`pg_ctl stop -m immediate`) while commands and servers use
 * it: one line, never a stack trace. node-postgres emits 'error' on a client whose connection
 * dies between two queries, and a client checked out for a transaction had no listener, so the
 * process crashed in some rounds ("Emitted 'error' event on Client instance"). This file has a
 * cluster of its own (the tests stop it), and the tests run one after another. No timing: the
 * server is stopped when the database announces the batch's first certificate (LISTEN/NOTIFY).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Database } from '../../src/store/postgres/db.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres, type PgServer } from '../helpers/postgres.js';
import { BIN, cli, httpRequest, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres();

/** The two messages the store's error mapping (db.ts pgError) gives a server that went away. */
const gone = (url: string) => {
  const at = `the PostgreSQL server of ${url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`;
  return new RegExp(`(Cannot reach ${at} \\(connection refused\\); is it running\\?|The connection to ${at} was cut \\(the server restarted or went away\\); nothing was half-written: run it again)$`);
};

/** An operator's connection to the test's database, for looking at it from outside. */
async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // This client is cut too when the server stops; the test has ended it by then, or ignores it.
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** After a stop of the test's own: start the cluster again (a no-op when it runs). */
function ensureStarted(pgServer: PgServer): void {
  try {
    pgServer.start();
  } catch {
    // running already
  }
}

if (hasPostgres(server, 'PostgreSQL stop tests')) {
  test.serial('a checked-out client whose connection dies between two queries: no crash; the next query and the transaction fail with one StoreIOError, and the pool discards the client', async (t) => {
    const url = await server.createDatabase();
    const db = await Database.open(url);
    t.teardown(() => db.end());
    const released: (Error | boolean | undefined)[] = [];
    db.pool.on('release', (err: Error | boolean | undefined) => released.push(err));
    await db.query('CREATE TABLE t (n int)');
    const err = await t.throwsAsync(
      db.tx(async (c) => {
        await c.query('INSERT INTO t VALUES (1)');
        const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
        // The client's own 'end' (a plain listener: events.once would listen to 'error' too).
        const ended = new Promise<void>((resolve) => c.once('end', () => resolve()));
        await db.query('SELECT pg_terminate_backend($1)', [pid]);
        // Between two queries the connection dies: 'error' is emitted on the client before
        // 'end'. Without a listener of the store's, that throws and ends this process.
        await ended;
        await c.query('INSERT INTO t VALUES (2)');
      }),
    );
    t.like(err, { code: 'ERR_STORE_IO', message: `The connection to the PostgreSQL server of ${db.where} was cut (the server restarted or went away); nothing was half-written: run it again` });
    t.true(released.at(-1) instanceof Error, 'released with the error, so the pool discards the client');
    t.deepEqual((await db.query('SELECT count(*)::int AS n FROM t')).rows, [{ n: 0 }], 'nothing was written');

    // An idle client of the pool cut the same way: the pool's own listener, no crash; it is dropped.
    const removed = new Promise<void>((resolve) => db.pool.once('remove', () => resolve()));
    const idle = (await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const other = await connect(url);
    await other.query('SELECT pg_terminate_backend($1)', [idle]);
    await other.end();
    await removed;
    await db.tx((c) => c.query('INSERT INTO t VALUES (3)'));
    t.deepEqual((await db.query('SELECT n FROM t')).rows, [{ n: 3 }]);
  });

  test.serial('pg_ctl stop -m immediate in the middle of cert issue-batch, 10 rounds: exit 1 and one line every time, never a stack trace; after a start, store check is clean and nobody holds two certificates', async (t) => {
    // A hang guard only: each round waits on events (a notification, the exit), not on a clock.
    t.timeout(20 * 60_000);
    const dir = tmp(t);
    const url = await server.createDatabase();
    t.teardown(() => ensureStarted(server));
    const init = cli(['init', '--store', url, '--org', 'Stop Corp'], { cwd: dir, env });
    t.is(init.status, 0, init.stderr);
    // Each committed certificate is announced, so the test stops the server right after the first.
    const admin = await connect(url);
    await admin.query(`CREATE FUNCTION announce() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('issued', NEW.serial); RETURN NEW; END $$`);
    await admin.query('CREATE TRIGGER announce AFTER INSERT ON certificates FOR EACH ROW EXECUTE FUNCTION announce()');
    await admin.end();

    const outcomes: string[] = [];
    for (let round = 1; round <= 10; round++) {
      // 300 users nobody has issued to: the batch is far from done when the first is committed.
      writeFileSync(join(dir, 'users.csv'), ['email', ...Array.from({ length: 300 }, (_, i) => `r${round}.u${i}@example.com`)].join('\n') + '\n');
      const listener = await connect(url);
      await listener.query('LISTEN issued');
      const first = new Promise<void>((resolve) => listener.once('notification', () => resolve()));
      const child = spawn(process.execPath, [BIN, 'cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', 'smime-signing'], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const early = await Promise.race([first.then(() => false), exited.then(() => true)]);
      t.false(early, `round ${round}: the batch exited before its first certificate: ${stderr}`);
      await listener.end();
      server.pgCtl(['-m', 'immediate', 'stop']);
      const code = await exited;
      t.is(code, 1, `round ${round}: ${stderr}`);
      t.regex(stderr, /^error: [^\n]*\n$/, `round ${round}: exactly one line`);
      t.notRegex(stderr, /Emitted|\n\s*at |node:/, `round ${round}: no stack trace`);
      t.regex(stderr.trimEnd(), gone(url), `round ${round}: says the database is unreachable, and what to do`);
      outcomes.push(/Cannot reach/.test(stderr) ? 'refused' : 'cut');

      server.start();
      const check = cli(['store', 'check', '--store', url, '--json'], { cwd: dir, env });
      t.is(check.status, 0, `round ${round}: ${check.stderr}`);
      t.like(JSON.parse(check.stdout), { keysChecked: true, errors: 0, findings: [] }, `round ${round}`);
    }
    t.log(`10 rounds: exit 1 and one line each (${outcomes.filter((o) => o === 'refused').length} connection refused, ${outcomes.filter((o) => o === 'cut').length} connection cut)`);
    // Consistent: every certificate whole (store check above), none twice for a user and purpose.
    const admin2 = await connect(url);
    t.teardown(() => admin2.end());
    const twice = await admin2.query(`SELECT user_lower FROM certificates WHERE purpose = 'smime-signing' GROUP BY user_lower HAVING count(*) > 1`);
    t.deepEqual(twice.rows, []);
    t.true((await admin2.query('SELECT count(*)::int AS n FROM certificates')).rows[0].n >= 10, 'each round issued before the stop');
  });

  test.serial('serve and pki serve on a PostgreSQL store: the server stopped dead, requests get 503 and one log line each; the server stays up and answers again once the database is back', async (t) => {
    t.timeout(5 * 60_000);
    const dir = tmp(t);
    const url = await server.createDatabase();
    t.teardown(() => ensureStarted(server));
    t.is(cli(['init', '--store', url, '--org', 'Serve Corp'], { cwd: dir, env }).status, 0);
    writeFileSync(join(dir, 'users.csv'), 'email\nkim@example.com\n');
    for (const purpose of ['smime-signing', 'smime-encryption']) {
      const r = cli(['cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', purpose], { cwd: dir, env });
      t.is(r.status, 0, r.stderr);
    }
    const link = cli(['link', 'create', '--store', url, '--user', 'kim@example.com', '--uses', '5', '--base-url', 'http://x.example', '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { cwd: dir, env });
    t.is(link.status, 0, link.stderr);
    const token = link.stdout.trim().split('/p/')[1]!;
    const serve = await startServer(t, [BIN, 'serve', '--store', url, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0'], env);
    const pki = await startServer(t, [BIN, 'pki', 'serve', '--store', url, '--listen', '127.0.0.1:0'], env);
    t.is((await httpRequest(`${serve.base}/p/${token}`)).status, 200);
    t.is((await httpRequest(`${pki.base}/crl/root.crl`)).status, 200);

    server.pgCtl(['-m', 'immediate', 'stop']);
    const page = await httpRequest(`${serve.base}/p/${token}`);
    t.is(page.status, 503);
    t.regex(page.text(), /Cannot make the profile/);
    t.is((await httpRequest(`${serve.base}/p/${token}/install`, { method: 'POST' })).status, 503);
    const crl = await httpRequest(`${pki.base}/crl/root.crl`);
    t.is(crl.status, 503);
    t.is(crl.text(), 'The server cannot answer now; try again later\n');
    const serveLog = await serve.logged(/POST \/p\/<token>\/install 503/);
    const pkiLog = await pki.logged(/GET \/crl\/root\.crl 503/);
    const failed = (log: string) => log.split('\n').filter((l) => / 503 \d+ms/.test(l));
    for (const [log, lines] of [[serveLog, 2], [pkiLog, 1]] as const) {
      t.is(failed(log).length, lines, log);
      for (const line of failed(log)) t.regex(line, new RegExp(` 503 \\d+ms ERR_STORE_IO: ${gone(url).source}`), line);
      t.notRegex(log, /Emitted|\n\s*at |node:|^error|\serror[: ]/m, 'no stack trace, no other line about it');
    }

    server.start();
    t.is((await httpRequest(`${serve.base}/p/${token}`)).status, 200, serve.log());
    const profile = await httpRequest(`${serve.base}/p/${token}/install`, { method: 'POST' });
    t.is(profile.status, 200, serve.log());
    t.is(profile.headers['content-type'], 'application/x-apple-aspen-config');
    t.is((await httpRequest(`${pki.base}/crl/root.crl`)).status, 200, pki.log());
    // Both servers stayed up through it all.
    t.is(serve.proc.exitCode, null);
    t.is(pki.proc.exitCode, null);
  });
}
