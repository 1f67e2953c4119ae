/**
 * The file store, the embedded default (its parts are in store/file/). This module gathers what
 * the rest of the code and the package import from it.
 *
 * @module fs-store
 */
export { FileStore } from './file/file-store.js';
export { initStore, openStore } from './file/init.js';
export type { StoreMeta, InitStoreOptions, OpenStoreOptions } from './file/meta.js';
export { MIN_PASSPHRASE_LENGTH } from './passphrase.js';
export { normalizeSerial } from '../certs/pem.js';
export type { RevokeResult, StoreCa, ResponderIdentity } from './pki-files.js';
export type { ImportIdentityOptions, ImportIdentityResult, RemoveUserResult } from './store.js';
