/**
 * A certificate record, as every store keeps it, and the rules every store applies to records
 * the same way: status at a moment, order, lookup by serial or fingerprint, what removing a
 * user does, what a re-import adds.
 *
 * @module record
 */
import type { CertificatePurpose } from '../certs/issue.js';
import { fingerprint } from '../certs/pem.js';
import { CertificateInvalid, InputInvalid, StoreEntryNotFound } from '../errors.js';

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
