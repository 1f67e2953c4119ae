/**
 * Reading PKCS#12 files made elsewhere: OpenSSL 3's default (PBES2 with PBKDF2 and
 * AES-256-CBC, HMAC-SHA-256 MAC), the legacy forms (3DES key bags, RC2-40 certificate
 * safes, SHA-1 MAC), and unencrypted bags. Work is bounded before it is spent: each key
 * derivation's iterations, the number of safes and bags, and above all a {@link KdfBudget}
 * for the whole file (or the whole profile) that every derivation is charged to, so a
 * hostile file cannot pin the CPU with many cheap-looking parts. {@link readPkcs12Async}
 * never blocks the event loop: PBKDF2 runs on libuv's thread pool, the PKCS#12 KDF in steps.
 *
 * @module pkcs12-read
 */
import { createDecipheriv, createHmac, createPrivateKey, pbkdf2, pbkdf2Sync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';
import { child, children, DerError, parseDer, readInt, readOid, TAG, type DerNode } from '../asn1/der.js';
import { InputInvalid } from '../errors.js';
import { pkcs12Kdf, pkcs12KdfSteps, pkcs12Password } from './pkcs12.js';
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
/** ContentInfos (safes) in one PFX: real files have two or three. */
const MAX_SAFES = 32;

/**
 * The default {@link KdfBudget}: 4,000,000 iteration-blocks, about 1 s of one core here (PBKDF2-SHA-256
 * runs ~5 M/s, the PKCS#12 KDF ~3.5 M/s). OpenSSL's default file (2,048 iterations) costs ~10,000;
 * a file made with 1,000,000 iterations for its key, certificates and MAC fits.
 * @example
 * // One upload holding four PKCS#12 files may cost what four default reads cost, no more.
 * const budget = new KdfBudget(DEFAULT_KDF_BUDGET * 4)
 * const bundle = await readIdentityAsync(upload, { password, budget })
 */
export const DEFAULT_KDF_BUDGET = 4_000_000;

/**
 * The key-derivation work one input may cost, charged by every derivation before it runs: a
 * PKCS#12 file's MAC, key bags and encrypted safes together, or every PKCS#12 in one profile
 * when the caller shares one budget across them. Units are iterations times output blocks
 * (SHA-384 and SHA-512 count double).
 * @example
 * const budget = new KdfBudget(1_000_000)
 * const { findings } = await lintProfile(upload, { budget })
 * console.log(budget.spent, findings.filter((f) => f.rule === 'pkcs12-work'))
 */
export class KdfBudget {
  #spent = 0;
  /** @param total units this budget allows; default {@link DEFAULT_KDF_BUDGET} */
  constructor(readonly total: number = DEFAULT_KDF_BUDGET) {}
  /** Units charged so far. */
  get spent(): number {
    return this.#spent;
  }
  /**
   * Takes `units` from the budget before the work is done.
   * @throws ERR_INPUT_INVALID once the budget would be overspent (nothing is charged then)
   */
  charge(units: number): void {
    if (this.#spent + units > this.total) {
      throw new KdfBudgetExceeded( `Opening this PKCS#12 would cost more key derivation than allowed (${this.total.toLocaleString('en-US')} iterations across its MAC, keys and safes, and across the profile); refused`);
    }
    this.#spent += units;
  }
}

/** The error {@link KdfBudget.charge} throws: an ERR_INPUT_INVALID that lint tells apart from a wrong password. */
export class KdfBudgetExceeded extends InputInvalid {
  constructor(message: string) {
    super('pkcs12', message);
  }
}

/** Options of {@link readPkcs12} and {@link readPkcs12Async}. */
export interface ReadPkcs12Options {
  /** Shared across several files (a profile's payloads); default: a fresh {@link KdfBudget} for this file. */
  budget?: KdfBudget;
}

/** One key derivation the parser asks its driver for. */
type KdfStep =
  | { kind: 'pbkdf2'; password: Buffer; salt: Buffer; iterations: number; keyLen: number; digest: string }
  | { kind: 'pkcs12'; password: Buffer; salt: Buffer; id: 1 | 2 | 3; iterations: number; size: number; hash: string };

const HASH_LEN: Record<string, number> = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 };

/** What a step costs in budget units. */
function costOf(step: KdfStep): number {
  const hash = step.kind === 'pbkdf2' ? step.digest : step.hash;
  const blocks = Math.ceil((step.kind === 'pbkdf2' ? step.keyLen : step.size) / (HASH_LEN[hash] ?? 20));
  return step.iterations * blocks * (hash === 'sha384' || hash === 'sha512' ? 2 : 1);
}

/** The parser: yields each derivation it needs (charged to the budget first) and gets the bytes back. */
type Parse<T> = Generator<KdfStep, T, Buffer>;

function* derive(step: KdfStep, budget: KdfBudget): Parse<Buffer> {
  budget.charge(costOf(step));
  return yield step;
}

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
function* decrypt(alg: DerNode, data: Buffer, password: string, bmp: Buffer, budget: KdfBudget, seen?: Set<string>): Parse<Buffer> {
  const oid = readOid(child(alg, 0));
  seen?.add(PBE_NAMES[oid] ?? oid);
  const params = child(alg, 1);
  const legacy = PKCS12_PBE[oid];
  let out: Buffer | undefined;
  if (legacy) {
    const salt = child(params, 0, TAG.OCTET_STRING).value;
    const iterations = bounded(readInt(child(params, 1, TAG.INTEGER)), MAX_PKCS12_ITERATIONS);
    const key = yield* derive({ kind: 'pkcs12', password: bmp, salt, id: 1, iterations, size: legacy.keyLen, hash: 'sha1' }, budget);
    const iv = yield* derive({ kind: 'pkcs12', password: bmp, salt, id: 2, iterations, size: legacy.ivLen, hash: 'sha1' }, budget);
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
    const key = yield* derive({ kind: 'pbkdf2', password: Buffer.from(password, 'utf8'), salt, iterations, keyLen: c.keyLen, digest: prf }, budget);
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

function* macMatches(macData: DerNode, authSafe: Buffer, bmp: Buffer, budget: KdfBudget): Parse<boolean> {
  const digestInfo = child(macData, 0);
  const hash = macDigest(macData);
  if (!hash) throw new InputInvalid('pkcs12', 'The PKCS#12 MAC uses an unsupported digest');
  const expected = child(digestInfo, 1, TAG.OCTET_STRING).value;
  const salt = child(macData, 1, TAG.OCTET_STRING).value;
  const parts = children(macData);
  const iterations = parts[2] ? bounded(readInt(parts[2]), MAX_PKCS12_ITERATIONS) : 1;
  const size = { sha1: 20, sha224: 28, sha256: 32, sha384: 48, sha512: 64 }[hash] ?? 20;
  const key = yield* derive({ kind: 'pkcs12', password: bmp, salt, id: 3, iterations, size, hash }, budget);
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

function* readSafeContents(der: Buffer, password: string, bmp: Buffer, budget: KdfBudget, out: Pkcs12Contents): Parse<void> {
  for (const bag of children(parseDer(der))) {
    if (out.keys.length + out.certificates.length > MAX_BAGS) throw new InputInvalid('pkcs12', `The PKCS#12 holds more than ${MAX_BAGS} bags`);
    const type = readOid(child(bag, 0));
    const value = child(child(bag, 1, 0xa0), 0);
    const localKeyId = attrLocalKeyId(bag);
    if (type === OID.certBag) {
      if (readOid(child(value, 0)) !== OID.x509Certificate) continue;
      out.certificates.push({ der: Buffer.from(child(child(value, 1, 0xa0), 0, TAG.OCTET_STRING).value), localKeyId });
    } else if (type === OID.keyBag || type === OID.shroudedKeyBag) {
      const pkcs8 = type === OID.keyBag ? value.raw : yield* decrypt(child(value, 0), child(value, 1, TAG.OCTET_STRING).value, password, bmp, budget, out.algorithms);
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

/** The whole file, as steps. */
function* openPfx(der: Uint8Array, password: string, budget: KdfBudget): Parse<Pkcs12Contents> {
  const pfx = parseDer(Buffer.from(der));
  const [version, authSafeInfo, macData] = children(pfx);
  if (!version || readInt(version) !== 3n || !authSafeInfo) throw new DerError('not a PKCS#12 PFX');
  if (readOid(child(authSafeInfo, 0)) !== OID.data) throw new InputInvalid('pkcs12', 'Public-key integrity PKCS#12 files are not supported');
  const authSafe = child(child(authSafeInfo, 1, 0xa0), 0, TAG.OCTET_STRING).value;
  // An empty password has two RFC 7292 encodings (zero bytes, or the 00 00 terminator); accept either.
  const candidates = password ? [pkcs12Password(password)] : [Buffer.alloc(0), pkcs12Password('')];
  let bmp = candidates[0] as Buffer;
  if (macData) {
    let match: Buffer | undefined;
    for (const c of candidates) if (!match && (yield* macMatches(macData, authSafe, c, budget))) match = c;
    if (!match) throw new WrongPassword();
    bmp = match;
  }
  const out: Pkcs12Contents = { keys: [], certificates: [], algorithms: new Set(), macDigest: macData ? macDigest(macData) : undefined };
  const safes = children(parseDer(authSafe));
  if (safes.length > MAX_SAFES) throw new InputInvalid('pkcs12', `The PKCS#12 holds ${safes.length} safes; more than ${MAX_SAFES} is refused`);
  for (const info of safes) {
    const type = readOid(child(info, 0));
    const content = child(child(info, 1, 0xa0), 0);
    if (type === OID.data) {
      yield* readSafeContents(content.value, password, bmp, budget, out);
    } else if (type === OID.encryptedData) {
      const eci = child(content, 1, TAG.SEQUENCE);
      const parts = children(eci);
      const enc = parts[2];
      if (!enc) continue;
      // [0] IMPLICIT OCTET STRING: primitive (0x80), or constructed (0xa0) from BER encoders.
      const data = enc.tag === 0x80 ? enc.value : Buffer.concat(children(enc).map((c) => c.value));
      yield* readSafeContents(yield* decrypt(parts[1] as DerNode, data, password, bmp, budget, out.algorithms), password, bmp, budget, out);
    }
  }
  return out;
}

/** Our typed error for whatever went wrong reading the file. */
function readError(err: unknown, password: string): InputInvalid {
  if (err instanceof InputInvalid) return err;
  if (err instanceof WrongPassword) {
    return new InputInvalid('password', password ? 'The PKCS#12 password is wrong, or the file is damaged' : 'The PKCS#12 is protected by a password, and none was given (--password-file)');
  }
  return new InputInvalid('pkcs12', `The file is not a readable PKCS#12: ${(err as Error).message}`);
}

/**
 * Opens a PKCS#12 file with its password, on the calling thread (for a CLI or a worker; a
 * server should use {@link readPkcs12Async}). The work is bounded by the budget.
 * @throws ERR_INPUT_INVALID for a wrong password, a damaged file, an unsupported or oversized
 * work factor, or a file whose key derivations together overspend the budget
 * @example
 * const p12 = readPkcs12(readFileSync('alice.p12'), password)
 */
export function readPkcs12(der: Uint8Array, password: string, options: ReadPkcs12Options = {}): Pkcs12Contents {
  const budget = options.budget ?? new KdfBudget();
  try {
    const steps = openPfx(der, password, budget);
    let r = steps.next();
    while (!r.done) {
      const step = r.value;
      r = steps.next(step.kind === 'pbkdf2' ? pbkdf2Sync(step.password, step.salt, step.iterations, step.keyLen, step.digest) : pkcs12Kdf(step.password, step.salt, step.id, step.iterations, step.size, step.hash));
    }
    return r.value;
  } catch (err) {
    throw readError(err, password);
  }
}

const pbkdf2Async = promisify(pbkdf2);

/**
 * {@link readPkcs12} without blocking the event loop: PBKDF2 runs on libuv's thread pool and the
 * PKCS#12 KDF yields to other callbacks every few milliseconds, so a server keeps answering
 * while it opens an upload. The same budget bounds the total work.
 * @throws ERR_INPUT_INVALID as {@link readPkcs12}
 * @example
 * const budget = new KdfBudget()
 * const p12 = await readPkcs12Async(upload, password, { budget })
 */
export async function readPkcs12Async(der: Uint8Array, password: string, options: ReadPkcs12Options = {}): Promise<Pkcs12Contents> {
  const budget = options.budget ?? new KdfBudget();
  try {
    const steps = openPfx(der, password, budget);
    let r = steps.next();
    while (!r.done) {
      const step = r.value;
      let bytes: Buffer;
      if (step.kind === 'pbkdf2') {
        bytes = await pbkdf2Async(step.password, step.salt, step.iterations, step.keyLen, step.digest);
      } else {
        const g = pkcs12KdfSteps(step.password, step.salt, step.id, step.iterations, step.size, step.hash);
        let k = g.next();
        while (!k.done) {
          await nextTurn();
          k = g.next();
        }
        bytes = k.value;
      }
      r = steps.next(bytes);
    }
    return r.value;
  } catch (err) {
    throw readError(err, password);
  }
}
