/**
 * Bring your own store: the CA on SQLite (better-sqlite3 version 12), in one file that uses
 * only profilesmith's public API.
 *
 * **A port, not a CA.** Everything a CA does (issuing, renewal, import, revocation and
 * unenrollment, CRLs and OCSP statuses, signer and issuing-CA rotation, passphrase change,
 * the SCEP RA and challenges, one-time links) is `CaStore`, written once over a small
 * `StoragePort`: a handful of reads, one kind of transaction, and the writes a transaction
 * makes. A vendor's database needs only the port, here `SqlitePort`; `SqliteStore.open` puts
 * a `CaStore` on it (and `initializeCa` writes a new CA into an empty one). Keys reach the
 * port already sealed (AES-256-GCM under the store key, a `Sealer` called with the associated
 * data the port chose): the port never sees a passphrase or a clear key. Check a port with
 * the port contract suite (test/helpers/port-contract.ts, see test/store/port-sqlite.test.ts).
 *
 * **Transactions.** `transaction(fn)` is `BEGIN IMMEDIATE`, `fn`, then `COMMIT` (`ROLLBACK`
 * when `fn` throws): SQLite's write lock excludes every other writer of the file, in this
 * process and in others (a busy timeout waits for them; WAL lets readers go on meanwhile).
 * better-sqlite3 is synchronous and `fn` is async, so a transaction spans several turns of
 * the event loop: transactions on the same file in this process wait in a promise chain
 * (one per file, so two ports of one process never block each other's event loop inside the
 * busy timeout), and run their reads and writes on the port's writing connection. Reads
 * outside a transaction use a second connection, which sees committed state only. Waiting for
 * another process's transaction is better-sqlite3's busy timeout: synchronous, so it holds up
 * this process's event loop (up to `busyTimeoutMs`, then SQLITE_BUSY); keep transactions short,
 * as the CA does (it signs and generates keys before one begins, and only reads and writes rows in it).
 *
 * **Tables** (a vendor may lay them out as they like; only the port reads them):
 * - `settings`: one JSON document (organization, key derivation, passphrase check, URLs);
 * - `certificates`: user certificates: the record's JSON (the facts that never change), the
 *   DER, the sealed key (JSON, with its AAD `certs/<serial>/key`; NULL when a device holds it);
 * - `amendments`: what a later import added to a certificate (`alsoPurpose`, chain);
 * - `credentials`: the store's own certificates (root, issuing CAs, signers, OCSP
 *   responders, SCEP RAs): role, CA, generation, the current flag, DER, sealed key
 *   (AAD `<role>/<serial>.key`);
 * - `chains`: issuer certificates of imported identities, by SHA-256;
 * - `revocations`: one line per revoked or retired serial, applied to records when read;
 * - `crl_states`: per CA, the last CRL number and the CRL last published;
 * - `links`: the one-time tokens (hashes only) of two books, `links` and `challenges`.
 */
import Database from 'better-sqlite3';
import { realpathSync } from 'node:fs';
import { CaStore, compareRecords, fingerprint, initializeCa } from 'profilesmith';
import type { Amendment, CertificateRecord, Credential, CrlState, LinkBookName, LinkRecord, PortReads, PortTransaction, RecordQuery, Revocation } from 'profilesmith';
import type { Sealed, SealedKey, Sealer, StoragePort, StoredCertificate, StoreSettings } from 'profilesmith';
import { CertificateInvalid, KeyPassphraseInvalid, StoreNotInitialized } from 'profilesmith/errors';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (serial TEXT PRIMARY KEY, user_lc TEXT NOT NULL, fingerprint TEXT NOT NULL, record TEXT NOT NULL, der BLOB NOT NULL, key TEXT);
CREATE INDEX IF NOT EXISTS certificates_user ON certificates (user_lc);
CREATE INDEX IF NOT EXISTS certificates_fingerprint ON certificates (fingerprint);
CREATE TABLE IF NOT EXISTS amendments (serial TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (serial TEXT PRIMARY KEY, role TEXT NOT NULL, ca TEXT, generation INTEGER, current INTEGER NOT NULL, der BLOB NOT NULL, key TEXT);
CREATE TABLE IF NOT EXISTS chains (fingerprint TEXT PRIMARY KEY, der BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revocations (serial TEXT PRIMARY KEY, date TEXT NOT NULL, reason TEXT NOT NULL, kind TEXT NOT NULL, ca TEXT);
CREATE TABLE IF NOT EXISTS crl_states (ca TEXT PRIMARY KEY, number INTEGER NOT NULL, published TEXT, der BLOB);
CREATE TABLE IF NOT EXISTS links (book TEXT NOT NULL, id TEXT NOT NULL, token_hash TEXT NOT NULL, created TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (book, id));
`;

type Row = Record<string, any>;
const json = (v: unknown) => JSON.stringify(v);
const keyOf = (text: string | null): { key?: SealedKey } => (text ? { key: JSON.parse(text) as SealedKey } : {});

/** The reads, on one connection: the port's reading one, or a transaction's writing one. */
class SqliteReads implements PortReads {
  constructor(protected readonly conn: () => Database.Database, readonly location: string) {}
  protected all = (sql: string, ...args: unknown[]) => this.conn().prepare(sql).all(...args) as Row[];
  protected get = (sql: string, ...args: unknown[]) => this.conn().prepare(sql).get(...args) as Row | undefined;

  async settings(): Promise<StoreSettings> {
    const row = this.get('SELECT doc FROM settings');
    if (!row) throw new StoreNotInitialized(this.location);
    return JSON.parse(row.doc) as StoreSettings;
  }

  async records(query: RecordQuery = {}): Promise<CertificateRecord[]> {
    const q = query as { user?: string; serial?: string; fingerprint?: string; prefix?: string };
    const [where, arg] =
      q.user !== undefined ? ['c.user_lc = @q', q.user.toLowerCase()]
      : q.serial !== undefined ? ['c.serial = @q', q.serial.toLowerCase()]
      : q.fingerprint !== undefined ? ['c.fingerprint = @q', q.fingerprint.toLowerCase()]
      : q.prefix !== undefined ? ['substr(c.serial, 1, length(@q)) = @q OR substr(c.fingerprint, 1, length(@q)) = @q', q.prefix.toLowerCase()]
      : ['1', undefined];
    const rows = this.all(`SELECT c.record, r.date, r.reason, r.kind, a.doc AS amended FROM certificates c
      LEFT JOIN revocations r ON r.serial = c.serial LEFT JOIN amendments a ON a.serial = c.serial WHERE ${where}`, ...(arg === undefined ? [] : [{ q: arg }]));
    const out = rows.map((row) => {
      const r = JSON.parse(row.record) as CertificateRecord;
      if (row.kind === 'revoked') r.revoked = { date: row.date, reason: row.reason };
      if (row.kind === 'retired') r.retired = { date: row.date };
      const am = row.amended ? (JSON.parse(row.amended) as Amendment) : undefined;
      if (am?.alsoPurpose) r.alsoPurpose = am.alsoPurpose;
      if (am?.chain?.length) r.addedChain = am.chain;
      return r;
    });
    out.sort(compareRecords);
    return q.prefix !== undefined ? out.slice(0, 4) : out; // a prefix finds at most a few
  }

  async certificate(serial: string): Promise<StoredCertificate | undefined> {
    const row = this.get('SELECT der, key FROM certificates WHERE serial = ?', serial.toLowerCase());
    return row && { der: row.der as Buffer, ...keyOf(row.key) };
  }

  async credentials(): Promise<Credential[]> {
    return this.all('SELECT * FROM credentials ORDER BY rowid').map((r) => ({
      serial: r.serial, role: r.role, ...(r.ca !== null ? { ca: r.ca } : {}), ...(r.generation !== null ? { generation: r.generation } : {}),
      current: r.current === 1, certificate: r.der as Buffer, ...keyOf(r.key),
    }));
  }

  async chains(fingerprints: readonly string[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const f of fingerprints) {
      const row = this.get('SELECT der FROM chains WHERE fingerprint = ?', f.toLowerCase());
      if (row) out.set(f, row.der as Buffer);
    }
    return out;
  }

  async revocations(): Promise<Revocation[]> {
    return this.all('SELECT * FROM revocations ORDER BY rowid').map((r) => ({ serial: r.serial, date: r.date, reason: r.reason, kind: r.kind, ...(r.ca !== null ? { ca: r.ca } : {}) }));
  }

  async crlState(ca: string): Promise<CrlState | undefined> {
    const row = this.get('SELECT number, published, der FROM crl_states WHERE ca = ?', ca);
    if (!row) return undefined;
    return { number: row.number, ...(row.published ? { published: { ...JSON.parse(row.published), der: row.der as Buffer } } : {}) };
  }

  async links(book: LinkBookName, tokenHash?: string): Promise<LinkRecord[]> {
    const rows = tokenHash === undefined
      ? this.all('SELECT doc FROM links WHERE book = ? ORDER BY created, rowid', book)
      : this.all('SELECT doc FROM links WHERE book = ? AND token_hash = ? ORDER BY created, rowid', book, tokenHash.toLowerCase());
    return rows.map((r) => JSON.parse(r.doc) as LinkRecord);
  }
}

/** One transaction's reads and writes, on the writing connection, and only while it lasts. */
class SqliteTransaction extends SqliteReads implements PortTransaction {
  protected run = (sql: string, ...args: unknown[]) => void this.conn().prepare(sql).run(...args);

  async putSettings(settings: StoreSettings): Promise<void> {
    this.run('INSERT INTO settings (id, doc) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc', json(settings));
  }

  async addCertificate(record: CertificateRecord, der: Buffer, key?: Sealer): Promise<void> {
    const serial = record.serial;
    if (this.get('SELECT 1 FROM certificates WHERE serial = ?', serial)) {
      throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
    }
    // What revocations and amendments add to a record is theirs: the record keeps the facts that never change.
    const { revoked: _r, retired: _t, alsoPurpose: _a, addedChain: _c, ...base } = record;
    const aad = `certs/${serial}/key`;
    this.run('INSERT INTO certificates (serial, user_lc, fingerprint, record, der, key) VALUES (?, ?, ?, ?, ?, ?)',
      serial, record.user.toLowerCase(), record.fingerprint, json(base), der, key ? json({ sealed: key(aad), aad }) : null);
  }

  async amend(amendment: Amendment): Promise<void> {
    this.run('INSERT INTO amendments (serial, doc) VALUES (?, ?) ON CONFLICT (serial) DO UPDATE SET doc = excluded.doc', amendment.serial, json(amendment));
  }

  async putChains(ders: readonly Buffer[]): Promise<void> {
    for (const der of ders) this.run('INSERT OR IGNORE INTO chains (fingerprint, der) VALUES (?, ?)', fingerprint(der), der);
  }

  async putCredential(credential: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<void> {
    const { serial, role, ca, generation, current, certificate } = credential;
    const aad = `${role}/${serial}.key`;
    const before = this.get('SELECT key FROM credentials WHERE serial = ?', serial)?.key as string | null | undefined;
    const sealed = key === null ? null : key === undefined ? (before ?? null) : json({ sealed: key(aad), aad });
    if (current) {
      // One current per role; per role and CA for responders and RAs.
      const perCa = role === 'responder' || role === 'scep-ra';
      this.run(`UPDATE credentials SET current = 0 WHERE role = ? AND serial <> ?${perCa ? ' AND ca IS ?' : ''}`, role, serial, ...(perCa ? [ca ?? null] : []));
    }
    this.run(`INSERT INTO credentials (serial, role, ca, generation, current, der, key) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO UPDATE SET
      role = excluded.role, ca = excluded.ca, generation = excluded.generation, current = excluded.current, der = excluded.der, key = excluded.key`,
      serial, role, ca ?? null, generation ?? null, current ? 1 : 0, certificate, sealed);
  }

  async putRevocation(r: Revocation): Promise<void> {
    this.run('INSERT OR REPLACE INTO revocations (serial, date, reason, kind, ca) VALUES (?, ?, ?, ?, ?)', r.serial, r.date, r.reason, r.kind, r.ca ?? null);
  }

  async putCrlState(ca: string, state: CrlState): Promise<void> {
    const p = state.published;
    this.run('INSERT OR REPLACE INTO crl_states (ca, number, published, der) VALUES (?, ?, ?, ?)', ca, state.number,
      p ? json({ thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate, digest: p.digest }) : null, p?.der ?? null);
  }

  async putLinks(book: LinkBookName, links: readonly LinkRecord[], remove: readonly string[] = []): Promise<void> {
    for (const l of links) {
      this.run(`INSERT INTO links (book, id, token_hash, created, doc) VALUES (?, ?, ?, ?, ?) ON CONFLICT (book, id) DO UPDATE SET
        token_hash = excluded.token_hash, created = excluded.created, doc = excluded.doc`, book, l.id, l.tokenHash, l.created, json(l));
    }
    for (const id of remove) this.run('DELETE FROM links WHERE book = ? AND id = ?', book, id);
  }

  async rekey(reseal: (key: SealedKey) => Sealed, settings: StoreSettings): Promise<number> {
    let count = 0;
    for (const table of ['certificates', 'credentials']) {
      for (const row of this.all(`SELECT serial, key FROM ${table} WHERE key IS NOT NULL`)) {
        const key = JSON.parse(row.key) as SealedKey;
        this.run(`UPDATE ${table} SET key = ? WHERE serial = ?`, json({ sealed: reseal(key), aad: key.aad }), row.serial);
        count++;
      }
    }
    await this.putSettings(settings);
    return count;
  }
}

/** The transaction queue of each file this process has open: ports of one file take turns. */
const queues = new Map<string, { tail: Promise<unknown> }>();

/** The writing connection (which makes the tables) and the reading one, both waiting up to `busyMs` for other processes. */
function connect(path: string, busyMs: number): { writer: Database.Database; reader: Database.Database } {
  const writer = new Database(path);
  try {
    writer.pragma(`busy_timeout = ${busyMs}`);
    writer.pragma('journal_mode = WAL');
    writer.exec(SCHEMA);
    const reader = new Database(path);
    reader.pragma(`busy_timeout = ${busyMs}`);
    reader.pragma('query_only = ON');
    return { writer, reader };
  } catch (err) {
    writer.close();
    throw err;
  }
}

/**
 * A {@link StoragePort} in a SQLite file (created with its tables when missing).
 * @example
 * const port = new SqlitePort('/var/lib/ca/certificates.sqlite')
 * await initializeCa(port, { organization: 'Example Corp', passphrase })
 * const store = await CaStore.open(port, { passphrase })
 */
export class SqlitePort extends SqliteReads implements StoragePort {
  readonly #writer: Database.Database;
  readonly #reader: Database.Database;
  readonly #queue: { tail: Promise<unknown> };

  /** @param options.busyTimeoutMs how long to wait for another process's transaction; default 10 s */
  constructor(path: string, options: { busyTimeoutMs?: number } = {}) {
    const { writer, reader } = connect(path, options.busyTimeoutMs ?? 10_000);
    super(() => reader, path);
    this.#writer = writer;
    this.#reader = reader;
    const file = realpathSync(path);
    this.#queue = queues.get(file) ?? { tail: Promise.resolve() };
    queues.set(file, this.#queue);
  }

  /**
   * Runs `fn` in `BEGIN IMMEDIATE` ... `COMMIT` (`ROLLBACK` when it throws), after the
   * transactions on this file begun before it in this process. Do not begin another
   * transaction on the same file inside `fn`: it would wait for this one, which waits for `fn`.
   */
  transaction<T>(fn: (tx: PortTransaction) => Promise<T>): Promise<T> {
    const run = this.#queue.tail.then(async () => {
      let open = true;
      const db = this.#writer;
      const tx = new SqliteTransaction(() => {
        if (!open) throw new Error('This transaction has ended');
        return db;
      }, this.location);
      db.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn(tx);
        db.exec('COMMIT');
        return out;
      } catch (err) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw err;
      } finally {
        open = false;
      }
    });
    this.#queue.tail = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.#reader.close();
    this.#writer.close();
  }
}

/** What {@link SqliteStore.open} takes. */
export interface SqliteStoreOptions {
  passphrase: string;
  /** Needed when the file holds no store yet: a new CA is made for it. */
  organization?: string;
  /** log2 of scrypt's N for a new store. Default: 17. Lower only in tests. */
  kdfCost?: number;
}

/** The CA on a SQLite file. */
export class SqliteStore {
  /**
   * Opens the store in a SQLite file; a new file (or one without a store) gets a new CA first.
   * The store's `close()` closes the database.
   * @throws ERR_STORE_NOT_INITIALIZED (no store, and no organization given); ERR_KEY_PASSPHRASE
   */
  static async open(path: string, options: SqliteStoreOptions): Promise<CaStore> {
    const port = new SqlitePort(path);
    try {
      const empty = await port.settings().then(() => false, (err: { code?: string }) => {
        if (err.code !== 'ERR_STORE_NOT_INITIALIZED') throw err;
        return true;
      });
      if (empty) {
        if (!options.organization) throw new StoreNotInitialized(path);
        const init = { organization: options.organization, passphrase: options.passphrase, ...(options.kdfCost ? { kdfCost: options.kdfCost } : {}) };
        // Another process may have made the store meanwhile: then it is opened, with the passphrase checked against it.
        await initializeCa(port, init).catch((err: { code?: string }) => {
          if (err.code !== 'ERR_STORE_EXISTS') throw err;
        });
      }
      return await CaStore.open(port, { passphrase: options.passphrase });
    } catch (err) {
      await port.close();
      // This store's own words: the path is the caller's to show.
      if ((err as { code?: string }).code === 'ERR_KEY_PASSPHRASE') throw new KeyPassphraseInvalid(path, 'The passphrase is wrong');
      throw err;
    }
  }
}
