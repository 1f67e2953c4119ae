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
 * True for a store error that the next attempt need not meet: a transaction that collided with
 * another node's, or a connection the server cut (the pool opens a new one). Every other store
 * fault (a full disk, a server that is down or refuses the login) recurs.
 */
export function isPassingFault(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) {
    const code = String((e as { code?: unknown }).code ?? '');
    if (CUT(code, e.message) || COLLIDED(code)) return true;
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
    // An idle client cut by a server restart must not crash the process; the next query reconnects.
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
   * Runs `fn` in one transaction (committed when it returns, rolled back when it throws).
   * `lock`: an advisory lock key held until the end of the transaction.
   */
  async tx<T>(fn: (client: pg.PoolClient) => Promise<T>, options: { lock?: string | number; op?: string } = {}): Promise<T> {
    const op = options.op ?? 'write';
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw pgError(this.where, op, err);
    }
    let broken = false;
    try {
      await client.query('BEGIN');
      if (typeof options.lock === 'number') await client.query('SELECT pg_advisory_xact_lock($1)', [options.lock]);
      else if (options.lock !== undefined) await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [options.lock]);
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      // Our own typed errors (a refused issuance, a duplicate) pass as they are; server faults get one line.
      if (isProfilesmithError(err)) throw err;
      throw pgError(this.where, op, err);
    } finally {
      client.release(broken);
    }
  }

  end(): Promise<void> {
    return this.pool.end().catch(() => {});
  }
}
