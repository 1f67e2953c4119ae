/**
 * What every store checks and writes the same way, whatever keeps its rows: the passphrase
 * rule, what issuing may refuse before a key is made, and the record of a new certificate.
 *
 * @module issuance
 */
import { assertEmail } from '../certs/email.js';
import type { CertificatePurpose } from '../certs/issue.js';
import { checkNameValue } from '../certs/name.js';
import { fingerprint, normalizeSerial } from '../certs/pem.js';
import { emailPermitted } from '../certs/publication.js';
import { describeCertificate } from '../certs/x509.js';
import { InputInvalid } from '../errors.js';
import type { CertificateRecord, IssueUserCertificateOptions } from './store.js';

/** The shortest passphrase a new store (or a new passphrase) takes: it is all that guards the keys. */
export const MIN_PASSPHRASE_LENGTH = 8;

/** @throws ERR_INPUT_INVALID for a passphrase shorter than {@link MIN_PASSPHRASE_LENGTH} characters */
export function checkNewPassphrase(passphrase: string): void {
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new InputInvalid('passphrase', `The passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters; it is all that protects the store's private keys`);
  }
}

/**
 * What issuing would refuse, before any key is made: the address, the CA's permitted domains,
 * the name. Returns the address.
 */
export function checkedIssuance(options: IssueUserCertificateOptions, domains: readonly string[]): string {
  const user = assertEmail(options.user);
  if (!emailPermitted(user, domains)) {
    throw new InputInvalid('user', `"${user}" is outside the email domains this CA may issue for (${domains.join(', ')})`);
  }
  // issueCertificate checks the name again; here it is checked before a key is made.
  checkNameValue('name', String(options.name ?? '').trim());
  return user;
}

/** The record of a certificate as it enters a store. */
export async function newRecord(
  certificate: Uint8Array,
  fields: { user: string; purpose: CertificatePurpose; source: CertificateRecord['source']; chain: readonly Uint8Array[]; now: Date },
): Promise<CertificateRecord> {
  const info = await describeCertificate(certificate);
  return {
    serial: normalizeSerial(info.serial),
    user: fields.user,
    purpose: fields.purpose,
    source: fields.source,
    subject: info.subject,
    issuer: info.issuer,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    fingerprint: info.fingerprint,
    created: fields.now.toISOString(),
    ...(info.commonName ? { name: info.commonName } : {}),
    ...(fields.chain.length ? { chain: fields.chain.map((c) => fingerprint(c)) } : {}),
  };
}
