/**
 * Issuing certificates from the S/MIME templates, as an AD CS admin would define them.
 *
 * @module issue
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import { InputInvalid, KeyUnsupported } from '../errors.js';
import { describeKey, generateKeyPair, type KeyAlgorithm } from './keys.js';
import { createCertificate, EKU, type KeyUsageName, type PublicationSpec } from './x509.js';
import { checkNameValue } from './name.js';
import { assertCertificateEmail } from './email.js';
import type { CertificatePurpose } from './purposes.js';

export { PURPOSES, type CertificatePurpose } from './purposes.js';

const PROFILES: Record<CertificatePurpose, { keyUsage: KeyUsageName[]; eku: string[] }> = {
  // RFC 8550 4.4.2: signing needs digitalSignature; RSA encryption needs keyEncipherment.
  'smime-signing': { keyUsage: ['digitalSignature'], eku: [EKU.emailProtection] },
  'smime-encryption': { keyUsage: ['keyEncipherment'], eku: [EKU.emailProtection] },
};

/** A certificate with its private key. */
export interface Identity {
  certificate: Buffer;
  privateKey: KeyObject;
}

/** A newly issued identity, and whether its validity was cut to the issuer's. */
export interface IssuedIdentity extends Identity {
  /** True when the requested validity ran past the issuing CA's notAfter and was clamped to it. */
  clamped: boolean;
}

/** Options of {@link issueCertificate}. */
export interface IssueCertificateOptions {
  purpose: CertificatePurpose;
  /** The address, written verbatim as the only rfc822Name (iOS matches it case-sensitively). */
  email: string;
  /** Subject CN. */
  name: string;
  /** Validity in days. Default: 365. */
  days?: number;
  /** Default: `rsa-2048`. S/MIME accepts RSA of 2048 bits or more. */
  keyAlgorithm?: KeyAlgorithm;
  /** A key to certify instead of generating one (imports, renewals with a kept key). */
  privateKey?: KeyObject;
  publicKey?: KeyObject;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** CRL distribution point and AIA URLs to write. */
  publication?: PublicationSpec;
}

/**
 * Validity window starting one minute back, so a device with a slow clock accepts it.
 * A certificate never outlives its issuer (RFC 5280 6.1.3 checks every certificate of the
 * path at the same time): a notAfter past `issuerNotAfter` is clamped to it, and `clamped` says so.
 */
export function validity(now: Date, days: number, issuerNotAfter?: Date): { notBefore: Date; notAfter: Date; clamped: boolean } {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  const wanted = notBefore.getTime() + days * 86_400_000;
  const limit = issuerNotAfter ? Math.floor(issuerNotAfter.getTime() / 1000) * 1000 : Infinity;
  return { notBefore, notAfter: new Date(Math.min(wanted, limit)), clamped: wanted > limit };
}

/**
 * Issues a user certificate from `issuer` for `options.purpose`.
 * @throws ERR_INPUT_INVALID for a bad address, name or validity; ERR_KEY_UNSUPPORTED for a weak key.
 * @example
 * const ca = await createCertificateAuthority({ organization: 'Example Corp' })
 * const alice = await issueCertificate(ca.intermediate, { purpose: 'smime-signing', email: 'alice@example.com', name: 'Alice' })
 * writeFileSync('alice.p12', toPkcs12(alice.certificate, alice.privateKey, { password }))
 */
export async function issueCertificate(issuer: Identity, options: IssueCertificateOptions): Promise<IssuedIdentity> {
  // Checked before a key is made (170 ms); certifyPublicKey checks again, for its own callers.
  checkRequest(options);
  const alg = options.keyAlgorithm ?? 'rsa-2048';
  if (!alg.startsWith('rsa-')) throw new KeyUnsupported(alg, 'S/MIME certificates for iOS need RSA keys');
  const pair = options.privateKey
    ? { privateKey: options.privateKey, publicKey: options.publicKey ?? createPublicKey(options.privateKey) }
    : await generateKeyPair(alg);
  const { certificate, clamped } = await certifyPublicKey(issuer, { ...options, publicKey: pair.publicKey });
  return { certificate, privateKey: pair.privateKey, clamped };
}

/** Options of {@link certifyPublicKey}: those of {@link issueCertificate}, with the key to certify. */
export interface CertifyPublicKeyOptions extends Omit<IssueCertificateOptions, 'privateKey' | 'keyAlgorithm'> {
  /** The key to certify; its private half stays wherever it is (a device that enrolled over SCEP). */
  publicKey: KeyObject;
}

/**
 * Issues a user certificate for a public key whose private key the issuer never sees (a
 * device's, sent in a certificate request), from the same template as {@link issueCertificate}.
 * @throws ERR_INPUT_INVALID for a bad address, name or validity; ERR_KEY_UNSUPPORTED for a key other than RSA of 2048 bits or more
 * @example
 * const { publicKey } = parseCertificateRequest(csrDer)
 * const { certificate } = await certifyPublicKey(issuingCa, { purpose: 'smime-signing', email: 'alice@example.com', name: 'Alice', publicKey })
 */
export async function certifyPublicKey(issuer: Identity, options: CertifyPublicKeyOptions): Promise<{ certificate: Buffer; clamped: boolean }> {
  const { email, name, days } = checkRequest(options);
  assertSmimeKey(options.publicKey);
  const profile = PROFILES[options.purpose];
  const window = validity((options.now ?? (() => new Date()))(), days, new Date(new X509Certificate(issuer.certificate).validTo));
  const certificate = await createCertificate({
    subject: [['CN', name]],
    issuerCertificate: issuer.certificate,
    notBefore: window.notBefore,
    notAfter: window.notAfter,
    publicKey: options.publicKey,
    signingKey: issuer.privateKey,
    keyUsage: profile.keyUsage,
    extendedKeyUsage: profile.eku,
    email,
    ...(options.publication ? { publication: options.publication } : {}),
  });
  return { certificate, clamped: window.clamped };
}

/**
 * What S/MIME certificates here are issued for: RSA of 2048 bits or more (a public or a private key).
 * @throws ERR_KEY_UNSUPPORTED
 * @internal
 */
export function assertSmimeKey(key: KeyObject): void {
  const kind = describeKey(key);
  if (!/^rsa-(\d+)$/.test(kind) || Number(kind.slice(4)) < 2048) {
    throw new KeyUnsupported(kind, `S/MIME needs RSA of 2048 bits or more, got ${kind}`);
  }
}

function checkRequest(options: { email: string; name: string; days?: number }): { email: string; name: string; days: number } {
  const email = assertCertificateEmail(options.email);
  // The CN is the text given, as a UTF8String: quotes, commas, `#` and all.
  const name = checkNameValue('name', options.name.trim());
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new InputInvalid('days', `Validity must be 1 to 3650 days, got "${days}"`);
  }
  return { email, name, days };
}
