/**
 * Creating and opening a file store: the CA over the file port.
 *
 * @module file-init
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StoreExists, StoreIOError } from '../../errors.js';
import { ioError } from '../fs-util.js';
import { checkNewPassphrase } from '../passphrase.js';
import { FileStore } from './file-store.js';
import type { InitStoreOptions, OpenStoreOptions } from './meta.js';
import { openFilePort } from './port/file-port.js';

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw ioError(dir, 'read', err);
  }
}

/**
 * Creates a store: a root CA, an intermediate and a profile-signing identity.
 * Refuses a directory that already has files in it.
 * @throws ERR_STORE_EXISTS, ERR_INPUT_INVALID, ERR_STORE_IO
 * @example
 * const store = await initStore('./store', { organization: 'Example Corp', passphrase })
 */
export async function initStore(dir: string, options: InitStoreOptions): Promise<FileStore> {
  const root = resolve(dir);
  checkNewPassphrase(options.passphrase);
  if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
  const now = options.now ?? (() => new Date());
  // Build the whole store beside its final place, then rename it in: a crash leaves nothing half made.
  const tmp = join(dirname(root), `.${randomBytes(6).toString('hex')}.profilesmith-init`);
  let key: Buffer;
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    // The certificate code loads to make a CA, not to open a store.
    const { initialize } = await import('../ca/init.js');
    ({ key } = await initialize(await openFilePort(tmp, { create: true }), { ...options, now }));
    await fs.mkdir(join(tmp, 'certs'), { recursive: true, mode: 0o700 });
    await fs.mkdir(join(tmp, 'chains'), { recursive: true, mode: 0o700 });
    if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
    await fs.rmdir(root).catch(() => {});
    await fs.rename(tmp, root);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (err instanceof StoreExists || err instanceof StoreIOError || (err as { code?: string }).code?.startsWith('ERR_')) throw err;
    throw ioError(root, 'create', err);
  }
  return FileStore.make(await openFilePort(root), now, key);
}

/**
 * Opens an existing store. With `passphrase`, the passphrase is checked now.
 * @throws ERR_STORE_NOT_INITIALIZED, ERR_KEY_PASSPHRASE, ERR_STORE_IO
 * @example
 * const store = await openStore('./store', { passphrase })
 */
export async function openStore(dir: string, options: OpenStoreOptions = {}): Promise<FileStore> {
  const store = await FileStore.make(await openFilePort(resolve(dir), { durable: options.durable ?? true }), options.now ?? (() => new Date()));
  if (options.passphrase !== undefined) await store.unlock(options.passphrase);
  return store;
}
