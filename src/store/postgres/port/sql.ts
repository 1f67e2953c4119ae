/**
 * What the PostgreSQL port's parts share: the one query function they run (on the pool, or on
 * a transaction's client), the associated data each kind of sealed key is kept under in
 * today's schema, and rows of the tables turned into the port's shapes.
 *
 * @module postgres-port-sql
 */
import type pg from 'pg';
import type { LinkRecord } from '../../../server/links.js';
import type { Sealed } from '../../secret-box.js';
import type { CertificateRecord } from '../../store.js';
import type { Credential, CredentialRole, CrlState, LinkBookName, Revocation } from '../../port/port.js';
import { pgError } from '../db.js';

/**
 * One query: on the pool outside a transaction, on the transaction's client inside one. Every
 * failure is one StoreIOError naming the server (pgError), the server's error as its `cause`.
 */
export type Run = <R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[], op?: string) => Promise<pg.QueryResult<R>>;

/** A {@link Run} on one client (a transaction's), mapping its errors as the pool's are. */
export function clientRun(client: pg.ClientBase, where: string): Run {
  return async <R extends pg.QueryResultRow>(text: string, values: unknown[] = [], op = 'write') => {
    try {
      return await client.query<R>(text, values);
    } catch (err) {
      throw pgError(where, op, err);
    }
  };
}

/** The SQLSTATE of a server error, or of the one a StoreIOError wraps. */
export function sqlState(err: unknown): string | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** The associated data of a user certificate's key: the file store's key path, as today's PostgreSQL store uses it. */
export const certificateKeyAad = (serial: string) => `certs/${serial}/key`;

/**
 * The associated data of a new credential's key, as today's store chooses it: `ca/root.key`,
 * the issuing CA's key path of the file store (`ca/intermediate.key` for generation 1,
 * `ca/issuing-<g>.key` after), `signer/<serial>.key` (rotations and imports; init used
 * `signer/key`), and pg-ca.ts's `ocsp/<ca>-<serial>.key` and `scep/<ca>-<serial>.key`. A row
 * held already keeps its own (`key_aad`).
 */
export function credentialKeyAad(c: { serial: string; role: CredentialRole; ca?: string; generation?: number }): string {
  switch (c.role) {
    case 'root':
      return 'ca/root.key';
    case 'issuing':
      return (c.generation ?? 1) === 1 ? 'ca/intermediate.key' : `ca/issuing-${c.generation}.key`;
    case 'signer':
      return `signer/${c.serial}.key`;
    case 'responder':
      return `ocsp/${c.ca ?? 'issuing'}-${c.serial}.key`;
    case 'scep-ra':
      return `scep/${c.ca ?? 'issuing'}-${c.serial}.key`;
  }
}

/** The table of a book of one-time tokens. */
export const linkTable = (book: LinkBookName): 'links' | 'scep_challenges' => (book === 'challenges' ? 'scep_challenges' : 'links');

/** A row of `links` or `scep_challenges`. */
export interface LinkRow {
  token_hash: string;
  id: string;
  user_email: string;
  created: Date;
  expires: Date;
  uses_left: number;
  revoked: Date | null;
}

/** The link of a row. */
export function linkOf(r: LinkRow): LinkRecord {
  return {
    id: r.id,
    tokenHash: r.token_hash,
    user: r.user_email,
    created: r.created.toISOString(),
    expires: r.expires.toISOString(),
    usesLeft: r.uses_left,
    ...(r.revoked ? { revoked: r.revoked.toISOString() } : {}),
  };
}

/** A row of `ca_certs`. */
export interface CredentialRow {
  serial: string;
  role: string;
  ca: string | null;
  generation: number | null;
  current: boolean;
  certificate: Buffer;
  sealed_key: Sealed | null;
  key_aad: string;
}

/** Every `ca_certs` row: the root, issuing CAs by generation, signers, responders, RAs. */
export const CREDENTIAL_SELECT = `SELECT serial, role, ca, generation, current, certificate, sealed_key, key_aad FROM ca_certs
  ORDER BY CASE role WHEN 'root' THEN 0 WHEN 'issuing' THEN 1 WHEN 'signer' THEN 2 WHEN 'responder' THEN 3 ELSE 4 END, generation NULLS FIRST, created, serial`;

/**
 * The credentials of the rows. Today's store never clears `current` on an older issuing CA
 * (it takes the newest generation as the current one), so of the issuing rows marked current
 * only the newest generation is; a port-written store marks one alone, with the same result.
 */
export function credentialsOf(rows: readonly CredentialRow[]): Credential[] {
  const issuing = rows.filter((r) => r.role === 'issuing' && r.current).map((r) => r.generation ?? 1);
  const currentGeneration = issuing.length ? Math.max(...issuing) : undefined;
  return rows.map((r): Credential => {
    const generation = r.role === 'issuing' ? (r.generation ?? 1) : undefined;
    return {
      serial: r.serial,
      role: r.role as CredentialRole,
      ...(r.ca !== null ? { ca: r.ca } : {}),
      ...(generation !== undefined ? { generation } : {}),
      current: r.role === 'issuing' ? r.current && generation === currentGeneration : r.current,
      certificate: r.certificate,
      ...(r.sealed_key ? { key: { sealed: r.sealed_key, aad: r.key_aad } } : {}),
    };
  });
}

/** A row of `revocations`. */
export interface RevocationRow {
  serial: string;
  kind: string;
  ca: string | null;
  date: Date;
  reason: string;
}

/** The revocation line of a row (`ca` NULL: absent). */
export function revocationOf(r: RevocationRow): Revocation {
  return {
    serial: r.serial,
    date: r.date.toISOString(),
    reason: r.reason as Revocation['reason'],
    kind: r.kind as Revocation['kind'],
    ...(r.ca !== null ? { ca: r.ca } : {}),
  };
}

/** A row of `crls`. */
export interface CrlRow {
  number: string;
  this_update: Date | null;
  next_update: Date | null;
  digest: string | null;
  der: Buffer | null;
}

/** The CRL state of a row: `published` when the row holds a CRL with its times and digest. */
export function crlStateOf(r: CrlRow): CrlState {
  const state: CrlState = { number: Number(r.number) };
  if (r.der && r.this_update && r.next_update && r.digest !== null) {
    state.published = { thisUpdate: r.this_update.toISOString(), nextUpdate: r.next_update.toISOString(), digest: r.digest, der: r.der };
  }
  return state;
}

/** A record copied, so that a caller changing it changes nothing held. */
export const copyRecord = (r: CertificateRecord): CertificateRecord => structuredClone(r);
