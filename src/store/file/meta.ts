/**
 * The file store's store.json (format, organization, KDF parameters, the passphrase check,
 * the key generation, the CA's settings) and the sealing of its key files.
 *
 * @module file-meta
 */
import type { KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { StoreIOError } from '../../errors.js';
import { MIN_PASSPHRASE_LENGTH } from '../passphrase.js';
import { seal } from '../secret-box.js';
import type { StoreSettings } from '../settings.js';
import type { InitializeCaOptions } from '../ca/init.js';

export const FORMAT = 'profilesmith-store';
/** store.json: the settings both stores keep, and the file store's own pointers. */
export interface StoreMeta extends StoreSettings {
  format: typeof FORMAT;
  version: 1;
  /** The current issuing CA's generation. Absent: 1. */
  issuing?: number;
  /** The current profile signer's serial (`signer/<serial>.pem`). Absent: `signer/cert.pem`. */
  signer?: string;
  /** The generation of the issuing CA that issued the current signer. Absent: 1. */
  signerIssuing?: number;
}

export { MIN_PASSPHRASE_LENGTH };

/** Options of {@link initStore}: those of {@link initializeCa}, which writes the CA. */
export type InitStoreOptions = Omit<InitializeCaOptions, 'ca'>;

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /**
   * fsync every write. Default: true. False suits bulk loads (a migration of thousands of
   * identities): writes stay atomic, but a power cut may lose the newest entries.
   */
  durable?: boolean;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}


export const sealKey = (key: Buffer, privateKey: KeyObject, rel: string) =>
  JSON.stringify(seal(key, privateKey.export({ format: 'der', type: 'pkcs8' }), rel)) + '\n';

export const exists = (p: string) => fs.stat(p).then(() => true, () => false);

export function parseMeta(text: string, path: string): StoreMeta {
  try {
    const meta = JSON.parse(text) as StoreMeta;
    if (meta.format !== FORMAT || meta.version !== 1 || typeof meta.organization !== 'string' || !Number.isInteger(meta.keyGeneration)) {
      throw new Error('format');
    }
    return meta;
  } catch (cause) {
    throw new StoreIOError(path, 'read', `"${path}" is not a profilesmith store file`, { cause });
  }
}

