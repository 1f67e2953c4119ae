/**
 * CMS EnvelopedData for encrypted profiles: one KeyTransRecipientInfo
 * (RSA PKCS#1 v1.5 key transport, issuerAndSerialNumber) and AES-256-CBC content, or
 * 3DES-CBC for old devices.
 *
 * @module envelope
 */
import { constants, createCipheriv, createDecipheriv, publicEncrypt, randomBytes, X509Certificate, type KeyObject } from 'node:crypto';
import { parseBer } from '../asn1/ber.js';
import { child, children, DerError, explicit, nul, octets, oid, readInt, readOid, seq, setOf, tlv, TAG, int, type DerNode } from '../asn1/der.js';
import { CertificateInvalid, InputInvalid, KeyUnsupported } from '../errors.js';
import { rsaPkcs1Decrypt } from '../certs/forge.js';
import { issuerAndSerial } from './certificate.js';
import { OID } from './sign.js';

/** The content cipher of an encrypted profile: AES-256-CBC, or 3DES for old devices. */
export type ContentCipher = 'aes-256-cbc' | 'des-ede3-cbc';

const CIPHER_OID: Record<ContentCipher, string> = {
  'aes-256-cbc': '2.16.840.1.101.3.4.1.42',
  'des-ede3-cbc': '1.2.840.113549.3.7',
};
const CIPHER_SIZES: Record<ContentCipher, { key: number; iv: number }> = {
  'aes-256-cbc': { key: 32, iv: 16 },
  'des-ede3-cbc': { key: 24, iv: 8 },
};

/**
 * Encrypts `content` to the holder of `recipient` (a DER certificate with an RSA key).
 * @throws ERR_KEY_UNSUPPORTED for a non-RSA certificate
 */
export function envelope(content: Uint8Array, recipient: Buffer, cipher: ContentCipher = 'aes-256-cbc'): Buffer {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(recipient);
  } catch (cause) {
    throw new CertificateInvalid('malformed', 'The device certificate is not an X.509 certificate', { cause });
  }
  if (cert.publicKey.asymmetricKeyType !== 'rsa') {
    throw new KeyUnsupported(String(cert.publicKey.asymmetricKeyType), 'Profiles can only be encrypted to RSA device certificates');
  }
  const sizes = CIPHER_SIZES[cipher];
  const cek = randomBytes(sizes.key);
  const iv = randomBytes(sizes.iv);
  const c = createCipheriv(cipher, cek, iv);
  const encrypted = Buffer.concat([c.update(content), c.final()]);
  const encryptedKey = publicEncrypt({ key: cert.publicKey, padding: constants.RSA_PKCS1_PADDING }, cek);
  const recipientInfo = seq(int(0), issuerAndSerial(recipient), seq(oid(OID.rsaEncryption), nul()), octets(encryptedKey));
  const eci = seq(oid(OID.data), seq(oid(CIPHER_OID[cipher]), octets(iv)), tlv(0x80, encrypted));
  return seq(oid(OID.envelopedData), explicit(0, seq(int(0), setOf(recipientInfo), eci)));
}

/** A recipient of an EnvelopedData, by issuer and serial. */
export interface EnvelopeRecipient {
  /** DER of the recipient's issuer Name and its serial, hex. */
  issuer: Buffer;
  serial: string;
}

interface ParsedEnvelope {
  recipients: { issuer: Buffer; serial: string; encryptedKey: Buffer; sid: Buffer }[];
  cipher: ContentCipher;
  iv: Buffer;
  encrypted: Buffer;
}

function parseEnvelope(der: Uint8Array): ParsedEnvelope {
  try {
    const ci = parseBer(der);
    if (readOid(child(ci, 0)) !== OID.envelopedData) throw new DerError('not an EnvelopedData');
    const ed = child(child(ci, 1, 0xa0), 0, TAG.SEQUENCE);
    const parts = children(ed);
    const infos = parts.find((p) => p.tag === TAG.SET);
    const eci = parts[parts.length - 1] as DerNode;
    const recipients = children(infos as DerNode)
      .filter((ri) => ri.tag === TAG.SEQUENCE)
      .map((ri) => {
        const sid = child(ri, 1, TAG.SEQUENCE);
        return { sid: sid.raw, issuer: child(sid, 0).raw, serial: readInt(child(sid, 1)).toString(16), encryptedKey: child(ri, 3, TAG.OCTET_STRING).value };
      });
    const alg = child(eci, 1);
    const cipherOid = readOid(child(alg, 0));
    const cipher = (Object.keys(CIPHER_OID) as ContentCipher[]).find((c) => CIPHER_OID[c] === cipherOid);
    if (!cipher) throw new DerError(`unsupported content cipher ${cipherOid}`);
    const encNode = child(eci, 2);
    const encrypted = encNode.tag === 0x80 ? encNode.value : Buffer.concat(children(encNode).map((c) => c.value));
    return { recipients, cipher, iv: child(alg, 1, TAG.OCTET_STRING).value, encrypted };
  } catch (cause) {
    throw new InputInvalid('envelope', `Not a CMS EnvelopedData: ${(cause as Error).message}`);
  }
}

/** Who an EnvelopedData is encrypted to, without decrypting it. */
export function envelopeRecipients(der: Uint8Array): EnvelopeRecipient[] {
  return parseEnvelope(der).recipients.map((r) => ({ issuer: r.issuer, serial: r.serial }));
}

/**
 * Decrypts an EnvelopedData with the recipient's private key (the support path: the key
 * transport is undone through certs/forge.ts, see there why).
 * @throws ERR_INPUT_INVALID when the key is not a recipient's or the data is damaged
 */
export function openEnvelope(der: Uint8Array, key: KeyObject, certificate?: Buffer): Buffer {
  const env = parseEnvelope(der);
  const wanted = certificate ? issuerAndSerial(certificate) : undefined;
  const candidates = wanted ? env.recipients.filter((r) => r.sid.equals(wanted)) : env.recipients;
  if (!candidates.length) throw new InputInvalid('key', 'The profile is not encrypted to that certificate');
  for (const r of candidates) {
    try {
      const cek = rsaPkcs1Decrypt(key, r.encryptedKey);
      const d = createDecipheriv(env.cipher, cek, env.iv);
      return Buffer.concat([d.update(env.encrypted), d.final()]);
    } catch {
      // try the next recipient
    }
  }
  throw new InputInvalid('key', 'The key does not decrypt this profile');
}
