/**
 * index.json's format: a cache of every entry's facts, one line per user, parsed a user at a
 * time (see IndexFile), and what reads older versions of it.
 *
 * @module file-index-format
 */
import type { CertificateRecord } from '../store.js';
/** Entry directory names: serials as normalizeSerial writes them. */
export const SERIAL = /^[0-9a-f]{1,64}$/;

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
const COLUMNS = ['serial', 'user', 'purpose', 'source', 'subject', 'issuer', 'notBefore', 'notAfter', 'fingerprint', 'created', 'name', 'chain', 'keyOnDevice'] as const;
/** Rows written before keyOnDevice (a device's SCEP certificate) have one column less. */
const OLD_ROW = COLUMNS.length - 1;
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
  if (!Array.isArray(row) || (row.length !== COLUMNS.length && row.length !== OLD_ROW)) return undefined;
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
  if (row[12] === true) r.keyOnDevice = true;
  return r;
}

const HEADER_START = Buffer.from(`{"version":${VERSION},`);

/** A line of index.json that is not what we write. */
export class IndexDamaged extends Error {}

/**
 * index.json (version 3) opened without parsing its records: the header is read and
 * the user lines are found (a scan for tabs and newlines in the bytes), and a user's records are
 * parsed when they are taken. `dirKey` is only given when the header is whole and the file
 * holds exactly the user lines it announces.
 */
export class IndexFile {
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

