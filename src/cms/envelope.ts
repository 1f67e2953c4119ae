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
import { desCbc, rsaPkcs1Decrypt } from '../certs/forge.js';
import { issuerAndSerial } from './certificate.js';
import { OID } from './sign.js';

/** The content cipher of an encrypted profile: AES-256-CBC, or 3DES for old devices. */
export type ContentCipher = 'aes-256-cbc' | 'des-ede3-cbc';

/**
 * Every content cipher an envelope is read in (SCEP clients send all of these: micromdm's
 * scepclient single DES, iOS AES), and can be answered in.
 */
export type EnvelopeCipher = ContentCipher | 'aes-128-cbc' | 'aes-192-cbc' | 'des-cbc';

const CIPHER_OID: Record<EnvelopeCipher, string> = {
  'aes-256-cbc': '2.16.840.1.101.3.4.1.42',
  'des-ede3-cbc': '1.2.840.113549.3.7',
  'aes-128-cbc': '2.16.840.1.101.3.4.1.2',
  'aes-192-cbc': '2.16.840.1.101.3.4.1.22',
  'des-cbc': '1.3.14.3.2.7',
};
const CIPHER_SIZES: Record<EnvelopeCipher, { key: number; iv: number }> = {
  'aes-256-cbc': { key: 32, iv: 16 },
  'des-ede3-cbc': { key: 24, iv: 8 },
  'aes-128-cbc': { key: 16, iv: 16 },
  'aes-192-cbc': { key: 24, iv: 16 },
  'des-cbc': { key: 8, iv: 8 },
};

/** Encrypts or decrypts with a content cipher: DES through forge (OpenSSL 3 keeps it in the legacy provider), the rest natively. */
function runCipher(encrypt: boolean, cipher: EnvelopeCipher, key: Buffer, iv: Buffer, data: Buffer): Buffer {
  if (cipher === 'des-cbc') {
    const out = desCbc(encrypt, key, iv, data);
    if (!out) throw new Error('bad decrypt');
    return out;
  }
  const c = encrypt ? createCipheriv(cipher, key, iv) : createDecipheriv(cipher, key, iv);
  return Buffer.concat([c.update(data), c.final()]);
}

/**
 * Encrypts `content` to the holder of `recipient` (a DER certificate with an RSA key).
 * @throws ERR_KEY_UNSUPPORTED for a non-RSA certificate
 */
export function envelope(content: Uint8Array, recipient: Buffer, cipher: EnvelopeCipher = 'aes-256-cbc'): Buffer {
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
  const encrypted = runCipher(true, cipher, cek, iv, Buffer.from(content));
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
  cipher: EnvelopeCipher;
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
    const cipher = (Object.keys(CIPHER_OID) as EnvelopeCipher[]).find((c) => CIPHER_OID[c] === cipherOid);
    if (!cipher) throw new DerError(`unsupported content cipher ${cipherOid}`);
    const encNode = child(eci, 2);
    const encrypted = encNode.tag === 0x80 ? encNode.value : Buffer.concat(children(encNode).map((c) => c.value));
    const iv = child(alg, 1, TAG.OCTET_STRING).value;
    if (iv.length !== CIPHER_SIZES[cipher].iv) throw new DerError(`the IV of ${cipher} has ${iv.length} bytes`);
    return { recipients, cipher, iv, encrypted };
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
      return runCipher(false, env.cipher, cek, env.iv, env.encrypted);
    } catch {
      // try the next recipient
    }
  }
  throw new InputInvalid('key', 'The key does not decrypt this profile');
}

/**
 * Opens an EnvelopedData addressed to `certificate` (a SCEP request to the RA) and says which
 * cipher it used. A key transport that does not decrypt is not told apart from content that
 * does not: a random content key stands in (implicit rejection), and both fail as one
 * `ERR_INPUT_INVALID`, so the answer is no padding oracle.
 * @throws ERR_INPUT_INVALID when it is not an EnvelopedData for that certificate or does not decrypt
 */
export function openEnvelopeFor(der: Uint8Array, key: KeyObject, certificate: Buffer): { content: Buffer; cipher: EnvelopeCipher } {
  const env = parseEnvelope(der);
  const wanted = issuerAndSerial(certificate);
  const r = env.recipients.find((x) => x.sid.equals(wanted));
  if (!r) throw new InputInvalid('recipient', 'The request is not encrypted to this server');
  const size = CIPHER_SIZES[env.cipher].key;
  let cek: Buffer;
  try {
    cek = rsaPkcs1Decrypt(key, r.encryptedKey);
    if (cek.length !== size) cek = randomBytes(size);
  } catch {
    cek = randomBytes(size);
  }
  try {
    return { content: runCipher(false, env.cipher, cek, env.iv, env.encrypted), cipher: env.cipher };
  } catch {
    throw new InputInvalid('envelope', 'The request does not decrypt');
  }
}
