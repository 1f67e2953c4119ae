/**
 * Encryption of private keys at rest. One master key per store, derived once per open
 * from the passphrase with scrypt (N = 2^17, r = 8, p = 1: 128 MiB, OWASP's
 * recommendation), then AES-256-GCM per key file with the file's name as associated
 * data, so a key file moved to another entry does not decrypt.
 */
import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';

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

export interface Sealed {
  v: 1;
  alg: 'aes-256-gcm';
  iv: string;
  tag: string;
  data: string;
}

export function seal(key: Buffer, plaintext: Buffer, aad: string): Sealed {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plaintext), c.final()]);
  return { v: 1, alg: 'aes-256-gcm', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), data: data.toString('base64') };
}

/** Decrypts; returns undefined when the key, the associated data or the bytes are wrong. */
export function unseal(key: Buffer, sealed: Sealed, aad: string): Buffer | undefined {
  try {
    if (sealed.v !== 1 || sealed.alg !== 'aes-256-gcm') return undefined;
    const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(Buffer.from(sealed.tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(sealed.data, 'base64')), d.final()]);
  } catch {
    return undefined;
  }
}
