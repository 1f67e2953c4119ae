/**
 * Bring your own store: a CertificateStore on SQLite (better-sqlite3 version 12).
 *
 * Everything the generator needs comes through the `CertificateStore` interface; this file uses
 * only profilesmith's public API. Private keys are kept as encrypted PKCS#8 (never in clear), and
 * every write is one SQLite transaction, so many processes may share the database.
 */
import Database from 'better-sqlite3';
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import {
  compareRecords,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  keySigner,
  errors,
  type CertificateAuthority,
  type CertificateRecord,
  type CertificateStore,
  type Identity,
  type IssueUserCertificateOptions,
  type ListCertificatesOptions,
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
`;

const seal = (key: KeyObject, passphrase: string) =>
  key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string;

const norm = (serial: string) => serial.replace(/[:\s]/g, '').toLowerCase().replace(/^0+(?=.)/, '');

export class SqliteStore implements CertificateStore {
  readonly organization: string;
  readonly #db: Database.Database;
  readonly #passphrase: string;
  #ca?: CertificateAuthority;

  private constructor(db: Database.Database, passphrase: string) {
    this.#db = db;
    this.#passphrase = passphrase;
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
    if (options.purpose) (where.push('purpose = ?'), args.push(options.purpose));
    const rows = this.#db
      .prepare(`SELECT record FROM certs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq`)
      .all(...args) as { record: string }[];
    return rows
      .map((r) => JSON.parse(r.record) as CertificateRecord)
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
    const sealed = seal(identity.privateKey, this.#passphrase);
    this.#db.transaction(() => {
      const next = (this.#db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 AS n FROM certs').get() as { n: number }).n;
      this.#db
        .prepare('INSERT INTO certs (serial, user_lc, purpose, seq, record, cert, key) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(record.serial, record.user.toLowerCase(), record.purpose, next, JSON.stringify(record), identity.certificate, sealed);
    }).immediate();
    return record;
  }

  async trustChain(): Promise<TrustChain> {
    const ca = this.#loadCa();
    return { roots: [ca.root.certificate], intermediates: [ca.intermediate.certificate] };
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    this.#row(serial);
    const ca = this.#loadCa();
    return [ca.intermediate.certificate, ca.root.certificate];
  }

  async profileSigner(): Promise<Signer> {
    const ca = this.#loadCa();
    return keySigner({ key: ca.signer.privateKey, certificate: ca.signer.certificate, chain: [ca.intermediate.certificate] });
  }
}
