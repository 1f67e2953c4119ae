/**
 * Reading PKCS#10 certificate requests (RFC 2986), as SCEP clients send them: the subject's
 * public key, the challengePassword attribute, and a check of the self-signature. What the
 * request asks for beyond its key (subject, SANs) is read only to be reported: the server
 * decides what a certificate says.
 *
 * @module csr
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { child, children, DerError, parseDer, readOid, TAG, type DerNode } from '../asn1/der.js';
import { InputInvalid, KeyUnsupported } from '../errors.js';

const OID_CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';

/** Signature algorithms a request may be signed with, and the digest each uses. */
const SIGNATURE_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
};

/** Directory-string tags a challengePassword may come in. */
const STRING_TAGS = new Set([0x0c, 0x13, 0x14, 0x16, 0x1e]);

/** A certificate request, parsed and its signature checked. */
export interface CertificateRequest {
  /** The key to certify. */
  publicKey: KeyObject;
  /** The challengePassword attribute, if any. */
  challengePassword: string | undefined;
  /** The DER of the subject Name the request asks for (not used for what is issued). */
  subject: Buffer;
}

function directoryString(node: DerNode): string {
  if (!STRING_TAGS.has(node.tag)) throw new DerError('the challengePassword is not a string');
  if (node.tag === 0x1e) return Buffer.from(node.value).swap16().toString('utf16le');
  return node.value.toString(node.tag === 0x0c ? 'utf8' : 'latin1');
}

/**
 * Parses a DER PKCS#10 request and checks that it is signed by the key it carries (proof of
 * possession).
 * @example
 * const { publicKey, challengePassword } = parseCertificateRequest(der)
 * @throws ERR_KEY_UNSUPPORTED for a key other than RSA; ERR_INPUT_INVALID (`csr`) for anything malformed, an unsupported signature
 * algorithm, or a signature that does not verify
 */
export function parseCertificateRequest(der: Uint8Array): CertificateRequest {
  let parts: DerNode[];
  let info: DerNode;
  try {
    const top = parseDer(der);
    if (top.tag !== TAG.SEQUENCE) throw new DerError('not a SEQUENCE');
    parts = children(top);
    info = parts[0] as DerNode;
    if (!info || info.tag !== TAG.SEQUENCE || parts.length !== 3) throw new DerError('not a CertificationRequest');
  } catch (cause) {
    throw new InputInvalid('csr', `The certificate request is malformed: ${(cause as Error).message}`);
  }
  let fields: DerNode[];
  let publicKey: KeyObject;
  let challengePassword: string | undefined;
  let hash: string | undefined;
  try {
    fields = children(info);
    const spki = fields[2];
    if (!spki || spki.tag !== TAG.SEQUENCE || !fields[1]) throw new DerError('no subjectPublicKeyInfo');
    publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
    const attrs = fields[3];
    if (attrs && attrs.tag === 0xa0) {
      for (const attr of children(attrs)) {
        if (readOid(child(attr, 0)) !== OID_CHALLENGE_PASSWORD) continue;
        const values = children(child(attr, 1, TAG.SET));
        if (values.length !== 1) throw new DerError('the challengePassword must have one value');
        challengePassword = directoryString(values[0] as DerNode);
      }
    }
    hash = SIGNATURE_HASH[readOid(child(parts[1] as DerNode, 0))];
  } catch (cause) {
    throw new InputInvalid('csr', `The certificate request is malformed: ${(cause as Error).message}`);
  }
  if (publicKey.asymmetricKeyType !== 'rsa') throw new KeyUnsupported(String(publicKey.asymmetricKeyType), `The request's key is ${publicKey.asymmetricKeyType}: S/MIME certificates here need RSA of 2048 bits or more`);
  if (!hash) throw new InputInvalid('csr', 'The certificate request is signed with an algorithm other than RSA with SHA-1 or SHA-2');
  const sig = parts[2] as DerNode;
  if (sig.tag !== TAG.BIT_STRING || sig.value[0] !== 0) throw new InputInvalid('csr', 'The certificate request signature is malformed');
  let ok = false;
  try {
    ok = publicKey.asymmetricKeyType === 'rsa' && cryptoVerify(hash, info.raw, publicKey, sig.value.subarray(1));
  } catch {
    ok = false;
  }
  if (!ok) throw new InputInvalid('csr', 'The certificate request is not signed by the key it carries');
  return { publicKey, challengePassword, subject: (fields[1] as DerNode).raw };
}
