/**
 * SCEP messages (RFC 8894 3): the PKIMessage a client sends (a SignedData whose content is an
 * EnvelopedData holding the PKCS#10 request, with SCEP's signed attributes), and the CertRep
 * the server answers with. The CMS is the project's own (cms/sign.ts, cms/envelope.ts,
 * cms/verify.ts); this module only adds SCEP's attributes and rules.
 *
 * @module scep-message
 */
import { randomBytes, type KeyObject, type X509Certificate } from 'node:crypto';
import { DerError, octets, oid, seq, setOf, tlv, TAG, type DerNode } from '../asn1/der.js';
import { envelope, type EnvelopeCipher } from '../cms/envelope.js';
import { certificatesOnly, signWithAttributes } from '../cms/sign.js';
import { checkSignerInfo, parseSignedData } from '../cms/verify.js';
import { InputInvalid } from '../errors.js';

/** SCEP's attribute OIDs (RFC 8894 3.2.1), under id-VeriSign pki attributes. */
const ATTR = {
  messageType: '2.16.840.1.113733.1.9.2',
  pkiStatus: '2.16.840.1.113733.1.9.3',
  failInfo: '2.16.840.1.113733.1.9.4',
  senderNonce: '2.16.840.1.113733.1.9.5',
  recipientNonce: '2.16.840.1.113733.1.9.6',
  transactionID: '2.16.840.1.113733.1.9.7',
} as const;

/** SCEP message types (RFC 8894 3.2.1.2). */
export const MESSAGE_TYPE = { CertRep: 3, RenewalReq: 17, PKCSReq: 19, CertPoll: 20, GetCert: 21, GetCRL: 22 } as const;

/** Why a request failed (RFC 8894 3.2.1.4): the failInfo of a CertRep FAILURE. */
export type FailInfo = 'badAlg' | 'badMessageCheck' | 'badRequest' | 'badTime' | 'badCertId';
const FAIL_INFO: Record<FailInfo, string> = { badAlg: '0', badMessageCheck: '1', badRequest: '2', badTime: '3', badCertId: '4' };

/** A client's PKIMessage, its signature checked against the certificate it carries (trust is the server's decision). */
export interface PkiRequest {
  messageType: number;
  transactionID: string;
  senderNonce: Buffer;
  /** The certificate that signed the request: a self-signed one (PKCSReq), or the one being renewed. */
  signer: X509Certificate;
  /** The digest the client signed with: `sha1`, `sha256`, `sha384` or `sha512`. */
  hash: string;
  /** Why the signature does not verify, if it does not. */
  signatureProblem: string | undefined;
  /** The EnvelopedData (DER or BER) holding the request. */
  envelope: Buffer;
}

function printable(node: DerNode | undefined, what: string): string {
  if (!node || (node.tag !== TAG.PRINTABLE && node.tag !== TAG.UTF8 && node.tag !== 0x16)) throw new DerError(`${what} is missing or not a string`);
  const s = node.value.toString('latin1');
  if (!s.length || s.length > 128) throw new DerError(`${what} has ${s.length} characters`);
  return s;
}

/**
 * Reads a PKIMessage. A message that cannot be read as one (not a SignedData, no signer
 * certificate, no SCEP attributes) cannot be answered with a CertRep, which must name the
 * transaction and be encrypted to the signer: that is an ERR_INPUT_INVALID, for an HTTP 400.
 * @throws ERR_INPUT_INVALID (`pkimessage`)
 */
export function parsePkiRequest(der: Uint8Array): PkiRequest {
  let parsed;
  try {
    parsed = parseSignedData(der);
  } catch (cause) {
    throw new InputInvalid('pkimessage', `Not a SCEP PKIMessage: ${(cause as Error).message}`);
  }
  const checked = checkSignerInfo(parsed);
  if (!checked.signer) throw new InputInvalid('pkimessage', 'The PKIMessage does not carry the certificate that signed it');
  try {
    const a = checked.attributes;
    const messageType = Number(printable(a.get(ATTR.messageType), 'messageType'));
    const transactionID = printable(a.get(ATTR.transactionID), 'transactionID');
    const nonce = a.get(ATTR.senderNonce);
    if (!nonce || nonce.tag !== TAG.OCTET_STRING || nonce.value.length < 8 || nonce.value.length > 64) throw new DerError('senderNonce is missing or not 8 to 64 bytes');
    if (!Number.isInteger(messageType)) throw new DerError('messageType is not a number');
    return {
      messageType,
      transactionID,
      senderNonce: Buffer.from(nonce.value),
      signer: checked.signer,
      hash: checked.hash ?? '',
      signatureProblem: checked.reasons[0]?.message,
      envelope: parsed.content,
    };
  } catch (cause) {
    throw new InputInvalid('pkimessage', `Not a SCEP PKIMessage: ${(cause as Error).message}`);
  }
}

/** What signs a CertRep: the RA (or CA) key and the certificates to carry, signer first. */
export interface ReplySigner {
  key: KeyObject;
  certificate: Buffer;
  chain: Buffer[];
}

/** How to answer: in the algorithms the request showed the client reads. */
export interface ReplyTo {
  transactionID: string;
  senderNonce: Buffer;
  /** The certificate to encrypt the issued certificate to (the request's signer). */
  recipient: Buffer;
  /** The request's content cipher. */
  cipher: EnvelopeCipher;
  /** The request's digest. */
  hash: string;
}

const printableAttr = (type: string, value: string) => seq(oid(type), setOf(tlv(TAG.PRINTABLE, Buffer.from(value, 'latin1'))));
const octetAttr = (type: string, value: Buffer) => seq(oid(type), setOf(octets(value)));

/**
 * A CertRep: SUCCESS with `certificate` (as a certs-only SignedData, encrypted to the
 * requester), or FAILURE with its failInfo. Signed by the RA with SHA-1 when the client
 * signed with SHA-1, else SHA-256; encrypted with the cipher the client used. `random` is
 * injectable for tests.
 */
export function certRep(
  signer: ReplySigner,
  to: ReplyTo,
  outcome: { certificate: Buffer } | { failInfo: FailInfo },
  random: (n: number) => Buffer = randomBytes,
): Buffer {
  const attributes = [
    printableAttr(ATTR.messageType, String(MESSAGE_TYPE.CertRep)),
    printableAttr(ATTR.transactionID, to.transactionID),
    octetAttr(ATTR.recipientNonce, to.senderNonce),
    octetAttr(ATTR.senderNonce, random(16)),
  ];
  // A FAILURE has no pkcsPKIEnvelope; an empty eContent rather than none, which OpenSSL's
  // PKCS7_verify (certmonger's scep-submit) refuses as "no content".
  let content: Buffer = Buffer.alloc(0);
  if ('certificate' in outcome) {
    attributes.push(printableAttr(ATTR.pkiStatus, '0'));
    content = envelope(certificatesOnly([outcome.certificate]), to.recipient, to.cipher);
  } else {
    attributes.push(printableAttr(ATTR.pkiStatus, '2'), printableAttr(ATTR.failInfo, FAIL_INFO[outcome.failInfo]));
  }
  return signWithAttributes(content, {
    key: signer.key,
    certificate: signer.certificate,
    certificates: [signer.certificate, ...signer.chain],
    digest: to.hash === 'sha1' ? 'sha1' : 'sha256',
    attributes,
  });
}
