/**
 * Reading PKCS#12 files made elsewhere: OpenSSL 3's default (PBES2 with PBKDF2 and
 * AES-256-CBC, HMAC-SHA-256 MAC), the legacy forms (3DES key bags, RC2-40 certificate
 * safes, SHA-1 MAC), and unencrypted bags. Work factors are bounded before any work is
 * spent, so a hostile file cannot pin the CPU.
 *
 * @module pkcs12-read
 */
import { createDecipheriv, createHmac, createPrivateKey, pbkdf2Sync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { child, children, DerError, parseDer, readInt, readOid, TAG, type DerNode } from '../asn1/der.js';
import { InputInvalid } from '../errors.js';
import { pkcs12Kdf, pkcs12Password } from './pkcs12.js';
import { rc2Decrypt } from './forge.js';

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
} as const;

const PKCS12_PBE: Record<string, { cipher: string; keyLen: number; ivLen: number }> = {
  '1.2.840.113549.1.12.1.3': { cipher: 'des-ede3-cbc', keyLen: 24, ivLen: 8 },
  '1.2.840.113549.1.12.1.4': { cipher: 'des-ede-cbc', keyLen: 16, ivLen: 8 },
  '1.2.840.113549.1.12.1.5': { cipher: 'rc2-128', keyLen: 16, ivLen: 8 },
  '1.2.840.113549.1.12.1.6': { cipher: 'rc2-40', keyLen: 5, ivLen: 8 },
};
const PBES2_CIPHERS: Record<string, { cipher: string; keyLen: number }> = {
  '2.16.840.1.101.3.4.1.2': { cipher: 'aes-128-cbc', keyLen: 16 },
  '2.16.840.1.101.3.4.1.22': { cipher: 'aes-192-cbc', keyLen: 24 },
  '2.16.840.1.101.3.4.1.42': { cipher: 'aes-256-cbc', keyLen: 32 },
  '1.2.840.113549.3.7': { cipher: 'des-ede3-cbc', keyLen: 24 },
};
const PRF: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};
const DIGESTS: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** PKCS#12 KDF iterations run in JS, one hash each; PBKDF2 is native. */
const MAX_PKCS12_ITERATIONS = 200_000;
const MAX_PBKDF2_ITERATIONS = 5_000_000;
const MAX_BAGS = 256;

/** What a PKCS#12 file holds, and how it was protected. */
export interface Pkcs12Contents {
  keys: { key: KeyObject; localKeyId: Buffer | undefined }[];
  certificates: { der: Buffer; localKeyId: Buffer | undefined }[];
  /** Encryption schemes met (`pbes2`, `pbeWithSHAAnd3-KeyTripleDES-CBC`, ...) and the MAC digest. */
  algorithms: Set<string>;
  macDigest: string | undefined;
}

const PBE_NAMES: Record<string, string> = {
  '1.2.840.113549.1.12.1.3': 'pbeWithSHAAnd3-KeyTripleDES-CBC',
  '1.2.840.113549.1.12.1.4': 'pbeWithSHAAnd2-KeyTripleDES-CBC',
  '1.2.840.113549.1.12.1.5': 'pbeWithSHAAnd128BitRC2-CBC',
  '1.2.840.113549.1.12.1.6': 'pbeWithSHAAnd40BitRC2-CBC',
  '1.2.840.113549.1.5.13': 'pbes2',
};

class WrongPassword extends Error {}

function bounded(iterations: bigint, max: number): number {
  if (iterations < 1n || iterations > BigInt(max)) {
    throw new InputInvalid('pkcs12', `The PKCS#12 asks for ${iterations} iterations; more than ${max} is refused`);
  }
  return Number(iterations);
}

/** Decrypts with the algorithm named by `alg` (an AlgorithmIdentifier node). */
function decrypt(alg: DerNode, data: Buffer, password: string, bmp: Buffer, seen?: Set<string>): Buffer {
  const oid = readOid(child(alg, 0));
  seen?.add(PBE_NAMES[oid] ?? oid);
  const params = child(alg, 1);
  const legacy = PKCS12_PBE[oid];
  let out: Buffer | undefined;
  if (legacy) {
    const salt = child(params, 0, TAG.OCTET_STRING).value;
    const iterations = bounded(readInt(child(params, 1, TAG.INTEGER)), MAX_PKCS12_ITERATIONS);
    const key = pkcs12Kdf(bmp, salt, 1, iterations, legacy.keyLen);
    const iv = pkcs12Kdf(bmp, salt, 2, iterations, legacy.ivLen);
    if (legacy.cipher.startsWith('rc2')) {
      out = rc2Decrypt(key, iv, data, legacy.keyLen * 8);
    } else {
      try {
        const d = createDecipheriv(legacy.cipher, key, iv);
        out = Buffer.concat([d.update(data), d.final()]);
      } catch {
        out = undefined;
      }
    }
  } else if (oid === OID.pbes2) {
    const kdf = child(params, 0);
    const scheme = child(params, 1);
    if (readOid(child(kdf, 0)) !== OID.pbkdf2) throw new InputInvalid('pkcs12', 'The PKCS#12 uses a key derivation other than PBKDF2');
    const kp = children(child(kdf, 1));
    const salt = (kp[0] as DerNode).value;
    const iterations = bounded(readInt(kp[1] as DerNode), MAX_PBKDF2_ITERATIONS);
    const prfNode = kp.find((n, i) => i >= 2 && n.tag === TAG.SEQUENCE);
    const prf = prfNode ? PRF[readOid(child(prfNode, 0))] : 'sha1';
    const c = PBES2_CIPHERS[readOid(child(scheme, 0))];
    if (!prf || !c) throw new InputInvalid('pkcs12', 'The PKCS#12 uses a cipher that is not supported');
    const iv = child(scheme, 1, TAG.OCTET_STRING).value;
    // PBES2 takes the password as UTF-8 bytes (OpenSSL does the same), not as BMPString.
    const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, c.keyLen, prf);
    try {
      const d = createDecipheriv(c.cipher, key, iv);
      out = Buffer.concat([d.update(data), d.final()]);
    } catch {
      out = undefined;
    }
  } else {
    throw new InputInvalid('pkcs12', `The PKCS#12 uses an unsupported encryption (${oid})`);
  }
  if (!out) throw new WrongPassword();
  return out;
}

/** The MAC check; returns false on a mismatch. */
function macDigest(macData: DerNode): string | undefined {
  return DIGESTS[readOid(child(child(child(macData, 0), 0), 0))];
}

function macMatches(macData: DerNode, authSafe: Buffer, bmp: Buffer): boolean {
  const digestInfo = child(macData, 0);
  const hash = macDigest(macData);
  if (!hash) throw new InputInvalid('pkcs12', 'The PKCS#12 MAC uses an unsupported digest');
  const expected = child(digestInfo, 1, TAG.OCTET_STRING).value;
  const salt = child(macData, 1, TAG.OCTET_STRING).value;
  const parts = children(macData);
  const iterations = parts[2] ? bounded(readInt(parts[2]), MAX_PKCS12_ITERATIONS) : 1;
  const size = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 }[hash] ?? 20;
  const key = pkcs12Kdf(bmp, salt, 3, iterations, size, hash);
  const actual = createHmac(hash, key).update(authSafe).digest();
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

function attrLocalKeyId(bag: DerNode): Buffer | undefined {
  const attrs = children(bag).find((n, i) => i >= 2 && n.tag === TAG.SET);
  if (!attrs) return undefined;
  for (const a of children(attrs)) {
    if (readOid(child(a, 0)) === '1.2.840.113549.1.9.21') return child(child(a, 1, TAG.SET), 0).value;
  }
  return undefined;
}

function readSafeContents(der: Buffer, password: string, bmp: Buffer, out: Pkcs12Contents): void {
  for (const bag of children(parseDer(der))) {
    if (out.keys.length + out.certificates.length > MAX_BAGS) throw new InputInvalid('pkcs12', `The PKCS#12 holds more than ${MAX_BAGS} bags`);
    const type = readOid(child(bag, 0));
    const value = child(child(bag, 1, 0xa0), 0);
    const localKeyId = attrLocalKeyId(bag);
    if (type === OID.certBag) {
      if (readOid(child(value, 0)) !== OID.x509Certificate) continue;
      out.certificates.push({ der: Buffer.from(child(child(value, 1, 0xa0), 0, TAG.OCTET_STRING).value), localKeyId });
    } else if (type === OID.keyBag || type === OID.shroudedKeyBag) {
      const pkcs8 = type === OID.keyBag ? value.raw : decrypt(child(value, 0), child(value, 1, TAG.OCTET_STRING).value, password, bmp, out.algorithms);
      let key: KeyObject;
      try {
        key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
      } catch {
        throw new WrongPassword();
      }
      out.keys.push({ key, localKeyId });
    }
  }
}

/**
 * Opens a PKCS#12 file with its password.
 * @throws ERR_INPUT_INVALID for a wrong password, a damaged file or an unsupported or oversized work factor
 */
export function readPkcs12(der: Uint8Array, password: string): Pkcs12Contents {
  try {
    const pfx = parseDer(Buffer.from(der));
    const [version, authSafeInfo, macData] = children(pfx);
    if (!version || readInt(version) !== 3n || !authSafeInfo) throw new DerError('not a PKCS#12 PFX');
    if (readOid(child(authSafeInfo, 0)) !== OID.data) throw new InputInvalid('pkcs12', 'Public-key integrity PKCS#12 files are not supported');
    const authSafe = child(child(authSafeInfo, 1, 0xa0), 0, TAG.OCTET_STRING).value;
    // An empty password has two RFC 7292 encodings (zero bytes, or the 00 00 terminator); accept either.
    const candidates = password ? [pkcs12Password(password)] : [Buffer.alloc(0), pkcs12Password('')];
    let bmp = candidates[0] as Buffer;
    if (macData) {
      const match = candidates.find((c) => macMatches(macData, authSafe, c));
      if (!match) throw new WrongPassword();
      bmp = match;
    }
    const out: Pkcs12Contents = { keys: [], certificates: [], algorithms: new Set(), macDigest: macData ? macDigest(macData) : undefined };
    for (const info of children(parseDer(authSafe))) {
      const type = readOid(child(info, 0));
      const content = child(child(info, 1, 0xa0), 0);
      if (type === OID.data) {
        readSafeContents(content.value, password, bmp, out);
      } else if (type === OID.encryptedData) {
        const eci = child(content, 1, TAG.SEQUENCE);
        const parts = children(eci);
        const enc = parts[2];
        if (!enc) continue;
        // [0] IMPLICIT OCTET STRING: primitive (0x80), or constructed (0xa0) from BER encoders.
        const data = enc.tag === 0x80 ? enc.value : Buffer.concat(children(enc).map((c) => c.value));
        readSafeContents(decrypt(parts[1] as DerNode, data, password, bmp, out.algorithms), password, bmp, out);
      }
    }
    return out;
  } catch (err) {
    if (err instanceof InputInvalid) throw err;
    if (err instanceof WrongPassword) {
      throw new InputInvalid('password', password ? 'The PKCS#12 password is wrong, or the file is damaged' : 'The PKCS#12 is protected by a password, and none was given (--password-file)');
    }
    throw new InputInvalid('pkcs12', `The file is not a readable PKCS#12: ${(err as Error).message}`);
  }
}
