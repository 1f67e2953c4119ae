/**
 * The PostgreSQL store's PKCS#12 cache: each identity's iOS-form PKCS#12 and its password,
 * sealed under the store key (the key generation and the serial are its associated data) in
 * `pkcs12_cache`, built when the identity enters the store; a profile reads all of its user's
 * rows in one query.
 *
 * @module postgres-pkcs12
 */
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { profilePkcs12 } from '../../certs/pkcs12.js';
import { sealBytes, unsealBytes } from '../secret-box.js';
import type { CertificateRecord } from '../store.js';
import type { Database } from './db.js';
import type { Keyring } from './rows.js';

/** The sealed PKCS#12 rows of a PostgreSQL store. */
export class PgPkcs12Cache {
  /** The last user's sealed PKCS#12 rows, read in one query for all of a profile's identities. */
  #last: { user: string; rows: Promise<Map<string, { sealed: Buffer; key_generation: number }>> } | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: Keyring,
    /** Records known without a query (the store's). */
    private readonly seen: Map<string, CertificateRecord>,
    private readonly identity: (serial: string) => Promise<Identity>,
    private readonly record: (serial: string) => Promise<CertificateRecord>,
  ) {}

  async prebuild(record: CertificateRecord, identity: Identity): Promise<void> {
    try {
      await this.put(record, profilePkcs12(identity, record));
    } catch {
      // built on demand later
    }
  }

  private aad(serial: string, generation: number): string {
    return `pkcs12-cache|${generation}|${serial}`;
  }

  async put(record: CertificateRecord, built: { password: string; pkcs12: Buffer }): Promise<void> {
    const gen = this.keys.meta.keyGeneration;
    const pw = Buffer.from(built.password, 'utf8');
    const len = Buffer.alloc(2);
    len.writeUInt16BE(pw.length);
    const box = sealBytes(this.keys.require('use private keys'), Buffer.concat([len, pw, built.pkcs12]), this.aad(record.serial, gen));
    await this.db.query(
      'INSERT INTO pkcs12_cache (serial, user_lower, key_generation, sealed) VALUES ($1, $2, $3, $4) ON CONFLICT (serial) DO UPDATE SET key_generation = EXCLUDED.key_generation, sealed = EXCLUDED.sealed',
      [record.serial, record.user.toLowerCase(), gen, box],
      'write',
    );
  }

  /** The identity's iOS-form PKCS#12, built once and kept sealed in `pkcs12_cache`. */
  async get(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    const s = normalizeSerial(serial);
    const key = this.keys.require('use private keys');
    const gen = this.keys.meta.keyGeneration;
    // One query per user: a profile asks for each of its user's identities in turn.
    const user = this.seen.get(s)?.user.toLowerCase();
    let row: { sealed: Buffer; key_generation: number } | undefined;
    if (user) {
      if (this.#last?.user !== user) {
        const rows = this.db.query<{ serial: string; sealed: Buffer; key_generation: number }>('SELECT serial, sealed, key_generation FROM pkcs12_cache WHERE user_lower = $1', [user]).then((r) => new Map(r.rows.map((x) => [x.serial, x])));
        rows.catch(() => (this.#last = undefined));
        this.#last = { user, rows };
      }
      row = (await this.#last.rows).get(s);
    } else {
      row = (await this.db.query<{ sealed: Buffer; key_generation: number }>('SELECT sealed, key_generation FROM pkcs12_cache WHERE serial = $1', [s])).rows[0];
    }
    const plain = row && row.key_generation === gen ? unsealBytes(key, row.sealed, this.aad(s, gen)) : undefined;
    if (plain && plain.length > 2) {
      const n = plain.readUInt16BE(0);
      return { password: plain.subarray(2, 2 + n).toString('utf8'), pkcs12: plain.subarray(2 + n) };
    }
    const built = build(await this.identity(s));
    this.#last = undefined;
    await this.put(this.seen.get(s) ?? (await this.record(s)), built).catch(() => {});
    return built;
  }
}
