/**
 * What every store checks and writes the same way, whatever keeps its rows: the passphrase
 * rule, what issuing may refuse before a key is made, and the record of a new certificate.
 *
 * @module issuance
 */
import { assertCertificateEmail } from '../certs/email.js';
import type { CertificatePurpose } from '../certs/issue.js';
import { checkNameValue } from '../certs/name.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates, type CertificateInput } from '../certs/pem.js';
import type { IdentityBundle } from '../certs/import.js';
import { checkEmailDomains, checkPkiUrl, emailPermitted, publicationFor } from '../certs/publication.js';
import { createCertificateAuthority, type CertificateAuthority } from '../certs/ca.js';
import { certifyPublicKey, issueCertificate, type Identity, type IssuedIdentity } from '../certs/issue.js';
import type { KeyAlgorithm } from '../certs/keys.js';
import { describeCertificate, EKU } from '../certs/x509.js';
import { CertificateInvalid, InputInvalid } from '../errors.js';
import type { CertificateRecord, IssueDeviceCertificateOptions, IssueUserCertificateOptions } from './store.js';

export { MIN_PASSPHRASE_LENGTH, checkNewPassphrase } from './passphrase.js';

/**
 * What issuing would refuse, before any key is made: the address, the CA's permitted domains,
 * the name. Returns the address.
 */
export function checkedIssuance(options: IssueUserCertificateOptions, domains: readonly string[]): string {
  const user = assertCertificateEmail(options.user);
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
  fields: { user: string; purpose: CertificatePurpose; source: CertificateRecord['source']; chain: readonly Uint8Array[]; now: Date; keyOnDevice?: boolean; renewedFrom?: string },
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
    ...(fields.keyOnDevice ? { keyOnDevice: true as const } : {}),
    ...(fields.renewedFrom ? { renewedFrom: fields.renewedFrom } : {}),
  };
}

/**
 * Every certificate renewed from `serial`, directly or through others (a SCEP renewal chain),
 * found by `renewedFrom`: what revoking `serial` for keyCompromise revokes with it.
 */
export function renewalsOf(records: readonly CertificateRecord[], serial: string): CertificateRecord[] {
  const out: CertificateRecord[] = [];
  const seen = new Set([serial]);
  for (let frontier = [serial]; frontier.length; ) {
    const next = records.filter((r) => r.renewedFrom !== undefined && frontier.includes(r.renewedFrom) && !seen.has(r.serial));
    for (const r of next) seen.add(r.serial);
    out.push(...next);
    frontier = next.map((r) => r.serial);
  }
  return out;
}

/**
 * What importing an outside signer checks (for `ca import-signer`): a leaf, valid now, allowed
 * digitalSignature; a missing emailProtection EKU is a warning. Returns its serial and the
 * issuers that came with it.
 * @throws ERR_CERT_INVALID for a CA certificate, one not valid now, or one without digitalSignature
 */
export async function checkSignerImport(
  bundle: IdentityBundle,
  options: { chain?: CertificateInput },
  now: Date,
): Promise<{ serial: string; chain: Buffer[]; warnings: string[] }> {
  const info = await describeCertificate(bundle.certificate);
  if (info.isCA) throw new CertificateInvalid('is-ca', 'A CA certificate cannot sign profiles; give the leaf');
  if (now > info.notAfter || now < info.notBefore) throw new CertificateInvalid('expired', `The certificate is valid ${info.notBefore.toISOString().slice(0, 10)} to ${info.notAfter.toISOString().slice(0, 10)}, not now`);
  if (info.keyUsage.length && !info.keyUsage.includes('digitalSignature')) throw new CertificateInvalid('key-usage', 'The certificate does not allow digitalSignature, which signing a profile needs');
  const warnings: string[] = [];
  const eku = info.extendedKeyUsage;
  if (eku.length && !eku.includes(EKU.emailProtection) && !eku.includes('2.5.29.37.0')) {
    warnings.push('No emailProtection EKU: iOS accepts the signer, but `openssl cms -verify` needs `-purpose any` for it');
  }
  const chain = distinctIssuers(info.fingerprint, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
  return { serial: normalizeSerial(info.serial), chain, warnings };
}

/**
 * The CA a new store starts with (root, issuing CA, profile signer), from init's options, with
 * the checked PKI URL and permitted domains it was made for.
 */
export async function newStoreCa(options: {
  organization: string;
  keyAlgorithm?: KeyAlgorithm;
  pkiUrl?: string;
  permittedEmailDomains?: string[];
  now: () => Date;
}): Promise<{ ca: CertificateAuthority; pkiUrl: string | undefined; domains: string[] }> {
  const pkiUrl = options.pkiUrl === undefined ? undefined : checkPkiUrl(options.pkiUrl);
  const domains = checkEmailDomains(options.permittedEmailDomains ?? []);
  const ca = await createCertificateAuthority({
    organization: options.organization,
    now: options.now,
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
    ...(pkiUrl ? { pkiUrl } : {}),
    ...(domains.length ? { permittedEmailDomains: domains } : {}),
  });
  return { ca, pkiUrl, domains };
}

/** A user certificate from issuing CA `generation`, with the store's publication URLs. */
export function issueFor(
  issuer: Identity,
  user: string,
  options: IssueUserCertificateOptions,
  generation: number,
  pkiUrl: string | undefined,
  now: () => Date,
): Promise<IssuedIdentity> {
  const publication = publicationFor(pkiUrl, generation);
  return issueCertificate(issuer, {
    purpose: options.purpose,
    email: user,
    name: options.name,
    now,
    ...(options.days !== undefined ? { days: options.days } : {}),
    ...(options.privateKey ? { privateKey: options.privateKey } : {}),
    ...(publication ? { publication } : {}),
  });
}

/** A signing certificate from issuing CA `generation` for a device's public key (SCEP), with the store's publication URLs. */
export function certifyFor(
  issuer: Identity,
  user: string,
  options: IssueDeviceCertificateOptions,
  generation: number,
  pkiUrl: string | undefined,
  now: () => Date,
): Promise<{ certificate: Buffer; clamped: boolean }> {
  const publication = publicationFor(pkiUrl, generation);
  return certifyPublicKey(issuer, {
    purpose: 'smime-signing',
    email: user,
    name: options.name,
    now,
    publicKey: options.publicKey,
    ...(options.days !== undefined ? { days: options.days } : {}),
    ...(publication ? { publication } : {}),
  });
}
