/**
 * The certificate store contract: what the generator needs from wherever certificates and
 * keys live. The file store implements it; embedders may bring their own.
 *
 * @module store
 */
import type { KeyObject } from 'node:crypto';
import type { CertificatePurpose, Identity } from '../certs/issue.js';
import type { Signer } from '../cms/sign.js';

/** Status of a certificate at a given moment. `retired`: taken out of use without revocation (outside CAs). */
export type CertificateStatus = 'valid' | 'expired' | 'revoked' | 'retired' | 'not-yet-valid';

/** What the store records about each user certificate; readable without the passphrase. */
export interface CertificateRecord {
  /** Lower-case hex. */
  serial: string;
  /** The address as written in the certificate. */
  user: string;
  purpose: CertificatePurpose;
  /** `issued` by this store's CA, or `imported` from outside. */
  source: 'issued' | 'imported';
  subject: string;
  issuer: string;
  /** The subject's common name, when it has one. */
  name?: string;
  /** ISO-8601. */
  notBefore: string;
  notAfter: string;
  /** SHA-256 of the DER, lower-case hex. */
  fingerprint: string;
  /** ISO-8601, when the store took it in. */
  created: string;
  revoked?: { date: string; reason: string };
  /** Taken out of generation without revocation: an outside CA's certificate of a removed user. */
  retired?: { date: string };
  /** SHA-256 fingerprints of the issuer certificates that came with an imported identity. */
  chain?: string[];
  /** Issuer fingerprints added by a later import of the same certificate with more of its chain. */
  addedChain?: string[];
  /**
   * A dual-use certificate (keyUsage for both signing and key encipherment), imported for its
   * other purpose too: it serves as a signing identity and in the encryption history.
   */
  alsoPurpose?: CertificatePurpose;
}

/** A record with its status computed at a moment. */
export interface CertificateListing extends CertificateRecord {
  status: CertificateStatus;
}

/** Filters of {@link CertificateStore.listCertificates}. */
export interface ListCertificatesOptions {
  /** Case-insensitive address. */
  user?: string;
  purpose?: CertificatePurpose;
}

/** Options of {@link CertificateStore.issueCertificate}. */
export interface IssueUserCertificateOptions {
  user: string;
  name: string;
  purpose: CertificatePurpose;
  /** Default: 365. */
  days?: number;
  /** Certify this key instead of generating one. */
  privateKey?: KeyObject;
}

/** The CA certificates a device needs to trust the user identities. */
export interface TrustChain {
  /** DER of each root. */
  roots: Buffer[];
  /** DER of each intermediate. */
  intermediates: Buffer[];
}

/** The contract every store implements. */
export interface CertificateStore {
  /** The organization the store was created for. */
  readonly organization: string;
  /** Every user certificate record, oldest first. */
  listCertificates(options?: ListCertificatesOptions): Promise<CertificateRecord[]>;
  /** DER of one user certificate. */
  getCertificate(serial: string): Promise<Buffer>;
  /** A certificate with its private key; needs the passphrase. */
  getIdentity(serial: string): Promise<Identity>;
  /** Issues and records a user certificate from the store's CA. */
  issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord>;
  /**
   * Optional: issues unless the user already holds a valid certificate of the purpose, with
   * the check and the write in one atomic step (the file store holds its lock), so that
   * concurrent batch runs issue one certificate per user and purpose. `issued` is false when
   * the held one is returned.
   */
  issueCertificateIfMissing?(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }>;
  /** The store CA's roots and intermediates, shipped in every profile. */
  trustChain(): Promise<TrustChain>;
  /** The issuers (DER, leaf-most first) of one stored certificate, as far as the store knows them. */
  issuerChain(serial: string): Promise<Buffer[]>;
  /** The identity that signs profiles. */
  profileSigner(): Promise<Signer>;
  /**
   * Optional: a PKCS#12 of the identity built once and kept (encrypted) by the store, so
   * batch runs skip the key derivation. `build` makes it when there is none.
   */
  cachedPkcs12?(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }>;
}

/**
 * The order {@link CertificateStore.listCertificates} returns: oldest first (notBefore, then
 * when the store took it in, then serial). Use it in your own store to keep that contract.
 * @example
 * records.sort(compareRecords)
 */
export function compareRecords(a: CertificateRecord, b: CertificateRecord): number {
  return a.notBefore.localeCompare(b.notBefore) || a.created.localeCompare(b.created) || a.serial.localeCompare(b.serial);
}

/**
 * Whether these records (one user's) are those of a user removed from the store: there are
 * some, and every one was retired or revoked as `cessationOfOperation`, which is what
 * `removeUser` does. A user whose key was compromised (revoked as `keyCompromise`) is not
 * removed: they get a new certificate.
 */
export function isRemovedUser(records: readonly CertificateRecord[]): boolean {
  return records.length > 0 && records.every((r) => r.retired || r.revoked?.reason === 'cessationOfOperation');
}

/** Whether the record serves `purpose`: its own, or the other one of a dual-use certificate. */
export function servesPurpose(record: CertificateRecord, purpose: CertificatePurpose): boolean {
  return record.purpose === purpose || record.alsoPurpose === purpose;
}

/** `valid`, `expired`, `not-yet-valid` or `revoked` at `now`. */
export function statusOf(record: CertificateRecord, now: Date): CertificateStatus {
  if (record.revoked) return 'revoked';
  if (record.retired) return 'retired';
  if (now.getTime() > Date.parse(record.notAfter)) return 'expired';
  if (now.getTime() < Date.parse(record.notBefore)) return 'not-yet-valid';
  return 'valid';
}
