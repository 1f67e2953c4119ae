/**
 * Creating a certificate authority: a root, an issuing intermediate, and the identity that
 * signs profiles; and the CA certificates a store issues later (a new issuing CA, a new
 * profile signer, delegated OCSP responders).
 *
 * @module ca
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import { generateKeyPair, type KeyAlgorithm } from './keys.js';
import { createCertificate, EKU } from './x509.js';
import { validity, type Identity } from './issue.js';
import { caNames, checkOrganization, publicationFor, type CaRef } from './publication.js';

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
  /** PKI base URL: the issuing CA and the signer then carry CRL distribution points and AIA. */
  pkiUrl?: string;
  /** Permitted rfc822Name subtrees, as a critical nameConstraints extension of the issuing CA. */
  permittedEmailDomains?: string[];
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/** Options of the CA certificates issued after init. */
export interface CaCertificateOptions {
  /** Organization; names the certificate. */
  organization: string;
  /** Default: `rsa-2048`. */
  keyAlgorithm?: KeyAlgorithm;
  /** PKI base URL for the CRL distribution point and AIA. */
  pkiUrl?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** A key pair generated beforehand (init generates its three keys in parallel). */
  key?: { publicKey: KeyObject; privateKey: KeyObject };
}

const notAfterOf = (der: Buffer) => new Date(new X509Certificate(der).validTo);

/**
 * An issuing CA (10 years, at most to the root's notAfter) of generation `generation`,
 * signed by `root`.
 */
export async function createIssuingCa(
  root: Identity,
  generation: number,
  options: CaCertificateOptions & { permittedEmailDomains?: string[] },
): Promise<Identity> {
  const org = checkOrganization(options.organization);
  const key = options.key ?? (await generateKeyPair(options.keyAlgorithm ?? 'rsa-2048'));
  const publication = publicationFor(options.pkiUrl, 'root');
  const certificate = await createCertificate({
    subject: [['CN', caNames.issuing(org, generation)], ['O', org]],
    issuerCertificate: root.certificate,
    ...validity((options.now ?? (() => new Date()))(), 10 * 365, notAfterOf(root.certificate)),
    publicKey: key.publicKey,
    signingKey: root.privateKey,
    ca: { pathLength: 0 },
    keyUsage: ['keyCertSign', 'cRLSign'],
    ...(publication ? { publication } : {}),
    ...(options.permittedEmailDomains?.length ? { permittedEmailDomains: options.permittedEmailDomains } : {}),
  });
  return { certificate, privateKey: key.privateKey };
}

/** A profile-signing identity (3 years, at most to the issuer's notAfter) issued by `issuer` (generation `generation`). */
export async function createProfileSigner(issuer: Identity, generation: number, options: CaCertificateOptions): Promise<Identity> {
  const org = checkOrganization(options.organization);
  const key = options.key ?? (await generateKeyPair(options.keyAlgorithm ?? 'rsa-2048'));
  const publication = publicationFor(options.pkiUrl, generation);
  const certificate = await createCertificate({
    subject: [['CN', caNames.signer(org)], ['O', org]],
    issuerCertificate: issuer.certificate,
    ...validity((options.now ?? (() => new Date()))(), 3 * 365, notAfterOf(issuer.certificate)),
    publicKey: key.publicKey,
    signingKey: issuer.privateKey,
    keyUsage: ['digitalSignature'],
    // openssl cms -verify checks the S/MIME signing purpose: emailProtection satisfies it.
    extendedKeyUsage: [EKU.emailProtection, EKU.codeSigning],
    ...(publication ? { publication } : {}),
  });
  return { certificate, privateKey: key.privateKey };
}

/** How long a delegated OCSP responder certificate lives; it is renewed at half of that. */
export const RESPONDER_DAYS = 7;

/**
 * A delegated OCSP responder (RFC 6960 4.2.2.2) for the certificates `issuer` issued:
 * EKU id-kp-OCSPSigning, id-pkix-ocsp-nocheck, a week of validity, a CRL distribution point
 * but no OCSP URL of its own.
 */
export async function createOcspResponder(issuer: Identity, ca: CaRef, options: CaCertificateOptions): Promise<Identity> {
  const org = checkOrganization(options.organization);
  const key = options.key ?? (await generateKeyPair(options.keyAlgorithm ?? 'rsa-2048'));
  const publication = publicationFor(options.pkiUrl, ca, { ocsp: false });
  const certificate = await createCertificate({
    subject: [['CN', caNames.responder(org, ca)], ['O', org]],
    issuerCertificate: issuer.certificate,
    ...validity((options.now ?? (() => new Date()))(), RESPONDER_DAYS, notAfterOf(issuer.certificate)),
    publicKey: key.publicKey,
    signingKey: issuer.privateKey,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: [EKU.ocspSigning],
    ocspNoCheck: true,
    ...(publication ? { publication } : {}),
  });
  return { certificate, privateKey: key.privateKey };
}

/** How long a SCEP RA certificate lives; it is renewed at half of that. */
export const SCEP_RA_DAYS = 365;

/**
 * The SCEP registration authority of issuing CA `ca` (RFC 8894 2.1.1): the certificate devices
 * encrypt their requests to and that signs the replies, so keyUsage digitalSignature and
 * keyEncipherment and EKU id-kp-cmcRA. Always RSA-2048, whatever the CA's own algorithm:
 * SCEP envelopes use RSA key transport.
 */
export async function createScepRa(issuer: Identity, ca: CaRef, options: CaCertificateOptions): Promise<Identity> {
  const org = checkOrganization(options.organization);
  const key = options.key ?? (await generateKeyPair('rsa-2048'));
  const publication = publicationFor(options.pkiUrl, ca);
  const certificate = await createCertificate({
    subject: [['CN', caNames.scepRa(org)], ['O', org]],
    issuerCertificate: issuer.certificate,
    ...validity((options.now ?? (() => new Date()))(), SCEP_RA_DAYS, notAfterOf(issuer.certificate)),
    publicKey: key.publicKey,
    signingKey: issuer.privateKey,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
    extendedKeyUsage: [EKU.cmcRA],
    ...(publication ? { publication } : {}),
  });
  return { certificate, privateKey: key.privateKey };
}

/**
 * Creates a root CA (20 years), an intermediate (10 years) and a profile-signing
 * identity (3 years). The three keys are generated in parallel.
 * @throws ERR_INPUT_INVALID for an empty organization, or one too long to name the CAs
 * @example
 * const ca = await createCertificateAuthority({ organization: 'Example Corp' })
 * writeFileSync('root.pem', toPem(ca.root.certificate))
 * const signer = keySigner({ key: ca.signer.privateKey, certificate: ca.signer.certificate, chain: [ca.intermediate.certificate] })
 */
export async function createCertificateAuthority(
  options: CreateCertificateAuthorityOptions,
): Promise<CertificateAuthority> {
  const org = checkOrganization(options.organization);
  const now = options.now ?? (() => new Date());
  const alg = options.keyAlgorithm ?? 'rsa-2048';
  const [rootKey, intKey, signerKey] = await Promise.all([generateKeyPair(alg), generateKeyPair(alg), generateKeyPair(alg)]);
  const rootCert = await createCertificate({
    subject: [['CN', caNames.root(org)], ['O', org]],
    ...validity(now(), 20 * 365),
    publicKey: rootKey.publicKey,
    signingKey: rootKey.privateKey,
    ca: {},
    keyUsage: ['keyCertSign', 'cRLSign'],
  });
  const root = { certificate: rootCert, privateKey: rootKey.privateKey };
  const common = { organization: org, keyAlgorithm: alg, now, ...(options.pkiUrl ? { pkiUrl: options.pkiUrl } : {}) };
  const intermediate = await createIssuingCa(root, 1, { ...common, key: intKey, ...(options.permittedEmailDomains ? { permittedEmailDomains: options.permittedEmailDomains } : {}) });
  const signer = await createProfileSigner(intermediate, 1, { ...common, key: signerKey });
  return { root, intermediate, signer };
}
