/**
 * `store migrate`: a store copied whole from where it is (a directory or a PostgreSQL
 * database) into an empty other place of either kind, over the storage port (see
 * ca/migrate.ts): file to PostgreSQL, PostgreSQL to file, file to file, PostgreSQL to
 * PostgreSQL. The source is left as it was; a failure leaves the target as it was (a
 * PostgreSQL target's transaction rolls back; a directory is built beside its place and
 * renamed in whole).
 *
 * @module migrate
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StoreExists } from '../errors.js';
import { migratePort, type PortMigration } from './ca/migrate.js';
import { ioError } from './fs-util.js';
import type { AnyStore } from './open.js';
import { isPostgresUrl } from './postgres/db.js';

/** What {@link migrateStore} copied. */
export type MigrateResult = PortMigration;

/**
 * Copies the store `from` into the empty place `to`: a directory (missing or empty) or a
 * `postgres://` URL (an empty database). Keys travel sealed, as they are, where the target
 * keeps them under the same associated data; the few it keeps under others (a directory names
 * a signer's key file after its serial) are sealed again, which needs `passphrase`.
 * @throws ERR_STORE_EXISTS when the target holds anything; ERR_KEY_PASSPHRASE when a key must be sealed again without the passphrase
 * @example
 * const from = await openStore('./store')
 * const moved = await migrateStore(from, 'postgres://profilesmith@db.internal/pki')
 * console.log(`${moved.certificates} certificates, ${moved.revocations} revocations moved`)
 */
export async function migrateStore(from: AnyStore, to: string, options: { passphrase?: string } = {}): Promise<MigrateResult> {
  if (isPostgresUrl(to)) {
    const { openPostgresPort } = await import('./postgres/port/postgres-port.js');
    const port = await openPostgresPort(to, { create: true });
    try {
      return await migratePort(from.port, port, options);
    } finally {
      await port.close();
    }
  }
  const { openFilePort } = await import('./file/port/file-port.js');
  const root = resolve(to);
  const empty = async () => (await fs.readdir(root).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(ioError(root, 'read', err))))).length === 0;
  if (!(await empty())) throw new StoreExists(root);
  const tmp = join(dirname(root), `.${randomBytes(6).toString('hex')}.profilesmith-migrate`);
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    const result = await migratePort(from.port, await openFilePort(tmp, { create: true }), options);
    await fs.mkdir(join(tmp, 'certs'), { recursive: true, mode: 0o700 });
    if (!(await empty())) throw new StoreExists(root);
    await fs.rmdir(root).catch(() => {});
    await fs.rename(tmp, root);
    return result;
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw err;
  }
}
