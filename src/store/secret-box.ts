/**
 * Encryption of private keys at rest. One master key per store, derived once per open
 * from the passphrase with scrypt (N = 2^17, r = 8, p = 1: 128 MiB, OWASP's
 * recommendation), then AES-256-GCM per key file with the file's name as associated
 * data, so a key file moved to another entry does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';

/** The scrypt parameters a store key is derived with (kept beside the store, never secret). */
export interface KdfParams {
  alg: 'scrypt';
  N: number;
  r: number;
  p: number;
  /** base64 */
  salt: string;
}

export const DEFAULT_KDF_COST = 17;

export function newKdfParams(cost = DEFAULT_KDF_COST): KdfParams {
  return { alg: 'scrypt', N: 2 ** cost, r: 8, p: 1, salt: randomBytes(16).toString('base64') };
}

export function deriveKey(passphrase: string, params: KdfParams): Promise<Buffer> {
  if (params.alg !== 'scrypt' || params.N > 2 ** 20 || params.r > 16 || params.p > 4) {
    return Promise.reject(new Error('unsupported key derivation parameters'));
  }
  return new Promise((resolve, reject) =>
    scrypt(
      passphrase.normalize('NFC'),
      Buffer.from(params.salt, 'base64'),
      32,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (err, key) => (err ? reject(err) : resolve(key)),
    ),
  );
}

/** Bytes sealed with AES-256-GCM under the store key (base64 fields, as kept in key files and rows). */
export interface Sealed {
  v: 1;
  alg: 'aes-256-gcm';
  iv: string;
  tag: string;
  data: string;
}

/** AES-256-GCM: IV, tag and ciphertext. The one place that encrypts. */
function encrypt(key: Buffer, plaintext: Buffer, aad: string): { iv: Buffer; tag: Buffer; data: Buffer } {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plaintext), c.final()]);
  return { iv, tag: c.getAuthTag(), data };
}

/** The one place that decrypts; undefined when the key, the associated data or the bytes are wrong. */
function decrypt(key: Buffer, iv: Uint8Array, tag: Uint8Array, data: Uint8Array, aad: string): Buffer | undefined {
  try {
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(data), d.final()]);
  } catch {
    return undefined;
  }
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Sealed {
  const { iv, tag, data } = encrypt(key, plaintext, aad);
  return { v: 1, alg: 'aes-256-gcm', iv: iv.toString('base64'), tag: tag.toString('base64'), data: data.toString('base64') };
}

/** Decrypts; returns undefined when the key, the associated data or the bytes are wrong. */
export function unseal(key: Buffer, sealed: Sealed, aad: string): Buffer | undefined {
  if (sealed?.v !== 1 || sealed.alg !== 'aes-256-gcm' || typeof sealed.iv !== 'string' || typeof sealed.tag !== 'string' || typeof sealed.data !== 'string') return undefined;
  return decrypt(key, Buffer.from(sealed.iv, 'base64'), Buffer.from(sealed.tag, 'base64'), Buffer.from(sealed.data, 'base64'), aad);
}

const BOX_MAGIC = Buffer.from('PSB1');

/**
 * The binary form of {@link seal}, for bulk data read on hot paths: `PSB1`, IV (12), tag (16),
 * ciphertext. No JSON and no base64, so opening it is one decryption.
 */
export function sealBytes(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const { iv, tag, data } = encrypt(key, plaintext, aad);
  return Buffer.concat([BOX_MAGIC, iv, tag, data]);
}

/** Opens {@link sealBytes} output; undefined when the key, the associated data or the bytes are wrong. */
export function unsealBytes(key: Buffer, box: Uint8Array, aad: string): Buffer | undefined {
  if (box.length < 32 || !BOX_MAGIC.equals(box.subarray(0, 4))) return undefined;
  return decrypt(key, box.subarray(4, 16), box.subarray(16, 32), box.subarray(32), aad);
}
