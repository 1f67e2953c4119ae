/**
 * The PostgreSQL store: the file store's contract over one database that any number of
 * generators, servers and batch workers share. The database's own guarantees do the
 * coordinating, not lock files:
 * - a serial is unique by the primary key of `certificates`;
 * - "issue only what is missing" holds an advisory lock on the user and purpose for the check
 *   and the insert, so concurrent issue-batch runs leave one certificate per user and purpose;
 * - a CRL number is taken by an UPDATE of its row inside the transaction that signs the CRL,
 *   so numbers strictly increase across nodes;
 * - a one-time link is spent by one conditional UPDATE (see pg-links.ts);
 * - CRLs and OCSP answers are read from the tables at request time, so a revocation committed
 *   on one node is in the next answer of every node.
 * Private keys are sealed client-side exactly as in the file store (scrypt, AES-256-GCM, the
 * same associated data); the KDF parameters and the check value are in `store_meta`.
 *
 * Not yet: rotating the issuing CA or the profile signer, and importing an outside signer
 * (`ca rotate-*`, `ca import-signer`); those refuse with one line.
 *
 * @module postgres-store
 */
import type { SerialStatus } from '../../pki/handler.js';
import type { KeyObject } from 'node:crypto';
import type pg from 'pg';
import type { IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose, Identity } from '../../certs/issue.js';
import { normalizeSerial, type CertificateInput } from '../../certs/pem.js';
import type { CaRef } from '../../certs/publication.js';
import type { Signer } from '../../cms/sign.js';
import { describeCertificate } from '../../certs/x509.js';
import type { RevocationReason } from '../../certs/crl.js';
import { KeyPassphraseInvalid, StoreEntryNotFound, StoreIOError } from '../../errors.js';
import type { LinkStore } from '../../server/links.js';
import { checkedIssuance, newRecord } from '../issuance.js';
import type { ResponderIdentity, RevokeResult, StoreCa } from '../pki-files.js';
import { deriveKey, type Sealed } from '../secret-box.js';
import {
  compareRecords,
  findRecord,
  keyOnDeviceError,
  servesPurpose,
  type CertificateRecord,
  type ImportIdentityOptions,
  type ImportIdentityResult,
  type IssueDeviceCertificateOptions,
  type IssueUserCertificateOptions,
  type LifecycleStore,
  type ListCertificatesOptions,
  type RemoveUserResult,
  type TrustChain,
} from '../store.js';
import type { Database } from './db.js';
import { PgCa } from './pg-ca.js';
import { changePassphrase, importSigner, rotateIssuing, rotateSigner, setPkiUrl, setScepUrl } from './pg-admin.js';
import { importIdentity, issue, issueDevice } from './pg-entries.js';
import { PgLinks } from './pg-links.js';
import { PgPkcs12Cache } from './pg-pkcs12.js';
import { Keyring, RECORD_SELECT, toRecord, type CertRow, type PgStoreMeta } from './rows.js';


/**
 * The PostgreSQL store. Create it with {@link initPostgresStore} or {@link openPostgresStore}.
 * @example
 * import type { PostgresStore } from 'profilesmith'
 * const store: PostgresStore = await openStore('postgres://profilesmith@db.internal/pki', { passphrase })
 * try {
 *   await store.revokeCertificate('0a1b2c', 'keyCompromise')
 * } finally {
 *   await store.close()
 * }
 */
export class PostgresStore implements LifecycleStore {
  readonly organization: string;
  /** The database's URL without its password (where messages say the store is). */
  readonly dir: string;
  /** One-time links in the `links` table: a use is spent by one conditional UPDATE, so exactly once across every node. */
  readonly links: LinkStore;
  /** One-time SCEP enrollment challenges, each bound to a user, in `scep_challenges` (kept as hashes, spent like links). */
  readonly challenges: LinkStore;
  readonly #keys: Keyring;
  readonly #ca: PgCa;
  readonly #pkcs12: PgPkcs12Cache;
  /**
   * Records seen by the last listings, by serial: issuerChain reads only what never changes in
   * a record (its source and chain), so a profile costs no query per identity for it.
   */
  #seen = new Map<string, CertificateRecord>();
  /** Set by loadIndex (a batch's main thread): the records by user, as they were at its start. */
  #snapshot: Map<string, CertificateRecord[]> | undefined;

  private constructor(
    /** @internal */ readonly db: Database,
    meta: PgStoreMeta,
    key: Buffer | undefined,
    /** @internal */ readonly now: () => Date,
  ) {
    this.organization = meta.organization;
    this.dir = db.where;
    this.#keys = new Keyring(meta, key, db.where);
    this.links = new PgLinks(db, now);
    this.challenges = new PgLinks(db, now, 'scep_challenges');
    this.#ca = new PgCa(db, this.#keys, { record: (s) => this.record(s), list: (o) => this.listCertificates(o) }, now, (c) => this.assertGeneration(c));
    this.#pkcs12 = new PgPkcs12Cache(db, this.#keys, this.#seen, (s) => this.getIdentity(s), (s) => this.record(s));
  }

  /** @internal The keyring (the derived key lives in its private field). */
  get keys(): Keyring {
    return this.#keys;
  }

  /** @internal */
  get ca(): PgCa {
    return this.#ca;
  }

  /** @internal */
  get pkcs12(): PgPkcs12Cache {
    return this.#pkcs12;
  }

  /** @internal Records known without a query. */
  get seen(): Map<string, CertificateRecord> {
    return this.#seen;
  }

  /** @internal */
  static create(db: Database, meta: PgStoreMeta, key: Buffer | undefined, now: () => Date): PostgresStore {
    return new PostgresStore(db, meta, key, now);
  }

  /** Closes the connection pool. */
  close(): Promise<void> {
    return this.db.end();
  }

  /** Checks the passphrase and keeps the derived key. */
  async unlock(passphrase: string): Promise<void> {
    const key = await deriveKey(passphrase, this.#keys.meta.kdf);
    if (!this.#keys.opens(key)) throw new KeyPassphraseInvalid(this.dir, `The passphrase for the store at "${this.dir}" is wrong`);
    this.#keys.key = key;
  }

  /** @internal A copy of the derived key, for batch workers. */
  derivedKey(): Buffer {
    return Buffer.from(this.requireKey('hand the key to a worker'));
  }

  /** @internal Unlocks with a key from {@link PostgresStore.derivedKey}. */
  unlockWithKey(key: Uint8Array): void {
    const k = Buffer.from(key);
    if (!this.#keys.opens(k)) throw new KeyPassphraseInvalid(this.dir, `The key for the store at "${this.dir}" is wrong`);
    this.#keys.key = k;
  }

  /**
   * @internal A batch's snapshot: every record read in one query, so that the batch's per-row
   * lookups by user cost no query (what the file store's record index does for a batch). The
   * rows are judged as they were when the batch started, as on the file store.
   */
  async loadIndex(): Promise<void> {
    const rows = await this.db.query<CertRow>(`${RECORD_SELECT} ORDER BY c.seq`);
    const byUser = new Map<string, CertificateRecord[]>();
    for (const r of rows.rows.map(toRecord)) {
      const k = r.user.toLowerCase();
      let list = byUser.get(k);
      if (!list) byUser.set(k, (list = []));
      list.push(r);
    }
    this.#snapshot = byUser;
  }

  /**
   * @internal A batch worker hands over the records the main thread listed for its row: kept
   * by serial, so that the profile's lookups (issuer chains, the user's PKCS#12 rows) need no
   * query for them.
   */
  remember(records: CertificateRecord[]): void {
    if (this.#seen.size > 4096) this.#seen.clear();
    for (const r of records) this.#seen.set(r.serial, r);
  }

  /** @internal */
  requireKey(what: string): Buffer {
    return this.#keys.require(what);
  }

  private openKey(sealed: Sealed, aad: string): KeyObject {
    return this.#keys.open(sealed, aad);
  }

  /**
   * Re-reads the meta row (another node may have changed the PKI URL), keeping this instance's
   * key generation: a changed one is caught by the write that would seal with the old key.
   */
  /** @internal */
  async refreshMeta(): Promise<void> {
    const meta = (await this.db.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta')).rows[0]?.meta;
    if (meta && meta.keyGeneration === this.#keys.meta.keyGeneration) this.#keys.meta = meta;
  }

  /** @internal For store check and migrate. */
  get meta(): PgStoreMeta {
    return this.#keys.meta;
  }

  get unlocked(): boolean {
    return this.#keys.key !== undefined;
  }

  get pkiUrl(): string | undefined {
    return this.#keys.meta.pkiUrl;
  }

  get permittedEmailDomains(): readonly string[] {
    return this.#keys.meta.permittedEmailDomains ?? [];
  }

  /** @internal The database, for store check and migrate. */
  get database(): Database {
    return this.db;
  }

  // ---- certificates and records ----

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    if (this.#snapshot && options.user) {
      const held = this.#snapshot.get(options.user.toLowerCase()) ?? [];
      return held.filter((r) => !options.purpose || servesPurpose(r, options.purpose)).sort(compareRecords).map((r) => structuredClone(r));
    }
    const rows = options.user
      ? await this.db.query<CertRow>(`${RECORD_SELECT} WHERE c.user_lower = $1 ORDER BY c.seq`, [options.user.toLowerCase()])
      : await this.db.query<CertRow>(`${RECORD_SELECT} ORDER BY c.seq`);
    const records = rows.rows.map(toRecord);
    if (this.#seen.size > 4096) this.#seen.clear();
    for (const r of records) this.#seen.set(r.serial, r);
    return records.filter((r) => !options.purpose || servesPurpose(r, options.purpose)).sort(compareRecords).map((r) => structuredClone(r));
  }

  /** @internal */
  async record(serial: string): Promise<CertificateRecord> {
    const s = normalizeSerial(serial);
    const r = await this.db.query<CertRow>(`${RECORD_SELECT} WHERE c.serial = $1`, [s]);
    if (!r.rows[0]) throw new StoreEntryNotFound(serial, 'certificate');
    return toRecord(r.rows[0]);
  }

  async findCertificate(serialOrFingerprint: string): Promise<CertificateRecord> {
    const q = String(serialOrFingerprint).toLowerCase().replace(/[:\s]/g, '');
    if (/^[0-9a-f]+$/.test(q)) {
      const r = await this.db.query<CertRow>(`${RECORD_SELECT} WHERE c.serial = $1 OR c.fingerprint = $2`, [q.replace(/^(00)+(?=..)/, ''), q]);
      if (r.rows[0]) return toRecord(r.rows[0]);
      if (q.length >= 6) {
        const hits = await this.db.query<CertRow>(`${RECORD_SELECT} WHERE c.serial LIKE $1 OR c.fingerprint LIKE $1 LIMIT 4`, [`${q}%`]);
        return findRecord(hits.rows.map(toRecord), serialOrFingerprint);
      }
    }
    throw new StoreEntryNotFound(serialOrFingerprint, 'certificate');
  }

  async getCertificate(serial: string): Promise<Buffer> {
    const r = await this.db.query<{ certificate: Buffer }>('SELECT certificate FROM certificates WHERE serial = $1', [normalizeSerial(serial)]);
    if (!r.rows[0]) throw new StoreEntryNotFound(serial, 'certificate');
    return r.rows[0].certificate;
  }

  async getIdentity(serial: string): Promise<Identity> {
    const s = normalizeSerial(serial);
    const r = await this.db.query<{ certificate: Buffer; sealed_key: Sealed | null }>('SELECT certificate, sealed_key FROM certificates WHERE serial = $1', [s]);
    const row = r.rows[0];
    if (!row) throw new StoreEntryNotFound(serial, 'certificate');
    if (!row.sealed_key) {
      if ((await this.record(s)).keyOnDevice) throw keyOnDeviceError(s);
      throw new StoreEntryNotFound(serial, 'certificate', `Certificate ${s} has no private key in the store`);
    }
    return { certificate: row.certificate, privateKey: await this.#keys.openChecked(this.db, row.sealed_key, `certs/${s}/key`) };
  }

  async checkIssuance(options: IssueUserCertificateOptions): Promise<void> {
    this.checkedUser(options);
  }

  /** @internal */
  checkedUser(options: IssueUserCertificateOptions): string {
    return checkedIssuance(options, this.#keys.meta.permittedEmailDomains ?? []);
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    return (await issue(this, options, false)).record;
  }

  /**
   * Issues unless the user holds a valid certificate of the purpose. The check and the insert
   * run in one transaction holding an advisory lock on (user, purpose): any number of nodes
   * running at once leave exactly one new certificate per user and purpose.
   */
  async issueCertificateIfMissing(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }> {
    return issue(this, options, true);
  }



  /** @internal */
  makeRecord(certificate: Buffer, user: string, purpose: CertificatePurpose, source: CertificateRecord['source'], chain: Buffer[]): Promise<CertificateRecord> {
    return newRecord(certificate, { user, purpose, source, chain, now: this.now() });
  }







  /** A new certificate for the user and purpose, named like the newest one; the old one stays in the history. */
  async renewCertificate(user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
    const newest = (await this.listCertificates({ user, purpose })).at(-1);
    if (!newest) throw new StoreEntryNotFound(user, 'user', `User "${user}" holds no ${purpose} certificate to renew`);
    const info = await describeCertificate(await this.getCertificate(newest.serial));
    return this.issueCertificate({ user: newest.user, name: info.commonName ?? newest.user, purpose, ...(days ? { days } : {}) });
  }







  // ---- the CA (pg-ca.ts) and the PKCS#12 cache (pg-pkcs12.ts) ----

  /** The identity's iOS-form PKCS#12, built once and kept sealed in `pkcs12_cache`. */
  cachedPkcs12(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    return this.#pkcs12.get(serial, build);
  }

  /** The store's CA certificates: the root and the issuing CA. */
  caCertificates(): Promise<StoreCa[]> {
    return this.#ca.caCertificates();
  }

  /** The issuing CA's certificate and key (default: the current generation, as the file store); needs the passphrase. */
  issuerIdentity(generation?: number): Promise<Identity> {
    return this.#ca.issuerIdentity(generation);
  }

  trustChain(): Promise<TrustChain> {
    return this.#ca.trustChain();
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    const record = this.#seen.get(normalizeSerial(serial)) ?? (await this.record(serial));
    if (record.source === 'issued') return [await this.#ca.caCert(await this.#ca.issuingOf(record)), await this.#ca.caCert('root')];
    const fps = [...new Set([...(record.chain ?? []), ...(record.addedChain ?? [])])];
    if (!fps.length) return [];
    const r = await this.db.query<{ fingerprint: string; certificate: Buffer }>('SELECT fingerprint, certificate FROM chains WHERE fingerprint = ANY($1)', [fps]);
    const by = new Map(r.rows.map((x) => [x.fingerprint, x.certificate]));
    return fps.map((fp) => by.get(fp)).filter((d): d is Buffer => !!d);
  }

  profileSigner(): Promise<Signer> {
    return this.#ca.profileSigner();
  }

  /** Serials revoked by this store's CAs, for `verify`. */
  revokedSerials(): Promise<Set<string>> {
    return this.#ca.revokedSerials();
  }

  revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    return this.#ca.revokeCertificate(serial, reason);
  }

  removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    return this.#ca.removeUser(user, options);
  }

  /** A DER CRL with the next CRL number (strictly increasing across nodes). */
  createCrl(options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
    return this.#ca.createCrl(options);
  }

  /** The CA's current CRL: the last one while it lists exactly today's revocations and is less than half through its validity, else a new one. */
  publishedCrl(ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
    return this.#ca.publishedCrl(ca, options);
  }

  /** The delegated OCSP responder of `ca`, issued and renewed as needed. */
  ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    return this.#ca.ocspResponder(ca);
  }

  /**
   * Issues a signing certificate for a key a device made and keeps (SCEP): recorded as the
   * user's smime-signing certificate with `keyOnDevice`, without a key. Needs the passphrase.
   * @throws ERR_INPUT_INVALID; ERR_KEY_UNSUPPORTED for a key other than RSA of 2048 bits or more
   */
  issueDeviceCertificate(options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
    return issueDevice(this, options);
  }

  /** The SCEP RA of the current issuing CA (RSA, keyEncipherment), issued and renewed automatically. Needs the passphrase. */
  async scepRa(): Promise<ResponderIdentity> {
    return this.#ca.serviceIdentity(await this.#ca.current(), 'scep');
  }

  /** A SCEP RA the store issued, by serial, while it is not revoked (a device may have encrypted to the one before). */
  scepRaBySerial(serial: string): Promise<ResponderIdentity | undefined> {
    return this.#ca.readService(undefined, 'scep-ra', undefined, normalizeSerial(serial));
  }

  /** The URL devices reach this store's SCEP server at, written into SCEP profiles, if set. */
  get scepUrl(): string | undefined {
    return this.#keys.meta.scepUrl;
  }

  /** Sets (or, with undefined, clears) the SCEP URL that profiles point devices at, for every node. */
  setScepUrl(url: string | undefined): Promise<string | undefined> {
    return setScepUrl(this, url);
  }

  /** The status of a serial among the certificates `ca` issued (for OCSP); a retired certificate is good. */
  certificateStatus(ca: CaRef, serial: string): Promise<SerialStatus> {
    return this.#ca.certificateStatus(ca, serial);
  }

  /** The statuses of several serials in one query (an OCSP request names up to 16). */
  certificateStatuses(ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
    return this.#ca.certificateStatuses(ca, serials);
  }

  // ---- administration ----



  /** @internal For `store check`: decrypts one sealed key. */
  checkSealed(sealed: Sealed, aad: string): KeyObject {
    return this.openKey(sealed, aad);
  }



  /**
   * @internal In a write transaction: the key generation this instance seals with is still the
   * store's (another node may have changed the passphrase since this one opened it). Holds a
   * share lock on the meta row, so a passphrase change waits for this transaction.
   */
  async assertGeneration(c: pg.ClientBase): Promise<void> {
    const g = (await c.query<{ g: number }>(`SELECT (meta->>'keyGeneration')::int AS g FROM store_meta FOR SHARE`)).rows[0]?.g;
    if (g !== this.#keys.meta.keyGeneration) throw new StoreIOError(this.dir, 'write', 'The store passphrase was changed (on another node) since this one opened the store; run it again');
  }

  importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    return importIdentity(this, bundle, options);
  }

  /**
   * Re-seals every private key under a new passphrase in one transaction: all or none, and
   * every node sees the new key generation at once (their sealed PKCS#12 caches are dropped).
   */
  changePassphrase(newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
    return changePassphrase(this, newPassphrase, options);
  }

  /**
   * Sets (or, with undefined, clears) the PKI base URL, for certificates issued from then on by
   * any node (each reads the meta row when it issues).
   * @throws ERR_INPUT_INVALID for a URL that is not http(s)
   */
  setPkiUrl(url: string | undefined): Promise<string | undefined> {
    return setPkiUrl(this, url);
  }

  /**
   * A new profile signer from the issuing CA, in one transaction: the previous one is revoked
   * (superseded) and its key deleted. Every node signs with the new one from its next profile.
   */
  rotateSigner(): Promise<{ previous: string; serial: string }> {
    return rotateSigner(this);
  }

  /**
   * A new issuing CA under the same root; new certificates come from it, those of the old one
   * stay valid under it. The profile signer moves to the new CA too (the old one revoked,
   * superseded), so the old CA can be revoked on the root's CRL once its last certificate is gone.
   */
  rotateIssuing(): Promise<{ generation: number; serial: string; signer: string }> {
    return rotateIssuing(this);
  }

  /**
   * Signs profiles with an identity from a CA devices already trust; the store's own previous
   * signer is revoked (superseded).
   * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, or one without digitalSignature
   */
  importSigner(bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
    return importSigner(this, bundle, options);
  }
}

