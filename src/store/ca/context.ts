/**
 * What the CA's parts (issuing, revocation, publication, administration) share: the port, the
 * clock, the store key, the settings as last read, and the CA certificates. The CA store
 * (ca-store.ts) implements it; the parts depend on this interface only, so no part imports the
 * store, and the store imports every part.
 *
 * @module ca-context
 */
import type { Identity } from '../../certs/issue.js';
import type { CaRef } from '../../certs/publication.js';
import type { Credential, PortTransaction, StoragePort, StoreSettings } from '../port/port.js';
import type { ResponderIdentity, StoreCa } from '../pki-files.js';
import type { CertificateRecord } from '../store.js';
import type { Keyring } from './keyring.js';

/** @internal The CA's shared state, as its parts see it. */
export interface CaContext {
  readonly port: StoragePort;
  readonly now: () => Date;
  readonly keys: Keyring;
  /** The settings, re-read at most once a second (another process may change a URL); the key generation stays this instance's. */
  settings(): Promise<StoreSettings>;
  /**
   * Runs a change as one port transaction; the caches of what it may change are dropped after.
   * With `seals` (it writes a key sealed under this instance's store key), it first checks that
   * the store's passphrase was not changed since this instance opened it: such a key would not
   * open under the store's new key.
   */
  write<T>(fn: (tx: PortTransaction) => Promise<T>, seals?: 'seals'): Promise<T>;
  /** The store's own certificates (the port's credentials), re-read at most once a second and after this instance's writes. */
  credentials(): Promise<Credential[]>;
  /** The root and every issuing CA generation, oldest first (re-read at most once a second). */
  cas(): Promise<StoreCa[]>;
  /** The current issuing CA's generation. */
  currentIssuing(): Promise<number>;
  /** A CA's certificate and key, decrypted once per instance. */
  caIdentity(ca: CaRef): Promise<Identity>;
  /** The issuing CA generation that issued a record of this store's CA (by issuer name). */
  issuingOf(record: { issuer: string }): Promise<number>;
  /** A record by normalized serial. @throws ERR_STORE_ENTRY_NOT_FOUND */
  record(serial: string): Promise<CertificateRecord>;
  /** Service identities (OCSP responders, SCEP RAs) by `<kind>:<slug>`, kept while fresh. */
  readonly services: Map<string, Promise<ResponderIdentity>>;
  /** Drops what was read of the CA certificates and credentials (after a rotation). */
  forgetCas(): void;
}
