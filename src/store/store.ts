/**
 * The certificate store contract: what the generator needs from wherever certificates and
 * keys live. The file store implements it; embedders may bring their own.
 *
 * @module store
 */
import type { KeyObject } from 'node:crypto';
import type { RevocationReason } from '../certs/crl.js';
import type { IdentityBundle } from '../certs/import.js';
import type { CertificatePurpose, Identity } from '../certs/issue.js';
import { fingerprint, type CertificateInput } from '../certs/pem.js';
import type { Signer } from '../cms/sign.js';
import { CertificateInvalid, InputInvalid, StoreEntryNotFound } from '../errors.js';
import type { LinkStore } from '../server/links.js';

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
  /**
   * The private key is on a device, not in the store: a certificate a device enrolled over
   * SCEP. It counts for listing, revocation, CRLs and OCSP, and is never shipped in a profile.
   */
  keyOnDevice?: true;
  /**
   * The serial of the device certificate this one renewed (SCEP RenewalReq). The renewed one is
   * revoked as `superseded` when this one is issued; revoking any certificate of such a chain for
   * `keyCompromise` revokes every certificate renewed from it.
   */
  renewedFrom?: string;
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

/** Options of {@link EnrollingStore.issueDeviceCertificate}. */
export interface IssueDeviceCertificateOptions {
  user: string;
  /** Subject CN. */
  name: string;
  /** The device's public key (RSA of 2048 bits or more); its private key never leaves the device. */
  publicKey: KeyObject;
  /** Default: 365. */
  days?: number;
  /**
   * The serial of the device certificate this one renews: recorded as `renewedFrom`, and that
   * certificate is revoked as `superseded` in the same step, so a renewal never leaves two live
   * certificates behind. Refused (ERR_CERT_INVALID) when it was revoked meanwhile.
   */
  renews?: string;
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
  /**
   * Optional: what {@link CertificateStore.issueCertificate} would refuse, checked without
   * issuing (the address, the name, any policy of the CA such as permitted domains): a dry run
   * of issue-batch asks it. Without it, the dry run checks the address and the name only.
   * @throws what issueCertificate throws for the same options, before any key is made
   */
  checkIssuance?(options: IssueUserCertificateOptions): Promise<void>;
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

/** Options of {@link LifecycleStore.importIdentity}. */
export interface ImportIdentityOptions {
  user: string;
  purpose: CertificatePurpose;
  /** Issuer certificates to keep with it (besides those in the bundle): PEM text, bytes, or an array of those. */
  chain?: CertificateInput;
  /** Refuse what would otherwise be a warning. */
  strict?: boolean;
}

/** What an import recorded, with its warnings. */
export interface ImportIdentityResult {
  record: CertificateRecord;
  /** True when the same certificate was already in the store (see `added` for what this import added to it). */
  duplicate: boolean;
  /**
   * For a duplicate: what the import added to the stored certificate, the other purpose of a
   * dual-use certificate and issuer certificates it did not have. Absent or empty: nothing changed.
   */
  added?: { purpose?: CertificatePurpose; chain: number };
  warnings: string[];
}

/** What {@link LifecycleStore.revokeCertificate} did. */
export interface RevokeResult {
  serial: string;
  kind: 'user' | 'signer' | 'responder' | 'scep-ra' | 'issuing-ca';
  /** The CA whose CRL lists it: `root`, `issuing`, `issuing-2`, ... */
  ca: string;
  /** True when it was revoked before: nothing changed. */
  already: boolean;
  revoked: { date: string; reason: string };
  /** The user certificate's record. */
  record?: CertificateRecord;
  /**
   * With reason keyCompromise: the certificates renewed from this one (a SCEP renewal chain),
   * revoked with it for keyCompromise, or whose earlier revocation (superseded) now says so.
   */
  renewals?: string[];
}

/** What removing a user did: serials revoked (our CA) and retired (outside CAs). */
export interface RemoveUserResult {
  revoked: CertificateRecord[];
  retired: CertificateRecord[];
}

/**
 * A store that takes part in the whole lifecycle, not only in generation: import, lookup,
 * revocation with a reason, unenrollment, CRLs and one-time links. The file store, the memory
 * store and the SQLite example implement it, and the contract suite (test/store/contract.test.ts)
 * checks every property of it against each. `generateProfile` needs only {@link CertificateStore}.
 */
export interface LifecycleStore extends CertificateStore {
  /**
   * A record by serial (any case, with or without colons), SHA-256 fingerprint, or a unique
   * serial prefix of 6 or more hex digits.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_INPUT_INVALID for an ambiguous prefix
   */
  findCertificate(serialOrFingerprint: string): Promise<CertificateRecord>;
  /**
   * Takes in an identity issued elsewhere, after `checkImport`. The same certificate again is a
   * no-op (`duplicate`), unless it adds the other purpose of a dual-use certificate or issuers
   * the entry lacks (`added`; see {@link planReimport}).
   */
  importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult>;
  /**
   * Revokes a certificate this store's CA issued; revoking it again changes nothing
   * (`already`). It leaves the profiles generated next and is on the next CRL.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID (`outside-ca`) for an outside CA's certificate
   */
  revokeCertificate(serial: string, reason?: RevocationReason): Promise<RevokeResult>;
  /**
   * Unenrolls a user: every certificate leaves generation; with `revoke`, those of this
   * store's CA are revoked (cessationOfOperation) and outside ones retired.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
   */
  removeUser(user: string, options?: { revoke?: boolean }): Promise<RemoveUserResult>;
  /** A DER CRL of the issuing CA listing every revocation, with a CRL number above the last one. */
  createCrl(options?: { nextUpdateMs?: number }): Promise<Buffer>;
  /** The store's one-time download links: a link is used exactly once, whichever server asks. */
  readonly links: LinkStore;
  /** The base URL its CRLs and OCSP are published under (CDP and AIA of what it issues), if any. */
  readonly pkiUrl: string | undefined;
}

/**
 * A store a SCEP server can stand in front of (see `createScepHandler`): it certifies keys
 * that devices make, keeps one-time enrollment challenges bound to users, and has an RA
 * identity that devices encrypt their requests to. The file store and the PostgreSQL store
 * implement it.
 */
export interface EnrollingStore extends LifecycleStore {
  /** Issues and records a signing certificate for a device's key (`keyOnDevice`, no key kept). */
  issueDeviceCertificate(options: IssueDeviceCertificateOptions): Promise<CertificateRecord>;
  /** One-time challenges, each bound to a user, kept as hashes; a ledger of their own, apart from {@link LifecycleStore.links}. */
  readonly challenges: LinkStore;
  /** The current RA identity (RSA, keyUsage digitalSignature and keyEncipherment), issued by the current issuing CA. */
  scepRa(): Promise<Identity & { serial: string }>;
  /** An RA identity the store issued, by serial, while it still holds its key (a request may be encrypted to the one before). */
  scepRaBySerial(serial: string): Promise<(Identity & { serial: string }) | undefined>;
  /** The URL of the store's SCEP server, written into SCEP profiles, if set. */
  readonly scepUrl: string | undefined;
  /** Sets (or clears) {@link EnrollingStore.scepUrl}. */
  setScepUrl(url: string | undefined): Promise<string | undefined>;
}

/**
 * The record `query` names among `records`: a serial (any case, colons allowed), a SHA-256
 * fingerprint, or a unique prefix of 6 or more hex digits of either, as git takes short
 * hashes. For stores implementing {@link LifecycleStore.findCertificate}.
 * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_INPUT_INVALID for a prefix of several
 * @example
 * const record = findRecord(await store.listCertificates(), '0a1b2c') // a serial or a fingerprint
 * console.log(record.user, record.purpose)
 */
export function findRecord(records: readonly CertificateRecord[], query: string): CertificateRecord {
  const q = String(query).toLowerCase().replace(/[:\s]/g, '');
  const serial = q.replace(/^(00)+(?=..)/, '');
  const exact = records.find((r) => r.serial === serial || r.fingerprint === q);
  if (exact) return structuredClone(exact);
  if (/^[0-9a-f]{6,63}$/.test(q)) {
    const hits = records.filter((r) => r.serial.startsWith(q) || r.fingerprint.startsWith(q));
    if (hits.length === 1) return structuredClone(hits[0]!);
    if (hits.length > 1) throw new InputInvalid('serial', `"${query}" is the start of ${hits.length} certificates (${hits.slice(0, 3).map((h) => h.serial).join(', ')}…); give more of it`);
  }
  throw new StoreEntryNotFound(query, 'certificate');
}

/**
 * What removing a user (`removeUser`) does to one of their records: `revoke` for one this
 * store's CA issued when `revoke` is asked, `retire` for any other still in use, nothing for
 * one already revoked or retired. For stores implementing {@link LifecycleStore.removeUser}.
 * @example
 * const how = removalOf(record) // 'revoke', 'retire', or undefined when nothing is left to do
 */
export function removalOf(record: CertificateRecord, options: { revoke?: boolean } = {}): 'revoke' | 'retire' | undefined {
  if (record.revoked) return undefined;
  if (options.revoke && record.source === 'issued') return 'revoke';
  return record.retired ? undefined : 'retire';
}

/**
 * What importing a stored certificate again adds to it: the other purpose, when the
 * certificate is dual-use (keyUsage with digitalSignature and keyEncipherment, or none), and
 * the issuers (DER) it does not have yet. For stores implementing
 * {@link LifecycleStore.importIdentity}.
 * @throws ERR_CERT_INVALID (`key-usage`) when the other purpose is asked of a certificate whose key usage forbids it
 * @example
 * // In your own store's importIdentity, when the certificate is already stored:
 * const info = await describeCertificate(certificateDer)
 * const { alsoPurpose, addChain } = planReimport(record, 'smime-encryption', [], info.keyUsage)
 */
export function planReimport(
  existing: CertificateRecord,
  purpose: CertificatePurpose,
  chain: readonly Buffer[],
  keyUsage: readonly string[],
): { alsoPurpose?: CertificatePurpose; addChain: Buffer[] } {
  const known = new Set([...(existing.chain ?? []), ...(existing.addedChain ?? [])]);
  const addChain = chain.filter((der, i) => !known.has(fingerprint(der)) && chain.findIndex((d) => d.equals(der)) === i);
  const other = existing.purpose !== purpose && existing.alsoPurpose !== purpose ? purpose : undefined;
  const needs = (p: CertificatePurpose) => (p === 'smime-signing' ? 'digitalSignature' : 'keyEncipherment');
  if (other && keyUsage.length && !(keyUsage.includes(needs(existing.purpose)) && keyUsage.includes(needs(other)))) {
    throw new CertificateInvalid(
      'key-usage',
      `${existing.serial} is in the store as ${existing.purpose} and is not a dual-use certificate: its key usage (${keyUsage.join(', ')}) lacks ${needs(other)}, which ${other} needs`,
    );
  }
  return { ...(other ? { alsoPurpose: other } : {}), addChain };
}

/**
 * The order {@link CertificateStore.listCertificates} returns: oldest first (notBefore, then
 * when the store took it in, then serial). Use it in your own store to keep that contract.
 * @example
 * records.sort(compareRecords)
 */
export function compareRecords(a: CertificateRecord, b: CertificateRecord): number {
  return byCodeUnit(a.notBefore, b.notBefore) || byCodeUnit(a.created, b.created) || byCodeUnit(a.serial, b.serial);
}

/**
 * ISO 8601 UTC timestamps and lowercase hex serials (normalizeSerial) sort the same by code
 * unit as by locale, and localeCompare goes through an ICU collator on every call: sorting
 * 1,000 records that way was a tenth of `cert list`'s CPU time.
 */
function byCodeUnit(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Whether these records (one user's) are those of a user removed from the store: there are
 * some, and every one was retired or revoked as `cessationOfOperation`, which is what
 * `removeUser` does. A user whose key was compromised (revoked as `keyCompromise`) is not
 * removed: they get a new certificate.
 * @example
 * const records = await store.listCertificates({ user: 'alice@example.com' })
 * if (isRemovedUser(records)) console.log('alice@example.com was removed')
 */
export function isRemovedUser(records: readonly CertificateRecord[]): boolean {
  return records.length > 0 && records.every((r) => r.retired || r.revoked?.reason === 'cessationOfOperation');
}

/**
 * Whether the record serves `purpose`: its own, or the other one of a dual-use certificate.
 * @example
 * const signing = records.filter((r) => servesPurpose(r, 'smime-signing'))
 */
export function servesPurpose(record: CertificateRecord, purpose: CertificatePurpose): boolean {
  return record.purpose === purpose || record.alsoPurpose === purpose;
}

/**
 * What getIdentity throws for a certificate whose key is on a device (SCEP): the store has no
 * key to give. For stores implementing {@link EnrollingStore}.
 * @example
 * if (record.keyOnDevice) throw keyOnDeviceError(record.serial)
 */
export function keyOnDeviceError(serial: string): CertificateInvalid {
  return new CertificateInvalid('key-on-device', `Certificate ${serial} was enrolled by a device over SCEP: its private key is on the device, not in the store`);
}

/**
 * `valid`, `expired`, `not-yet-valid` or `revoked` at `now`.
 * @example
 * const valid = records.filter((r) => statusOf(r, new Date()) === 'valid')
 */
export function statusOf(record: CertificateRecord, now: Date): CertificateStatus {
  if (record.revoked) return 'revoked';
  if (record.retired) return 'retired';
  if (now.getTime() > Date.parse(record.notAfter)) return 'expired';
  if (now.getTime() < Date.parse(record.notBefore)) return 'not-yet-valid';
  return 'valid';
}
