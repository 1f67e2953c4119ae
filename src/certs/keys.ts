/**
 * Key pairs, always through node:crypto (native, and able to do ECDSA).
 *
 * @module keys
 */
import { createPrivateKey, createPublicKey, generateKeyPair as genKeyPair, type KeyObject } from 'node:crypto';
import { KeyUnsupported } from '../errors.js';

/** Key algorithm choice for new keys. */
export type KeyAlgorithm = 'rsa-2048' | 'rsa-3072' | 'rsa-4096' | 'ec-p256' | 'ec-p384';

/** A generated key pair. */
export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** Generates a key pair on the libuv threadpool, so several can run at once. */
export function generateKeyPair(alg: KeyAlgorithm = 'rsa-2048'): Promise<KeyPair> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) =>
      err ? reject(err) : resolve({ publicKey, privateKey });
    if (alg.startsWith('rsa-')) {
      genKeyPair('rsa', { modulusLength: Number(alg.slice(4)), publicExponent: 0x10001 }, done);
    } else if (alg === 'ec-p256' || alg === 'ec-p384') {
      genKeyPair('ec', { namedCurve: alg === 'ec-p256' ? 'P-256' : 'P-384' }, done);
    } else {
      reject(new KeyUnsupported(alg, `Key algorithm "${alg}" is not supported`));
    }
  });
}

/** Accepts PEM text, DER PKCS#8 bytes or a KeyObject. */
export function toPrivateKey(key: KeyObject | string | Uint8Array): KeyObject {
  if (typeof key === 'string') return createPrivateKey(key);
  if (key instanceof Uint8Array) return createPrivateKey({ key: Buffer.from(key), format: 'der', type: 'pkcs8' });
  return key;
}

/** PKCS#8 DER of a private key. */
export function privateKeyDer(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' });
}

/** True when the private key belongs to the public key. */
export function keysMatch(privateKey: KeyObject, publicKey: KeyObject): boolean {
  const a = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const b = publicKey.export({ format: 'der', type: 'spki' });
  return a.equals(b);
}

/** Describes a key as `rsa-2048` / `ec-p256`, for messages and checks. */
export function describeKey(key: KeyObject): string {
  const d = key.asymmetricKeyDetails ?? {};
  if (key.asymmetricKeyType === 'rsa') return `rsa-${d.modulusLength ?? 0}`;
  if (key.asymmetricKeyType === 'ec') {
    const curve = d.namedCurve === 'prime256v1' ? 'p256' : d.namedCurve === 'secp384r1' ? 'p384' : d.namedCurve;
    return `ec-${curve}`;
  }
  return key.asymmetricKeyType ?? 'unknown';
}
