/**
 * `store check`: reads everything in a store and reports what is damaged, through the check of
 * its backend (the file store's files, the PostgreSQL store's rows). It never changes or deletes
 * anything; {@link quarantineEntries} (`store check --quarantine`) moves a file store's damaged
 * entries aside, whole, into `quarantine/`.
 *
 * @module check
 */
import { FileStore } from './file/file-store.js';
import type { StoreFinding } from './findings.js';
import type { PostgresStore } from './postgres/pg-store.js';

export type { StoreFinding } from './findings.js';
export { quarantineEntries, type QuarantinedEntry } from './file/check.js';

/**
 * Checks a store (a file store, or a PostgreSQL store: its rows). Keys are decrypted only when the store is unlocked.
 * @example
 * const store = await openStore('./store', { passphrase })
 * for (const finding of await checkStore(store)) console.log(finding.severity, finding.path, finding.message)
 */
export async function checkStore(store: FileStore | PostgresStore): Promise<StoreFinding[]> {
  if (store instanceof FileStore) return (await import('./file/check.js')).checkFileStore(store);
  return (await import('./postgres/check.js')).checkPostgresStore(store);
}
