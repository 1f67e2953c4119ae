/**
 * PKCS#12 in the one form every iOS version imports:
 * a pkcs8ShroudedKeyBag under pbeWithSHAAnd3-KeyTripleDES-CBC, the certificate in a plain
 * data safe, an HMAC-SHA-1 MAC with an 8-byte salt and 2048 iterations, one identity
 * linked by localKeyId, a non-empty password. Built natively: forge's builder costs
 * 12.6 ms per identity and defaults to AES.
 *
 * @module pkcs12
 */
import { createCipheriv, createHash, createHmac, randomBytes, type KeyObject } from 'node:crypto';
import { bmpString, explicit, int, octets, oid, seq, setOf } from '../asn1/der.js';
import { InputInvalid } from '../errors.js';
import { privateKeyDer } from './keys.js';
import { sha1Repeat } from './sha1-loop.js';

const OID = {
  data: '1.2.840.113549.1.7.1',
  keyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbeSha1TripleDes: '1.2.840.113549.1.12.1.3',
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
  sha1: '1.3.14.3.2.26',
} as const;

/** OpenSSL's default, for a password a person chose (`cert export --format p12`). */
const ITERATIONS = 2048;

/**
 * The iteration count for the PKCS#12 inside a profile, whose password is random (24
 * characters, ~140 bits). A count multiplies an attacker's work per guess: 2048 adds 11
 * bits to 140, which changes nothing, while costing every identity four 2048-round SHA-1
 * chains (about 2 ms in JavaScript, the largest cost of a first batch). iOS reads any count
 * (Security's p12import.c has no minimum and takes an absent MAC count as 1), as OpenSSL does.
 * 16 rather than 1, because 1 is the value some decoders treat as "absent".
 * @example
 * import { randomBytes } from 'node:crypto'
 * // A random password (as profiles use) gains nothing from a high count.
 * const password = randomBytes(18).toString('base64url')
 * const p12 = toPkcs12(certificateDer, privateKey, { password, iterations: RANDOM_PASSWORD_ITERATIONS })
 */
export const RANDOM_PASSWORD_ITERATIONS = 16;

/** RFC 7292 password encoding: BMPString, big-endian, with a two-byte terminator. */
export function pkcs12Password(password: string): Buffer {
  return Buffer.concat([Buffer.from(password, 'utf16le').swap16(), Buffer.alloc(2)]);
}

function repeatTo(src: Buffer, v: number): Buffer {
  if (!src.length) return Buffer.alloc(0);
  const len = v * Math.ceil(src.length / v);
  const out = Buffer.alloc(len);
  for (let i = 0; i < len; i++) out[i] = src[i % src.length] as number;
  return out;
}

const HASH_SIZES: Record<string, [u: number, v: number]> = {
  sha1: [20, 64],
  sha224: [28, 64],
  sha256: [32, 64],
  sha384: [48, 128],
  sha512: [64, 128],
};

/** Rounds of the PKCS#12 KDF run between two yields of {@link pkcs12KdfSteps} (about 5 ms here). */
export const PKCS12_KDF_CHUNK = 16_384;

/**
 * The RFC 7292 appendix B.2 key derivation (SHA-1 unless `hash` says otherwise).
 * `id` is 1 for a key, 2 for an IV, 3 for a MAC key.
 */
export function pkcs12Kdf(
  password: Buffer,
  salt: Buffer,
  id: 1 | 2 | 3,
  iterations: number,
  size: number,
  hash = 'sha1',
): Buffer {
  const steps = pkcs12KdfSteps(password, salt, id, iterations, size, hash);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * {@link pkcs12Kdf} in steps: it yields after every {@link PKCS12_KDF_CHUNK} rounds, so a caller
 * on a server's event loop can let other requests in between (the derivation runs in JS: Node
 * has no native PKCS#12 KDF).
 */
export function* pkcs12KdfSteps(password: Buffer, salt: Buffer, id: 1 | 2 | 3, iterations: number, size: number, hash = 'sha1'): Generator<void, Buffer, void> {
  const sizes = HASH_SIZES[hash];
  if (!sizes) throw new InputInvalid('pkcs12', `Hash "${hash}" is not supported in PKCS#12`);
  const [u, v] = sizes;
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([repeatTo(salt, v), repeatTo(password, v)]);
  const out = Buffer.alloc(size);
  for (let produced = 0; produced < size; ) {
    let A: Buffer = createHash(hash).update(D).update(I).digest();
    for (let left = iterations - 1; left > 0; ) {
      const n = Math.min(left, PKCS12_KDF_CHUNK);
      if (hash === 'sha1') A = sha1Repeat(A, n);
      else for (let r = 0; r < n; r++) A = createHash(hash).update(A).digest();
      left -= n;
      if (left > 0) yield;
    }
    A.copy(out, produced, 0, Math.min(u, size - produced));
    produced += u;
    if (produced >= size) break;
    const B = repeatTo(A, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (I[j + k] as number) + (B[k] as number) + carry;
        I[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return out;
}

/** Options of {@link toPkcs12}. */
export interface ToPkcs12Options {
  /** Non-empty: iOS and macOS read the two encodings of an empty password differently. */
  password: string;
  /** Shown in the keychain. */
  friendlyName?: string;
  /** Source of salts. Default: crypto.randomBytes. Inject only for reproducible test vectors. */
  random?: (size: number) => Buffer;
  /**
   * KDF and MAC iterations, 1 to 100,000. Default: 2048 (OpenSSL's), for a password a person
   * chose. A long random password needs no more than {@link RANDOM_PASSWORD_ITERATIONS}.
   */
  iterations?: number;
}

/**
 * Builds an iOS-compatible PKCS#12 (DER) holding exactly one identity.
 * @throws ERR_INPUT_INVALID for an empty password
 * @example
 * const p12 = toPkcs12(certificateDer, privateKey, { password: 'a random string' })
 */
export function toPkcs12(certificate: Uint8Array, privateKey: KeyObject, options: ToPkcs12Options): Buffer {
  if (!options.password) throw new InputInvalid('password', 'A PKCS#12 password must not be empty');
  const pw = pkcs12Password(options.password);
  const localKeyId = createHash('sha1').update(certificate).digest();
  const attrs = setOf(
    seq(oid(OID.localKeyId), setOf(octets(localKeyId))),
    ...(options.friendlyName ? [seq(oid(OID.friendlyName), setOf(bmpString(options.friendlyName)))] : []),
  );

  const iterations = options.iterations ?? ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 1 || iterations > 100_000) throw new InputInvalid('iterations', 'PKCS#12 iterations must be a whole number from 1 to 100,000');
  const random = options.random ?? randomBytes;
  const keySalt = random(8);
  const key = pkcs12Kdf(pw, keySalt, 1, iterations, 24);
  const iv = pkcs12Kdf(pw, keySalt, 2, iterations, 8);
  const cipher = createCipheriv('des-ede3-cbc', key, iv);
  const encryptedKey = Buffer.concat([cipher.update(privateKeyDer(privateKey)), cipher.final()]);
  const keyBag = seq(
    oid(OID.keyBag),
    explicit(0, seq(seq(oid(OID.pbeSha1TripleDes), seq(octets(keySalt), int(iterations))), octets(encryptedKey))),
    attrs,
  );
  const certBag = seq(
    oid(OID.certBag),
    explicit(0, seq(oid(OID.x509Certificate), explicit(0, octets(certificate)))),
    attrs,
  );
  const dataInfo = (safeContents: Buffer) => seq(oid(OID.data), explicit(0, octets(safeContents)));
  const authSafe = seq(dataInfo(seq(certBag)), dataInfo(seq(keyBag)));

  const macSalt = random(8);
  const macKey = pkcs12Kdf(pw, macSalt, 3, iterations, 20);
  const mac = createHmac('sha1', macKey).update(authSafe).digest();
  return seq(
    int(3),
    dataInfo(authSafe),
    seq(seq(seq(oid(OID.sha1), Buffer.from([0x05, 0x00])), octets(mac)), octets(macSalt), int(iterations)),
  );
}

/**
 * The PKCS#12 of an identity as a profile ships it: a new random password and
 * {@link RANDOM_PASSWORD_ITERATIONS}. Stores build it when an identity enters them, so that no
 * batch pays for it; generation builds it when a store has none.
 */
export function profilePkcs12(
  identity: { certificate: Uint8Array; privateKey: KeyObject },
  owner: { user: string; purpose: string },
  random: (size: number) => Buffer = randomBytes,
): { password: string; pkcs12: Buffer } {
  const password = randomPassword(random);
  // The keychain shows the friendly name: the address and what the identity is for.
  const friendlyName = `${owner.user} ${owner.purpose}`;
  return { password, pkcs12: toPkcs12(identity.certificate, identity.privateKey, { password, friendlyName, random, iterations: RANDOM_PASSWORD_ITERATIONS }) };
}

/** A random PKCS#12 password: 24 characters from an unambiguous alphabet (~140 bits). */
export function randomPassword(random: (size: number) => Buffer = randomBytes): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
  // Rejection sampling keeps every character equally likely (256 is not a multiple of 57).
  const out: string[] = [];
  while (out.length < 24) {
    for (const b of random(32)) if (b < 228 && out.length < 24) out.push(alphabet[b % 57] as string);
  }
  return out.join('');
}
