/**
 * The PostgreSQL connection of a store: a pool, transactions, and every server fault turned
 * into one clear StoreIOError naming the server (never its password).
 *
 * @module postgres-db
 */
import type pg from 'pg';
import { isProfilesmithError, StoreIOError } from '../../errors.js';

/** True for a store location that names a PostgreSQL database. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/** The URL as it may be shown: without its password. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    return u.toString().replace(/:@/, '@');
  } catch {
    return 'postgres://…';
  }
}

const CUT = (code: string, message = '') => code === '57P01' || code === '57P02' || code === '57P03' || code === 'ECONNRESET' || code === 'EPIPE' || /Connection terminated|terminating connection/i.test(message);
const COLLIDED = (code: string) => code === '40001' || code === '40P01';

/**
 * True for a store error that belongs to one write only: a transaction that collided with
 * another node's (the next write need not meet it). Every other store fault (a full disk, a
 * server that is down, restarting or refusing the login, a connection it cut) is taken as
 * recurring: a batch stops at it with one line rather than failing row after row, and a second
 * run finishes the job.
 */
export function isPassingFault(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (COLLIDED(String((e as { code?: unknown }).code ?? ''))) return true;
  }
  return false;
}

/** What the server or the network said, as one line of ours. */
export function pgError(where: string, op: string, err: unknown): StoreIOError {
  if (err instanceof StoreIOError) return err;
  const e = err as { code?: string; message?: string; errno?: string };
  const code = e.code ?? '';
  const at = `the PostgreSQL server of ${where}`;
  let message: string;
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    message = `Cannot reach ${at} (${code === 'ENOTFOUND' ? 'unknown host' : code === 'ECONNREFUSED' ? 'connection refused' : code}); is it running?`;
  } else if (/connection timeout/i.test(e.message ?? '')) {
    // node-postgres: "Connection terminated due to connection timeout": no session in 10 s.
    message = `Cannot reach ${at} (no connection within 10 s); is it running, and is this machine or the server overloaded?`;
  } else if (code === '28P01' || code === '28000') {
    message = `${at[0]!.toUpperCase()}${at.slice(1)} refused the login (${code === '28P01' ? 'wrong password' : 'no such user, or not allowed from here'})`;
  } else if (code === '3D000') {
    message = `The database of ${where} does not exist; create it (createdb) and run \`profilesmith init\``;
  } else if (CUT(code, e.message)) {
    message = `The connection to ${at} was cut (the server restarted or went away); nothing was half-written: run it again`;
  } else if (COLLIDED(code)) {
    message = `${at[0]!.toUpperCase()}${at.slice(1)} aborted a transaction that collided with another node's (${code}); run it again`;
  } else if (/SSL|TLS|certificate/i.test(e.message ?? '')) {
    message = `TLS to ${at} failed: ${(e.message ?? '').split('\n')[0]}`;
  } else {
    message = `${at[0]!.toUpperCase()}${at.slice(1)} failed to ${op}: ${(e.message ?? String(err)).split('\n')[0]}${code ? ` (${code})` : ''}`;
  }
  return new StoreIOError(where, op, message, { cause: err });
}

/** A pool over one database, with transactions that map errors. */
export class Database {
  readonly pool: pg.Pool;
  /** The URL without its password, for messages. */
  readonly where: string;

  /**
   * A pool for `url`. node-postgres is loaded here, on first use: a file-store command never
   * loads it. Connection settings the URL leaves out come from the PG* environment variables
   * (node-postgres reads PGHOST, PGUSER, PGPASSWORD, PGSSLMODE…); sslmode in the URL asks for TLS.
   */
  static async open(url: string, options: { max?: number } = {}): Promise<Database> {
    const { default: pgModule } = await import('pg');
    return new Database(pgModule, url, options);
  }

  private constructor(pgModule: typeof pg, url: string, options: { max?: number }) {
    this.where = displayUrl(url);
    this.pool = new pgModule.Pool({ connectionString: url, max: options.max ?? 4, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 10_000, allowExitOnIdle: true });
    // An idle client cut by a server restart must not crash the process: the pool has dropped
    // it already, and the next query connects again (or fails with one line). A checked-out
    // client has a listener of its own, from withClient.
    this.pool.on('error', () => {});
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values: unknown[] = [], op = 'read'): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw pgError(this.where, op, err);
    }
  }

  /**
   * Runs `fn` with a client of its own from the pool, returned when `fn` settles: the one place
   * this code checks a client out (transactions, advisory locks, migrations; a future LISTEN or
   * session lock goes through here too). While the client is out, nothing of the pool's listens
   * to it, and node-postgres emits 'error' on a client whose connection dies between two queries
   * (a server restart, `pg_ctl stop`, a cut network): without a listener of ours that event
   * would be thrown and end the process with a stack trace. So the first such error is kept;
   * the next query on the client (it is not queryable any more), or the transaction's outcome,
   * fails with it as one StoreIOError, and the client goes back with `release(err)`, which makes
   * the pool discard it. `broken(err)` marks the client as unfit to reuse (a failed ROLLBACK).
   * Our own typed errors thrown by `fn` pass as they are.
   */
  async withClient<T>(fn: (client: pg.PoolClient, broken: (err: unknown) => void) => Promise<T>, op = 'read'): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw pgError(this.where, op, err);
    }
    let fault: Error | undefined;
    const broken = (err: unknown) => {
      fault ??= err instanceof Error ? err : new Error(String(err));
    };
    client.on('error', broken);
    try {
      return await fn(client, broken);
    } catch (err) {
      if (isProfilesmithError(err)) throw err;
      // A query after the connection died says only "not queryable": the kept error says why.
      throw pgError(this.where, op, fault ?? err);
    } finally {
      client.off('error', broken);
      client.release(fault);
    }
  }

  /**
   * Runs `fn` in one transaction (committed when it returns, rolled back when it throws), on a
   * client from {@link Database.withClient}. `lock`: an advisory lock key held until the end of
   * the transaction.
   */
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>, options: { lock?: string | number; op?: string } = {}): Promise<T> {
    return this.withClient(async (client, broken) => {
      try {
        await client.query('BEGIN');
        if (typeof options.lock === 'number') await client.query('SELECT pg_advisory_xact_lock($1)', [options.lock]);
        else if (options.lock !== undefined) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [options.lock]);
        const out = await fn(client);
        await client.query('COMMIT');
        return out;
      } catch (err) {
        await client.query('ROLLBACK').catch(broken);
        throw err;
      }
    }, options.op ?? 'write');
  }

  end(): Promise<void> {
    return this.pool.end().catch(() => {});
  }
}
