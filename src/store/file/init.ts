/**
 * Creating and opening a file store.
 *
 * @module file-init
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StoreExists, StoreIOError, StoreNotInitialized } from '../../errors.js';
import { toPem } from '../../certs/pem.js';
import { atomicDir, ioError } from '../fs-util.js';
import { checkNewPassphrase } from '../passphrase.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams } from '../secret-box.js';
import { sealCheck } from '../settings.js';
import { FileStore } from './file-store.js';
import { FORMAT, parseMeta, sealKey, type InitStoreOptions, type OpenStoreOptions, type StoreMeta } from './meta.js';

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
  // The certificate code loads to make a CA, not to open a store.
  const { newStoreCa } = await import('../issuance.js');
  const { ca, pkiUrl, domains } = await newStoreCa({ ...options, now });
  const kdf = newKdfParams(options.kdfCost ?? DEFAULT_KDF_COST);
  const key = await deriveKey(options.passphrase, kdf);
  const meta: StoreMeta = {
    format: FORMAT,
    version: 1,
    organization: options.organization.trim(),
    created: now().toISOString(),
    kdf,
    check: sealCheck(key),
    keyGeneration: 1,
    ...(pkiUrl ? { pkiUrl } : {}),
    ...(domains.length ? { permittedEmailDomains: domains } : {}),
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
  };
  // Build the whole store beside its final place, then rename it in: a crash leaves nothing half made.
  const tmp = join(dirname(root), `.${randomBytes(6).toString('hex')}.profilesmith-init`);
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    await atomicDir(join(tmp, 'ca'), {
      'root.pem': { data: toPem(ca.root.certificate), mode: 0o644 },
      'root.key.1': { data: sealKey(key, ca.root.privateKey, 'ca/root.key'), mode: 0o600 },
      'intermediate.pem': { data: toPem(ca.intermediate.certificate), mode: 0o644 },
      'intermediate.key.1': { data: sealKey(key, ca.intermediate.privateKey, 'ca/intermediate.key'), mode: 0o600 },
    });
    await atomicDir(join(tmp, 'signer'), {
      'cert.pem': { data: toPem(ca.signer.certificate), mode: 0o644 },
      'key.1': { data: sealKey(key, ca.signer.privateKey, 'signer/key'), mode: 0o600 },
    });
    await fs.mkdir(join(tmp, 'certs'), { mode: 0o700 });
    await fs.mkdir(join(tmp, 'chains'), { mode: 0o700 });
    await fs.writeFile(join(tmp, 'store.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
    if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
    await fs.rmdir(root).catch(() => {});
    await fs.rename(tmp, root);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (err instanceof StoreExists || err instanceof StoreIOError) throw err;
    throw ioError(root, 'create', err);
  }
  return FileStore.create(root, meta, key, now);
}

/**
 * Opens an existing store. With `passphrase`, the passphrase is checked now.
 * @throws ERR_STORE_NOT_INITIALIZED, ERR_KEY_PASSPHRASE, ERR_STORE_IO
 * @example
 * const store = await openStore('./store', { passphrase })
 */
export async function openStore(dir: string, options: OpenStoreOptions = {}): Promise<FileStore> {
  const root = resolve(dir);
  const path = join(root, 'store.json');
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new StoreNotInitialized(root);
    throw ioError(path, 'read', err);
  }
  const store = FileStore.create(root, parseMeta(text, path), undefined, options.now ?? (() => new Date()), options.durable ?? true);
  if (options.passphrase !== undefined) await store.unlock(options.passphrase);
  return store;
}

