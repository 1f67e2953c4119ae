/**
 * Creating a certificate authority: a root, an issuing intermediate, and the identity that
 * signs profiles.
 *
 * @module ca
 */
import { generateKeyPair, type KeyAlgorithm } from './keys.js';
import { createCertificate, EKU } from './x509.js';
import { validity, type Identity } from './issue.js';
import { InputInvalid } from '../errors.js';

/** A root, an issuing intermediate and the profile-signing identity. */
export interface CertificateAuthority {
  root: Identity;
  intermediate: Identity;
  /** Issued by the intermediate; signs profiles. */
  signer: Identity;
}

/** Options of {@link createCertificateAuthority}. */
export interface CreateCertificateAuthorityOptions {
  /** Organization; names the CA certificates. */
  organization: string;
  /** Default: `rsa-2048` (iOS documents RSA for profile signers). */
  keyAlgorithm?: KeyAlgorithm;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/**
 * Creates a root CA (20 years), an intermediate (10 years) and a profile-signing
 * identity (3 years). The three keys are generated in parallel.
 * @throws ERR_INPUT_INVALID for an empty organization
 */
export async function createCertificateAuthority(
  options: CreateCertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  const org = options.organization.trim();
  if (!org || org.length > 64 || /[\u0000-\u001f\u007f]/.test(org)) {
    throw new InputInvalid('organization', 'The organization must be 1 to 64 characters without control characters');
  }
  const now = (options.now ?? (() => new Date()))();
  const alg = options.keyAlgorithm ?? 'rsa-2048';
  const [rootKey, intKey, signerKey] = await Promise.all([
    generateKeyPair(alg),
    generateKeyPair(alg),
    generateKeyPair(alg),
  ]);
  const rootCert = await createCertificate({
    subject: [['CN', `${org} Root CA`], ['O', org]],
    ...validity(now, 20 * 365),
    publicKey: rootKey.publicKey,
    signingKey: rootKey.privateKey,
    ca: {},
    keyUsage: ['keyCertSign', 'cRLSign'],
  });
  const intCert = await createCertificate({
    subject: [['CN', `${org} S/MIME Issuing CA`], ['O', org]],
    issuerCertificate: rootCert,
    ...validity(now, 10 * 365),
    publicKey: intKey.publicKey,
    signingKey: rootKey.privateKey,
    ca: { pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
  });
  const signerCert = await createCertificate({
    subject: [['CN', `${org} Profile Signing`], ['O', org]],
    issuerCertificate: intCert,
    ...validity(now, 3 * 365),
    publicKey: signerKey.publicKey,
    signingKey: intKey.privateKey,
    keyUsage: ['digitalSignature'],
    // openssl cms -verify checks the S/MIME signing purpose: emailProtection satisfies it.
    extendedKeyUsage: [EKU.emailProtection, EKU.codeSigning],
  });
  return {
    root: { certificate: rootCert, privateKey: rootKey.privateKey },
    intermediate: { certificate: intCert, privateKey: intKey.privateKey },
    signer: { certificate: signerCert, privateKey: signerKey.privateKey },
  };
}
