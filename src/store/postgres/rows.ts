/**
 * What the PostgreSQL store's parts share: the meta row, certificate rows as records, and the
 * keyring (the derived store key, and the opening of sealed keys).
 *
 * @module postgres-rows
 */
import { createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import type { CertificatePurpose } from '../../certs/issue.js';
import { KeyPassphraseInvalid, StoreIOError } from '../../errors.js';
import { unseal, type Sealed } from '../secret-box.js';
import { opensCheck, type StoreSettings } from '../settings.js';
import type { CertificateRecord } from '../store.js';
import type { Database } from './db.js';

/** What `store_meta.meta` holds: the settings both stores keep (store.json's in the file store). */
export type PgStoreMeta = StoreSettings;

/** A certificate row with its revocation, as RECORD_SELECT reads it. */
export interface CertRow {
  serial: string;
  record: CertificateRecord;
  also_purpose: string | null;
  added_chain: string[] | null;
  rkind: string | null;
  rdate: Date | null;
  rreason: string | null;
}

export const RECORD_SELECT = `SELECT c.serial, c.record, c.also_purpose, c.added_chain, r.kind AS rkind, r.date AS rdate, r.reason AS rreason
  FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`;

/** The record of a row: its facts, what later imports added, and its revocation or retirement. */
export function toRecord(row: CertRow): CertificateRecord {
  const r: CertificateRecord = { ...row.record };
  if (row.also_purpose) r.alsoPurpose = row.also_purpose as CertificatePurpose;
  if (row.added_chain?.length) r.addedChain = row.added_chain;
  if (row.rkind === 'revoked') r.revoked = { date: row.rdate!.toISOString(), reason: row.rreason! };
  else if (row.rkind === 'retired') r.retired = { date: row.rdate!.toISOString() };
  return r;
}

export const exportKey = (k: KeyObject) => k.export({ format: 'der', type: 'pkcs8' });

/** SHA-256 of the entries a CRL lists, to tell whether the published one is still current. */
export const digestOf = (entries: { serial: string; date: Date; reason: string }[]) =>
  createHash('sha256').update(JSON.stringify(entries.map((e) => [e.serial, e.date.toISOString(), e.reason]))).digest('hex');

/** The store key (once the passphrase is given) and the meta row it goes with, shared by the store's parts. */
export class Keyring {
  /** A private field: not serialized by JSON.stringify, not shown by util.inspect. */
  #key: Buffer | undefined;

  constructor(
    public meta: PgStoreMeta,
    key: Buffer | undefined,
    private readonly where: string,
  ) {
    this.#key = key;
  }

  get key(): Buffer | undefined {
    return this.#key;
  }

  set key(key: Buffer | undefined) {
    this.#key = key;
  }

  /** True when `key` opens the check value. */
  opens(key: Buffer): boolean {
    return opensCheck(key, this.meta.check);
  }

  require(what: string): Buffer {
    if (!this.#key) throw new KeyPassphraseInvalid(this.where, `The store passphrase is needed to ${what}`);
    return this.#key;
  }

  /**
   * Opens a sealed private key; when it does not open because another node changed the
   * passphrase since this one opened the store, says so (rather than "damaged").
   */
  async openChecked(db: { query: Database['query'] }, sealed: Sealed, aad: string): Promise<KeyObject> {
    try {
      return this.open(sealed, aad);
    } catch (err) {
      if (!(err instanceof StoreIOError) || err.op !== 'decrypt') throw err;
      const g = (await db.query<{ g: number }>(`SELECT (meta->>'keyGeneration')::int AS g FROM store_meta`)).rows[0]?.g;
      if (g !== undefined && g !== this.meta.keyGeneration) throw new StoreIOError(this.where, 'read', 'The store passphrase was changed (on another node) since this one opened the store; open it again with the new one');
      throw err;
    }
  }

  /** Opens a sealed private key. @throws ERR_KEY_PASSPHRASE without the key; ERR_STORE_IO when it does not open */
  open(sealed: Sealed, aad: string): KeyObject {
    const der = unseal(this.require('use private keys'), sealed, aad);
    if (!der) throw new StoreIOError(this.where, 'decrypt', `The key "${aad}" in ${this.where} does not decrypt: it is damaged or was moved`);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }
}
