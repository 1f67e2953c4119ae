/**
 * Creating and opening a PostgreSQL store: the CA over the PostgreSQL port.
 *
 * @module postgres-init
 */
import { StoreExists } from '../../errors.js';
import { initialize } from '../ca/init.js';
import { checkNewPassphrase } from '../issuance.js';
import type { InitStoreOptions } from '../file/meta.js';
import { PostgresStore } from './pg-store.js';
import { openPostgresPort } from './port/postgres-port.js';

/** Options of {@link initPostgresStore}: those of the file store's init. */
export type InitPostgresStoreOptions = InitStoreOptions;

/** Options of {@link openPostgresStore}. */
export interface OpenPostgresStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Connections in this process's pool. Default: 4. */
  connections?: number;
}

/**
 * Creates the schema and a new CA in an empty database. @throws ERR_STORE_EXISTS when it holds a store
 * @example
 * const store = await initPostgresStore('postgres://profilesmith@db.internal/pki', { organization: 'Example Corp', passphrase })
 * await store.close()
 */
export async function initPostgresStore(url: string, options: InitPostgresStoreOptions): Promise<PostgresStore> {
  checkNewPassphrase(options.passphrase);
  const now = options.now ?? (() => new Date());
  const port = await openPostgresPort(url, { create: true });
  try {
    // Refuse early, before three keys are made, if the database already holds a store.
    if (await port.settings().then(() => true, () => false)) throw new StoreExists(port.location);
    const { key } = await initialize(port, { ...options, now });
    return await PostgresStore.make(port, now, key);
  } catch (err) {
    await port.close();
    throw err;
  }
}

/**
 * Opens the store in a database, migrating an older schema forward.
 * @throws ERR_STORE_NOT_INITIALIZED for a database without one; ERR_STORE_IO for a schema newer than this code, or a server fault
 * @example
 * const store = await openPostgresStore('postgres://profilesmith@db.internal/pki', { passphrase })
 * try {
 *   console.log((await store.listCertificates()).length)
 * } finally {
 *   await store.close()
 * }
 */
export async function openPostgresStore(url: string, options: OpenPostgresStoreOptions = {}): Promise<PostgresStore> {
  const port = await openPostgresPort(url, { ...(options.connections ? { connections: options.connections } : {}) });
  try {
    const store = await PostgresStore.make(port, options.now ?? (() => new Date()));
    if (options.passphrase !== undefined) await store.unlock(options.passphrase);
    return store;
  } catch (err) {
    await port.close();
    throw err;
  }
}
