/**
 * The file store: the CA (src/store/ca) over the file port, a directory (mode 0700) holding a
 * CA, the profile-signing identity and every user certificate ever issued or imported, with
 * private keys sealed under a key derived from the passphrase. Every write is atomic; writers
 * take a cross-process lock. The layout is the file port's (see file/port/ and pki-files.ts):
 * ```
 * store.json                         format, organization, KDF parameters, passphrase check, key generation, pointers
 * revocations.json                   revoked and retired serials, and amendments (absent until the first)
 * ca/root.pem ca/root.key.<g>        root CA (key sealed; <g> is the key generation)
 * ca/intermediate.pem .key.<g>       issuing CA 1 (ca/issuing-<n>.pem after rotations)
 * signer/cert.pem signer/key.<g>     the first profile signer (signer/<serial>.pem later ones)
 * ocsp/, scep/                       the OCSP responders and SCEP RAs the CAs issue for themselves
 * crl/<ca>.json crl/<ca>.crl         the last CRL number, and the CRL the PKI server publishes
 * certs/<serial>/cert.pem key.<g> entry.json    one directory per user certificate
 * chains/<sha256>.pem                issuer certificates of imported identities
 * links.json challenges.json         one-time links and SCEP challenges (hashes)
 * index.json                         a cache of the entries' facts, for stores of over 256 entries
 * pkcs12-cache/<hash>.<g>            a user's identities as iOS-form PKCS#12 (sealed; batch runs)
 * ```
 *
 * @module file-store
 */
import { join } from 'node:path';
import { CaStore } from '../ca/ca-store.js';
import type { KeyObject } from 'node:crypto';
import { StoreIOError } from '../../errors.js';
import type { ListCertificatesOptions, CertificateRecord } from '../store.js';
import type { FilePort } from './port/file-port.js';
import { readSealed } from './port/layout.js';
import type { DamagedEntry } from './record-index.js';
import type { StoreMeta } from './meta.js';

/**
 * The file store. Create it with {@link initStore} or {@link openStore}.
 * @example
 * import type { FileStore } from 'profilesmith'
 * const store: FileStore = await initStore('./store', { organization: 'Example Corp', passphrase })
 * await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 * console.log(store.dir, (await store.listCertificates()).length)
 */
export class FileStore extends CaStore {
  /** @internal */
  declare readonly port: FilePort;

  /** @internal What openStore and initStore call. */
  static async make(port: FilePort, now: () => Date, key?: Buffer): Promise<FileStore> {
    const store = new FileStore(port, await port.settings(), now);
    if (key) store.unlockWithKey(key);
    return store;
  }

  /** @internal fsync every write of an entry. */
  get durable(): boolean {
    return this.port.durable;
  }

  /**
   * The records that can be read, and the damaged entries that may be among those asked for:
   * `cert list` lists the rest and names them, where listCertificates fails.
   * @internal
   */
  listReadable(options: ListCertificatesOptions = {}): Promise<{ records: CertificateRecord[]; damaged: DamagedEntry[] }> {
    return this.port.listReadable(options);
  }

  /** @internal store.json as it is now, with the layout's pointers (for store check). */
  fileMeta(): Promise<StoreMeta> {
    return this.port.storeMeta();
  }

  /** @internal For store check: decrypts one key file (`rel` without the generation). */
  async checkKey(rel: string): Promise<KeyObject> {
    const gen = this.keys.generation;
    const sealed = await readSealed(this.dir, rel, gen);
    if (!sealed) throw new StoreIOError(join(this.dir, `${rel}.${gen}`), 'read', `The key file "${join(this.dir, `${rel}.${gen}`)}" is missing`);
    return this.keys.open(sealed);
  }
}
