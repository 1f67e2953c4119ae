/**
 * The PostgreSQL port's reads over today's schema, on the pool (outside a transaction) or on a
 * transaction's client: the settings row, certificate rows as records (RECORD_SELECT with its
 * revocation), the store's own certificates, chains, revocations, CRL states and links.
 *
 * @module postgres-port-reads
 */
import { StoreNotInitialized } from '../../../errors.js';
import type { LinkRecord } from '../../../server/links.js';
import type { Sealed } from '../../secret-box.js';
import { compareRecords, type CertificateRecord } from '../../store.js';
import type { Credential, CrlState, LinkBookName, PortReads, RecordQuery, Revocation, StoredCertificate, StoreSettings } from '../../port/port.js';
import { RECORD_SELECT, toRecord, type CertRow } from '../rows.js';
import {
  certificateKeyAad,
  copyRecord,
  CREDENTIAL_SELECT,
  credentialsOf,
  crlStateOf,
  linkOf,
  linkTable,
  revocationOf,
  sqlState,
  type CredentialRow,
  type CrlRow,
  type LinkRow,
  type RevocationRow,
  type Run,
} from './sql.js';

/**
 * What a batch told the port (outside transactions only): every record by user, read once by
 * `preload`, and the records a worker holds, by serial, from `remember`.
 */
export interface ReadHints {
  byUser?: Map<string, CertificateRecord[]>;
  seen: Map<string, CertificateRecord>;
}

const HEX = /^[0-9a-f]+$/;

/** A {@link RecordQuery} with each key readable (its members other than the first declare only their own). */
type AnyQuery = { user?: string | undefined; serial?: string | undefined; fingerprint?: string | undefined; prefix?: string | undefined };

/** The reads of the port, over one {@link Run}. */
export class PgPortReads implements PortReads {
  /** @internal */
  constructor(
    /** @internal */ protected readonly run: Run,
    /** The database's URL without its password, for messages. */
    readonly location: string,
    /** Set outside transactions only: a transaction reads the tables. */
    protected readonly hints?: ReadHints,
  ) {}

  /** The settings document (`store_meta.meta`). @throws ERR_STORE_NOT_INITIALIZED without a schema or a settings row */
  async settings(): Promise<StoreSettings> {
    try {
      const meta = (await this.run<{ meta: StoreSettings }>('SELECT meta FROM store_meta', [], 'read')).rows[0]?.meta;
      if (!meta) throw new StoreNotInitialized(this.location);
      return meta;
    } catch (err) {
      // 42P01: no such table, a database without the schema.
      if (sqlState(err) === '42P01') throw new StoreNotInitialized(this.location);
      throw err;
    }
  }

  /** Certificate records with revocations and amendments applied, sorted by compareRecords. */
  async records(q: RecordQuery = {}): Promise<CertificateRecord[]> {
    const query: AnyQuery = q;
    const hinted = this.hinted(query);
    if (hinted) return hinted.sort(compareRecords);
    let rows: CertRow[];
    if (query.user !== undefined) {
      rows = (await this.run<CertRow>(`${RECORD_SELECT} WHERE c.user_lower = $1 ORDER BY c.seq`, [query.user.toLowerCase()], 'read')).rows;
    } else if (query.serial !== undefined) {
      rows = (await this.run<CertRow>(`${RECORD_SELECT} WHERE c.serial = $1`, [query.serial], 'read')).rows;
    } else if (query.fingerprint !== undefined) {
      rows = (await this.run<CertRow>(`${RECORD_SELECT} WHERE c.fingerprint = $1`, [query.fingerprint], 'read')).rows;
    } else if (query.prefix !== undefined) {
      // Hex digits only, so nothing in it is a LIKE wildcard.
      if (!HEX.test(query.prefix)) return [];
      rows = (await this.run<CertRow>(`${RECORD_SELECT} WHERE c.serial LIKE $1 OR c.fingerprint LIKE $1 ORDER BY c.seq LIMIT 4`, [`${query.prefix}%`], 'read')).rows;
    } else {
      rows = (await this.run<CertRow>(`${RECORD_SELECT} ORDER BY c.seq`, [], 'read')).rows;
    }
    return rows.map(toRecord).sort(compareRecords);
  }

  /** What the batch's hints answer without a query: a user's records after `preload`, a serial `remember`ed. */
  private hinted(query: AnyQuery): CertificateRecord[] | undefined {
    if (!this.hints) return undefined;
    if (query.user !== undefined && this.hints.byUser) return (this.hints.byUser.get(query.user.toLowerCase()) ?? []).map(copyRecord);
    if (query.serial !== undefined) {
      const seen = this.hints.seen.get(query.serial);
      if (seen) return [copyRecord(seen)];
    }
    return undefined;
  }

  /** A user certificate's DER and its sealed key (associated data `certs/<serial>/key`). */
  async certificate(serial: string): Promise<StoredCertificate | undefined> {
    const row = (await this.run<{ certificate: Buffer; sealed_key: Sealed | null }>('SELECT certificate, sealed_key FROM certificates WHERE serial = $1', [serial], 'read')).rows[0];
    if (!row) return undefined;
    return { der: row.certificate, ...(row.sealed_key ? { key: { sealed: row.sealed_key, aad: certificateKeyAad(serial) } } : {}) };
  }

  /** Every row of `ca_certs`, each key with the associated data it was sealed with (`key_aad`). */
  async credentials(): Promise<Credential[]> {
    return credentialsOf((await this.run<CredentialRow>(CREDENTIAL_SELECT, [], 'read')).rows);
  }

  /** Issuer certificates of `chains` by SHA-256. */
  async chains(fingerprints: readonly string[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    if (!fingerprints.length) return out;
    const r = await this.run<{ fingerprint: string; certificate: Buffer }>('SELECT fingerprint, certificate FROM chains WHERE fingerprint = ANY($1::text[])', [[...new Set(fingerprints)]], 'read');
    for (const row of r.rows) out.set(row.fingerprint, row.certificate);
    return out;
  }

  /** Every line of `revocations`, in the order they were first written. */
  async revocations(): Promise<Revocation[]> {
    return (await this.run<RevocationRow>('SELECT serial, kind, ca, date, reason FROM revocations ORDER BY seq', [], 'read')).rows.map(revocationOf);
  }

  /** The `crls` row of a CA. */
  async crlState(ca: string): Promise<CrlState | undefined> {
    const row = (await this.run<CrlRow>('SELECT number::text AS number, this_update, next_update, digest, der FROM crls WHERE ca = $1', [ca], 'read')).rows[0];
    return row ? crlStateOf(row) : undefined;
  }

  /** The links of `links` or `scep_challenges`, oldest first. */
  async links(book: LinkBookName, tokenHash?: string): Promise<LinkRecord[]> {
    const table = linkTable(book);
    const r = tokenHash === undefined
      ? await this.run<LinkRow>(`SELECT * FROM ${table} ORDER BY seq`, [], 'read')
      : await this.run<LinkRow>(`SELECT * FROM ${table} WHERE token_hash = $1`, [tokenHash], 'read');
    return r.rows.map(linkOf);
  }
}
