/**
 * The file store's record index: every entry's facts (entry.json, which never changes once
 * written) with the revocations applied, read incrementally and shared by concurrent callers.
 * A large store starts from index.json, a cache of those facts.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreEntryNotFound, StoreIOError } from '../errors.js';
import type { RevocationReason } from '../certs/crl.js';
import type { CertificatePurpose } from '../certs/issue.js';
import { atomicWrite, ioError } from './fs-util.js';
import { compareRecords, servesPurpose, type CertificateRecord, type ListCertificatesOptions } from './store.js';

/** A line of revocations.json. */
export interface Revocation {
  serial: string;
  date: string;
  reason: RevocationReason | 'retired';
  kind: 'revoked' | 'retired';
  /** The CA whose CRL lists it (`root`, `issuing`, `issuing-2`, ...). Absent: `issuing`. */
  ca?: string;
}

/**
 * An amendment of an entry, kept in revocations.json beside the revocations (entry.json never
 * changes): a certificate imported again for its other purpose (dual use), or with more of its
 * chain (`chain`: issuer fingerprints the entry lacks). Applied to records as `alsoPurpose`
 * and `addedChain`, which index.json never holds: it keeps the entries' facts only.
 */
export interface Amendment {
  serial: string;
  date: string;
  alsoPurpose?: CertificatePurpose;
  chain?: string[];
}

/** What revocations.json lays over the entries. */
interface Overlay {
  revocations: Map<string, Revocation>;
  amendments: Map<string, Amendment>;
}

/** Entry directory names: serials as normalizeSerial writes them. */
export const SERIAL = /^[0-9a-f]{1,64}$/;
/** Stores with more entries than this keep index.json. */
const INDEX_THRESHOLD = 256;
/** How long certs/ must have been unchanged for index.json to vouch for its listing. */
const STABLE_MS = 5000;

const overlayOf = (file: { entries: Revocation[]; amendments: Amendment[] }): Overlay => ({
  revocations: new Map(file.entries.map((r) => [r.serial, r])),
  amendments: new Map(file.amendments.map((a) => [a.serial, a])),
});

/**
 * index.json, version 3: a header line (JSON: version, dirKey, columns, the string table, and
 * how many user lines and records follow), then one line per user: the lowercased address as
 * a JSON string, a tab, and that user's records as a JSON array of rows in COLUMNS order, with
 * the few distinct purposes, sources and issuers as indexes into the string table.
 * A batch looks up one user at a time, so the file is opened without parsing its records: only
 * the line of each user asked for is parsed (see IndexFile). Reading and parsing all 40,000
 * records of version 2 took 0.4 s before the first profile of every batch.
 */
const VERSION = 3;
const COLUMNS = ['serial', 'user', 'purpose', 'source', 'subject', 'issuer', 'notBefore', 'notAfter', 'fingerprint', 'created', 'name', 'chain'] as const;
const INTERNED = new Set<string>(['purpose', 'source', 'issuer']);

/** @internal The text of index.json for `records` (revocation state left out). */
export function formatIndex(records: CertificateRecord[], dirKey: string | undefined): string {
  const strings: string[] = [];
  const at = new Map<string, number>();
  const intern = (v: string) => {
    let i = at.get(v);
    if (i === undefined) {
      i = strings.push(v) - 1;
      at.set(v, i);
    }
    return i;
  };
  const users = new Map<string, unknown[][]>();
  for (const r of records) {
    const row = COLUMNS.map((c) => (INTERNED.has(c) ? intern(r[c] as string) : (r[c] ?? null)));
    const key = r.user.toLowerCase();
    const list = users.get(key);
    if (list) list.push(row);
    else users.set(key, [row]);
  }
  const header = JSON.stringify({ version: VERSION, ...(dirKey ? { dirKey } : {}), columns: COLUMNS, strings, users: users.size, records: records.length });
  // JSON text never holds a raw tab or newline, so both can delimit.
  return [header, ...[...users].map(([user, rows]) => `${JSON.stringify(user)}\t${JSON.stringify(rows)}`)].join('\n') + '\n';
}

/** One row of index.json as a record, or undefined when the row is not what we write. */
function rowRecord(row: unknown, strings: unknown[], userKey?: string): CertificateRecord | undefined {
  if (!Array.isArray(row) || row.length !== COLUMNS.length) return undefined;
  const serial = row[0];
  const user = row[1];
  const purpose = strings[row[2] as number];
  const source = strings[row[3] as number];
  const issuer = strings[row[5] as number];
  if (typeof serial !== 'string' || typeof user !== 'string' || typeof purpose !== 'string' || typeof source !== 'string' || typeof issuer !== 'string' || !SERIAL.test(serial)) return undefined;
  if (userKey !== undefined && user.toLowerCase() !== userKey) return undefined;
  // The property order of entry.json, so that records from either source share a shape.
  const r = { serial, user, purpose, source, subject: row[4], issuer, notBefore: row[6], notAfter: row[7], fingerprint: row[8], created: row[9] } as CertificateRecord;
  if (row[10] !== null) r.name = row[10] as string;
  if (row[11] !== null) r.chain = row[11] as string[];
  return r;
}

const HEADER_START = Buffer.from(`{"version":${VERSION},`);

/** A line of index.json that is not what we write. */
class IndexDamaged extends Error {}

/**
 * index.json (version 3) opened without parsing its records: the header is read and
 * the user lines are found (a scan for tabs and newlines in the bytes), and a user's records are
 * parsed when they are taken. `dirKey` is only given when the header is whole and the file
 * holds exactly the user lines it announces.
 */
class IndexFile {
  readonly #bytes: Buffer;
  readonly #strings: unknown[];
  readonly #lines = new Map<string, { start: number; end: number }>();
  readonly #announced: number;
  #taken = 0;
  readonly dirKey: string | undefined;

  private constructor(bytes: Buffer, header: { dirKey?: unknown; strings: unknown[]; users: number; records: number }) {
    this.#bytes = bytes;
    this.#strings = header.strings;
    this.#announced = header.records;
    let pos = bytes.indexOf(0x0a) + 1;
    let whole = bytes.length > 0 && bytes[bytes.length - 1] === 0x0a;
    while (pos < bytes.length) {
      const end = bytes.indexOf(0x0a, pos);
      // The tab follows the short key: found by a loop here, not another call into the binding.
      let tab = pos;
      while (tab < end && bytes[tab] !== 0x09) tab++;
      if (end < 0 || tab >= end) {
        whole = false;
        break;
      }
      let key: unknown;
      // Addresses rarely need JSON escapes: a quoted key without a backslash is read as is.
      let plain = bytes[pos] === 0x22 && bytes[tab - 1] === 0x22 && tab - pos >= 2;
      for (let i = pos + 1; plain && i < tab - 1; i++) if (bytes[i] === 0x5c || bytes[i] === 0x22 || (bytes[i] as number) < 0x20) plain = false;
      if (plain) key = bytes.toString('utf8', pos + 1, tab - 1);
      else {
        try {
          key = JSON.parse(bytes.toString('utf8', pos, tab));
        } catch {
          key = undefined;
        }
      }
      if (typeof key !== 'string' || this.#lines.has(key)) {
        whole = false;
        break;
      }
      this.#lines.set(key, { start: tab + 1, end });
      pos = end + 1;
    }
    this.dirKey = whole && this.#lines.size === header.users && typeof header.dirKey === 'string' ? header.dirKey : undefined;
  }

  /** Opens the bytes of index.json; undefined when they are not version 3. */
  static open(bytes: Buffer): IndexFile | undefined {
    // formatIndex writes the version first: an older file (one line of 10 MB) is told apart
    // without parsing it.
    if (!bytes.subarray(0, HEADER_START.length).equals(HEADER_START)) return undefined;
    const nl = bytes.indexOf(0x0a);
    let header: { version?: unknown; dirKey?: unknown; columns?: unknown; strings?: unknown; users?: unknown; records?: unknown };
    try {
      header = JSON.parse(bytes.toString('utf8', 0, nl < 0 ? bytes.length : nl));
    } catch {
      return undefined;
    }
    if (
      header?.version !== VERSION ||
      JSON.stringify(header.columns) !== JSON.stringify(COLUMNS) ||
      !Array.isArray(header.strings) ||
      typeof header.users !== 'number' ||
      typeof header.records !== 'number'
    ) {
      return undefined;
    }
    return new IndexFile(bytes, { dirKey: header.dirKey, strings: header.strings, users: header.users, records: header.records });
  }

  /** User lines not taken yet. */
  get pending(): number {
    return this.#lines.size;
  }

  /** The records of a user (lowercased address): parsed now, and never given out again. @throws IndexDamaged */
  take(user: string): CertificateRecord[] {
    const line = this.#lines.get(user);
    if (!line) return [];
    const records = this.#parse(user, line);
    this.#lines.delete(user);
    this.#taken += records.length;
    return records;
  }

  /** Every record not taken yet. @throws IndexDamaged (and then nothing is taken) */
  rest(): CertificateRecord[] {
    const out: CertificateRecord[] = [];
    for (const [user, line] of this.#lines) out.push(...this.#parse(user, line));
    if (this.dirKey !== undefined && this.#taken + out.length !== this.#announced) {
      throw new IndexDamaged(`index.json announces ${this.#announced} records and holds ${this.#taken + out.length}`);
    }
    this.#taken += out.length;
    this.#lines.clear();
    return out;
  }

  /** Every record that passes the checks, skipping damaged lines and rows (store check, old readers). */
  salvage(): CertificateRecord[] {
    const out: CertificateRecord[] = [];
    for (const [user, line] of this.#lines) {
      for (const row of this.#rows(line) ?? []) {
        const r = rowRecord(row, this.#strings, user);
        if (r) out.push(r);
      }
    }
    this.#lines.clear();
    return out;
  }

  /** The JSON array of a user line, or undefined when it is not one. */
  #rows(line: { start: number; end: number }): unknown[] | undefined {
    try {
      const rows: unknown = JSON.parse(this.#bytes.toString('utf8', line.start, line.end));
      return Array.isArray(rows) ? rows : undefined;
    } catch {
      return undefined;
    }
  }

  #parse(user: string, line: { start: number; end: number }): CertificateRecord[] {
    const rows = this.#rows(line);
    if (!rows?.length) throw new IndexDamaged(`index.json: the line of ${user} is not an array of records`);
    const out: CertificateRecord[] = [];
    for (const row of rows) {
      const r = rowRecord(row, this.#strings, user);
      if (!r) throw new IndexDamaged(`index.json: a record of ${user} is damaged`);
      out.push(r);
    }
    return out;
  }
}

/**
 * @internal Records from the text of index.json (version 1, 2 or 3). `dirKey` is only given
 * for version 3 when every record passed the checks: otherwise the file is not what we wrote.
 */
export function parseIndex(text: string): { records: CertificateRecord[]; dirKey?: string } {
  const file = IndexFile.open(Buffer.from(text, 'utf8'));
  if (file) {
    const dirKey = file.dirKey;
    if (dirKey !== undefined) {
      try {
        return { records: file.rest(), dirKey };
      } catch {
        // A damaged line: what is left is salvaged below, and vouches for nothing.
      }
    }
    return { records: file.salvage() };
  }
  let idx: { version: number; records: unknown[]; columns?: unknown; strings?: unknown };
  try {
    idx = JSON.parse(text) as typeof idx;
  } catch {
    return { records: [] };
  }
  if (!idx || !Array.isArray(idx.records)) return { records: [] };
  // Versions 1 and 2 are read but never vouch for the listing: a reader lists certs/ and
  // rewrites the file as version 3.
  if (idx.version === 1) {
    return { records: (idx.records as CertificateRecord[]).filter((r) => r && typeof r.serial === 'string' && typeof r.user === 'string' && SERIAL.test(r.serial)) };
  }
  if (idx.version === 2 && JSON.stringify(idx.columns) === JSON.stringify(COLUMNS) && Array.isArray(idx.strings)) {
    const strings = idx.strings as unknown[];
    return { records: idx.records.map((row) => rowRecord(row, strings)).filter((r): r is CertificateRecord => r !== undefined) };
  }
  return { records: [] };
}

/** The records in memory, and what they were read from. */
interface RecordCache {
  revKey: string;
  dirKey: string;
  indexKey: string | undefined;
  records: Map<string, CertificateRecord>;
  byUser: Map<string, CertificateRecord[]>;
  /** The revocations and amendments applied to the records (and to those still to be taken from `lazy`). */
  revocations: Overlay;
  /**
   * index.json, when it vouched for this state of certs/: the users not asked for yet are still
   * unparsed lines in it. `records` then holds only those asked for.
   */
  lazy: IndexFile | undefined;
}

export class RecordIndex {
  #records: RecordCache | undefined;
  #refresh: Promise<RecordCache> | undefined;
  /** index.json had a damaged line: until the next restart it is only salvaged, never trusted. */
  #distrust = false;
  #checkedAt = 0;
  #known = new Map<string, CertificateRecord>();

  constructor(private readonly dir: string) {}

  /** After a write by this process: the next read looks at the disk again. */
  invalidate(): void {
    this.#checkedAt = 0;
  }

  /**
   * The next read lists certs/ whatever its timestamps say. Two entries renamed in within one
   * tick of the file system's clock leave the same mtime, so a decision taken under the lock
   * ("does this user hold one already?") must not trust the timestamps.
   */
  rescan(): void {
    this.#checkedAt = 0;
    if (this.#records) this.#records.dirKey = '';
  }

  async revocations(): Promise<Revocation[]> {
    return (await this.overlayFile()).entries;
  }

  /** revocations.json whole: the revocations (`entries`) and the amendments of entries. */
  async overlayFile(): Promise<{ entries: Revocation[]; amendments: Amendment[] }> {
    const path = join(this.dir, 'revocations.json');
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], amendments: [] };
      throw ioError(path, 'read', err);
    }
    try {
      const r = JSON.parse(text) as { entries: Revocation[]; amendments?: Amendment[] };
      if (!Array.isArray(r.entries) || (r.amendments !== undefined && !Array.isArray(r.amendments))) throw new Error('entries');
      return { entries: r.entries, amendments: r.amendments ?? [] };
    } catch (cause) {
      throw new StoreIOError(path, 'read', `"${path}" is damaged`, { cause });
    }
  }

  /** A record from the cache when it is there, else from disk. */
  async get(serial: string): Promise<CertificateRecord> {
    // Without the full index (a batch worker is handed each user's records), one entry is
    // enough; loading 40,000 entries in every worker would cost seconds and megabytes.
    const cached = this.#records ? (await this.allRecords()).get(serial) : this.#known.get(serial);
    if (cached) return { ...cached };
    const r = await this.read(serial);
    if (!this.#records) this.remember([r]);
    return r;
  }

  /**
   * @internal Records the caller already holds (a batch worker gets each user's records
   * from the main thread), so single lookups need no disk read and no full index.
   */
  remember(records: CertificateRecord[]): void {
    if (this.#known.size > 20_000) this.#known.clear();
    for (const r of records) this.#known.set(r.serial, r);
  }

  private parseRecord(text: string, serial: string, path: string, revocations: Overlay): CertificateRecord {
    let r: CertificateRecord;
    try {
      r = JSON.parse(text) as CertificateRecord;
      if (r.serial !== serial || typeof r.user !== 'string') throw new Error('mismatch');
    } catch (cause) {
      throw new StoreIOError(path, 'read', `The store entry "${path}" is damaged`, { cause });
    }
    this.applyRevocation(r, revocations);
    return r;
  }

  async read(serial: string, revocations?: Overlay): Promise<CertificateRecord> {
    const path = join(this.dir, 'certs', serial, 'entry.json');
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreEntryNotFound(serial, 'certificate');
      throw ioError(path, 'read', err);
    }
    return this.parseRecord(text, serial, path, revocations ?? overlayOf(await this.overlayFile()));
  }

  private applyRevocation(r: CertificateRecord, overlay: Overlay): void {
    const amendment = overlay.amendments.get(r.serial);
    if (amendment?.alsoPurpose && amendment.alsoPurpose !== r.purpose) r.alsoPurpose = amendment.alsoPurpose;
    if (amendment?.chain?.length) r.addedChain = [...amendment.chain];
    const rev = overlay.revocations.get(r.serial);
    if (!rev) return;
    if (rev.kind === 'revoked') r.revoked = { date: rev.date, reason: rev.reason };
    else r.retired = { date: rev.date };
  }

  /** Adds records to the cache (once each), with the revocations applied. */
  private add(cache: RecordCache, records: Iterable<CertificateRecord>): void {
    for (const r of records) {
      if (cache.records.has(r.serial)) continue;
      this.applyRevocation(r, cache.revocations);
      cache.records.set(r.serial, r);
      const key = r.user.toLowerCase();
      const list = cache.byUser.get(key);
      if (list) list.push(r);
      else cache.byUser.set(key, [r]);
    }
  }

  /**
   * Takes records out of the lazily read index.json: one user's, or all that are left. A damaged
   * line withdraws the index's word: the cache is dropped and rebuilt from a listing of certs/.
   */
  private async takeLazy(cache: RecordCache, user?: string, inRefresh = false): Promise<RecordCache> {
    const lazy = cache.lazy;
    if (!lazy) return cache;
    try {
      this.add(cache, user === undefined ? lazy.rest() : lazy.take(user));
      if (user === undefined || lazy.pending === 0) cache.lazy = undefined;
      return cache;
    } catch (err) {
      if (!(err instanceof IndexDamaged)) throw err;
      this.#distrust = true;
      // Inside a refresh, rebuild at once; outside, after any refresh in flight (which may
      // still hand out this cache), so that nobody is served from it again.
      if (inRefresh) {
        this.#records = undefined;
        return this.refreshRecords();
      }
      await this.#refresh?.catch(() => {});
      if (this.#records === cache) this.#records = undefined;
      this.#checkedAt = 0;
      return this.refreshed();
    }
  }

  /** The cache, refreshed when it may be stale; lazily read users stay unparsed. */
  private refreshed(): Promise<RecordCache> {
    // Changes by other processes are picked up within a second; our own writes invalidate at once.
    if (this.#records && Date.now() - this.#checkedAt < 1000) return Promise.resolve(this.#records);
    // Single flight: concurrent callers (a batch worker has several rows in progress) share one refresh.
    this.#refresh ??= this.refreshRecords().finally(() => {
      this.#refresh = undefined;
      this.#checkedAt = Date.now();
    });
    return this.#refresh;
  }

  /**
   * Every record, read incrementally: entries are never removed, so only new directory
   * names are read, and revocations are re-applied when revocations.json changes. A batch
   * over 10,000 users then reads each entry.json once, not once per user.
   */
  private async allRecords(): Promise<Map<string, CertificateRecord>> {
    return (await this.takeLazy(await this.refreshed())).records;
  }

  private async refreshRecords(): Promise<RecordCache> {
    const certsDir = join(this.dir, 'certs');
    const [dirStat, revStat] = await Promise.all([
      fs.stat(certsDir).catch((err: unknown) => {
        throw ioError(certsDir, 'read', err);
      }),
      fs.stat(join(this.dir, 'revocations.json')).catch(() => undefined),
    ]);
    const revKey = revStat ? `${revStat.mtimeMs}:${revStat.size}` : '';
    // An entry is added by renaming its directory in, which changes the directory's mtime.
    const dirKey = `${dirStat.mtimeMs}:${dirStat.ctimeMs}`;
    // Unchanged for a while: any later change gets another timestamp, even at coarse resolution.
    const stable = Date.now() - Math.max(dirStat.mtimeMs, dirStat.ctimeMs) > STABLE_MS;
    let cache = this.#records;
    if (cache && cache.dirKey === dirKey && cache.revKey === revKey) return cache;
    const revocations = overlayOf(await this.overlayFile());
    const readNames = async () => {
      try {
        return await fs.readdir(certsDir);
      } catch (err) {
        throw ioError(certsDir, 'read', err);
      }
    };
    let names: string[] = [];
    if (!cache) {
      cache = { revKey, dirKey, indexKey: undefined, records: new Map(), byUser: new Map(), revocations, lazy: undefined };
      this.#records = cache;
      // A large store starts from index.json, a cache of the entries' (immutable) facts.
      const { file, bytes } = this.readIndex();
      if (file?.dirKey !== undefined && file.dirKey === dirKey && !this.#distrust) {
        // Written from this very state of certs/: every entry is in it, none is gone, and
        // listing 40,000 directory names would only confirm it. Users are parsed when asked for.
        cache.lazy = file;
        cache.indexKey = file.dirKey;
      } else {
        names = await readNames();
        if (names.length > INDEX_THRESHOLD) {
          const present = new Set(names);
          // Versions 1 and 2 are read, never trusted: this listing rewrites them as version 3.
          const known = file ? file.salvage() : bytes ? parseIndex(bytes.toString('utf8')).records : [];
          this.add(cache, known.filter((r) => present.has(r.serial)));
        }
      }
    } else if (cache.dirKey !== dirKey) {
      // New entries: the listing is compared with every record, so the index is parsed in full first.
      cache = await this.takeLazy(cache, undefined, true);
      if (cache.dirKey === dirKey && cache.revKey === revKey) return cache;
      names = await readNames();
    }
    cache.dirKey = dirKey;
    if (cache.revKey !== revKey) {
      cache.revocations = revocations;
      for (const r of cache.records.values()) {
        delete r.revoked;
        delete r.retired;
        this.applyRevocation(r, revocations);
      }
      cache.revKey = revKey;
    }
    // Only the entries that are not in memory yet are read: one file instead of tens of thousands.
    const fresh = names.filter((n) => SERIAL.test(n) && !cache.records.has(n));
    // Synchronous reads in slices: thousands of small files read far faster without a
    // threadpool round trip each, and yielding between slices keeps the event loop alive.
    for (let i = 0; i < fresh.length; i += 512) {
      if (i) await new Promise((r) => setImmediate(r));
      const batch = fresh.slice(i, i + 512).map((n) => {
        const path = join(this.dir, 'certs', n, 'entry.json');
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (err) {
          throw ioError(path, 'read', err);
        }
        return this.parseRecord(text, n, path, revocations);
      });
      this.add(cache, batch);
    }
    const key = stable ? dirKey : undefined;
    if (!cache.lazy && cache.records.size > INDEX_THRESHOLD && (fresh.length || (key !== undefined && cache.indexKey !== key))) {
      cache.indexKey = key;
      await this.writeIndex([...cache.records.values()], key);
    }
    return cache;
  }

  /**
   * index.json: opened lazily when it is version 3, else its bytes (an older version, read once
   * more in full when certs/ is listed); nothing when it is missing or unreadable.
   */
  private readIndex(): { file?: IndexFile; bytes?: Buffer } {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(this.dir, 'index.json'));
    } catch {
      return {};
    }
    const file = IndexFile.open(bytes);
    return file ? { file } : { bytes };
  }

  /**
   * Rewrites index.json (best effort, atomic, not fsynced: a cache). Revocation state is not
   * part of it. `dirKey` is the certs/ state it was made from, when that state had been stable.
   */
  private async writeIndex(records: CertificateRecord[], dirKey: string | undefined): Promise<void> {
    await atomicWrite(join(this.dir, 'index.json'), formatIndex(records, dirKey), 0o644, false).catch(() => {});
  }

  /**
   * Reads the records now, so that later lookups find them in memory. A large store's
   * index.json, when it vouches for certs/, is only opened: each user's records are parsed
   * when first asked for.
   */
  async load(): Promise<void> {
    await this.refreshed();
  }

  async list(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const user = options.user?.toLowerCase();
    let source: Iterable<CertificateRecord>;
    if (user === undefined) source = (await this.allRecords()).values();
    else {
      // One user: from a lazily read index.json only that user's line is parsed.
      const cache = await this.takeLazy(await this.refreshed(), user);
      source = cache.byUser.get(user) ?? [];
    }
    const out: CertificateRecord[] = [];
    for (const r of source) {
      if ((!user || r.user.toLowerCase() === user) && (!options.purpose || servesPurpose(r, options.purpose))) out.push({ ...r });
    }
    return out.sort(compareRecords);
  }
}
