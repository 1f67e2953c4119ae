/**
 * Issuing certificates from the S/MIME templates, as an AD CS admin would define them.
 *
 * @module issue
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { InputInvalid, KeyUnsupported } from '../errors.js';
import { describeKey, generateKeyPair, type KeyAlgorithm } from './keys.js';
import { createCertificate, EKU, type KeyUsageName } from './x509.js';
import { assertEmail } from './email.js';

/** The certificate templates a user certificate is issued from. */
export type CertificatePurpose = 'smime-signing' | 'smime-encryption';

/** The certificate purposes: S/MIME signing and S/MIME encryption. */
export const PURPOSES: readonly CertificatePurpose[] = ['smime-signing', 'smime-encryption'];

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
}

/** Validity window starting one minute back, so a device with a slow clock accepts it. */
export function validity(now: Date, days: number): { notBefore: Date; notAfter: Date } {
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + days * 86_400_000) };
}

/**
 * Issues a user certificate from `issuer` for `options.purpose`.
 * @throws ERR_INPUT_INVALID for a bad address, name or validity; ERR_KEY_UNSUPPORTED for a weak key.
 */
export async function issueCertificate(issuer: Identity, options: IssueCertificateOptions): Promise<Identity> {
  const email = assertEmail(options.email);
  const name = options.name.trim();
  if (!name || name.length > 64 || /[\u0000-\u001f\u007f]/.test(name)) {
    throw new InputInvalid('name', 'The name must be 1 to 64 characters without control characters');
  }
  const days = options.days ?? 365;
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw new InputInvalid('days', `Validity must be 1 to 3650 days, got "${days}"`);
  }
  const alg = options.keyAlgorithm ?? 'rsa-2048';
  if (!alg.startsWith('rsa-')) throw new KeyUnsupported(alg, 'S/MIME certificates for iOS need RSA keys');
  const pair = options.privateKey
    ? { privateKey: options.privateKey, publicKey: options.publicKey ?? createPublicKey(options.privateKey) }
    : await generateKeyPair(alg);
  const kind = describeKey(pair.privateKey);
  if (!/^rsa-(\d+)$/.test(kind) || Number(kind.slice(4)) < 2048) {
    throw new KeyUnsupported(kind, `S/MIME needs RSA of 2048 bits or more, got ${kind}`);
  }
  const profile = PROFILES[options.purpose];
  const certificate = await createCertificate({
    subject: [['CN', name]],
    issuerCertificate: issuer.certificate,
    ...validity((options.now ?? (() => new Date()))(), days),
    publicKey: pair.publicKey,
    signingKey: issuer.privateKey,
    keyUsage: profile.keyUsage,
    extendedKeyUsage: profile.eku,
    email,
  });
  return { certificate, privateKey: pair.privateKey };
}
