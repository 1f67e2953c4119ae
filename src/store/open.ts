/**
 * Opening a store by location: a directory (the file store, the embedded default that needs
 * nothing installed) or a `postgres://` URL (the PostgreSQL store, shared by many nodes).
 *
 * @module open
 */
import { initStore as initFileStore, openStore as openFileStore, type FileStore, type InitStoreOptions, type OpenStoreOptions } from './fs-store.js';
import { isPostgresUrl } from './postgres/db.js';
import type { PostgresStore } from './postgres/pg-store.js';

/** A store the CLI and the batch runner drive: the file store or the PostgreSQL store. */
export type AnyStore = FileStore | PostgresStore;

/** A `postgres://` or `postgresql://` URL. */
export type PostgresUrl = `postgres://${string}` | `postgresql://${string}`;

/**
 * Opens an existing store: a directory, or a PostgreSQL database by URL
 * (`postgres://user@host:port/db?sslmode=require`; what the URL leaves out comes from the
 * usual PG* environment variables). With `passphrase`, the passphrase is checked now.
 * @throws ERR_STORE_NOT_INITIALIZED, ERR_KEY_PASSPHRASE, ERR_STORE_IO (including a server that cannot be reached, a refused login, a schema newer than this code)
 * @example
 * const store = await openStore('./store', { passphrase })
 * const shared = await openStore('postgres://profilesmith@db.internal/pki', { passphrase })
 */
export function openStore(location: PostgresUrl, options?: OpenStoreOptions): Promise<PostgresStore>;
export function openStore(location: string, options?: OpenStoreOptions): Promise<AnyStore>;
export function openStore(location: string, options: OpenStoreOptions = {}): Promise<AnyStore> {
  if (isPostgresUrl(location)) {
    // Loaded on first use: a file-store command never loads the PostgreSQL store's modules.
    return import('./postgres/init.js').then(({ openPostgresStore }) => openPostgresStore(location, { ...(options.passphrase !== undefined ? { passphrase: options.passphrase } : {}), ...(options.now ? { now: options.now } : {}) }));
  }
  return openFileStore(location, options);
}

/**
 * Creates a store with a new CA: in a directory, or in an empty PostgreSQL database (its
 * schema is created).
 * @throws ERR_STORE_EXISTS, ERR_INPUT_INVALID, ERR_STORE_IO
 * @example
 * const store = await initStore('./store', { organization: 'Example Corp', passphrase: process.env.STORE_PASSPHRASE! })
 * await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 */
export function initStore(location: PostgresUrl, options: InitStoreOptions): Promise<PostgresStore>;
export function initStore(location: string, options: InitStoreOptions): Promise<AnyStore>;
export function initStore(location: string, options: InitStoreOptions): Promise<AnyStore> {
  return isPostgresUrl(location) ? import('./postgres/init.js').then(({ initPostgresStore }) => initPostgresStore(location, options)) : initFileStore(location, options);
}

/**
 * Closes what the store holds open (the PostgreSQL pool); a file store holds nothing.
 * @example
 * const store = await openStore(process.env.STORE_URL ?? './store', { passphrase })
 * try {
 *   console.log(store.organization)
 * } finally {
 *   await closeStore(store) // ends a PostgreSQL pool; nothing to do for a directory
 * }
 */
export async function closeStore(store: AnyStore): Promise<void> {
  if ('close' in store) await store.close();
}
