/**
 * The PostgreSQL server stopped dead (`pg_ctl stop -m immediate`) while commands and servers use
 * it: one line, never a stack trace. node-postgres emits 'error' on a client whose connection
 * dies between two queries, and a client checked out for a transaction had no listener, so the
 * process crashed in some rounds ("Emitted 'error' event on Client instance"). This file has a
 * cluster of its own (the tests stop it), and the tests run one after another.
 */
import test from 'ava';
import pg from 'pg';
import { Database } from '../../src/store/postgres/db.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';

const server = await postgres();

/** An operator's connection to the test's database, for looking at it from outside. */
async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // This client is cut too when the server stops; the test has ended it by then, or ignores it.
  client.on('error', () => {});
  await client.connect();
  return client;
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
}
