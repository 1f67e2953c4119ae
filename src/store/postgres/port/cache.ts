/**
 * The PostgreSQL port's PKCS#12 cache: `pkcs12_cache` rows exactly as pg-pkcs12.ts writes
 * them (the 2-byte password length, the password and the PKCS#12, sealed with the associated
 * data `pkcs12-cache|<key generation>|<serial>`), sealed and opened with the CA's SealingBox.
 * A profile reads all of its user's rows in one query.
 *
 * @module postgres-port-cache
 */
import type { CertificateRecord } from '../../store.js';
import type { BuiltPkcs12, PortCache, SealingBox } from '../../port/port.js';
import type { Database } from '../db.js';
import { sqlState } from './sql.js';

interface CacheRow {
  serial: string;
  sealed: Buffer;
  key_generation: number;
  fingerprint: string;
}

const aadOf = (serial: string, generation: number) => `pkcs12-cache|${generation}|${serial}`;

/** Sealed PKCS#12 files in `pkcs12_cache`, read a user at a time. */
export class PgPortCache implements PortCache {
  /** The last user's rows, read in one query for all of a profile's identities. */
  #last: { user: string; rows: Promise<Map<string, CacheRow>> } | undefined;

  constructor(private readonly db: Database) {}

  /** The record's PKCS#12 when its row is of the record's certificate (fingerprint) and the box's key generation, and opens. */
  async get(record: CertificateRecord, box: SealingBox): Promise<BuiltPkcs12 | undefined> {
    const user = record.user.toLowerCase();
    if (this.#last?.user !== user) {
      const rows = this.db
        .query<CacheRow>('SELECT p.serial, p.sealed, p.key_generation, c.fingerprint FROM pkcs12_cache p JOIN certificates c ON c.serial = p.serial WHERE p.user_lower = $1', [user])
        .then((r) => new Map(r.rows.map((x) => [x.serial, x])));
      const last = { user, rows };
      rows.catch(() => {
        if (this.#last === last) this.#last = undefined;
      });
      this.#last = last;
    }
    const row = (await this.#last.rows).get(record.serial);
    if (!row || row.key_generation !== box.generation || row.fingerprint !== record.fingerprint) return undefined;
    const plain = box.open(row.sealed, aadOf(record.serial, box.generation));
    if (!plain || plain.length <= 2) return undefined;
    const n = plain.readUInt16BE(0);
    if (plain.length < 2 + n) return undefined;
    return { password: plain.subarray(2, 2 + n).toString('utf8'), pkcs12: plain.subarray(2 + n) };
  }

  /** Writes (or replaces) the record's row; a certificate no longer in the store is left out. */
  async put(record: CertificateRecord, built: BuiltPkcs12, box: SealingBox): Promise<void> {
    const pw = Buffer.from(built.password, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(pw.length);
    const sealed = box.seal(Buffer.concat([len, pw, built.pkcs12]), aadOf(record.serial, box.generation));
    const user = record.user.toLowerCase();
    if (this.#last?.user === user) this.#last = undefined;
    try {
      await this.db.query(
        'INSERT INTO pkcs12_cache (serial, user_lower, key_generation, sealed) VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO UPDATE SET user_lower = EXCLUDED.user_lower, key_generation = EXCLUDED.key_generation, sealed = EXCLUDED.sealed',
        [record.serial, user, box.generation, sealed],
        'write',
      );
    } catch (err) {
      // 23503: the certificate row is gone (its foreign key); a cache entry is safe to lose.
      if (sqlState(err) !== '23503') throw err;
    }
  }
}
