/**
 * Signing profiles: DER CMS SignedData with the content attached, SHA-256, the signed
 * attributes contentType, signingTime and messageDigest, and the signer certificate plus
 * its intermediates. The structure is written
 * here; the signature comes from node:crypto on a key parsed once.
 *
 * @module sign
 */
import { constants, createHash, publicDecrypt, randomBytes, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { header, int, nul, octets, oid, seq, setOf, TAG, time, tlv } from '../asn1/der.js';
import { CertificateInvalid, InputInvalid, isProfilesmithError, KeyUnsupported, SignerInvalid, SigningFailed } from '../errors.js';
import { keysMatch, toPrivateKey } from '../certs/keys.js';
import { toCertificates, type CertificateInput } from '../certs/pem.js';
import { issuerAndSerial, certificatePublicKey } from './certificate.js';

export const OID = {
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  envelopedData: '1.2.840.113549.1.7.3',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
  sha1: '1.3.14.3.2.26',
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha256WithRSA: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
} as const;

/**
 * Anything that can sign: a key in memory, or an HSM / cloud KMS behind an async `sign`.
 * `sign` receives the DER of the signed attributes and returns the raw signature
 * (PKCS#1 v1.5 over SHA-256 for RSA, DER ECDSA-Sig-Value for EC).
 *
 * A signer is checked the first time it signs: a probe signature must verify with the
 * certificate's public key, or signing fails with `ERR_SIGNER_INVALID` naming what is wrong,
 * and no profile is made. That costs one `sign` call per signer object, so keep the object.
 * @example
 * import type { Signer } from 'profilesmith'
 *
 * // A cloud KMS: the key never leaves it; `sign` is one API call (your KMS client here).
 * declare const kms: { sign(request: { keyId: string; message: Uint8Array; algorithm: string }): Promise<{ signature: Uint8Array }> }
 * const signer: Signer = {
 *   certificate: pemCert, chain: [pemIntermediate], keyType: 'rsa',
 *   sign: async (data) => (await kms.sign({ keyId: 'profile-signer', message: data, algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' })).signature,
 * }
 */
export interface Signer {
  /** The signer certificate: PEM text, or DER or PEM bytes. */
  certificate: string | Uint8Array;
  /** The intermediates, leaf-most first (PEM text with any number of blocks, bytes, or an array); the root may be left out. */
  chain?: CertificateInput;
  /** `rsa` or `ec`. */
  keyType: 'rsa' | 'ec';
  /** Signs `data` (the DER of the signed attributes) with SHA-256: PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC. */
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** Options of {@link keySigner}. */
export interface KeySignerOptions {
  /** PEM, PKCS#8 DER, or a KeyObject. */
  key: KeyObject | string | Uint8Array;
  /** PEM text, or DER or PEM bytes. */
  certificate: string | Uint8Array;
  /** The intermediates: PEM text (any number of blocks), bytes, or an array of those. */
  chain?: CertificateInput;
}

/**
 * A signer for a private key held in memory. The key is parsed once here, never per
 * signature (a PEM parse per call costs 3.5x).
 * @throws ERR_CERT_INVALID when the key does not belong to the certificate; ERR_KEY_UNSUPPORTED
 * @example
 * const signer = keySigner({ key: pemKey, certificate: pemCert, chain: [pemIntermediate] })
 */
export function keySigner(options: KeySignerOptions): Signer {
  const key = toPrivateKey(options.key);
  const certificate = toCertificates(options.certificate, 'certificate')[0]!;
  const chain = options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true });
  if (!keysMatch(key, certificatePublicKey(certificate))) {
    throw new CertificateInvalid('key-mismatch', 'The signing key does not belong to the signer certificate');
  }
  const keyType = key.asymmetricKeyType;
  if (keyType !== 'rsa' && keyType !== 'ec') {
    throw new KeyUnsupported(String(keyType), `Profiles can be signed with RSA or ECDSA keys, not ${keyType}`);
  }
  const signer: Signer = { certificate, chain, keyType, sign: (data) => cryptoSign('sha256', data, key) };
  // The key was just matched with the certificate: no probe signature is needed.
  markChecked(signer);
  return signer;
}

/** A signer's certificates as DER, checked to be certificates. @internal */
export interface SignerCertificates {
  certificate: Buffer;
  chain: Buffer[];
}
const normalized = new WeakMap<Signer, SignerCertificates>();

/**
 * The DER of a signer's certificate and chain, whatever form they were given in.
 * @throws ERR_INPUT_INVALID naming `signer.certificate` or `signer.chain`
 * @internal
 */
export function signerCertificates(signer: Signer): SignerCertificates {
  let n = normalized.get(signer);
  if (!n) {
    if (!signer || typeof signer !== 'object' || typeof signer.sign !== 'function') throw new InputInvalid('signer', 'The signer must be an object with certificate, keyType and a sign(data) function');
    const certs = toCertificates(signer.certificate, 'signer.certificate');
    if (certs.length !== 1) throw new InputInvalid('signer.certificate', `signer.certificate must be one certificate, not ${certs.length} (put the intermediates in signer.chain)`);
    n = { certificate: certs[0]!, chain: signer.chain === undefined ? [] : toCertificates(signer.chain, 'signer.chain', { allowEmpty: true }) };
    normalized.set(signer, n);
  }
  return n;
}

/** Signers whose check has passed (or whose key was matched when they were made). */
const passed = new WeakSet<Signer>();
/** Probes under way, so that concurrent first uses make one probe signature. */
const probing = new WeakMap<Signer, Promise<void>>();

/** Records that a signer's key is known to match its certificate (keySigner, pkcs11Signer check it when made). @internal */
export function markChecked(signer: Signer): void {
  passed.add(signer);
}

/**
 * Checks a signer once: its certificate and chain, its keyType against the certificate's
 * key, and a probe signature verified with the certificate's public key. A failed check is
 * made again next time (the KMS may have been unreachable).
 * @throws ERR_INPUT_INVALID for the certificate's shape; ERR_SIGNER_INVALID (`algorithm`,
 * `key-mismatch`, `bad-output`); a typed error the signer throws keeps its code, anything else
 * is ERR_SIGNING_FAILED
 */
export function checkSigner(signer: Signer): Promise<void> {
  if (passed.has(signer)) return Promise.resolve();
  let p = probing.get(signer);
  if (!p) {
    p = probe(signer)
      .then(() => {
        passed.add(signer);
      })
      .finally(() => probing.delete(signer));
    probing.set(signer, p);
  }
  return p;
}

async function probe(signer: Signer): Promise<void> {
  const { certificate } = signerCertificates(signer);
  const publicKey = certificatePublicKey(certificate);
  const certType = publicKey.asymmetricKeyType;
  if (signer.keyType !== 'rsa' && signer.keyType !== 'ec') throw new SignerInvalid('algorithm', `signer.keyType must be "rsa" or "ec", not ${JSON.stringify(signer.keyType)}`);
  if (certType !== signer.keyType) throw new SignerInvalid('algorithm', `signer.keyType is "${signer.keyType}" but the certificate holds an ${String(certType).toUpperCase()} key`);
  const data = randomBytes(32);
  let out: unknown;
  try {
    out = await signer.sign(data);
  } catch (cause) {
    if (isProfilesmithError(cause)) throw cause;
    throw new SigningFailed(`The signer failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
  if (!(out instanceof Uint8Array)) throw new SignerInvalid('bad-output', `signer.sign returned ${out === null ? 'null' : typeof out}, not the signature bytes (a Uint8Array or Buffer)`);
  if (cryptoVerify('sha256', data, publicKey, out)) return;
  if (signer.keyType === 'rsa') {
    const size = ((publicKey.asymmetricKeyDetails?.modulusLength ?? 0) + 7) >> 3;
    if (out.length !== size) throw new SignerInvalid('bad-output', `signer.sign returned ${out.length} bytes; an RSA-${size * 8} signature has ${size}`);
    let em: Buffer | undefined;
    try {
      em = publicDecrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, out);
    } catch {
      // not a number below the modulus: garbage
    }
    if (em && em[0] === 0 && em[1] === 1 && em[2] === 0xff) {
      // The certificate's key made it: the DigestInfo inside tells what it signed.
      const info = em.subarray(em.indexOf(0, 2) + 1).toString('hex');
      const digest = info.includes('2b0e03021a') ? 'SHA-1' : info.includes('6086480165030402') ? (info.includes('60864801650304020105') ? 'SHA-256' : 'SHA-384/512') : 'an unknown digest';
      throw new SignerInvalid(
        'algorithm',
        digest === 'SHA-256'
          ? "The probe signature was made with the certificate's key over other bytes than those given (hashed twice?): sign the data as it is, with SHA-256"
          : `The probe signature was made with the certificate's key over ${digest}, not SHA-256: ask for PKCS#1 v1.5 with SHA-256`,
      );
    }
    if (em && em[0] === 0 && em[1] === 1) throw new SignerInvalid('algorithm', 'The probe signature is not PKCS#1 v1.5 over SHA-256 (another padding or digest?)');
  } else if (cryptoVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, out)) {
    throw new SignerInvalid('bad-output', 'signer.sign returned an ECDSA signature as r||s (IEEE P1363, as Web Crypto and some KMS APIs do); CMS needs the DER ECDSA-Sig-Value');
  }
  throw new SignerInvalid('key-mismatch', "The probe signature does not verify with the certificate's public key: the signing key is not the certificate's (or the output is not a signature)");
}

/** Options of {@link signProfile}. */
export interface SignProfileOptions {
  /** signingTime. Default: now. */
  now?: () => Date;
}

/** The parts of a SignedData that depend only on the signer, encoded once per signer. */
interface Prepared {
  certificates: Buffer;
  sid: Buffer;
  signatureAlgorithm: Buffer;
}
const prepared = new WeakMap<Signer, Prepared>();

function prepare(signer: Signer): Prepared {
  let p = prepared.get(signer);
  if (!p) {
    const { certificate, chain } = signerCertificates(signer);
    const certs = [certificate, ...chain];
    p = {
      // [0] IMPLICIT CertificateSet
      certificates: tlv(0xa0, Buffer.concat(certs)),
      sid: issuerAndSerial(certs[0] as Buffer),
      signatureAlgorithm:
        signer.keyType === 'rsa' ? seq(oid(OID.rsaEncryption), nul()) : seq(oid(OID.ecdsaWithSha256)),
    };
    prepared.set(signer, p);
  }
  return p;
}

const SHA256_ALG = seq(oid(OID.sha256));

/**
 * Signs profile bytes (XML or binary plist) exactly as given: the signed content is
 * byte-identical to the input.
 * @throws ERR_SIGNING_FAILED when the signer fails
 * @example
 * const der = await signProfile(Buffer.from(xml), keySigner({ key, certificate }))
 */
export async function signProfile(
  content: Uint8Array | string,
  signer: Signer,
  options: SignProfileOptions = {},
): Promise<Uint8Array> {
  // A view, not a copy: the content is copied once, into the result.
  const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  // Once a signer has passed its check, nothing here awaits before its sign(): a microtask per
  // profile was 1-2% of signProfile's time.
  if (!passed.has(signer)) await checkSigner(signer);
  const p = prepare(signer);
  const digest = createHash('sha256').update(bytes).digest();
  const attrs = [
    ATTR_CONTENT_TYPE,
    seq(OID_SIGNING_TIME, setOf(time((options.now ?? (() => new Date()))()))),
    seq(OID_MESSAGE_DIGEST, setOf(octets(digest))),
  ];
  const attrsBody = Buffer.concat(attrs.sort(Buffer.compare));
  const signedAttrs = tlv(0x31, attrsBody); // signed as a SET OF (RFC 5652 5.4)
  let signature: Uint8Array;
  try {
    const out = signer.sign(signedAttrs);
    signature = out instanceof Uint8Array ? out : await out;
  } catch (cause) {
    // A typed error from the signer (a closed PKCS#11 session, a KMS refusal) keeps its code.
    if (isProfilesmithError(cause)) throw cause;
    throw new SigningFailed(`The signer failed: ${(cause as Error)?.message ?? cause}`, { cause });
  }
  const signerInfo = seq(
    int(1),
    p.sid,
    SHA256_ALG,
    tlv(0xa0, attrsBody), // sent as [0] IMPLICIT
    p.signatureAlgorithm,
    octets(signature),
  );
  // The nesting around the (large) content is written as headers around one copy of it,
  // rather than re-copied at every level of the DER.
  const octHdr = header(TAG.OCTET_STRING, bytes.length);
  const expHdr = header(0xa0, octHdr.length + bytes.length);
  const eciLen = OID_DATA.length + expHdr.length + octHdr.length + bytes.length;
  const eciHdr = header(TAG.SEQUENCE, eciLen);
  const after = Buffer.concat([p.certificates, setOf(signerInfo)]);
  const sdLen = SD_PREFIX.length + eciHdr.length + eciLen + after.length;
  const sdHdr = header(TAG.SEQUENCE, sdLen);
  const ctxHdr = header(0xa0, sdHdr.length + sdLen);
  const outerHdr = header(TAG.SEQUENCE, OID_SIGNED_DATA.length + ctxHdr.length + sdHdr.length + sdLen);
  return Buffer.concat([outerHdr, OID_SIGNED_DATA, ctxHdr, sdHdr, SD_PREFIX, eciHdr, OID_DATA, expHdr, octHdr, bytes, after]);
}

const OID_DATA = oid(OID.data);
// Encoded once: an OID encoding per signature was 2% of signProfile's time.
const ATTR_CONTENT_TYPE = seq(oid(OID.contentType), setOf(OID_DATA));
const OID_SIGNING_TIME = oid(OID.signingTime);
const OID_MESSAGE_DIGEST = oid(OID.messageDigest);
const OID_SIGNED_DATA = oid(OID.signedData);
/** SignedData's version and digestAlgorithms, the same for every profile. */
const SD_PREFIX = Buffer.concat([int(1), setOf(seq(oid(OID.sha256)))]);

/** Options of {@link signWithAttributes}. @internal */
export interface SignWithAttributesOptions {
  key: KeyObject;
  /** The signer's certificate (DER). */
  certificate: Buffer;
  /** Every certificate to carry (the signer's included). */
  certificates: Buffer[];
  /** The digest of the content and the signature: SHA-256, or SHA-1 for a client that only showed that. */
  digest: 'sha256' | 'sha1';
  /** Signed attributes besides contentType and messageDigest, each a DER Attribute. */
  attributes: Buffer[];
}

/**
 * A DER SignedData over `content` (id-data) with RSA PKCS#1 v1.5 and extra signed attributes,
 * for protocol messages (SCEP's CertRep) rather than profiles: those go through
 * {@link signProfile}, whose hot path this leaves alone. @internal
 */
export function signWithAttributes(content: Buffer, options: SignWithAttributesOptions): Buffer {
  const digestAlg = seq(oid(options.digest === 'sha1' ? OID.sha1 : OID.sha256), nul());
  const attrs = [
    ATTR_CONTENT_TYPE,
    seq(OID_MESSAGE_DIGEST, setOf(octets(createHash(options.digest).update(content).digest()))),
    ...options.attributes,
  ];
  const attrsBody = Buffer.concat(attrs.sort(Buffer.compare));
  const signature = cryptoSign(options.digest, tlv(0x31, attrsBody), options.key);
  const signerInfo = seq(int(1), issuerAndSerial(options.certificate), digestAlg, tlv(0xa0, attrsBody), seq(oid(OID.rsaEncryption), nul()), octets(signature));
  const eci = seq(OID_DATA, tlv(0xa0, octets(content)));
  const sd = seq(int(1), setOf(digestAlg), eci, tlv(0xa0, Buffer.concat(options.certificates)), setOf(signerInfo));
  return seq(OID_SIGNED_DATA, tlv(0xa0, sd));
}

/** A degenerate, certificates-only SignedData (RFC 5652 5.2, "certs-only"): how SCEP and .p7c files carry certificates. */
export function certificatesOnly(certificates: readonly Buffer[]): Buffer {
  const sd = seq(int(1), tlv(0x31, Buffer.alloc(0)), seq(OID_DATA), tlv(0xa0, Buffer.concat(certificates)), tlv(0x31, Buffer.alloc(0)));
  return seq(OID_SIGNED_DATA, tlv(0xa0, sd));
}
