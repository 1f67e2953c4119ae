/**
 * Bring your own store: a LifecycleStore on SQLite (better-sqlite3 version 12).
 *
 * Everything the generator needs comes through the `CertificateStore` interface, and the whole
 * lifecycle (import, revocation with a reason, unenrollment, CRLs, one-time links) through
 * `LifecycleStore`; this file uses only profilesmith's public API. Private keys are kept as
 * encrypted PKCS#8 (never in clear), and every write is one SQLite transaction (BEGIN
 * IMMEDIATE), so many processes may share the database: a link is used exactly once.
 */
import Database from 'better-sqlite3';
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import {
  checkImport,
  compareRecords,
  createCertificateAuthority,
  createCrl,
  describeCertificate,
  distinctIssuers,
  findRecord,
  fingerprint,
  issueCertificate,
  keySigner,
  LinkLedger,
  planReimport,
  removalOf,
  servesPurpose,
  toCertificates,
  errors,
  type CertificateAuthority,
  type CertificateRecord,
  type Identity,
  type IdentityBundle,
  type ImportIdentityOptions,
  type ImportIdentityResult,
  type IssueUserCertificateOptions,
  type LifecycleStore,
  type LinkRecord,
  type ListCertificatesOptions,
  type RemoveUserResult,
  type RevocationReason,
  type RevokeResult,
  type Signer,
  type TrustChain,
} from 'profilesmith';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ca (role TEXT PRIMARY KEY, cert BLOB NOT NULL, key TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certs (
  serial TEXT PRIMARY KEY,
  user_lc TEXT NOT NULL,
  purpose TEXT NOT NULL,
  seq INTEGER NOT NULL,
  record TEXT NOT NULL,
  cert BLOB NOT NULL,
  key TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS certs_user ON certs (user_lc, purpose);
CREATE TABLE IF NOT EXISTS chains (fingerprint TEXT PRIMARY KEY, cert BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS links (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
`;

/** One-time links in a table; a change runs in one IMMEDIATE transaction, so two servers cannot both spend a use. */
class SqliteLinks extends LinkLedger {
  constructor(private readonly db: Database.Database) {
    super();
  }

  async list(): Promise<LinkRecord[]> {
    return (this.db.prepare('SELECT doc FROM links ORDER BY rowid').all() as { doc: string }[]).map((r) => JSON.parse(r.doc) as LinkRecord);
  }

  protected async transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    return this.db
      .transaction(() => {
        const links = (this.db.prepare('SELECT doc FROM links ORDER BY rowid').all() as { doc: string }[]).map((r) => JSON.parse(r.doc) as LinkRecord);
        const out = fn(links);
        const kept = this.prune(links);
        this.db.prepare('DELETE FROM links').run();
        const put = this.db.prepare('INSERT INTO links (id, doc) VALUES (?, ?)');
        for (const l of kept) put.run(l.id, JSON.stringify(l));
        return out;
      })
      .immediate();
  }
}

const seal = (key: KeyObject, passphrase: string) =>
  key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;

const norm = (serial: string) => serial.replace(/[:\s]/g, '').toLowerCase().replace(/^0+(?=.)/, '');

export class SqliteStore implements LifecycleStore {
  readonly organization: string;
  readonly links: SqliteLinks;
  /** This store publishes no CRL or OCSP URLs in what it issues. */
  readonly pkiUrl = undefined;
  readonly #db: Database.Database;
  readonly #passphrase: string;
  #ca?: CertificateAuthority;

  private constructor(db: Database.Database, passphrase: string) {
    this.#db = db;
    this.#passphrase = passphrase;
    this.links = new SqliteLinks(db);
    const org = db.prepare('SELECT v FROM meta WHERE k = ?').get('organization') as { v: string } | undefined;
    if (!org) throw new errors.StoreNotInitialized(db.name);
    this.organization = org.v;
  }

  /** Opens (and with `organization`, creates on first use) a store in a SQLite file. */
  static async open(path: string, options: { passphrase: string; organization?: string }): Promise<SqliteStore> {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    db.exec(SCHEMA);
    const exists = db.prepare('SELECT 1 FROM meta WHERE k = ?').get('organization');
    if (!exists) {
      if (!options.organization) throw new errors.StoreNotInitialized(path);
      const ca = await createCertificateAuthority({ organization: options.organization });
      const put = db.prepare('INSERT OR IGNORE INTO ca (role, cert, key) VALUES (?, ?, ?)');
      db.transaction(() => {
        // Another process may have won the race: then its CA stays and ours is dropped.
        if (db.prepare('SELECT 1 FROM meta WHERE k = ?').get('organization')) return;
        db.prepare('INSERT INTO meta (k, v) VALUES (?, ?)').run('organization', options.organization);
        for (const role of ['root', 'intermediate', 'signer'] as const) {
          put.run(role, ca[role].certificate, seal(ca[role].privateKey, options.passphrase));
        }
      }).immediate();
    }
    const store = new SqliteStore(db, options.passphrase);
    store.#loadCa(); // checks the passphrase now, not at the first profile
    return store;
  }

  close(): void {
    this.#db.close();
  }

  #unseal(pem: string): KeyObject {
    try {
      return createPrivateKey({ key: pem, format: 'pem', passphrase: this.#passphrase });
    } catch {
      throw new errors.KeyPassphraseInvalid('sqlite');
    }
  }

  #loadCa(): CertificateAuthority {
    if (this.#ca) return this.#ca;
    const rows = this.#db.prepare('SELECT role, cert, key FROM ca').all() as { role: keyof CertificateAuthority; cert: Buffer; key: string }[];
    const ca = {} as CertificateAuthority;
    for (const r of rows) ca[r.role] = { certificate: r.cert, privateKey: this.#unseal(r.key) };
    this.#ca = ca;
    return ca;
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const where: string[] = [];
    const args: string[] = [];
    if (options.user) (where.push('user_lc = ?'), args.push(options.user.toLowerCase()));
    const rows = this.#db
      .prepare(`SELECT record FROM certs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`)
      .all(...args) as { record: string }[];
    return rows
      .map((r) => JSON.parse(r.record) as CertificateRecord)
      // A dual-use certificate serves its other purpose too (alsoPurpose, in the record).
      .filter((r) => !options.purpose || servesPurpose(r, options.purpose))
      .sort(compareRecords);
  }

  #row(serial: string): { cert: Buffer; key: string } {
    const row = this.#db.prepare('SELECT cert, key FROM certs WHERE serial = ?').get(norm(serial)) as { cert: Buffer; key: string } | undefined;
    if (!row) throw new errors.StoreEntryNotFound(serial, 'certificate');
    return row;
  }

  async getCertificate(serial: string): Promise<Buffer> {
    return this.#row(serial).cert;
  }

  async getIdentity(serial: string): Promise<Identity> {
    const row = this.#row(serial);
    return { certificate: row.cert, privateKey: this.#unseal(row.key) };
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    const identity = await issueCertificate(this.#loadCa().intermediate, {
      purpose: options.purpose,
      email: options.user,
      name: options.name,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
    });
    const info = await describeCertificate(identity.certificate);
    const record: CertificateRecord = {
      serial: norm(info.serial),
      user: options.user,
      purpose: options.purpose,
      source: 'issued',
      subject: info.subject,
      issuer: info.issuer,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      fingerprint: createHash('sha256').update(identity.certificate).digest('hex'),
      created: new Date().toISOString(),
      ...(info.commonName ? { name: info.commonName } : {}),
    };
    this.#insert(record, identity, []);
    return record;
  }

  #insert(record: CertificateRecord, identity: Identity, chain: Buffer[]): void {
    const sealed = seal(identity.privateKey, this.#passphrase);
    this.#db.transaction(() => {
      const next = (this.#db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM certs').get() as { n: number }).n;
      this.#db
        .prepare('INSERT INTO certs (serial, user_lc, purpose, seq, record, cert, key) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(record.serial, record.user.toLowerCase(), record.purpose, next, JSON.stringify(record), identity.certificate, sealed);
      const put = this.#db.prepare('INSERT OR IGNORE INTO chains (fingerprint, cert) VALUES (?, ?)');
      for (const der of chain) put.run(fingerprint(der), der);
    }).immediate();
  }

  /** Changes records in one transaction, reading each again inside it (another process may have changed it). */
  #update(serials: string[], change: (record: CertificateRecord) => boolean): CertificateRecord[] {
    return this.#db
      .transaction(() => {
        const changed: CertificateRecord[] = [];
        for (const serial of serials) {
          const row = this.#db.prepare('SELECT record FROM certs WHERE serial = ?').get(serial) as { record: string } | undefined;
          if (!row) continue;
          const record = JSON.parse(row.record) as CertificateRecord;
          if (!change(record)) continue;
          this.#db.prepare('UPDATE certs SET record = ? WHERE serial = ?').run(JSON.stringify(record), serial);
          changed.push(record);
        }
        return changed;
      })
      .immediate();
  }

  async findCertificate(serialOrFingerprint: string): Promise<CertificateRecord> {
    return findRecord(await this.listCertificates(), serialOrFingerprint);
  }

  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    const check = await checkImport(bundle, { user: options.user, purpose: options.purpose, now: new Date(), ...(options.strict ? { strict: true } : {}) });
    const leaf = check.info.fingerprint;
    const given = options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true });
    const chain = distinctIssuers(leaf, bundle.chain, given);
    const existing = (await this.listCertificates()).find((r) => r.fingerprint === leaf);
    if (existing) {
      const plan = planReimport(existing, options.purpose, chain, check.info.keyUsage);
      if (!plan.alsoPurpose && !plan.addChain.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
      const put = this.#db.prepare('INSERT OR IGNORE INTO chains (fingerprint, cert) VALUES (?, ?)');
      for (const der of plan.addChain) put.run(fingerprint(der), der);
      const [record] = this.#update([existing.serial], (r) => {
        if (plan.alsoPurpose) r.alsoPurpose = plan.alsoPurpose;
        if (plan.addChain.length) r.addedChain = [...new Set([...(r.addedChain ?? []), ...plan.addChain.map((d) => fingerprint(d))])];
        return true;
      });
      return { record: record ?? existing, duplicate: true, added: { ...(plan.alsoPurpose ? { purpose: plan.alsoPurpose } : {}), chain: plan.addChain.length }, warnings: check.warnings };
    }
    const record: CertificateRecord = {
      serial: norm(check.info.serial),
      user: check.email,
      purpose: options.purpose,
      source: 'imported',
      subject: check.info.subject,
      issuer: check.info.issuer,
      notBefore: check.info.notBefore.toISOString(),
      notAfter: check.info.notAfter.toISOString(),
      fingerprint: leaf,
      created: new Date().toISOString(),
      ...(check.info.commonName ? { name: check.info.commonName } : {}),
      ...(chain.length ? { chain: chain.map((d) => fingerprint(d)) } : {}),
    };
    try {
      this.#insert(record, { certificate: bundle.certificate, privateKey: bundle.privateKey }, chain);
    } catch (err) {
      // Another import of the same certificate got in first (another process, a concurrent call): import again, as a duplicate.
      if ((await this.listCertificates()).some((r) => r.fingerprint === leaf)) return this.importIdentity(bundle, options);
      throw err;
    }
    return { record, duplicate: false, warnings: check.warnings };
  }

  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    const s = norm(serial);
    const record = await this.findCertificate(s);
    if (record.serial !== s) throw new errors.StoreEntryNotFound(serial, 'certificate');
    if (record.source !== 'issued') throw new errors.CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
    const date = new Date().toISOString();
    const [changed] = this.#update([s], (r) => {
      if (r.revoked) return false;
      r.revoked = { date, reason };
      delete r.retired;
      return true;
    });
    const now = changed ?? (await this.findCertificate(s));
    return { serial: s, kind: 'user', ca: 'issuing', already: !changed, revoked: now.revoked!, record: now };
  }

  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    const records = await this.listCertificates({ user });
    if (!records.length) throw new errors.StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
    const date = new Date().toISOString();
    const out: RemoveUserResult = { revoked: [], retired: [] };
    this.#update(records.map((r) => r.serial), (r) => {
      const action = removalOf(r, options);
      if (action === 'revoke') {
        r.revoked = { date, reason: 'cessationOfOperation' };
        delete r.retired;
        out.revoked.push(r);
      } else if (action === 'retire') {
        r.retired = { date };
        out.retired.push(r);
      }
      return action !== undefined;
    });
    return out;
  }

  async createCrl(options: { nextUpdateMs?: number } = {}): Promise<Buffer> {
    const ca = this.#loadCa();
    const now = new Date();
    const entries = (await this.listCertificates())
      .filter((r) => r.revoked && r.source === 'issued')
      .map((r) => ({ serial: r.serial, date: new Date(r.revoked!.date), reason: r.revoked!.reason as RevocationReason }));
    // The CRL number comes from the database, so it grows across processes.
    const crlNumber = this.#db
      .transaction(() => {
        const n = Number((this.#db.prepare('SELECT v FROM meta WHERE k = ?').get('crl_number') as { v: string } | undefined)?.v ?? 0) + 1;
        this.#db.prepare('INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v').run('crl_number', String(n));
        return n;
      })
      .immediate();
    return createCrl({ issuerCertificate: ca.intermediate.certificate, issuerKey: ca.intermediate.privateKey, entries, thisUpdate: now, nextUpdate: new Date(now.getTime() + (options.nextUpdateMs ?? 7 * 86_400_000)), crlNumber });
  }

  async trustChain(): Promise<TrustChain> {
    const ca = this.#loadCa();
    return { roots: [ca.root.certificate], intermediates: [ca.intermediate.certificate] };
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    const record = await this.findCertificate(norm(serial));
    if (record.source === 'issued') {
      const ca = this.#loadCa();
      return [ca.intermediate.certificate, ca.root.certificate];
    }
    const get = this.#db.prepare('SELECT cert FROM chains WHERE fingerprint = ?');
    return [...(record.chain ?? []), ...(record.addedChain ?? [])].map((fp) => (get.get(fp) as { cert: Buffer }).cert);
  }

  async profileSigner(): Promise<Signer> {
    const ca = this.#loadCa();
    return keySigner({ key: ca.signer.privateKey, certificate: ca.signer.certificate, chain: [ca.intermediate.certificate] });
  }
}
