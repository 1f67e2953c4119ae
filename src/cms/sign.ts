/**
 * Signing profiles: DER CMS SignedData with the content attached, SHA-256, the signed
 * attributes contentType, signingTime and messageDigest, and the signer certificate plus
 * its intermediates (shared/reference/apple-spec.md section 10). The structure is written
 * here; the signature comes from node:crypto on a key parsed once.
 *
 * @module sign
 */
import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { header, int, nul, octets, oid, seq, setOf, TAG, time, tlv } from '../asn1/der.js';
import { CertificateInvalid, isProfilesmithError, KeyUnsupported, SigningFailed } from '../errors.js';
import { keysMatch, toPrivateKey } from '../certs/keys.js';
import { certificatesFrom } from '../certs/pem.js';
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
 */
export interface Signer {
  /** DER of the signer certificate. */
  certificate: Uint8Array;
  /** DER of the intermediates, leaf-most first. The root may be left out. */
  chain: Uint8Array[];
  /** `rsa` or `ec`. */
  keyType: 'rsa' | 'ec';
  /** Signs `data` (the DER of the signed attributes) with SHA-256: PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value for EC. */
  sign(data: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** Options of {@link keySigner}. */
export interface KeySignerOptions {
  /** PEM, PKCS#8 DER, or a KeyObject. */
  key: KeyObject | string | Uint8Array;
  /** PEM or DER. */
  certificate: string | Uint8Array;
  /** PEM (any number of blocks) or DER certificates: the intermediates. */
  chain?: (string | Uint8Array)[] | string;
}

/**
 * A signer for a private key held in memory. The key is parsed once here, never per
 * signature (a PEM parse per call costs 3.5x, perf-baseline section 2).
 * @throws ERR_CERT_INVALID when the key does not belong to the certificate; ERR_KEY_UNSUPPORTED
 * @example
 * const signer = keySigner({ key: pemKey, certificate: pemCert, chain: [pemIntermediate] })
 */
export function keySigner(options: KeySignerOptions): Signer {
  const key = toPrivateKey(options.key);
  const certificate = certificatesFrom(options.certificate)[0];
  if (!certificate) throw new CertificateInvalid('malformed', 'The signer certificate is missing');
  const chainInput = typeof options.chain === 'string' ? [options.chain] : (options.chain ?? []);
  const chain = chainInput.flatMap((c) => certificatesFrom(c));
  if (!keysMatch(key, certificatePublicKey(certificate))) {
    throw new CertificateInvalid('key-mismatch', 'The signing key does not belong to the signer certificate');
  }
  const keyType = key.asymmetricKeyType;
  if (keyType !== 'rsa' && keyType !== 'ec') {
    throw new KeyUnsupported(String(keyType), `Profiles can be signed with RSA or ECDSA keys, not ${keyType}`);
  }
  return { certificate, chain, keyType, sign: (data) => cryptoSign('sha256', data, key) };
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
    const certs = [signer.certificate, ...signer.chain].map((c) => Buffer.from(c));
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
    signature = await signer.sign(signedAttrs);
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
