/**
 * The storage port over PostgreSQL, on exactly today's schema (schema.ts): a database made or
 * written by today's PostgreSQL store opens through the port as it is, and one written through
 * the port opens with `openPostgresStore`.
 *
 * Transactions: one client, BEGIN, `pg_advisory_xact_lock(PORT_LOCK)`, the function, COMMIT
 * (ROLLBACK when it throws). Every transaction of every port over the database, on any node,
 * takes that one lock, so any two exclude each other. Reads outside a transaction go through
 * the pool and see committed state.
 *
 * @module postgres-port
 */
import { isProfilesmithError, StoreIOError, StoreNotInitialized } from '../../../errors.js';
import type { LinkStore } from '../../../server/links.js';
import type { CertificateRecord } from '../../store.js';
import type { LinkBookName, PortTransaction, StoragePort } from '../../port/port.js';
import { Database } from '../db.js';
import { PgLinks } from '../pg-links.js';
import { RECORD_SELECT, toRecord, type CertRow } from '../rows.js';
import { migrate, schemaVersion, SCHEMA_VERSION, STORE_LOCK } from '../schema.js';
import { PgPortCache } from './cache.js';
import { PgPortReads, type ReadHints } from './reads.js';
import { clientRun, linkTable, type Run } from './sql.js';
import { PgPortTransaction } from './writes.js';

/**
 * The advisory lock every port transaction holds (`pg_advisory_xact_lock(bigint)`): 'prtw' in
 * ASCII. Distinct from STORE_LOCK ('prof', held by init, migrations and today's administration)
 * and from today's named locks (hashtextextended of `issue|…`, `import|…`, `user|…`, a 64-bit
 * hash, which this small number is not expected to meet).
 */
export const PORT_LOCK = 0x70727477;

/** How many records `remember` keeps before it starts again (as PostgresStore's #seen). */
const SEEN_MAX = 4096;

/** Options of {@link openPostgresPort}. */
export interface OpenPostgresPortOptions {
  /** Give an empty database today's schema (the migrations, as init does). Without it, a database without the schema is refused as not initialized. */
  create?: boolean;
  /** Connections in this process's pool. Default: 4. */
  connections?: number;
}

/**
 * The PostgreSQL storage port. Open it with {@link openPostgresPort}, or over a Database with
 * {@link PostgresPort.fromDatabase}.
 * @example
 * const port = await openPostgresPort('postgres://profilesmith@db.internal/pki')
 * try {
 *   console.log((await port.records()).length)
 * } finally {
 *   await port.close()
 * }
 */
export class PostgresPort extends PgPortReads implements StoragePort {
  /** The sealed PKCS#12 files of `pkcs12_cache`. */
  readonly cache: PgPortCache;
  /** Another writer of a database is another node. */
  readonly elsewhere = 'on another node';
  readonly #hints: ReadHints;

  private constructor(
    /** The connection pool (shared with nothing else of the port's user). */
    readonly database: Database,
    hints: ReadHints,
  ) {
    const pool: Run = (text, values, op) => database.query(text, values, op);
    super(pool, database.where, hints);
    this.#hints = hints;
    this.cache = new PgPortCache(database);
  }

  /** A port over an open Database whose schema is today's (the caller checked or made it). */
  static fromDatabase(db: Database): PostgresPort {
    return new PostgresPort(db, { seen: new Map() });
  }

  /**
   * Runs `fn` in one transaction holding {@link PORT_LOCK}: committed when it returns, rolled
   * back when it throws. What `fn` throws comes out as it was thrown; a fault of the server is
   * one StoreIOError naming it.
   */
  async transaction<T>(fn: (tx: PortTransaction) => Promise<T>): Promise<T> {
    let thrown: { err: unknown } | undefined;
    try {
      return await this.database.tx(async (client) => {
        try {
          return await fn(new PgPortTransaction(clientRun(client, this.location), this.location));
        } catch (err) {
          thrown = { err };
          throw err;
        }
      }, { lock: PORT_LOCK, op: 'write' });
    } catch (err) {
      // Database.tx turns an error of ours it does not know into a server fault; the caller's own passes as it is.
      if (thrown && !isProfilesmithError(thrown.err)) throw thrown.err;
      throw err;
    }
  }

  /** The book as today's store keeps it: a `PgLinks` over `links` or `scep_challenges`, a use spent by one conditional UPDATE. */
  linkStore(book: LinkBookName, now: () => Date): LinkStore {
    return new PgLinks(this.database, now, linkTable(book));
  }

  /** Reads every record once (one query); each user's records are then answered from it, as they were now, outside transactions. */
  async preload(): Promise<void> {
    const rows = await this.database.query<CertRow>(`${RECORD_SELECT} ORDER BY c.seq`);
    const byUser = new Map<string, CertificateRecord[]>();
    for (const r of rows.rows.map(toRecord)) {
      const k = r.user.toLowerCase();
      let list = byUser.get(k);
      if (!list) byUser.set(k, (list = []));
      list.push(r);
    }
    this.#hints.byUser = byUser;
  }

  /** Keeps records the caller holds, by serial: a lookup of one of them outside a transaction needs no query. */
  remember(records: readonly CertificateRecord[]): void {
    if (this.#hints.seen.size > SEEN_MAX) this.#hints.seen.clear();
    for (const r of records) this.#hints.seen.set(r.serial, structuredClone(r));
  }

  /** Ends the connection pool. */
  close(): Promise<void> {
    return this.database.end();
  }
}

/**
 * Opens the port over the database at `url`: an older schema is migrated forward (under
 * STORE_LOCK, as openPostgresStore does), a newer one refused; with `create`, an empty
 * database gets today's schema (a database holding a store already opens as it is).
 * @throws ERR_STORE_NOT_INITIALIZED for a database without the schema (without `create`); ERR_STORE_IO for a newer schema, or a server fault
 * @example
 * const port = await openPostgresPort('postgres://profilesmith@db.internal/pki', { create: true })
 */
export async function openPostgresPort(url: string, options: OpenPostgresPortOptions = {}): Promise<PostgresPort> {
  const db = await Database.open(url, options.connections ? { max: options.connections } : {});
  try {
    const version = await db.tx((c) => schemaVersion(c), { op: 'read' });
    if (version === 0 && !options.create) throw new StoreNotInitialized(db.where);
    if (version > SCHEMA_VERSION) {
      throw new StoreIOError(db.where, 'read', `The database at ${db.where} has schema version ${version}, newer than this profilesmith reads (${SCHEMA_VERSION}); upgrade profilesmith`);
    }
    if (version < SCHEMA_VERSION) {
      await db.tx(async (c) => {
        // Again under the lock: another node may have made or migrated it meanwhile.
        const v = await schemaVersion(c);
        if (v === 0 && !options.create) throw new StoreNotInitialized(db.where);
        if (v < SCHEMA_VERSION) await migrate(c, v);
      }, { lock: STORE_LOCK, op: version === 0 ? 'create' : 'migrate' });
    }
    return PostgresPort.fromDatabase(db);
  } catch (err) {
    await db.end();
    throw err;
  }
}
