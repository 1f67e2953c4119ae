/**
 * The file store's record index: every entry's facts (entry.json, which never changes once
 * written) with the revocations applied, read incrementally and shared by concurrent callers.
 * A large store starts from index.json, a cache of those facts (index-format.ts).
 *
 * @module file-record-index
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreEntryNotFound, StoreIOError } from '../../errors.js';
import { atomicWrite, ioError } from '../fs-util.js';
import { certificatesFrom } from '../../certs/pem.js';
import { compareRecords, servesPurpose, type CertificateRecord } from '../record.js';
import type { ListCertificatesOptions } from '../store.js';
import { formatIndex, IndexDamaged, IndexFile, parseIndex, SERIAL } from './index-format.js';
import type { Amendment, Overlay, Revocation } from './records.js';

export { SERIAL };
export type { Amendment, Revocation };

/** Stores with more entries than this keep index.json. */
const INDEX_THRESHOLD = 256;
/** How long certs/ must have been unchanged for index.json to vouch for its listing. */
const STABLE_MS = 5000;

const overlayOf = (file: { entries: Revocation[]; amendments: Amendment[] }): Overlay => ({
  revocations: new Map(file.entries.map((r) => [r.serial, r])),
  amendments: new Map(file.amendments.map((a) => [a.serial, a])),
});

/** The records in memory, and what they were read from. */
/**
 * An entry whose entry.json is missing or damaged. `user` is read from its certificate when
 * that is whole, so that only that user's lookups fail; without it, every user's do.
 */
export interface DamagedEntry {
  serial: string;
  path: string;
  user: string | undefined;
  error: StoreIOError;
}

/** The address in a certificate's subjectAltName, if its cert.pem is whole. */
function ownerOf(certPath: string): string | undefined {
  try {
    const der = certificatesFrom(readFileSync(certPath, 'utf8'))[0];
    if (!der) return undefined;
    return /(?:^|, )email:([^,\s]+)/.exec(new X509Certificate(der).subjectAltName ?? '')?.[1];
  } catch {
    return undefined;
  }
}

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
  /** Entries whose entry.json is missing or damaged, by serial: left out of `records`, each named when it is needed. */
  damaged: Map<string, DamagedEntry>;
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
    let listed = false;
    const readNames = async () => {
      try {
        listed = true;
        return await fs.readdir(certsDir);
      } catch (err) {
        throw ioError(certsDir, 'read', err);
      }
    };
    let names: string[] = [];
    if (!cache) {
      cache = { revKey, dirKey, indexKey: undefined, records: new Map(), byUser: new Map(), revocations, lazy: undefined, damaged: new Map() };
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
    // A damaged entry is read again on every listing (it may have been repaired) and forgotten once gone (quarantined).
    if (listed) cache.damaged.clear();
    // Synchronous reads in slices: thousands of small files read far faster without a
    // threadpool round trip each, and yielding between slices keeps the event loop alive.
    for (let i = 0; i < fresh.length; i += 512) {
      if (i) await new Promise((r) => setImmediate(r));
      const batch = fresh.slice(i, i + 512).flatMap((n) => {
        const path = join(this.dir, 'certs', n, 'entry.json');
        let text: string;
        try {
          text = readFileSync(path, 'utf8');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(path, 'read', err);
          cache.damaged.set(n, { serial: n, path, user: ownerOf(join(this.dir, 'certs', n, 'cert.pem')), error: new StoreIOError(path, 'read', `The store entry "${path}" is missing`, { cause: err }) });
          return [];
        }
        try {
          return [this.parseRecord(text, n, path, revocations)];
        } catch (err) {
          if (!(err instanceof StoreIOError)) throw err;
          cache.damaged.set(n, { serial: n, path, user: ownerOf(join(this.dir, 'certs', n, 'cert.pem')), error: err });
          return [];
        }
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

  /**
   * The records, and the damaged entries that may be among them: with `user`, those of that
   * user or of no known user (its certificate is damaged too).
   */
  async listReadable(options: ListCertificatesOptions = {}): Promise<{ records: CertificateRecord[]; damaged: DamagedEntry[] }> {
    const user = options.user?.toLowerCase();
    let source: Iterable<CertificateRecord>;
    let cache: RecordCache;
    if (user === undefined) {
      cache = await this.takeLazy(await this.refreshed());
      source = cache.records.values();
    } else {
      // One user: from a lazily read index.json only that user's line is parsed.
      cache = await this.takeLazy(await this.refreshed(), user);
      source = cache.byUser.get(user) ?? [];
    }
    const damaged = [...cache.damaged.values()].filter((d) => user === undefined || d.user === undefined || d.user.toLowerCase() === user);
    const out: CertificateRecord[] = [];
    for (const r of source) {
      if ((!user || r.user.toLowerCase() === user) && (!options.purpose || servesPurpose(r, options.purpose))) out.push({ ...r });
    }
    return { records: out.sort(compareRecords), damaged };
  }

  /** The records; a damaged entry that may be among them fails the list (a user's history must be whole). */
  async list(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const { records, damaged } = await this.listReadable(options);
    if (damaged[0]) throw damaged[0].error;
    return records;
  }
}
