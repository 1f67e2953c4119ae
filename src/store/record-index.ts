/**
 * The file store's record index: every entry's facts (entry.json, which never changes once
 * written) with the revocations applied, read incrementally and shared by concurrent callers.
 * A large store starts from index.json, a cache of those facts.
 */
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreEntryNotFound, StoreIOError } from '../errors.js';
import type { RevocationReason } from '../certs/crl.js';
import { atomicWrite, ioError } from './fs-util.js';
import { compareRecords, type CertificateRecord, type ListCertificatesOptions } from './store.js';

/** A line of revocations.json. */
export interface Revocation {
  serial: string;
  date: string;
  reason: RevocationReason | 'retired';
  kind: 'revoked' | 'retired';
}

/** Entry directory names: serials as normalizeSerial writes them. */
export const SERIAL = /^[0-9a-f]{1,64}$/;
/** Stores with more entries than this keep index.json. */
const INDEX_THRESHOLD = 256;
/** How long certs/ must have been unchanged for index.json to vouch for its listing. */
const STABLE_MS = 5000;

const revocationMap = (list: Revocation[]) => new Map(list.map((r) => [r.serial, r]));

/**
 * index.json, version 2: one array per record in this column order, with the few distinct
 * purposes, sources and issuers in a string table. Key names repeated 40,000 times made up a
 * quarter of version 1, and reading the file is the critical path of a batch's start-up.
 */
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
  const rows = records.map((r) => COLUMNS.map((c) => (INTERNED.has(c) ? intern(r[c] as string) : (r[c] ?? null))));
  return JSON.stringify({ version: 2, ...(dirKey ? { dirKey } : {}), columns: COLUMNS, strings, records: rows });
}

/**
 * @internal Records from the text of index.json (version 1 or 2). `dirKey` is only given
 * when every record passed the checks: otherwise the file is not what we wrote.
 */
export function parseIndex(text: string): { records: CertificateRecord[]; dirKey?: string } {
  const idx = JSON.parse(text) as { version: number; dirKey?: unknown; records: unknown[]; columns?: unknown; strings?: unknown };
  if (!Array.isArray(idx.records)) return { records: [] };
  let records: CertificateRecord[];
  if (idx.version === 1) {
    records = (idx.records as CertificateRecord[]).filter((r) => r && typeof r.serial === 'string' && typeof r.user === 'string' && SERIAL.test(r.serial));
  } else if (idx.version === 2 && JSON.stringify(idx.columns) === JSON.stringify(COLUMNS) && Array.isArray(idx.strings)) {
    const strings = idx.strings as unknown[];
    const rows = idx.records as unknown[][];
    records = [];
    // Plain indexed reads: destructuring each row cost more than JSON.parse saved.
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k];
      if (!Array.isArray(row) || row.length !== COLUMNS.length) continue;
      const serial = row[0];
      const user = row[1];
      const purpose = strings[row[2] as number];
      const source = strings[row[3] as number];
      const issuer = strings[row[5] as number];
      if (typeof serial !== 'string' || typeof user !== 'string' || typeof purpose !== 'string' || typeof source !== 'string' || typeof issuer !== 'string' || !SERIAL.test(serial)) continue;
      // The property order of entry.json, so that records from either source share a shape.
      const r = { serial, user, purpose, source, subject: row[4], issuer, notBefore: row[6], notAfter: row[7], fingerprint: row[8], created: row[9] } as CertificateRecord;
      if (row[10] !== null) r.name = row[10] as string;
      if (row[11] !== null) r.chain = row[11] as string[];
      records.push(r);
    }
  } else {
    return { records: [] };
  }
  // Version 1 never vouches for the listing: a reader lists certs/ and rewrites it as version 2.
  return idx.version === 2 && typeof idx.dirKey === 'string' && records.length === idx.records.length ? { records, dirKey: idx.dirKey } : { records };
}

export class RecordIndex {
  #records:
    | { revKey: string; dirKey: string; indexKey: string | undefined; records: Map<string, CertificateRecord>; byUser: Map<string, CertificateRecord[]> }
    | undefined;
  #refresh: Promise<Map<string, CertificateRecord>> | undefined;
  #checkedAt = 0;
  #known = new Map<string, CertificateRecord>();

  constructor(private readonly dir: string) {}

  /** After a write by this process: the next read looks at the disk again. */
  invalidate(): void {
    this.#checkedAt = 0;
  }

  async revocations(): Promise<Revocation[]> {
    const path = join(this.dir, 'revocations.json');
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(path, 'read', err);
    }
    try {
      const r = JSON.parse(text) as { entries: Revocation[] };
      if (!Array.isArray(r.entries)) throw new Error('entries');
      return r.entries;
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

  private parseRecord(text: string, serial: string, path: string, revocations: Map<string, Revocation>): CertificateRecord {
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

  async read(serial: string, revocations?: Map<string, Revocation>): Promise<CertificateRecord> {
    const path = join(this.dir, 'certs', serial, 'entry.json');
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreEntryNotFound(serial, 'certificate');
      throw ioError(path, 'read', err);
    }
    return this.parseRecord(text, serial, path, revocations ?? revocationMap(await this.revocations()));
  }

  private applyRevocation(r: CertificateRecord, revocations: Map<string, Revocation>): void {
    const rev = revocations.get(r.serial);
    if (!rev) return;
    if (rev.kind === 'revoked') r.revoked = { date: rev.date, reason: rev.reason };
    else r.retired = { date: rev.date };
  }

  /**
   * Every record, read incrementally: entries are never removed, so only new directory
   * names are read, and revocations are re-applied when revocations.json changes. A batch
   * over 10,000 users then reads each entry.json once, not once per user.
   */
  private allRecords(): Promise<Map<string, CertificateRecord>> {
    // Changes by other processes are picked up within a second; our own writes invalidate at once.
    if (this.#records && Date.now() - this.#checkedAt < 1000) return Promise.resolve(this.#records.records);
    // Single flight: concurrent callers (a batch worker has several rows in progress) share one refresh.
    this.#refresh ??= this.refreshRecords().finally(() => {
      this.#refresh = undefined;
      this.#checkedAt = Date.now();
    });
    return this.#refresh;
  }

  private async refreshRecords(): Promise<Map<string, CertificateRecord>> {
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
    const cache = (this.#records ??= { revKey: '', dirKey: '', indexKey: undefined, records: new Map(), byUser: new Map() });
    if (cache.dirKey === dirKey && cache.revKey === revKey) return cache.records;
    const revocations = revocationMap(await this.revocations());
    const add = (r: CertificateRecord) => {
      if (cache.records.has(r.serial)) return;
      cache.records.set(r.serial, r);
      const key = r.user.toLowerCase();
      const list = cache.byUser.get(key);
      if (list) list.push(r);
      else cache.byUser.set(key, [r]);
    };
    const readNames = async () => {
      try {
        return await fs.readdir(certsDir);
      } catch (err) {
        throw ioError(certsDir, 'read', err);
      }
    };
    let names: string[] = [];
    if (cache.records.size === 0) {
      // A large store starts from index.json, a cache of the entries' (immutable) facts.
      const index = this.readIndex();
      if (index.dirKey !== undefined && index.dirKey === dirKey) {
        // Written from this very state of certs/: every entry is in it, none is gone, and
        // listing 40,000 directory names would only confirm it.
        for (const r of index.records) {
          this.applyRevocation(r, revocations);
          add(r);
        }
        cache.indexKey = index.dirKey;
      } else {
        names = await readNames();
        if (names.length > INDEX_THRESHOLD) {
          const present = new Set(names);
          for (const r of index.records) {
            if (!present.has(r.serial)) continue;
            this.applyRevocation(r, revocations);
            add(r);
          }
        }
      }
      cache.revKey = revKey;
    } else if (cache.dirKey !== dirKey) {
      names = await readNames();
    }
    cache.dirKey = dirKey;
    if (cache.revKey !== revKey) {
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
      for (const r of batch) add(r);
    }
    const key = stable ? dirKey : undefined;
    if (cache.records.size > INDEX_THRESHOLD && (fresh.length || (key !== undefined && cache.indexKey !== key))) {
      cache.indexKey = key;
      await this.writeIndex([...cache.records.values()], key);
    }
    return cache.records;
  }

  /** index.json's records (none when it is missing or unreadable: it is only a cache), and the certs/ state it was written from. */
  private readIndex(): { records: CertificateRecord[]; dirKey?: string } {
    try {
      return parseIndex(readFileSync(join(this.dir, 'index.json'), 'utf8'));
    } catch {
      return { records: [] };
    }
  }

  /**
   * Rewrites index.json (best effort, atomic, not fsynced: a cache). Revocation state is not
   * part of it. `dirKey` is the certs/ state it was made from, when that state had been stable.
   */
  private async writeIndex(records: CertificateRecord[], dirKey: string | undefined): Promise<void> {
    await atomicWrite(join(this.dir, 'index.json'), formatIndex(records, dirKey), 0o644, false).catch(() => {});
  }

  /** Loads (or refreshes) every record now, so that later lookups find it in memory. */
  async load(): Promise<void> {
    await this.allRecords();
  }

  async list(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const user = options.user?.toLowerCase();
    const all = await this.allRecords();
    const out: CertificateRecord[] = [];
    for (const r of user ? (this.#records?.byUser.get(user) ?? []) : all.values()) {
      if ((!user || r.user.toLowerCase() === user) && (!options.purpose || r.purpose === options.purpose)) out.push({ ...r });
    }
    return out.sort(compareRecords);
  }
}
