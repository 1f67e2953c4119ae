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
import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import type pg from 'pg';
import { createCertificateAuthority, createOcspResponder } from '../../certs/ca.js';
import { createCrl, type RevocationReason } from '../../certs/crl.js';
import { assertEmail } from '../../certs/email.js';
import { checkImport, type IdentityBundle } from '../../certs/import.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../../certs/issue.js';
import type { KeyAlgorithm } from '../../certs/keys.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates } from '../../certs/pem.js';
import { profilePkcs12 } from '../../certs/pkcs12.js';
import { caSlug, checkEmailDomains, checkPkiUrl, publicationFor, type CaRef } from '../../certs/publication.js';
import { certificateBasics, describeCertificate } from '../../certs/x509.js';
import { keySigner, type Signer } from '../../cms/sign.js';
import { CertificateInvalid, InputInvalid, KeyPassphraseInvalid, StoreEntryNotFound, StoreExists, StoreIOError, StoreNotInitialized } from '../../errors.js';
import type { ResponderIdentity, RevokeResult, StoreCa } from '../pki-files.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams, seal, sealBytes, unseal, unsealBytes, type KdfParams, type Sealed } from '../secret-box.js';
import {
  compareRecords,
  findRecord,
  planReimport,
  removalOf,
  servesPurpose,
  statusOf,
  type CertificateRecord,
  type ImportIdentityOptions,
  type ImportIdentityResult,
  type IssueUserCertificateOptions,
  type LifecycleStore,
  type ListCertificatesOptions,
  type RemoveUserResult,
  type TrustChain,
} from '../store.js';
import { checkedIssuance, checkNewPassphrase, newRecord } from '../issuance.js';
import { Database } from './db.js';
import { PgLinks } from './pg-links.js';
import type { LinkStore } from '../../server/links.js';
import { migrate, schemaVersion, SCHEMA_VERSION, STORE_LOCK } from './schema.js';

const CHECK_AAD = 'store-check';
const CHECK_TEXT = 'profilesmith';

/** @internal What `store_meta.meta` holds. */
export interface PgStoreMeta {
  organization: string;
  created: string;
  kdf: KdfParams;
  check: Sealed;
  keyGeneration: number;
  keyAlgorithm?: KeyAlgorithm;
  pkiUrl?: string;
  permittedEmailDomains?: string[];
}

/** Options of {@link initPostgresStore}. */
export interface InitPostgresStoreOptions {
  organization: string;
  passphrase: string;
  /** Default: `rsa-2048`. */
  keyAlgorithm?: KeyAlgorithm;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** log2 of scrypt's N. Default: 17. Lower only in tests. */
  kdfCost?: number;
  pkiUrl?: string;
  permittedEmailDomains?: string[];
}

/** Options of {@link openPostgresStore}. */
export interface OpenPostgresStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Connections in this process's pool. Default: 4. */
  connections?: number;
}

interface CertRow {
  serial: string;
  record: CertificateRecord;
  also_purpose: string | null;
  added_chain: string[] | null;
  rkind: string | null;
  rdate: Date | null;
  rreason: string | null;
}

const RECORD_SELECT = `SELECT c.serial, c.record, c.also_purpose, c.added_chain, r.kind AS rkind, r.date AS rdate, r.reason AS rreason
  FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`;

function toRecord(row: CertRow): CertificateRecord {
  const r: CertificateRecord = { ...row.record };
  if (row.also_purpose) r.alsoPurpose = row.also_purpose as CertificatePurpose;
  if (row.added_chain?.length) r.addedChain = row.added_chain;
  if (row.rkind === 'revoked') r.revoked = { date: row.rdate!.toISOString(), reason: row.rreason! };
  else if (row.rkind === 'retired') r.retired = { date: row.rdate!.toISOString() };
  return r;
}

const exportKey = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' });

/** Creates the schema and a new CA in an empty database. @throws ERR_STORE_EXISTS when it holds a store */
export async function initPostgresStore(url: string, options: InitPostgresStoreOptions): Promise<PostgresStore> {
  checkNewPassphrase(options.passphrase);
  const now = options.now ?? (() => new Date());
  const pkiUrl = options.pkiUrl === undefined ? undefined : checkPkiUrl(options.pkiUrl);
  const domains = checkEmailDomains(options.permittedEmailDomains ?? []);
  const db = await Database.open(url);
  try {
    // Refuse early, before three keys are made, if the database already holds a store.
    await db.tx(async (c) => {
      if ((await schemaVersion(c)) > 0) throw new StoreExists(db.where);
    }, { op: 'read' });
    const ca = await createCertificateAuthority({
      organization: options.organization,
      now,
      ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
      ...(pkiUrl ? { pkiUrl } : {}),
      ...(domains.length ? { permittedEmailDomains: domains } : {}),
    });
    const kdf = newKdfParams(options.kdfCost ?? DEFAULT_KDF_COST);
    const key = await deriveKey(options.passphrase, kdf);
    const meta: PgStoreMeta = {
      organization: options.organization.trim(),
      created: now().toISOString(),
      kdf,
      check: seal(key, Buffer.from(CHECK_TEXT), CHECK_AAD),
      keyGeneration: 1,
      ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
      ...(pkiUrl ? { pkiUrl } : {}),
      ...(domains.length ? { permittedEmailDomains: domains } : {}),
    };
    await db.tx(async (c) => {
      // Two inits at once: the lock makes the second see the first's schema and refuse.
      if ((await schemaVersion(c)) > 0) throw new StoreExists(db.where);
      await migrate(c, 0);
      await c.query('INSERT INTO store_meta (meta) VALUES ($1)', [meta]);
      const put = (id: Identity, role: string, issuer: string | null, aad: string) =>
        c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad) VALUES ($1, $2, $3, $4, $5, $6)', [
          normalizeSerial(certificateBasics(id.certificate).serial), role, issuer, id.certificate, seal(key, exportKey(id.privateKey), aad), aad,
        ]);
      // The same associated data as the file store's key files: sealed keys move between the two as they are.
      await put(ca.root, 'root', null, 'ca/root.key');
      await put(ca.intermediate, 'issuing', 'root', 'ca/intermediate.key');
      await put(ca.signer, 'signer', 'issuing', 'signer/key');
    }, { lock: STORE_LOCK, op: 'create' });
    return PostgresStore.create(db, meta, key, now);
  } catch (err) {
    await db.end();
    throw err;
  }
}

/**
 * Opens the store in a database, migrating an older schema forward.
 * @throws ERR_STORE_NOT_INITIALIZED for a database without one; ERR_STORE_IO for a schema newer than this code, or a server fault
 */
export async function openPostgresStore(url: string, options: OpenPostgresStoreOptions = {}): Promise<PostgresStore> {
  const db = await Database.open(url, { ...(options.connections ? { max: options.connections } : {}) });
  try {
    let version = await db.tx((c) => schemaVersion(c), { op: 'read' });
    if (version === 0) throw new StoreNotInitialized(db.where);
    if (version > SCHEMA_VERSION) {
      throw new StoreIOError(db.where, 'read', `The database at ${db.where} has schema version ${version}, newer than this profilesmith reads (${SCHEMA_VERSION}); upgrade profilesmith`);
    }
    if (version < SCHEMA_VERSION) {
      version = await db.tx(async (c) => {
        const v = await schemaVersion(c);
        if (v < SCHEMA_VERSION) await migrate(c, v);
        return SCHEMA_VERSION;
      }, { lock: STORE_LOCK, op: 'migrate' });
    }
    const meta = (await db.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta')).rows[0]?.meta;
    if (!meta) throw new StoreNotInitialized(db.where);
    const store = PostgresStore.create(db, meta, undefined, options.now ?? (() => new Date()));
    if (options.passphrase !== undefined) await store.unlock(options.passphrase);
    return store;
  } catch (err) {
    await db.end();
    throw err;
  }
}

/** The PostgreSQL store. Create it with {@link initPostgresStore} or {@link openPostgresStore}. */
export class PostgresStore implements LifecycleStore {
  readonly organization: string;
  /** The database's URL without its password (where messages say the store is). */
  readonly dir: string;
  /** One-time links in the `links` table: a use is spent by one conditional UPDATE, so exactly once across every node. */
  readonly links: LinkStore;
  #key: Buffer | undefined;
  #meta: PgStoreMeta;
  #issuers = new Map<string, Promise<Identity>>();
  #caCerts: Promise<StoreCa[]> | undefined;
  #responders = new Map<string, Promise<ResponderIdentity>>();
  /**
   * Records seen by the last listings, by serial: issuerChain reads only what never changes in
   * a record (its source and chain), so a profile costs no query per identity for it.
   */
  #seen = new Map<string, CertificateRecord>();
  /** Set by loadIndex (a batch's main thread): the records by user, as they were at its start. */
  #snapshot: Map<string, CertificateRecord[]> | undefined;
  /** The last user's sealed PKCS#12 rows, read in one query for all of a profile's identities. */
  #pkcs12: { user: string; rows: Promise<Map<string, { sealed: Buffer; key_generation: number }>> } | undefined;

  private constructor(
    private readonly db: Database,
    meta: PgStoreMeta,
    key: Buffer | undefined,
    private readonly now: () => Date,
  ) {
    this.organization = meta.organization;
    this.dir = db.where;
    this.#meta = meta;
    this.#key = key;
    this.links = new PgLinks(db, now);
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
    const key = await deriveKey(passphrase, this.#meta.kdf);
    if (unseal(key, this.#meta.check, CHECK_AAD)?.toString() !== CHECK_TEXT) throw new KeyPassphraseInvalid(this.dir, `The passphrase for the store at "${this.dir}" is wrong`);
    this.#key = key;
  }

  /** @internal A copy of the derived key, for batch workers. */
  derivedKey(): Buffer {
    return Buffer.from(this.requireKey('hand the key to a worker'));
  }

  /** @internal Unlocks with a key from {@link PostgresStore.derivedKey}. */
  unlockWithKey(key: Uint8Array): void {
    const k = Buffer.from(key);
    if (unseal(k, this.#meta.check, CHECK_AAD)?.toString() !== CHECK_TEXT) throw new KeyPassphraseInvalid(this.dir, `The key for the store at "${this.dir}" is wrong`);
    this.#key = k;
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

  private requireKey(what: string): Buffer {
    if (!this.#key) throw new KeyPassphraseInvalid(this.dir, `The store passphrase is needed to ${what}`);
    return this.#key;
  }

  private openKey(sealed: Sealed, aad: string): KeyObject {
    const der = unseal(this.requireKey('use private keys'), sealed, aad);
    if (!der) throw new StoreIOError(this.dir, 'decrypt', `The key "${aad}" in ${this.dir} does not decrypt: it is damaged or was moved`);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  /** @internal For store check and migrate. */
  get meta(): PgStoreMeta {
    return this.#meta;
  }

  get unlocked(): boolean {
    return this.#key !== undefined;
  }

  get pkiUrl(): string | undefined {
    return this.#meta.pkiUrl;
  }

  get permittedEmailDomains(): readonly string[] {
    return this.#meta.permittedEmailDomains ?? [];
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

  private async record(serial: string): Promise<CertificateRecord> {
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
    if (!row.sealed_key) throw new StoreEntryNotFound(serial, 'certificate', `Certificate ${s} has no private key in the store`);
    return { certificate: row.certificate, privateKey: this.openKey(row.sealed_key, `certs/${s}/key`) };
  }

  async checkIssuance(options: IssueUserCertificateOptions): Promise<void> {
    this.checkedUser(options);
  }

  private checkedUser(options: IssueUserCertificateOptions): string {
    return checkedIssuance(options, this.#meta.permittedEmailDomains ?? []);
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    return (await this.issue(options, false)).record;
  }

  /**
   * Issues unless the user holds a valid certificate of the purpose. The check and the insert
   * run in one transaction holding an advisory lock on (user, purpose): any number of nodes
   * running at once leave exactly one new certificate per user and purpose.
   */
  async issueCertificateIfMissing(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }> {
    return this.issue(options, true);
  }

  private async validHeld(user: string, purpose: CertificatePurpose): Promise<CertificateRecord | undefined> {
    const now = this.now();
    return (await this.listCertificates({ user, purpose })).find((r) => statusOf(r, now) === 'valid');
  }

  private async issue(options: IssueUserCertificateOptions, ifMissing: boolean): Promise<{ record: CertificateRecord; issued: boolean }> {
    this.requireKey('issue certificates');
    const user = this.checkedUser(options);
    if (ifMissing) {
      const held = await this.validHeld(user, options.purpose);
      if (held) return { record: held, issued: false };
    }
    const publication = publicationFor(this.#meta.pkiUrl, 1);
    const identity = await issueCertificate(await this.caIdentity(1), {
      purpose: options.purpose,
      email: user,
      name: options.name,
      now: this.now,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
      ...(publication ? { publication } : {}),
    });
    const record = await this.makeRecord(identity.certificate, user, options.purpose, 'issued', []);
    const kept = await this.db.tx(async (c) => {
      if (ifMissing) {
        const now = this.now();
        const rows = await c.query<CertRow>(`${RECORD_SELECT} WHERE c.user_lower = $1`, [user.toLowerCase()]);
        const held = rows.rows.map(toRecord).find((r) => servesPurpose(r, options.purpose) && statusOf(r, now) === 'valid');
        if (held) return held;
      }
      await this.insertEntry(c, record, identity, []);
      return undefined;
    }, ifMissing ? { lock: `issue|${user.toLowerCase()}|${options.purpose}` } : {});
    if (kept) return { record: kept, issued: false };
    await this.prebuildPkcs12(record, identity);
    return { record, issued: true };
  }

  private makeRecord(certificate: Buffer, user: string, purpose: CertificatePurpose, source: CertificateRecord['source'], chain: Buffer[]): Promise<CertificateRecord> {
    return newRecord(certificate, { user, purpose, source, chain, now: this.now() });
  }

  private async insertEntry(c: pg.ClientBase, record: CertificateRecord, identity: { certificate: Buffer; privateKey?: KeyObject }, chain: Buffer[]): Promise<void> {
    const key = this.requireKey('store keys');
    for (const der of chain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
    try {
      await c.query('INSERT INTO certificates (serial, fingerprint, user_lower, purpose, record, certificate, sealed_key) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        record.serial, record.fingerprint, record.user.toLowerCase(), record.purpose, record, identity.certificate,
        identity.privateKey ? seal(key, exportKey(identity.privateKey), `certs/${record.serial}/key`) : null,
      ]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new CertificateInvalid('duplicate', `A different certificate with serial ${record.serial} is already in the store`);
      throw err;
    }
  }

  /** @internal store migrate: an entry as the file store holds it, its key sealed already (same associated data). */
  async insertSealedEntry(c: pg.ClientBase, record: CertificateRecord, certificate: Buffer, sealedKey: Sealed | undefined, chain: Buffer[]): Promise<void> {
    for (const der of chain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
    const { alsoPurpose, addedChain, revoked, retired, ...facts } = record;
    await c.query('INSERT INTO certificates (serial, fingerprint, user_lower, purpose, record, certificate, sealed_key, also_purpose, added_chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      record.serial, record.fingerprint, record.user.toLowerCase(), record.purpose, facts, certificate, sealedKey ?? null, alsoPurpose ?? null, addedChain ? JSON.stringify(addedChain) : null,
    ]);
    void revoked;
    void retired;
  }

  private async prebuildPkcs12(record: CertificateRecord, identity: Identity): Promise<void> {
    try {
      await this.putPkcs12(record, profilePkcs12(identity, record));
    } catch {
      // built on demand later
    }
  }

  private pkcs12Aad(serial: string, generation: number): string {
    return `pkcs12-cache|${generation}|${serial}`;
  }

  private async putPkcs12(record: CertificateRecord, built: { password: string; pkcs12: Buffer }): Promise<void> {
    const gen = this.#meta.keyGeneration;
    const pw = Buffer.from(built.password, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(pw.length);
    const box = sealBytes(this.requireKey('use private keys'), Buffer.concat([len, pw, built.pkcs12]), this.pkcs12Aad(record.serial, gen));
    await this.db.query(
      'INSERT INTO pkcs12_cache (serial, user_lower, key_generation, sealed) VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO UPDATE SET key_generation = EXCLUDED.key_generation, sealed = EXCLUDED.sealed',
      [record.serial, record.user.toLowerCase(), gen, box],
      'write',
    );
  }

  /** The identity's iOS-form PKCS#12, built once and kept sealed in `pkcs12_cache`. */
  async cachedPkcs12(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    const s = normalizeSerial(serial);
    const key = this.requireKey('use private keys');
    const gen = this.#meta.keyGeneration;
    // One query per user: a profile asks for each of its user's identities in turn.
    const user = this.#seen.get(s)?.user.toLowerCase();
    let row: { sealed: Buffer; key_generation: number } | undefined;
    if (user) {
      if (this.#pkcs12?.user !== user) {
        const rows = this.db.query<{ serial: string; sealed: Buffer; key_generation: number }>('SELECT serial, sealed, key_generation FROM pkcs12_cache WHERE user_lower = $1', [user]).then((r) => new Map(r.rows.map((x) => [x.serial, x])));
        rows.catch(() => (this.#pkcs12 = undefined));
        this.#pkcs12 = { user, rows };
      }
      row = (await this.#pkcs12.rows).get(s);
    } else {
      row = (await this.db.query<{ sealed: Buffer; key_generation: number }>('SELECT sealed, key_generation FROM pkcs12_cache WHERE serial = $1', [s])).rows[0];
    }
    const plain = row && row.key_generation === gen ? unsealBytes(key, row.sealed, this.pkcs12Aad(s, gen)) : undefined;
    if (plain && plain.length > 2) {
      const n = plain.readUInt16BE(0);
      return { password: plain.subarray(2, 2 + n).toString('utf8'), pkcs12: plain.subarray(2 + n) };
    }
    const built = build(await this.getIdentity(s));
    this.#pkcs12 = undefined;
    await this.putPkcs12(this.#seen.get(s) ?? (await this.record(s)), built).catch(() => {});
    return built;
  }

  /** A new certificate for the user and purpose, named like the newest one; the old one stays in the history. */
  async renewCertificate(user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
    const newest = (await this.listCertificates({ user, purpose })).at(-1);
    if (!newest) throw new StoreEntryNotFound(user, 'user', `User "${user}" holds no ${purpose} certificate to renew`);
    const info = await describeCertificate(await this.getCertificate(newest.serial));
    return this.issueCertificate({ user: newest.user, name: info.commonName ?? newest.user, purpose, ...(days ? { days } : {}) });
  }

  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    assertEmail(options.user);
    this.requireKey('store keys');
    const check = await checkImport(bundle, { user: options.user, purpose: options.purpose, now: this.now(), ...(options.strict ? { strict: true } : {}) });
    const leaf = check.info.fingerprint;
    const chain = distinctIssuers(leaf, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
    const record = await this.makeRecord(bundle.certificate, check.email, options.purpose, 'imported', chain);
    const identity = { certificate: bundle.certificate, privateKey: bundle.privateKey };
    // By fingerprint, under a lock on it: two nodes importing the same file add it once.
    const out = await this.db.tx(async (c) => {
      const r = await c.query<CertRow>(`${RECORD_SELECT} WHERE c.fingerprint = $1`, [leaf]);
      if (!r.rows[0]) {
        await this.insertEntry(c, record, identity, chain);
        return { record, duplicate: false, warnings: check.warnings } as ImportIdentityResult;
      }
      const existing = toRecord(r.rows[0]);
      const plan = planReimport(existing, options.purpose, chain, check.info.keyUsage);
      if (!plan.alsoPurpose && !plan.addChain.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
      for (const der of plan.addChain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
      const added = [...(existing.addedChain ?? []), ...plan.addChain.map((d) => fingerprint(d))];
      await c.query('UPDATE certificates SET also_purpose = COALESCE($2, also_purpose), added_chain = $3 WHERE serial = $1', [existing.serial, plan.alsoPurpose ?? null, added.length ? JSON.stringify(added) : null]);
      const updated = toRecord((await c.query<CertRow>(`${RECORD_SELECT} WHERE c.serial = $1`, [existing.serial])).rows[0]!);
      return { record: updated, duplicate: true, added: { ...(plan.alsoPurpose ? { purpose: plan.alsoPurpose } : {}), chain: plan.addChain.length }, warnings: check.warnings } as ImportIdentityResult;
    }, { lock: `import|${leaf}` });
    if (!out.duplicate) await this.prebuildPkcs12(record, identity);
    return out;
  }

  // ---- the CA ----

  /** The store's CA certificates: the root and the issuing CA. */
  async caCertificates(): Promise<StoreCa[]> {
    return (this.#caCerts ??= (async () => {
      const r = await this.db.query<{ role: string; certificate: Buffer }>(`SELECT role, certificate FROM ca_certs WHERE role IN ('root', 'issuing') ORDER BY role DESC`);
      const out: StoreCa[] = [];
      for (const row of r.rows) {
        const ca: CaRef = row.role === 'root' ? 'root' : 1;
        const info = await describeCertificate(row.certificate);
        out.push({ ca, slug: caSlug(ca), certificate: row.certificate, serial: normalizeSerial(info.serial), subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter });
      }
      return out;
    })()).catch((err) => {
      this.#caCerts = undefined;
      throw err;
    });
  }

  private async caCert(ca: CaRef): Promise<Buffer> {
    const hit = (await this.caCertificates()).find((c) => c.ca === ca);
    if (!hit) throw new InputInvalid('ca', `This store has no CA ${caSlug(ca)}`);
    return hit.certificate;
  }

  /** The issuing CA's certificate and key; needs the passphrase. */
  async issuerIdentity(generation = 1): Promise<Identity> {
    return this.caIdentity(generation);
  }

  private caIdentity(ca: CaRef): Promise<Identity> {
    const slug = caSlug(ca);
    let hit = this.#issuers.get(slug);
    if (!hit) {
      hit = (async () => {
        if (ca !== 'root' && ca !== 1) throw new InputInvalid('ca', `This store has no issuing CA ${slug}`);
        const r = await this.db.query<{ certificate: Buffer; sealed_key: Sealed; key_aad: string }>('SELECT certificate, sealed_key, key_aad FROM ca_certs WHERE role = $1', [ca === 'root' ? 'root' : 'issuing']);
        const row = r.rows[0];
        if (!row) throw new StoreIOError(this.dir, 'read', `The store at ${this.dir} has no ${slug} CA`);
        return { certificate: row.certificate, privateKey: this.openKey(row.sealed_key, row.key_aad) };
      })();
      hit.catch(() => this.#issuers.delete(slug));
      this.#issuers.set(slug, hit);
    }
    return hit;
  }

  async trustChain(): Promise<TrustChain> {
    return { roots: [await this.caCert('root')], intermediates: [await this.caCert(1)] };
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    const record = this.#seen.get(normalizeSerial(serial)) ?? (await this.record(serial));
    if (record.source === 'issued') return [await this.caCert(1), await this.caCert('root')];
    const fps = [...new Set([...(record.chain ?? []), ...(record.addedChain ?? [])])];
    if (!fps.length) return [];
    const r = await this.db.query<{ fingerprint: string; certificate: Buffer }>('SELECT fingerprint, certificate FROM chains WHERE fingerprint = ANY($1)', [fps]);
    const by = new Map(r.rows.map((x) => [x.fingerprint, x.certificate]));
    return fps.map((fp) => by.get(fp)).filter((d): d is Buffer => !!d);
  }

  async profileSigner(): Promise<Signer> {
    const r = await this.db.query<{ serial: string; certificate: Buffer; sealed_key: Sealed; key_aad: string; revoked: boolean }>(
      `SELECT s.serial, s.certificate, s.sealed_key, s.key_aad, EXISTS (SELECT 1 FROM revocations v WHERE v.serial = s.serial AND v.kind = 'revoked') AS revoked
         FROM ca_certs s WHERE s.role = 'signer' AND s.current`,
    );
    const row = r.rows[0];
    if (!row) throw new StoreIOError(this.dir, 'read', `The store at ${this.dir} has no profile signer`);
    if (row.revoked) throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked');
    return keySigner({ key: this.openKey(row.sealed_key, row.key_aad), certificate: row.certificate, chain: [await this.caCert(1)] });
  }

  /** Serials revoked by this store's CAs, for `verify`. */
  async revokedSerials(): Promise<Set<string>> {
    return new Set((await this.db.query<{ serial: string }>(`SELECT serial FROM revocations WHERE kind = 'revoked'`)).rows.map((r) => r.serial));
  }

  // ---- revocation ----

  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    const s = normalizeSerial(serial);
    const date = this.now();
    const own = (await this.db.query<{ role: string; ca: string | null }>('SELECT role, ca FROM ca_certs WHERE serial = $1', [s])).rows[0];
    let kind: RevokeResult['kind'] = 'user';
    let ca = 'issuing';
    let record: CertificateRecord | undefined;
    if (own) {
      if (own.role === 'root') throw new CertificateInvalid('root', 'The root CA cannot revoke itself; remove it from the devices that trust it instead');
      if (own.role === 'issuing') throw new CertificateInvalid('in-use', 'The issuing CA is the current one (this store does not rotate issuing CAs yet)');
      kind = own.role as RevokeResult['kind'];
      ca = own.ca ?? 'issuing';
    } else {
      record = await this.record(s);
      if (record.source !== 'issued') throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
    }
    // One statement decides: a revocation by another node meanwhile counts as prior; a retired one becomes revoked.
    const r = await this.db.query<{ date: Date; reason: string }>(
      `INSERT INTO revocations AS v (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $2, $3, $4)
         ON CONFLICT (serial) DO UPDATE SET kind = 'revoked', ca = EXCLUDED.ca, date = EXCLUDED.date, reason = EXCLUDED.reason WHERE v.kind = 'retired'
         RETURNING date, reason`,
      [s, ca, date, reason],
      'write',
    );
    const changed = r.rows[0];
    if (changed) {
      const revoked = { date: changed.date.toISOString(), reason: changed.reason };
      return { serial: s, kind, ca, already: false, revoked, ...(record ? { record: { ...record, revoked } } : {}) };
    }
    const prior = (await this.db.query<{ date: Date; reason: string }>('SELECT date, reason FROM revocations WHERE serial = $1', [s])).rows[0]!;
    return { serial: s, kind, ca, already: true, revoked: { date: prior.date.toISOString(), reason: prior.reason }, ...(record ? { record: await this.record(s) } : {}) };
  }

  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    const all = await this.listCertificates({ user });
    if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
    const date = this.now();
    return this.db.tx(async (c) => {
      const out: RemoveUserResult = { revoked: [], retired: [] };
      for (const rec of all) {
        const action = removalOf(rec, options);
        if (!action) continue;
        const r = action === 'revoke'
          ? await c.query(`INSERT INTO revocations AS v (serial, kind, ca, date, reason) VALUES ($1, 'revoked', 'issuing', $2, 'cessationOfOperation')
              ON CONFLICT (serial) DO UPDATE SET kind = 'revoked', ca = 'issuing', date = EXCLUDED.date, reason = EXCLUDED.reason WHERE v.kind = 'retired' RETURNING serial`, [rec.serial, date])
          : await c.query(`INSERT INTO revocations (serial, kind, date, reason) VALUES ($1, 'retired', $2, 'retired') ON CONFLICT DO NOTHING RETURNING serial`, [rec.serial, date]);
        if (!r.rowCount) continue;
        if (action === 'revoke') out.revoked.push({ ...rec, revoked: { date: date.toISOString(), reason: 'cessationOfOperation' } });
        else out.retired.push({ ...rec, retired: { date: date.toISOString() } });
      }
      return out;
    }, { lock: `user|${user.toLowerCase()}` });
  }

  /** A query in the transaction `c`, or on the pool. */
  private run<R extends pg.QueryResultRow>(c: pg.ClientBase | undefined, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return c ? c.query<R>(text, values) : this.db.query<R>(text, values);
  }

  private async revocationsOf(c: pg.ClientBase | undefined, ca: CaRef) {
    const r = await this.run<{ serial: string; date: Date; reason: string }>(c, `SELECT serial, date, reason FROM revocations WHERE kind = 'revoked' AND COALESCE(ca, 'issuing') = $1 ORDER BY seq`, [caSlug(ca)]);
    return r.rows.map((x) => ({ serial: x.serial, date: x.date, reason: x.reason as RevocationReason }));
  }

  /**
   * Signs a CRL with the next CRL number (taken in the same transaction, under the row's lock:
   * strictly increasing across nodes) and keeps it as the published one.
   */
  private async signCrl(ca: CaRef, validityMs: number): Promise<Buffer> {
    const issuer = await this.caIdentity(ca);
    const slug = caSlug(ca);
    return this.db.tx(async (c) => {
      await c.query('INSERT INTO crls (ca, number) VALUES ($1, 0) ON CONFLICT DO NOTHING', [slug]);
      const prev = (await c.query<{ number: string }>('SELECT number FROM crls WHERE ca = $1 FOR UPDATE', [slug])).rows[0]!;
      const now = this.now();
      const number = Math.max(Number(prev.number) + 1, Math.floor(now.getTime() / 1000));
      const entries = await this.revocationsOf(c, ca);
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
      const der = await createCrl({ issuerCertificate: issuer.certificate, issuerKey: issuer.privateKey, entries, thisUpdate, nextUpdate, crlNumber: number });
      await c.query('UPDATE crls SET number = $2, this_update = $3, next_update = $4, digest = $5, der = $6 WHERE ca = $1', [slug, number, thisUpdate, nextUpdate, digestOf(entries), der]);
      return der;
    });
  }

  async createCrl(options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
    const ca = options.ca ?? 1;
    if (ca !== 'root' && ca !== 1) throw new InputInvalid('ca', `This store has no issuing CA ${caSlug(ca)}`);
    return this.signCrl(ca, options.nextUpdateMs ?? 7 * 86_400_000);
  }

  /** The CA's current CRL: the last one signed while it lists exactly today's revocations and is less than half through its validity, else a new one. */
  async publishedCrl(ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
    const r = (await this.db.query<{ digest: string | null; der: Buffer | null; this_update: Date | null; next_update: Date | null }>('SELECT digest, der, this_update, next_update FROM crls WHERE ca = $1', [caSlug(ca)])).rows[0];
    const now = this.now().getTime();
    if (r?.der && r.this_update && r.next_update && r.digest === digestOf(await this.revocationsOf(undefined, ca))) {
      const start = r.this_update.getTime();
      if (now >= start && now < start + (r.next_update.getTime() - start) / 2) return r.der;
    }
    return this.signCrl(ca, options.validityMs ?? 7 * 86_400_000);
  }

  /** The delegated OCSP responder of `ca`, issued and renewed as needed (kept in `ca_certs`, key sealed). */
  async ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    const slug = caSlug(ca);
    const fresh = (r: ResponderIdentity) => {
      const now = this.now().getTime();
      return now >= r.notBefore.getTime() && now < r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
    };
    const hit = await this.#responders.get(slug)?.catch(() => undefined);
    if (hit && fresh(hit)) return hit;
    const read = async (c?: pg.ClientBase): Promise<ResponderIdentity | undefined> => {
      const row = (await this.run<{ serial: string; certificate: Buffer; sealed_key: Sealed; key_aad: string }>(
        c,
        `SELECT serial, certificate, sealed_key, key_aad FROM ca_certs WHERE role = 'responder' AND ca = $1 AND current
           AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.serial = ca_certs.serial AND v.kind = 'revoked') ORDER BY created DESC LIMIT 1`,
        [slug],
      )).rows[0];
      if (!row) return undefined;
      const x = new X509Certificate(row.certificate);
      return { certificate: row.certificate, privateKey: this.openKey(row.sealed_key, row.key_aad), serial: row.serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
    };
    const next = (async () => {
      const current = await read();
      if (current && fresh(current)) return current;
      const issuer = await this.caIdentity(ca);
      return this.db.tx(async (c) => {
        const again = await read(c);
        if (again && fresh(again)) return again;
        const r = await createOcspResponder(issuer, ca, { organization: this.organization, now: this.now, ...(this.#meta.keyAlgorithm ? { keyAlgorithm: this.#meta.keyAlgorithm } : {}), ...(this.#meta.pkiUrl ? { pkiUrl: this.#meta.pkiUrl } : {}) });
        const info = certificateBasics(r.certificate);
        const serial = normalizeSerial(info.serial);
        const aad = `ocsp/${slug}-${serial}.key`;
        await c.query(`UPDATE ca_certs SET current = false WHERE role = 'responder' AND ca = $1`, [slug]);
        await c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad) VALUES ($1, $2, $3, $4, $5, $6)', [serial, 'responder', slug, r.certificate, seal(this.requireKey('issue an OCSP responder'), exportKey(r.privateKey), aad), aad]);
        return { ...r, serial, notBefore: new Date(new X509Certificate(r.certificate).validFrom), notAfter: info.notAfter };
      }, { lock: `responder|${slug}` });
    })();
    this.#responders.set(slug, next);
    next.catch(() => this.#responders.delete(slug));
    return next;
  }

  /** The status of a serial among the certificates `ca` issued (for OCSP); a retired certificate is good. */
  async certificateStatus(ca: CaRef, serial: string): Promise<{ status: 'good' } | { status: 'revoked'; date: Date; reason: RevocationReason } | { status: 'unknown' }> {
    const s = normalizeSerial(serial);
    const slug = caSlug(ca);
    const r = await this.db.query<{ issued: boolean; kind: string | null; date: Date | null; reason: string | null }>(
      `SELECT (EXISTS (SELECT 1 FROM certificates WHERE serial = $1 AND record->>'source' = 'issued' AND $2 = 'issuing')
            OR EXISTS (SELECT 1 FROM ca_certs WHERE serial = $1 AND ca = $2)) AS issued,
              v.kind, v.date, v.reason
         FROM (SELECT 1) AS one LEFT JOIN revocations v ON v.serial = $1 AND v.kind = 'revoked' AND COALESCE(v.ca, 'issuing') = $2`,
      [s, slug],
    );
    const row = r.rows[0]!;
    if (!row.issued) return { status: 'unknown' };
    if (row.kind === 'revoked') return { status: 'revoked', date: row.date!, reason: row.reason as RevocationReason };
    return { status: 'good' };
  }

  // ---- administration ----

  /**
   * Re-seals every private key under a new passphrase in one transaction: all or none, and
   * every node sees the new key generation at once (their sealed PKCS#12 caches are dropped).
   */
  async changePassphrase(newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
    checkNewPassphrase(newPassphrase);
    this.requireKey('change the passphrase');
    const kdf = newKdfParams(options.kdfCost ?? Math.log2(this.#meta.kdf.N));
    const newKey = await deriveKey(newPassphrase, kdf);
    const { count, meta } = await this.db.tx(async (c) => {
      const current = (await c.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta FOR UPDATE')).rows[0]!.meta;
      if (current.keyGeneration !== this.#meta.keyGeneration) throw new StoreIOError(this.dir, 'write', 'The store passphrase was changed while this ran; run it again');
      let count = 0;
      for (const row of (await c.query<{ serial: string; sealed_key: Sealed; key_aad: string }>('SELECT serial, sealed_key, key_aad FROM ca_certs')).rows) {
        await c.query('UPDATE ca_certs SET sealed_key = $2 WHERE serial = $1', [row.serial, seal(newKey, exportKey(this.openKey(row.sealed_key, row.key_aad)), row.key_aad)]);
        count++;
      }
      for (const row of (await c.query<{ serial: string; sealed_key: Sealed }>('SELECT serial, sealed_key FROM certificates WHERE sealed_key IS NOT NULL')).rows) {
        const aad = `certs/${row.serial}/key`;
        await c.query('UPDATE certificates SET sealed_key = $2 WHERE serial = $1', [row.serial, seal(newKey, exportKey(this.openKey(row.sealed_key, aad)), aad)]);
        count++;
      }
      await c.query('DELETE FROM pkcs12_cache');
      const meta: PgStoreMeta = { ...current, kdf, check: seal(newKey, Buffer.from(CHECK_TEXT), CHECK_AAD), keyGeneration: current.keyGeneration + 1 };
      await c.query('UPDATE store_meta SET meta = $1', [meta]);
      return { count, meta };
    }, { lock: STORE_LOCK });
    this.#meta = meta;
    this.#key = newKey;
    this.#issuers.clear();
    this.#responders.clear();
    return count;
  }

  /** @internal For `store check`: whether this key's sealed value in the database opens. */
  async sealedKeys(): Promise<{ name: string; sealed: Sealed; aad: string }[]> {
    const ca = await this.db.query<{ role: string; serial: string; sealed_key: Sealed; key_aad: string }>('SELECT role, serial, sealed_key, key_aad FROM ca_certs ORDER BY created');
    const certs = await this.db.query<{ serial: string; sealed_key: Sealed }>('SELECT serial, sealed_key FROM certificates WHERE sealed_key IS NOT NULL ORDER BY seq');
    return [
      ...ca.rows.map((r) => ({ name: `${r.role} ${r.serial}`, sealed: r.sealed_key, aad: r.key_aad })),
      ...certs.rows.map((r) => ({ name: `certificate ${r.serial}`, sealed: r.sealed_key, aad: `certs/${r.serial}/key` })),
    ];
  }

  /** @internal For `store check`: decrypts one sealed key. */
  checkSealed(sealed: Sealed, aad: string): KeyObject {
    return this.openKey(sealed, aad);
  }

  /** Not available on this store yet. @throws ERR_INPUT_INVALID */
  async setPkiUrl(): Promise<string | undefined> {
    throw unsupported('changing the PKI URL');
  }

  /** Not available on this store yet. @throws ERR_INPUT_INVALID */
  async rotateSigner(): Promise<{ previous: string; serial: string }> {
    throw unsupported('ca rotate-signer');
  }

  /** Not available on this store yet. @throws ERR_INPUT_INVALID */
  async rotateIssuing(): Promise<{ generation: number; serial: string; signer: string }> {
    throw unsupported('ca rotate-issuing');
  }

  /** Not available on this store yet. @throws ERR_INPUT_INVALID */
  async importSigner(): Promise<{ previous: string; serial: string; warnings: string[] }> {
    throw unsupported('ca import-signer');
  }
}

function unsupported(what: string): InputInvalid {
  return new InputInvalid('store', `${what} is not available for a PostgreSQL store yet; it works on a file store (profilesmith store migrate copies one into PostgreSQL)`);
}

const digestOf = (entries: { serial: string; date: Date; reason: string }[]) =>
  createHash('sha256').update(JSON.stringify(entries.map((e) => [e.serial, e.date.toISOString(), e.reason]))).digest('hex');
