/**
 * The one adapter to `@peculiar/x509`: certificate creation and extension parsing.
 * Public types never mention the library; DER `Buffer`s and KeyObjects go in and out.
 *
 * The library's dependency injection (tsyringe) needs a Reflect polyfill before it loads,
 * so it is imported lazily, after `reflect-metadata`, on first use: importing profilesmith
 * itself stays free of side effects.
 */
import { createPublicKey, randomBytes, webcrypto, X509Certificate as NodeX509, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { CertificateInvalid, KeyUnsupported } from '../errors.js';
import { fingerprint, normalizeSerial } from './pem.js';
import { children, type DerNode } from '../asn1/der.js';
import { tbsFields } from '../cms/certificate.js';
import { encodeName, type NameSpec } from './name.js';
import { authorityInfoAccess, crlDistributionPoints, EXT, ocspNoCheck, permittedEmailConstraints } from './extensions.js';

type X509Module = typeof import('@peculiar/x509');
let loaded: Promise<X509Module> | undefined;

async function lib(): Promise<X509Module> {
  // require, not import(): import() of this CommonJS bundle runs Node's CJS export lexer over
  // it, and that lexer became the costliest compile job of a batch (TurboFan compiled it once
  // per thread, 0.7 s of CPU in all for two workers).
  loaded ??= Promise.resolve().then(() => {
    const require = createRequire(import.meta.url);
    require('reflect-metadata');
    return require('@peculiar/x509') as X509Module;
  });
  return loaded;
}

const crypto = webcrypto as unknown as Crypto;

export const EKU = {
  emailProtection: '1.3.6.1.5.5.7.3.4',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  /** id-kp-cmcRA (RFC 6402): a registration authority, as a SCEP RA certificate is. */
  cmcRA: '1.3.6.1.5.5.7.3.28',
} as const;

/** A keyUsage bit by name. */
export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign';

const KU_BITS: Record<KeyUsageName, number> = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
};

export type { NameSpec };

/** Where relying parties find revocation data and the issuer (RFC 5280 4.2.1.13, 4.2.2.1). */
export interface PublicationSpec {
  crl?: string[];
  caIssuers?: string[];
  ocsp?: string[];
}

export interface CertificateSpec {
  subject: NameSpec;
  /** The issuer's certificate; omitted for a self-signed root. */
  issuerCertificate?: Buffer;
  /** Hex serial; default: 16 random bytes. */
  serialNumber?: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject;
  signingKey: KeyObject;
  ca?: { pathLength?: number };
  keyUsage: KeyUsageName[];
  extendedKeyUsage?: string[];
  email?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  /** CRL distribution point and AIA URLs. */
  publication?: PublicationSpec;
  /** A critical nameConstraints extension permitting these rfc822Name subtrees (CAs only). */
  permittedEmailDomains?: string[];
  /** id-pkix-ocsp-nocheck (delegated OCSP responders). */
  ocspNoCheck?: boolean;
}

/** A random positive 16-byte serial (RFC 5280 allows up to 20 octets). */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x10;
  return b.toString('hex');
}

/** WebCrypto algorithm for signing with `key`. */
function signingAlgorithm(key: KeyObject): RsaHashedImportParams | EcKeyImportParams {
  if (key.asymmetricKeyType === 'rsa') return { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1') return { name: 'ECDSA', namedCurve: 'P-256' };
    if (curve === 'secp384r1') return { name: 'ECDSA', namedCurve: 'P-384' };
  }
  throw new KeyUnsupported(String(key.asymmetricKeyType), 'Only RSA and ECDSA P-256/P-384 keys can sign certificates');
}

async function toCryptoKey(key: KeyObject): Promise<CryptoKey> {
  const alg = signingAlgorithm(key);
  return crypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), alg, false, ['sign']);
}


/** Creates and signs a certificate; returns its DER. */
export async function createCertificate(spec: CertificateSpec): Promise<Buffer> {
  const x = await lib();
  const spki = spec.publicKey.export({ format: 'der', type: 'spki' });
  const signingKey = await toCryptoKey(spec.signingKey);
  const alg = signingAlgorithm(spec.signingKey);
  const hash = 'namedCurve' in alg && alg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256';
  const issuer = spec.issuerCertificate ? new x.X509Certificate(Uint8Array.from(spec.issuerCertificate)) : undefined;
  const extensions: InstanceType<X509Module['Extension']>[] = [
    new x.BasicConstraintsExtension(!!spec.ca, spec.ca?.pathLength, true),
    new x.KeyUsagesExtension(spec.keyUsage.reduce((n, u) => n | KU_BITS[u], 0), true),
    await x.SubjectKeyIdentifierExtension.create(spki, false, crypto),
  ];
  const akiKey = issuer ? issuer.publicKey.rawData : spki;
  extensions.push(await x.AuthorityKeyIdentifierExtension.create(akiKey, false, crypto));
  if (spec.extendedKeyUsage?.length) {
    extensions.push(new x.ExtendedKeyUsageExtension(spec.extendedKeyUsage, false));
  }
  const names = [
    ...(spec.email ? [{ type: 'email' as const, value: spec.email }] : []),
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (names.length) extensions.push(new x.SubjectAlternativeNameExtension(names, false));
  const pub = spec.publication;
  if (pub?.crl?.length) extensions.push(new x.Extension(EXT.crlDistributionPoints, false, Uint8Array.from(crlDistributionPoints(pub.crl))));
  if (pub?.caIssuers?.length || pub?.ocsp?.length) {
    extensions.push(new x.Extension(EXT.authorityInfoAccess, false, Uint8Array.from(authorityInfoAccess({ caIssuers: pub.caIssuers ?? [], ocsp: pub.ocsp ?? [] }))));
  }
  if (spec.permittedEmailDomains?.length) {
    extensions.push(new x.Extension(EXT.nameConstraints, true, Uint8Array.from(permittedEmailConstraints(spec.permittedEmailDomains))));
  }
  if (spec.ocspNoCheck) extensions.push(new x.Extension(EXT.ocspNoCheck, false, Uint8Array.from(ocspNoCheck())));
  // Names go in as DER we built: the library's string and JSON forms parse quotes, `+`, `#`.
  const subject = new x.Name(Uint8Array.from(encodeName(spec.subject)));
  const issuerName = spec.issuerCertificate ? new x.Name(Uint8Array.from(tbsFields(spec.issuerCertificate).subject.raw)) : subject;
  const cert = await x.X509CertificateGenerator.create(
    {
      serialNumber: spec.serialNumber ?? randomSerial(),
      subject,
      issuer: issuerName,
      notBefore: spec.notBefore,
      notAfter: spec.notAfter,
      publicKey: spki,
      signingKey,
      signingAlgorithm: { ...alg, hash },
      extensions,
    },
    crypto,
  );
  return Buffer.from(cert.rawData);
}

/** What we read from a certificate, in plain types. */
export interface CertificateInfo {
  /** Lower-case hex, no leading zeros beyond the DER encoding. */
  serial: string;
  subject: string;
  issuer: string;
  /** The subject's CN, when there is one. */
  commonName: string | undefined;
  notBefore: Date;
  notAfter: Date;
  /** rfc822Name entries of subjectAltName, in order. */
  emails: string[];
  /** emailAddress attributes of the subject DN (legacy). */
  subjectEmails: string[];
  extendedKeyUsage: string[];
  keyUsage: KeyUsageName[];
  isCA: boolean;
  /** Issuer equals subject and the signature verifies with its own key. */
  selfSigned: boolean;
  /** SHA-256 of the DER, hex. */
  fingerprint: string;
  publicKey: KeyObject;
  /** `rsa-2048`, `ec-p256`, ... */
  keyType: string;
  der: Buffer;
}

/** Issuer equals subject and the signature verifies with its own key. */
function signsItself(c: NodeX509): boolean {
  try {
    return c.checkIssued(c) && c.verify(c.publicKey);
  } catch {
    return false;
  }
}

function isSelfSigned(der: Uint8Array): boolean {
  try {
    return signsItself(new NodeX509(der));
  } catch {
    return false;
  }
}

/** Parsed certificates by fingerprint: a batch describes the same CA certificates per profile. */
const described = new Map<string, Promise<CertificateInfo>>();

/** What a profile, and lint, need to know of a CA certificate. */
export interface CertificateBasics {
  /** Normalized hex serial. */
  serial: string;
  commonName: string | undefined;
  /** Issuer equals subject and the signature verifies with its own key. */
  selfSigned: boolean;
  fingerprint: string;
  der: Buffer;
  /** The subject as node:crypto writes it (one `TYPE=value` per line). */
  subject: string;
  notAfter: Date;
}

const CN_OID = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);

/** The text of a DirectoryString (X.520), or undefined for a type that has none. */
function directoryString(node: DerNode): string | undefined {
  switch (node.tag) {
    case 0x0c: // UTF8String
      return node.value.toString('utf8');
    case 0x13: // PrintableString
    case 0x14: // TeletexString, read as Latin-1 like most software does
    case 0x16: // IA5String
      return node.value.toString('latin1');
    case 0x1e: // BMPString
      return Buffer.from(node.value).swap16().toString('utf16le');
    default:
      return undefined;
  }
}

const basics = new Map<string, CertificateBasics>();
const basicsByObject = new WeakMap<Uint8Array, CertificateBasics>();

/**
 * @internal The serial, common name and self-signature of a certificate, read with
 * node:crypto and our DER reader (tbsFields): generating a profile needs no more of its CA certificates,
 * and so a batch worker never loads @peculiar/x509 (115 ms per thread).
 * @throws CertificateInvalid on garbage
 */
export function certificateBasics(der: Uint8Array): CertificateBasics {
  // Stores hand out the same bytes object for a CA certificate every time: known by identity
  // (and still equal, in case the caller wrote into it), it costs no SHA-256.
  const same = basicsByObject.get(der);
  if (same && same.der.equals(der)) return same;
  const fp = fingerprint(der);
  const hit = basics.get(fp);
  if (hit) {
    basicsByObject.set(der, hit);
    return hit;
  }
  let serial: string;
  let commonName: string | undefined;
  let x: NodeX509;
  try {
    x = new NodeX509(der);
    const tbs = tbsFields(der);
    search: for (const rdn of children(tbs.subject)) {
      for (const atv of children(rdn)) {
        const [type, value] = children(atv);
        if (type && value && type.raw.equals(CN_OID)) {
          commonName = directoryString(value);
          break search;
        }
      }
    }
    serial = normalizeSerial(tbs.serial.value.toString('hex'));
  } catch (cause) {
    throw new CertificateInvalid('malformed', 'The data is not an X.509 certificate', { cause });
  }
  const info = { serial, commonName, selfSigned: signsItself(x), fingerprint: fp, der: Buffer.from(der), subject: x.subject, notAfter: new Date(x.validTo) };
  if (basics.size >= 1024) basics.clear();
  basics.set(fp, info);
  basicsByObject.set(der, info);
  return info;
}

/**
 * Parses a DER certificate. Throws CertificateInvalid on garbage.
 * @example
 * const info = await describeCertificate(certificateDer)
 * console.log(info.subject, info.emails, info.notAfter.toISOString())
 */
export function describeCertificate(der: Uint8Array): Promise<CertificateInfo> {
  const fp = fingerprint(der);
  let hit = described.get(fp);
  if (!hit) {
    if (described.size >= 1024) described.clear();
    hit = parseCertificate(der, fp);
    described.set(fp, hit);
    hit.catch(() => described.delete(fp));
  }
  return hit;
}

async function parseCertificate(der: Uint8Array, fp: string): Promise<CertificateInfo> {
  const x = await lib();
  let cert: InstanceType<X509Module['X509Certificate']>;
  try {
    cert = new x.X509Certificate(Uint8Array.from(der));
  } catch (cause) {
    throw new CertificateInvalid('malformed', 'The data is not an X.509 certificate', { cause });
  }
  const san = cert.getExtension(x.SubjectAlternativeNameExtension);
  const eku = cert.getExtension(x.ExtendedKeyUsageExtension);
  const ku = cert.getExtension(x.KeyUsagesExtension);
  const bc = cert.getExtension(x.BasicConstraintsExtension);
  const emails = san ? san.names.items.filter((n) => n.type === 'email').map((n) => n.value) : [];
  const subjectJson = cert.subjectName.toJSON();
  const attr = (k: string) => subjectJson.flatMap((rdn) => rdn[k] ?? []);
  const publicKey = createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
  const kd = publicKey.asymmetricKeyDetails ?? {};
  const keyType =
    publicKey.asymmetricKeyType === 'rsa'
      ? `rsa-${kd.modulusLength ?? 0}`
      : `${publicKey.asymmetricKeyType ?? 'unknown'}${kd.namedCurve ? '-' + kd.namedCurve : ''}`;
  return {
    serial: cert.serialNumber.toLowerCase(),
    subject: cert.subject,
    issuer: cert.issuer,
    commonName: attr('CN')[0],
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    emails,
    subjectEmails: attr('E'),
    extendedKeyUsage: eku ? Array.from(eku.usages, String) : [],
    keyUsage: ku
      ? (Object.keys(KU_BITS) as KeyUsageName[]).filter((n) => (ku.usages & KU_BITS[n]) !== 0)
      : [],
    isCA: bc?.ca ?? false,
    selfSigned: isSelfSigned(der),
    fingerprint: fp,
    publicKey,
    keyType,
    der: Buffer.from(der),
  };
}

/** @internal The CRL builder behind certs/crl.ts. */
export async function createCrlDer(options: {
  issuerCertificate: Buffer;
  issuerKey: KeyObject;
  entries: { serial: string; date: Date; reason: string }[];
  thisUpdate: Date;
  nextUpdate: Date;
  crlNumber: Buffer;
}): Promise<Buffer> {
  const x = await lib();
  const issuer = new x.X509Certificate(Uint8Array.from(options.issuerCertificate));
  const alg = signingAlgorithm(options.issuerKey);
  const hash = 'namedCurve' in alg && alg.namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256';
  const crl = await x.X509CrlGenerator.create(
    {
      issuer: new x.Name(Uint8Array.from(tbsFields(options.issuerCertificate).subject.raw)),
      thisUpdate: options.thisUpdate,
      nextUpdate: options.nextUpdate,
      signingKey: await toCryptoKey(options.issuerKey),
      signingAlgorithm: { ...alg, hash },
      extensions: [
        await x.AuthorityKeyIdentifierExtension.create(issuer.publicKey.rawData, false, crypto),
        new x.Extension('2.5.29.20', false, Uint8Array.from(options.crlNumber)),
      ],
      entries: options.entries.map((e) => ({
        serialNumber: e.serial,
        revocationDate: e.date,
        reason: x.X509CrlReason[e.reason as keyof typeof x.X509CrlReason],
      })),
    },
    crypto,
  );
  return Buffer.from(crl.rawData);
}
