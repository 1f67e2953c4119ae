/**
 * The file store: a directory (mode 0700) holding a CA, the profile-signing identity and
 * every user certificate ever issued or imported, with private keys encrypted under a key
 * derived from the passphrase. Every write is atomic; writers take a cross-process lock.
 *
 * Layout:
 * ```
 * store.json                         format, organization, KDF parameters, passphrase check, key generation
 * revocations.json                   revoked and retired serials (absent until the first)
 * ca/root.pem ca/root.key.<g>        root CA (key sealed; <g> is the key generation)
 * ca/intermediate.pem .key.<g>       issuing CA
 * signer/cert.pem signer/key.<g>     profile-signing identity
 * certs/<serial>/cert.pem key.<g> entry.json    one directory per user certificate
 * chains/<sha256>.pem                issuer certificates of imported identities
 * index.json                         a cache of the entries' facts, one line per user, for stores of over 256 entries
 * pkcs12-cache/<hash>.<g>            a user's identities as iOS-form PKCS#12 (sealed; batch runs)
 * ```
 * index.json is rewritten by whichever reader finds entries it lacks (entries never change
 * once written, so it can only lag); it vouches for the listing of certs/ only while certs/
 * is in the state it was written from (see record-index.ts). `store check` compares it to
 * the entries.
 * Changing the passphrase writes every key under generation g+1, then switches
 * store.json in one rename: a crash leaves the old keys or the new ones in force, never a mix.
 *
 * @module fs-store
 */
import { createHash, randomBytes, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { closeSync, openSync, promises as fs, readFileSync, readSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  CertificateInvalid,
  InputInvalid,
  KeyPassphraseInvalid,
  StoreEntryNotFound,
  StoreExists,
  StoreIOError,
  StoreNotInitialized,
} from '../errors.js';
import { createCertificateAuthority, createIssuingCa, createOcspResponder, createProfileSigner } from '../certs/ca.js';
import type { RevocationReason } from '../certs/crl.js';
import { checkImport, type IdentityBundle } from '../certs/import.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../certs/issue.js';
import { assertEmail } from '../certs/email.js';
import type { KeyAlgorithm } from '../certs/keys.js';
import { certificatesFrom, distinctIssuers, fingerprint, normalizeSerial, toCertificates, toPem, type CertificateInput } from '../certs/pem.js';

export { normalizeSerial };
import { certificateBasics, describeCertificate, EKU } from '../certs/x509.js';
import { caSlug, checkEmailDomains, checkPkiUrl, publicationFor, type CaRef } from '../certs/publication.js';
import { keySigner, type Signer } from '../cms/sign.js';
import { atomicDir, atomicWrite, ioError, readText } from './fs-util.js';
import { withLock } from './lock.js';
import {
  issuingPaths,
  OCSP_DIR,
  readPublishedCrl,
  responderPaths,
  signCrl,
  signerPaths,
  verifiesWith,
  type CaIssuedCertificate,
  type ResponderIdentity,
  type RevokeResult,
  type StoreCa,
} from './pki-files.js';

export type { RevokeResult, StoreCa, ResponderIdentity };
import { profilePkcs12 } from '../certs/pkcs12.js';
import { checkedIssuance, checkNewPassphrase, MIN_PASSPHRASE_LENGTH, newRecord } from './issuance.js';
import { LinkBook } from '../server/links.js';
import { RecordIndex, SERIAL, type Amendment, type Revocation } from './record-index.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams, seal, sealBytes, unseal, unsealBytes, type KdfParams, type Sealed } from './secret-box.js';
import {
  type CertificateRecord,
  type CertificateStore,
  type IssueUserCertificateOptions,
  type ListCertificatesOptions,
  type TrustChain,
  findRecord,
  planReimport,
  removalOf,
  statusOf,
} from './store.js';

const FORMAT = 'profilesmith-store';
const CHECK_AAD = 'store-check';
const CHECK_TEXT = 'profilesmith';

/** True when `key` opens the store's check value: the one test of a passphrase or a handed-over key. */
function opensCheck(key: Buffer, meta: StoreMeta): boolean {
  return unseal(key, meta.check, CHECK_AAD)?.toString() === CHECK_TEXT;
}

/** @internal */
export interface StoreMeta {
  format: typeof FORMAT;
  version: 1;
  organization: string;
  created: string;
  kdf: KdfParams;
  check: Sealed;
  keyGeneration: number;
  /** The key algorithm of the CA keys, for the CA certificates issued after init. Absent: rsa-2048. */
  keyAlgorithm?: KeyAlgorithm;
  /** PKI base URL written into certificates issued from then on (CDP, AIA). */
  pkiUrl?: string;
  /** Permitted rfc822Name subtrees of the issuing CAs (nameConstraints). */
  permittedEmailDomains?: string[];
  /** The current issuing CA's generation. Absent: 1. */
  issuing?: number;
  /** The current profile signer's serial (`signer/<serial>.pem`). Absent: `signer/cert.pem`. */
  signer?: string;
  /** The generation of the issuing CA that issued the current signer. Absent: 1. */
  signerIssuing?: number;
  /** The current signer came from an outside CA (`ca import-signer`): its issuers, by SHA-256 (chains/). */
  signerChain?: string[];
}


export { MIN_PASSPHRASE_LENGTH };

/** Options of {@link initStore}. */
export interface InitStoreOptions {
  organization: string;
  passphrase: string;
  /** Default: `rsa-2048`. */
  keyAlgorithm?: KeyAlgorithm;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** log2 of scrypt's N. Default: 17. Lower only in tests. */
  kdfCost?: number;
  /** PKI base URL (http or https): certificates then carry CRL distribution points and AIA under it. */
  pkiUrl?: string;
  /** Permitted email domains: the issuing CA gets a critical nameConstraints extension, and only these addresses are issued. */
  permittedEmailDomains?: string[];
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /**
   * fsync every write. Default: true. False suits bulk loads (a migration of thousands of
   * identities): writes stay atomic, but a power cut may lose the newest entries.
   */
  durable?: boolean;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

import type { ImportIdentityOptions, ImportIdentityResult, LifecycleStore, RemoveUserResult } from './store.js';
export type { ImportIdentityOptions, ImportIdentityResult, RemoveUserResult } from './store.js';

/** Folder of the PKCS#12 cache: one sealed file per user, `<hash of the address>.<key generation>`. */
const PKCS12_CACHE = 'pkcs12-cache';

/** One user's cached PKCS#12 files, by serial. */
type Pkcs12Bundle = Map<string, { fingerprint: string; password: string; pkcs12: Buffer }>;

/** serial, fingerprint, password, PKCS#12, each length-prefixed. */
function encodeBundle(bundle: Pkcs12Bundle): Buffer {
  const parts: Buffer[] = [];
  const field = (b: Buffer) => {
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    parts.push(n, b);
  };
  for (const [serial, e] of bundle) {
    field(Buffer.from(serial, 'latin1'));
    field(Buffer.from(e.fingerprint, 'latin1'));
    field(Buffer.from(e.password, 'utf8'));
    field(e.pkcs12);
  }
  return Buffer.concat(parts);
}

function decodeBundle(plain: Buffer): Pkcs12Bundle {
  const out: Pkcs12Bundle = new Map();
  let pos = 0;
  const field = () => {
    if (pos + 4 > plain.length) throw new Error('truncated');
    const n = plain.readUInt32BE(pos);
    if (pos + 4 + n > plain.length) throw new Error('truncated');
    pos += 4 + n;
    return plain.subarray(pos - n, pos);
  };
  while (pos < plain.length) {
    const serial = field().toString('latin1');
    const fingerprint = field().toString('latin1');
    const password = field().toString('utf8');
    out.set(serial, { fingerprint, password, pkcs12: Buffer.from(field()) });
  }
  return out;
}

/** The whole of a small file read into `buffer` (open, one read, close); empty when missing or larger. */
function readSmall(path: string, buffer: Buffer): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return n < buffer.length ? buffer.subarray(0, n) : Buffer.alloc(0);
  } catch {
    return Buffer.alloc(0);
  } finally {
    closeSync(fd);
  }
}

const sealKey = (key: Buffer, privateKey: KeyObject, rel: string) =>
  JSON.stringify(seal(key, privateKey.export({ format: 'der', type: 'pkcs8' }), rel)) + '\n';

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw ioError(dir, 'read', err);
  }
}


const exists = (p: string) => fs.stat(p).then(() => true, () => false);

function parseMeta(text: string, path: string): StoreMeta {
  try {
    const meta = JSON.parse(text) as StoreMeta;
    if (meta.format !== FORMAT || meta.version !== 1 || typeof meta.organization !== 'string' || !Number.isInteger(meta.keyGeneration)) {
      throw new Error('format');
    }
    return meta;
  } catch (cause) {
    throw new StoreIOError(path, 'read', `"${path}" is not a profilesmith store file`, { cause });
  }
}

/**
 * Creates a store: a root CA, an intermediate and a profile-signing identity.
 * Refuses a directory that already has files in it.
 * @throws ERR_STORE_EXISTS, ERR_INPUT_INVALID, ERR_STORE_IO
 * @example
 * const store = await initStore('./store', { organization: 'Example Corp', passphrase })
 */
export async function initStore(dir: string, options: InitStoreOptions): Promise<FileStore> {
  const root = resolve(dir);
  checkNewPassphrase(options.passphrase);
  if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
  const now = options.now ?? (() => new Date());
  const pkiUrl = options.pkiUrl === undefined ? undefined : checkPkiUrl(options.pkiUrl);
  const domains = checkEmailDomains(options.permittedEmailDomains ?? []);
  const ca = await createCertificateAuthority({
    organization: options.organization,
    now,
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
    ...(pkiUrl ? { pkiUrl } : {}),
    ...(domains.length ? { permittedEmailDomains: domains } : {}),
  });
  const kdf = newKdfParams(options.kdfCost ?? DEFAULT_KDF_COST);
  const key = await deriveKey(options.passphrase, kdf);
  const meta: StoreMeta = {
    format: FORMAT,
    version: 1,
    organization: options.organization.trim(),
    created: now().toISOString(),
    kdf,
    check: seal(key, Buffer.from(CHECK_TEXT), CHECK_AAD),
    keyGeneration: 1,
    ...(pkiUrl ? { pkiUrl } : {}),
    ...(domains.length ? { permittedEmailDomains: domains } : {}),
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
  };
  // Build the whole store beside its final place, then rename it in: a crash leaves nothing half made.
  const tmp = join(dirname(root), `.${randomBytes(6).toString('hex')}.profilesmith-init`);
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    await atomicDir(join(tmp, 'ca'), {
      'root.pem': { data: toPem(ca.root.certificate), mode: 0o644 },
      'root.key.1': { data: sealKey(key, ca.root.privateKey, 'ca/root.key'), mode: 0o600 },
      'intermediate.pem': { data: toPem(ca.intermediate.certificate), mode: 0o644 },
      'intermediate.key.1': { data: sealKey(key, ca.intermediate.privateKey, 'ca/intermediate.key'), mode: 0o600 },
    });
    await atomicDir(join(tmp, 'signer'), {
      'cert.pem': { data: toPem(ca.signer.certificate), mode: 0o644 },
      'key.1': { data: sealKey(key, ca.signer.privateKey, 'signer/key'), mode: 0o600 },
    });
    await fs.mkdir(join(tmp, 'certs'), { mode: 0o700 });
    await fs.mkdir(join(tmp, 'chains'), { mode: 0o700 });
    await fs.writeFile(join(tmp, 'store.json'), JSON.stringify(meta, null, 2) + '\n', { mode: 0o600 });
    if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
    await fs.rmdir(root).catch(() => {});
    await fs.rename(tmp, root);
  } catch (err) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    if (err instanceof StoreExists || err instanceof StoreIOError) throw err;
    throw ioError(root, 'create', err);
  }
  return FileStore.create(root, meta, key, now);
}

/**
 * Opens an existing store. With `passphrase`, the passphrase is checked now.
 * @throws ERR_STORE_NOT_INITIALIZED, ERR_KEY_PASSPHRASE, ERR_STORE_IO
 * @example
 * const store = await openStore('./store', { passphrase })
 */
export async function openStore(dir: string, options: OpenStoreOptions = {}): Promise<FileStore> {
  const root = resolve(dir);
  const path = join(root, 'store.json');
  let text: string;
  try {
    text = await fs.readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new StoreNotInitialized(root);
    throw ioError(path, 'read', err);
  }
  const store = FileStore.create(root, parseMeta(text, path), undefined, options.now ?? (() => new Date()), options.durable ?? true);
  if (options.passphrase !== undefined) await store.unlock(options.passphrase);
  return store;
}

/** The file store. Create it with {@link initStore} or {@link openStore}. */
export class FileStore implements LifecycleStore {
  readonly organization: string;
  #key: Buffer | undefined;
  #meta: StoreMeta;

  readonly #index: RecordIndex;
  /** CA and signer certificates never change in place: read once. */
  #certs = new Map<string, Promise<Buffer>>();
  /** Reused for cached PKCS#12 reads, which are synchronous. */
  #readBuffer: Buffer | undefined;
  #lastBundle: { user: string; bundle: Pkcs12Bundle } | undefined;
  #bundleWrites = new Map<string, Promise<void>>();
  /** The write of a user's PKCS#12 file not started yet, which further updates join. */
  #bundlePending = new Map<string, { entries: Pkcs12Bundle; settled: Promise<void> }>();
  /** CA identities by slug, decrypted once per instance. */
  #issuers = new Map<string, Promise<Identity>>();
  #metaReadAt = 0;
  /** OCSP responders by CA slug, kept while they have more than half their validity left. */
  #responders = new Map<string, Promise<ResponderIdentity>>();

  /** Use {@link openStore} or {@link initStore}: the constructor is not part of the API. */
  private constructor(
    readonly dir: string,
    meta: StoreMeta,
    key: Buffer | undefined,
    private readonly now: () => Date,
    private readonly durable = true,
  ) {
    this.organization = meta.organization;
    this.#index = new RecordIndex(dir);
    this.#meta = meta;
    this.#key = key;
  }

  /** @internal What openStore and initStore call. */
  static create(dir: string, meta: StoreMeta, key: Buffer | undefined, now: () => Date, durable = true): FileStore {
    return new FileStore(dir, meta, key, now, durable);
  }

  /** Checks the passphrase and keeps the derived key for this instance. */
  async unlock(passphrase: string): Promise<void> {
    this.#key = await this.derive(passphrase, this.#meta);
  }

  /**
   * A copy of the derived store key, for handing to worker threads in memory so that each
   * does not run scrypt again (about 0.4 s each at the default cost).
   * @internal
   */
  derivedKey(): Buffer {
    return Buffer.from(this.requireKey('hand the key to a worker'));
  }

  /**
   * Unlocks with a key from {@link FileStore.derivedKey}, checked like a passphrase.
   * @internal
   */
  unlockWithKey(key: Uint8Array): void {
    const k = Buffer.from(key);
    if (!opensCheck(k, this.#meta)) throw new KeyPassphraseInvalid(this.dir, `The key for the store at "${this.dir}" is wrong`);
    this.#key = k;
  }

  private async derive(passphrase: string, meta: StoreMeta): Promise<Buffer> {
    let key: Buffer;
    try {
      key = await deriveKey(passphrase, meta.kdf);
    } catch (cause) {
      throw new StoreIOError(this.dir, 'read', 'The store file has unusable key-derivation parameters', { cause });
    }
    if (!opensCheck(key, meta)) throw new KeyPassphraseInvalid(this.dir, `The passphrase for the store at "${this.dir}" is wrong`);
    return key;
  }

  private requireKey(what: string): Buffer {
    if (!this.#key) throw new KeyPassphraseInvalid(this.dir, `The store passphrase is needed to ${what}`);
    return this.#key;
  }

  /**
   * The identity as an iOS-form PKCS#12, built once and kept in the store, sealed like the
   * keys (AES-256-GCM under the store key). A user's identities share one file, so a profile
   * costs one read however many identities it ships. Each is kept with its certificate's
   * fingerprint and used only while that matches; a new passphrase (new key generation) makes
   * the old files unreadable, and they are deleted with the old keys.
   * Batch runs use it: the PKCS#12 key derivation is the per-user cost once signing is native.
   */
  async cachedPkcs12(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    const s = normalizeSerial(serial);
    this.requireKey('use private keys');
    const record = await this.#index.get(s);
    const hit = this.readBundle(record.user.toLowerCase()).get(s);
    if (hit && hit.fingerprint === record.fingerprint) return { password: hit.password, pkcs12: hit.pkcs12 };
    const built = build(await this.getIdentity(s));
    await this.storePkcs12(record, built);
    return built;
  }

  /**
   * Keeps a built PKCS#12 in its user's cache file. A profile builds its identities
   * concurrently: the updates of one user's file that are waiting join into one write (one file
   * created instead of one per identity), and writes go one after another. Across processes the
   * last rename wins, which costs at most a rebuild.
   */
  private async storePkcs12(record: CertificateRecord, built: { password: string; pkcs12: Buffer }): Promise<void> {
    const user = record.user.toLowerCase();
    const path = this.bundlePath(user);
    let pending = this.#bundlePending.get(path);
    if (!pending) {
      const entries: Pkcs12Bundle = new Map();
      const previous = this.#bundleWrites.get(path) ?? Promise.resolve();
      // setImmediate: the other identities of the profile, built in this turn, join this write.
      const write = previous.then(() => new Promise<void>((r) => setImmediate(r))).then(async () => {
        this.#bundlePending.delete(path);
        const bundle = this.readBundle(user, true);
        for (const [k, v] of entries) bundle.set(k, v);
        // A cache: atomic but not fsynced (losing it costs one rebuild).
        await fs.mkdir(join(this.dir, PKCS12_CACHE), { recursive: true, mode: 0o700 });
        await atomicWrite(path, sealBytes(this.requireKey('use private keys'), encodeBundle(bundle), this.bundleAad(user)), 0o600, false);
      });
      const settled = write.catch(() => {});
      pending = { entries, settled };
      this.#bundlePending.set(path, pending);
      this.#bundleWrites.set(path, settled);
    }
    pending.entries.set(record.serial, { fingerprint: record.fingerprint, password: built.password, pkcs12: built.pkcs12 });
    const { settled } = pending;
    await settled;
    if (this.#bundleWrites.get(path) === settled) this.#bundleWrites.delete(path);
  }

  private bundlePath(user: string): string {
    const name = createHash('sha256').update(user).digest('hex').slice(0, 32);
    return join(this.dir, PKCS12_CACHE, `${name}.${this.#meta.keyGeneration}`);
  }

  /** The address and the key generation are bound to the file: another user's file does not open. */
  private bundleAad(user: string): string {
    return `${PKCS12_CACHE}|${this.#meta.keyGeneration}|${user}`;
  }

  /**
   * One user's cached PKCS#12 files (empty when there are none or they do not open), read
   * with one open/read/close. The last one read is kept: a profile asks for each identity.
   */
  private readBundle(user: string, fresh = false): Pkcs12Bundle {
    // Kept by address (a hit needs no hash); a passphrase change clears it.
    if (!fresh && this.#lastBundle?.user === user) return this.#lastBundle.bundle;
    let bundle: Pkcs12Bundle = new Map();
    const plain = unsealBytes(this.requireKey('use private keys'), readSmall(this.bundlePath(user), (this.#readBuffer ??= Buffer.allocUnsafe(1024 * 1024))), this.bundleAad(user));
    if (plain) {
      try {
        bundle = decodeBundle(plain);
      } catch {
        bundle = new Map();
      }
    }
    this.#lastBundle = { user, bundle };
    return bundle;
  }

  /** Runs a write under the store lock, after checking no passphrase change happened meanwhile. */
  private async write<T>(fn: () => Promise<T>): Promise<T> {
    this.#index.invalidate();
    return withLock(this.dir, async () => {
      const path = join(this.dir, 'store.json');
      const current = parseMeta(await readText(path), path);
      if (current.keyGeneration !== this.#meta.keyGeneration) {
        throw new StoreIOError(path, 'write', 'The store passphrase was changed while this ran; run it again');
      }
      // Decisions under the lock see the store as it is now (another process may have rotated a CA).
      this.#meta = current;
      this.#metaReadAt = Date.now();
      try {
        return await fn();
      } finally {
        this.#index.invalidate();
      }
    });
  }

  private async readKey(rel: string): Promise<KeyObject> {
    const key = this.requireKey('use private keys');
    const path = join(this.dir, `${rel}.${this.#meta.keyGeneration}`);
    let sealed: Sealed;
    try {
      sealed = JSON.parse(await readText(path)) as Sealed;
    } catch (cause) {
      if (cause instanceof StoreIOError) throw cause;
      throw new StoreIOError(path, 'read', `The key file "${path}" is damaged`, { cause });
    }
    const der = unseal(key, sealed, rel);
    if (!der) throw new StoreIOError(path, 'decrypt', `The key file "${path}" does not decrypt: it is damaged or was moved`);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  private readCert(rel: string): Promise<Buffer> {
    let hit = this.#certs.get(rel);
    if (!hit) {
      hit = Promise.resolve().then(() => {
        let text: string;
        try {
          text = readFileSync(join(this.dir, rel), 'utf8');
        } catch (err) {
          throw ioError(join(this.dir, rel), 'read', err);
        }
        const der = certificatesFrom(text)[0];
        if (!der) throw new StoreIOError(join(this.dir, rel), 'read', `"${join(this.dir, rel)}" holds no certificate`);
        return der;
      });
      hit.catch(() => this.#certs.delete(rel));
      if (this.#certs.size > 4096) this.#certs.clear();
      this.#certs.set(rel, hit);
    }
    return hit;
  }

  /** Re-reads store.json at most once a second, so a long-running server sees a rotation. */
  private async freshMeta(): Promise<StoreMeta> {
    if (Date.now() - this.#metaReadAt < 1000) return this.#meta;
    const path = join(this.dir, 'store.json');
    const current = parseMeta(await readText(path), path);
    this.#metaReadAt = Date.now();
    if (current.keyGeneration === this.#meta.keyGeneration) this.#meta = current;
    return this.#meta;
  }

  /** The store's CA certificates: the root and every issuing CA generation, oldest first. */
  async caCertificates(): Promise<StoreCa[]> {
    const meta = await this.freshMeta();
    const out: StoreCa[] = [await this.caInfo('root', 'ca/root.pem')];
    for (let g = 1; g <= (meta.issuing ?? 1); g++) out.push(await this.caInfo(g, issuingPaths(g).cert));
    return out;
  }

  private async caInfo(ca: CaRef, rel: string): Promise<StoreCa> {
    const certificate = await this.readCert(rel);
    const info = await describeCertificate(certificate);
    return { ca, slug: caSlug(ca), certificate, serial: normalizeSerial(info.serial), subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter };
  }

  /** The issuing CA generation that issued a record of this store's CA. */
  private async issuingOf(record: { issuer: string }): Promise<number> {
    const cas = await this.caCertificates();
    const hit = cas.find((c) => c.ca !== 'root' && c.subject === record.issuer);
    return hit ? (hit.ca as number) : 1;
  }

  /**
   * The root, and the issuing CAs a device needs: the current one first, then each older one
   * that is neither revoked nor expired and still has live certificates (or issued the signer).
   */
  async trustChain(): Promise<TrustChain> {
    const meta = await this.freshMeta();
    const current = meta.issuing ?? 1;
    const root = await this.readCert('ca/root.pem');
    if (current === 1) return { roots: [root], intermediates: [await this.readCert('ca/intermediate.pem')] };
    const cas = (await this.caCertificates()).filter((c) => c.ca !== 'root');
    const revoked = await this.revokedSerials();
    const now = this.now();
    const live = new Set<string>();
    for (const r of await this.listCertificates()) if (r.source === 'issued' && statusOf(r, now) === 'valid') live.add(r.issuer);
    const keep = cas.filter((c) => c.ca === current || c.ca === (meta.signerIssuing ?? 1) || (!revoked.has(c.serial) && c.notAfter > now && live.has(c.subject)));
    keep.sort((a, b) => (a.ca === current ? -1 : b.ca === current ? 1 : (b.ca as number) - (a.ca as number)));
    return { roots: [root], intermediates: keep.map((c) => c.certificate) };
  }

  /** The issuers of a stored certificate, as far as the store knows them (leaf-most first). */
  async issuerChain(serial: string): Promise<Buffer[]> {
    const record = await this.#index.get(normalizeSerial(serial));
    if (record.source === 'issued') {
      const gen = (this.#meta.issuing ?? 1) === 1 ? 1 : await this.issuingOf(record);
      return [await this.readCert(issuingPaths(gen).cert), await this.readCert('ca/root.pem')];
    }
    return Promise.all([...new Set([...(record.chain ?? []), ...(record.addedChain ?? [])])].map((fp) => this.readCert(`chains/${fp}.pem`)));
  }

  async profileSigner(): Promise<Signer> {
    const meta = await this.freshMeta();
    const paths = signerPaths(meta);
    const [certificate, key, chain] = await Promise.all([
      this.readCert(paths.cert),
      this.readKey(paths.key),
      meta.signerChain ? Promise.all(meta.signerChain.map((fp) => this.readCert(`chains/${fp}.pem`))) : Promise.all([this.readCert(issuingPaths(meta.signerIssuing ?? 1).cert)]),
    ]);
    const { serial } = certificateBasics(certificate);
    if ((await this.#index.revocations()).some((r) => r.serial === serial && r.kind === 'revoked')) {
      throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked; issue a new one with `profilesmith ca rotate-signer`');
    }
    return keySigner({ key, certificate, chain });
  }

  /** Serials revoked by this store's CAs (the signer's and issuing CAs' included), for `verify`. */
  async revokedSerials(): Promise<Set<string>> {
    return new Set((await this.#index.revocations()).filter((r) => r.kind === 'revoked').map((r) => r.serial));
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    return this.#index.list(options);
  }

  /**
   * Reads the record index now. A batch does it while scrypt runs on the threadpool.
   * @internal
   */
  loadIndex(): Promise<void> {
    return this.#index.load();
  }

  /**
   * @internal Records the caller already holds (a batch worker gets each user's records
   * from the main thread), so single lookups need no disk read and no full index.
   */
  remember(records: CertificateRecord[]): void {
    this.#index.remember(records);
  }

  /** A record by serial or SHA-256 fingerprint. */
  async findCertificate(serialOrFingerprint: string): Promise<CertificateRecord> {
    const q = serialOrFingerprint.toLowerCase().replace(/:/g, '');
    if (/^[0-9a-f]{64}$/.test(q)) {
      const hit = (await this.listCertificates()).find((r) => r.fingerprint === q);
      if (hit) return hit;
    }
    try {
      return await this.#index.read(normalizeSerial(q));
    } catch (err) {
      // A unique prefix of 6 or more hex digits names a serial, as findRecord reads it.
      if (!(err instanceof StoreEntryNotFound) || !/^[0-9a-f]{6,63}$/.test(q)) throw err;
      try {
        return findRecord(await this.listCertificates(), serialOrFingerprint);
      } catch (e) {
        throw e instanceof StoreEntryNotFound ? err : e;
      }
    }
  }

  async getCertificate(serial: string): Promise<Buffer> {
    const s = normalizeSerial(serial);
    await this.#index.get(s);
    return this.readCert(`certs/${s}/cert.pem`);
  }

  async getIdentity(serial: string): Promise<Identity> {
    const s = normalizeSerial(serial);
    const certificate = await this.getCertificate(s);
    return { certificate, privateKey: await this.readKey(`certs/${s}/key`) };
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    return (await this.issue(options, false)).record;
  }

  /**
   * Issues a certificate unless the user already holds a valid one of the purpose. The
   * decision is made under the store lock, so any number of concurrent runs over the same
   * users leave exactly one new certificate per user and purpose.
   */
  async issueCertificateIfMissing(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }> {
    return this.issue(options, true);
  }

  private async validHeld(user: string, purpose: CertificatePurpose): Promise<CertificateRecord | undefined> {
    const now = this.now();
    return (await this.listCertificates({ user, purpose })).find((r) => statusOf(r, now) === 'valid');
  }

  /** What issuing would refuse, before any key is made: the address, the name, the CA's permitted domains. */
  async checkIssuance(options: IssueUserCertificateOptions): Promise<void> {
    await this.checkedUser(options, await this.freshMeta());
  }

  private async checkedUser(options: IssueUserCertificateOptions, meta: StoreMeta): Promise<string> {
    return checkedIssuance(options, meta.permittedEmailDomains ?? []);
  }

  private async issue(options: IssueUserCertificateOptions, ifMissing: boolean): Promise<{ record: CertificateRecord; issued: boolean }> {
    this.requireKey('issue certificates');
    const meta = await this.freshMeta();
    const user = await this.checkedUser(options, meta);
    if (ifMissing) {
      const held = await this.validHeld(user, options.purpose);
      if (held) return { record: held, issued: false };
    }
    const gen = meta.issuing ?? 1;
    const publication = publicationFor(meta.pkiUrl, gen);
    // The issuing key is decrypted once per instance: issue-batch issues thousands.
    const identity = await issueCertificate(await this.issuerIdentity(gen), {
      purpose: options.purpose,
      email: user,
      name: options.name,
      now: this.now,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
      ...(publication ? { publication } : {}),
    });
    let existing: CertificateRecord | undefined;
    const guard = ifMissing
      ? async () => {
          this.#index.rescan();
          return !(existing = await this.validHeld(user, options.purpose));
        }
      : undefined;
    const { record } = await this.addEntry(identity, user, options.purpose, 'issued', [], guard);
    if (existing) return { record: existing, issued: false };
    await this.prebuildPkcs12(record, identity);
    return { record, issued: true };
  }

  /**
   * Builds the identity's profile PKCS#12 as it enters the store (beside a key generation of
   * ~170 ms it costs ~0.1 ms), sealed in the PKCS#12 cache, so that no batch, not even the first,
   * builds one. A cache: if writing it fails, generation builds it on demand.
   */
  private async prebuildPkcs12(record: CertificateRecord, identity: Identity): Promise<void> {
    try {
      // The record and identity in hand: no index lookup, no key decrypted again.
      await this.storePkcs12(record, profilePkcs12(identity, record));
    } catch {
      // on demand, later
    }
  }

  /**
   * Issues a new certificate for the user and purpose, named like the newest one; the old
   * one stays in the history.
   * @throws ERR_STORE_ENTRY_NOT_FOUND when the user holds no certificate of that purpose
   */
  async renewCertificate(user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
    const newest = (await this.listCertificates({ user, purpose })).at(-1);
    if (!newest) throw new StoreEntryNotFound(user, 'user', `User "${user}" holds no ${purpose} certificate to renew`);
    const info = await describeCertificate(await this.getCertificate(newest.serial));
    return this.issueCertificate({ user: newest.user, name: info.commonName ?? newest.user, purpose, ...(days ? { days } : {}) });
  }

  /**
   * Takes in an identity issued elsewhere, after {@link checkImport}. The same certificate
   * again is a no-op (`duplicate: true`).
   * @throws ERR_CERT_INVALID, ERR_KEY_UNSUPPORTED, ERR_INPUT_INVALID
   */
  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    assertEmail(options.user);
    this.requireKey('store keys');
    const check = await checkImport(bundle, {
      user: options.user,
      purpose: options.purpose,
      now: this.now(),
      ...(options.strict ? { strict: true } : {}),
    });
    const leafFp = check.info.fingerprint;
    const chain = distinctIssuers(leafFp, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
    const existing = (await this.listCertificates()).find((r) => r.fingerprint === leafFp);
    if (existing) return this.amendEntry(existing, options.purpose, chain, check.info.keyUsage, check.warnings);
    const { record } = await this.addEntry(
      { certificate: bundle.certificate, privateKey: bundle.privateKey },
      check.email,
      options.purpose,
      'imported',
      chain,
    );
    await this.prebuildPkcs12(record, { certificate: bundle.certificate, privateKey: bundle.privateKey });
    return { record, duplicate: false, warnings: check.warnings };
  }

  /**
   * A certificate imported again: for its other purpose (a dual-use certificate, which
   * checkImport has found fit for it), or with issuer certificates the entry lacks. Both are
   * amendments in revocations.json, since entry.json never changes.
   */
  private async amendEntry(existing: CertificateRecord, purpose: CertificatePurpose, chain: Buffer[], keyUsage: string[], warnings: string[]): Promise<ImportIdentityResult> {
    const serial = existing.serial;
    const { alsoPurpose: otherPurpose, addChain: more } = planReimport(existing, purpose, chain, keyUsage);
    if (!otherPurpose && !more.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
    await this.write(async () => {
      await this.writeChains(more);
      const file = await this.#index.overlayFile();
      const prior = file.amendments.find((a) => a.serial === serial);
      const amendment: Amendment = {
        serial,
        date: prior?.date ?? this.now().toISOString(),
        ...(otherPurpose || prior?.alsoPurpose ? { alsoPurpose: (otherPurpose ?? prior?.alsoPurpose)! } : {}),
        ...(more.length || prior?.chain?.length ? { chain: [...new Set([...(prior?.chain ?? []), ...more.map((d) => fingerprint(d))])] } : {}),
      };
      await this.writeOverlay(file.entries, [...file.amendments.filter((a) => a !== prior), amendment]);
    });
    const record = await this.#index.get(serial);
    return { record, duplicate: true, added: { ...(otherPurpose ? { purpose: otherPurpose } : {}), chain: more.length }, warnings };
  }

  /** Records an identity under its serial, atomically and under the store lock; `guard` (run under the lock) may veto it. */
  private async addEntry(
    identity: Identity,
    user: string,
    purpose: CertificatePurpose,
    source: CertificateRecord['source'],
    chain: Buffer[],
    guard?: () => Promise<boolean>,
  ): Promise<{ record: CertificateRecord }> {
    const key = this.requireKey('store keys');
    const record = await newRecord(identity.certificate, { user, purpose, source, chain, now: this.now() });
    const serial = record.serial;
    await this.write(async () => {
      if (guard && !(await guard())) return;
      const path = join(this.dir, 'certs', serial);
      if (await exists(path)) {
        throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
      }
      await this.writeChains(chain);
      await atomicDir(path, {
        'cert.pem': { data: toPem(identity.certificate), mode: 0o644 },
        [`key.${this.#meta.keyGeneration}`]: { data: sealKey(key, identity.privateKey, `certs/${serial}/key`), mode: 0o600 },
        'entry.json': { data: JSON.stringify(record, null, 2) + '\n', mode: 0o644 },
      }, this.durable);
    });
    return { record };
  }

  /**
   * Adds revocations (under the lock the caller holds). A serial already revoked stays as it
   * was; a retired one becomes revoked. Returns the items that changed something.
   */
  private async putRevocations(items: Revocation[]): Promise<Revocation[]> {
    const entries = await this.#index.revocations();
    const changed: Revocation[] = [];
    for (const item of items) {
      const at = entries.findIndex((e) => e.serial === item.serial);
      if (at < 0) entries.push(item);
      else if (entries[at]!.kind === 'retired' && item.kind === 'revoked') entries[at] = item;
      else continue;
      changed.push(item);
    }
    if (changed.length) await this.writeOverlay(entries, (await this.#index.overlayFile()).amendments);
    return changed;
  }

  /** Issuer certificates into chains/ (by SHA-256), those not there yet; under the lock the caller holds. */
  private async writeChains(ders: readonly Buffer[]): Promise<void> {
    await fs.mkdir(join(this.dir, 'chains'), { recursive: true, mode: 0o700 });
    for (const der of ders) {
      const p = join(this.dir, 'chains', `${fingerprint(der)}.pem`);
      if (!(await exists(p))) await atomicWrite(p, toPem(der), 0o644);
    }
  }

  /** revocations.json: the revocations, and the amendments of entries (see record-index.ts). */
  private async writeOverlay(entries: Revocation[], amendments: Amendment[]): Promise<void> {
    const body = { version: 1, entries, ...(amendments.length ? { amendments } : {}) };
    await atomicWrite(join(this.dir, 'revocations.json'), JSON.stringify(body, null, 2) + '\n', 0o644);
    this.#index.invalidate();
  }

  /** The certificates the store's CAs issued for themselves: profile signers (current and past) and OCSP responders. */
  private async caIssued(): Promise<CaIssuedCertificate[]> {
    const out: CaIssuedCertificate[] = [];
    const cas = await this.caCertificates();
    const add = async (rel: string, kind: CaIssuedCertificate['kind']) => {
      const der = await this.readCert(rel).catch(() => undefined);
      if (!der) return;
      const info = await describeCertificate(der);
      const issuer = cas.find((c) => c.subject === info.issuer && der && verifiesWith(der, c.certificate));
      // An imported signer is an outside CA's: not ours to revoke or to answer for.
      if (issuer) out.push({ serial: normalizeSerial(info.serial), kind, ca: issuer.ca, certificate: der });
    };
    for (const n of (await fs.readdir(join(this.dir, 'signer')).catch(() => [] as string[])).sort()) if (n.endsWith('.pem')) await add(`signer/${n}`, 'signer');
    for (const n of (await fs.readdir(join(this.dir, OCSP_DIR)).catch(() => [] as string[])).sort()) if (n.endsWith('.pem')) await add(`${OCSP_DIR}/${n}`, 'responder');
    return out;
  }

  /**
   * Revokes a certificate issued by this store's CAs: a user certificate (retired ones too),
   * a profile signer, an OCSP responder, or an older issuing CA that no longer has live
   * certificates (on the root's CRL). Only what the CRL of its issuer will list is revoked.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID for an outside CA's certificate, the
   * root, the current issuing CA, or an issuing CA with live certificates
   */
  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    const s = normalizeSerial(serial);
    const date = this.now().toISOString();
    const meta = await this.freshMeta();
    const known = new Map((await this.#index.revocations()).filter((r) => r.kind === 'revoked').map((r) => [r.serial, r]));
    const result = (kind: RevokeResult['kind'], ca: CaRef, record?: CertificateRecord): Promise<RevokeResult> => this.write(async () => {
      // Decided under the lock: a revocation by another process meanwhile counts as prior.
      if (!known.has(s) && (await this.putRevocations([{ serial: s, date, reason, kind: 'revoked', ca: caSlug(ca) }])).length) {
        return { serial: s, kind, ca: caSlug(ca), already: false, revoked: { date, reason }, ...(record ? { record: { ...record, revoked: { date, reason } } } : {}) };
      }
      const prior = (await this.#index.revocations()).find((r) => r.serial === s && r.kind === 'revoked')!;
      return { serial: s, kind, ca: caSlug(ca), already: true, revoked: { date: prior.date, reason: prior.reason }, ...(record ? { record } : {}) };
    });
    const cas = await this.caCertificates();
    const ca = cas.find((c) => c.serial === s);
    if (ca) {
      if (ca.ca === 'root') throw new CertificateInvalid('root', 'The root CA cannot revoke itself; remove it from the devices that trust it instead');
      if (ca.ca === (meta.issuing ?? 1)) throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} is the current one; run \`profilesmith ca rotate-issuing\` first`);
      const now = this.now();
      const live = (await this.listCertificates()).filter((r) => r.source === 'issued' && r.issuer === ca.subject && statusOf(r, now) === 'valid').length;
      const signerLive = (meta.signerIssuing ?? 1) === ca.ca ? 1 : 0;
      if (live + signerLive > 0 && !known.has(s)) {
        throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} still has ${live} live user certificate(s)${signerLive ? ' and the profile signer' : ''}; revoke or let them expire first`);
      }
      return result('issuing-ca', 'root');
    }
    const own = (await this.caIssued()).find((c) => c.serial === s);
    if (own) return result(own.kind, own.ca);
    const record = await this.#index.read(s);
    if (record.source !== 'issued') {
      throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
    }
    return result('user', await this.issuingOf(record), record);
  }

  /**
   * Unenrollment: takes every certificate of the user out of generation. With `revoke`,
   * certificates of this store's CA are revoked (`cessationOfOperation`), retired ones
   * included; those of outside CAs, which we cannot revoke, are marked retired.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
   */
  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    const all = await this.listCertificates({ user });
    if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
    const date = this.now().toISOString();
    const revoked = all.filter((r) => removalOf(r, options) === 'revoke');
    const retired = all.filter((r) => removalOf(r, options) === 'retire');
    const slugs = await Promise.all(revoked.map(async (r) => caSlug(await this.issuingOf(r))));
    const changed = await this.write(() =>
      this.putRevocations([
        ...revoked.map((r, i) => ({ serial: r.serial, date, reason: 'cessationOfOperation' as const, kind: 'revoked' as const, ca: slugs[i]! })),
        ...retired.map((r) => ({ serial: r.serial, date, reason: 'retired' as const, kind: 'retired' as const })),
      ]),
    );
    const did = new Set(changed.map((c) => c.serial));
    return { revoked: revoked.filter((r) => did.has(r.serial)), retired: retired.filter((r) => did.has(r.serial)) };
  }

  /**
   * A DER CRL signed by one of the store's CAs (default: the current issuing CA), listing
   * every serial it revoked with reason and date; its CRL number is one more than the last
   * this store signed for that CA (kept under the lock), so numbers strictly increase.
   * The root's CRL lists revoked issuing CAs (an ARL).
   * @example
   * await writeFile('crl.der', await store.createCrl({ nextUpdateMs: 7 * 86400_000 }))
   */
  async createCrl(options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
    const meta = await this.freshMeta();
    const ca = options.ca ?? meta.issuing ?? 1;
    if (ca !== 'root' && (ca < 1 || ca > (meta.issuing ?? 1))) throw new InputInvalid('ca', `This store has no issuing CA ${caSlug(ca)}`);
    const issuer = await this.caIdentity(ca);
    return this.write(async () => {
      const revocations = await this.#index.revocations();
      return (await signCrl(this.dir, ca, issuer, revocations, this.now(), options.nextUpdateMs ?? 7 * 86_400_000)).der;
    });
  }

  /**
   * The CRL a relying party fetches for `ca`: the one last signed while it still lists
   * exactly the current revocations and less than half its validity has passed, else a
   * newly signed one. A revocation is on the very next fetch.
   */
  async publishedCrl(ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
    const revocations = await this.#index.revocations();
    const now = this.now();
    const cached = await readPublishedCrl(this.dir, ca, revocations, now);
    if (cached) return cached;
    const issuer = await this.caIdentity(ca);
    return this.write(async () => {
      const fresh = await this.#index.revocations();
      const again = await readPublishedCrl(this.dir, ca, fresh, this.now());
      if (again) return again;
      return (await signCrl(this.dir, ca, issuer, fresh, this.now(), options.validityMs ?? 7 * 86_400_000)).der;
    });
  }

  /** The issuing CA's certificate and key (default: the current one), decrypted once per instance; needs the passphrase. */
  async issuerIdentity(generation?: number): Promise<Identity> {
    return this.caIdentity(generation ?? (await this.freshMeta()).issuing ?? 1);
  }

  /** A CA's certificate and key, decrypted once per instance. */
  private async caIdentity(ca: CaRef): Promise<Identity> {
    const slug = caSlug(ca);
    let hit = this.#issuers.get(slug);
    if (!hit) {
      const paths = ca === 'root' ? { cert: 'ca/root.pem', key: 'ca/root.key' } : issuingPaths(ca);
      hit = Promise.all([this.readCert(paths.cert), this.readKey(paths.key)]).then(([certificate, privateKey]) => ({ certificate, privateKey }));
      hit.catch(() => this.#issuers.delete(slug));
      this.#issuers.set(slug, hit);
    }
    return hit;
  }

  #links: LinkBook | undefined;
  /** The store's one-time download links (`links.json`, changed under the store lock). */
  get links(): LinkBook {
    return (this.#links ??= new LinkBook(this.dir, this.now));
  }

  /** The PKI base URL certificates are issued with, if any. */
  get pkiUrl(): string | undefined {
    return this.#meta.pkiUrl;
  }

  /** The email domains the issuing CA may issue for (empty: any). */
  get permittedEmailDomains(): readonly string[] {
    return this.#meta.permittedEmailDomains ?? [];
  }

  /** Writes store.json (under the lock the caller holds). */
  private async putMeta(meta: StoreMeta): Promise<void> {
    await atomicWrite(join(this.dir, 'store.json'), JSON.stringify(meta, null, 2) + '\n', 0o600);
    this.#meta = meta;
    this.#metaReadAt = Date.now();
  }

  /**
   * Sets (or, with undefined, clears) the PKI base URL. It applies to certificates issued
   * from then on; those issued before keep the URLs they carry.
   * @throws ERR_INPUT_INVALID for a URL that is not http(s)
   */
  async setPkiUrl(url: string | undefined): Promise<string | undefined> {
    const checked = url === undefined ? undefined : checkPkiUrl(url);
    await this.write(async () => {
      const { pkiUrl: _old, ...rest } = this.#meta;
      await this.putMeta({ ...rest, ...(checked ? { pkiUrl: checked } : {}) });
    });
    return checked;
  }

  private caOptions() {
    const m = this.#meta;
    return { organization: m.organization, now: this.now, ...(m.keyAlgorithm ? { keyAlgorithm: m.keyAlgorithm } : {}), ...(m.pkiUrl ? { pkiUrl: m.pkiUrl } : {}) };
  }

  /**
   * A new profile-signing identity from the current issuing CA; the previous signer is
   * revoked (superseded) and its key deleted. Profiles signed from then on verify with the new one.
   */
  async rotateSigner(): Promise<{ previous: string; serial: string }> {
    this.requireKey('rotate the profile signer');
    return this.write(() => this.rotateSignerLocked());
  }

  private async rotateSignerLocked(): Promise<{ previous: string; serial: string }> {
    const meta = this.#meta;
    const key = this.requireKey('rotate the profile signer');
    const gen = meta.issuing ?? 1;
    const oldPaths = signerPaths(meta);
    const previous = normalizeSerial(certificateBasics(await this.readCert(oldPaths.cert)).serial);
    const signer = await createProfileSigner(await this.caIdentity(gen), gen, this.caOptions());
    const serial = normalizeSerial(certificateBasics(signer.certificate).serial);
    const paths = signerPaths({ signer: serial });
    await atomicWrite(join(this.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, signer.privateKey, paths.key), 0o600);
    await atomicWrite(join(this.dir, paths.cert), toPem(signer.certificate), 0o644);
    const { signerChain: outside, ...rest } = meta;
    await this.putMeta({ ...rest, signer: serial, signerIssuing: gen });
    // An imported signer belongs to an outside CA, which alone can revoke it.
    if (!outside) await this.putRevocations([{ serial: previous, date: this.now().toISOString(), reason: 'superseded', kind: 'revoked', ca: caSlug(meta.signerIssuing ?? 1) }]);
    await fs.rm(join(this.dir, `${oldPaths.key}.${meta.keyGeneration}`), { force: true });
    return { previous, serial };
  }

  /**
   * Makes an identity from an outside CA the profile signer (an organization's certificate from
   * a publicly trusted CA: profiles then show "Verified" on any iPhone without a trust profile).
   * The key is sealed like every other; the issuers are kept for the signature. The store's own
   * previous signer is revoked (superseded).
   * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, or one without digitalSignature
   */
  async importSigner(bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
    const key = this.requireKey('import a signer');
    const info = await describeCertificate(bundle.certificate);
    const now = this.now();
    if (info.isCA) throw new CertificateInvalid('is-ca', 'A CA certificate cannot sign profiles; give the leaf');
    if (now > info.notAfter || now < info.notBefore) throw new CertificateInvalid('expired', `The certificate is valid ${info.notBefore.toISOString().slice(0, 10)} to ${info.notAfter.toISOString().slice(0, 10)}, not now`);
    if (info.keyUsage.length && !info.keyUsage.includes('digitalSignature')) throw new CertificateInvalid('key-usage', 'The certificate does not allow digitalSignature, which signing a profile needs');
    const warnings: string[] = [];
    const eku = info.extendedKeyUsage;
    if (eku.length && !eku.includes(EKU.emailProtection) && !eku.includes('2.5.29.37.0')) {
      warnings.push('No emailProtection EKU: iOS accepts the signer, but `openssl cms -verify` needs `-purpose any` for it');
    }
    const fp = info.fingerprint;
    const chain = distinctIssuers(fp, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
    const serial = normalizeSerial(info.serial);
    return this.write(async () => {
      const meta = this.#meta;
      const oldPaths = signerPaths(meta);
      const previous = normalizeSerial(certificateBasics(await this.readCert(oldPaths.cert)).serial);
      if (previous === serial) throw new CertificateInvalid('duplicate', 'This certificate is the profile signer already');
      await this.writeChains(chain);
      const paths = signerPaths({ signer: serial });
      await atomicWrite(join(this.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, bundle.privateKey, paths.key), 0o600);
      await atomicWrite(join(this.dir, paths.cert), toPem(bundle.certificate), 0o644);
      await this.putMeta({ ...meta, signer: serial, signerChain: chain.map((c) => fingerprint(c)) });
      if (!meta.signerChain) await this.putRevocations([{ serial: previous, date: now.toISOString(), reason: 'superseded', kind: 'revoked', ca: caSlug(meta.signerIssuing ?? 1) }]);
      await fs.rm(join(this.dir, `${oldPaths.key}.${meta.keyGeneration}`), { force: true });
      return { previous, serial, warnings };
    });
  }

  /**
   * A new issuing CA under the same root (with the store's name constraints and PKI URLs);
   * new certificates come from it, those of the old one stay valid under it. The profile
   * signer moves to the new CA too (the old signer is revoked, superseded), so the old CA
   * can be revoked on the root's CRL once its last user certificate is gone.
   */
  async rotateIssuing(): Promise<{ generation: number; serial: string; signer: string }> {
    this.requireKey('rotate the issuing CA');
    return this.write(async () => {
      const meta = this.#meta;
      const key = this.requireKey('rotate the issuing CA');
      const generation = (meta.issuing ?? 1) + 1;
      const root = await this.caIdentity('root');
      const ca = await createIssuingCa(root, generation, { ...this.caOptions(), ...(meta.permittedEmailDomains?.length ? { permittedEmailDomains: meta.permittedEmailDomains } : {}) });
      const paths = issuingPaths(generation);
      await atomicWrite(join(this.dir, `${paths.key}.${meta.keyGeneration}`), sealKey(key, ca.privateKey, paths.key), 0o600);
      await atomicWrite(join(this.dir, paths.cert), toPem(ca.certificate), 0o644);
      await this.putMeta({ ...meta, issuing: generation });
      const { serial: signer } = await this.rotateSignerLocked();
      return { generation, serial: normalizeSerial(certificateBasics(ca.certificate).serial), signer };
    });
  }

  /**
   * The delegated OCSP responder of `ca`, issued (and later renewed) automatically: a new
   * one once less than half its validity is left. Needs the passphrase.
   */
  async ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    const slug = caSlug(ca);
    const now = this.now().getTime();
    const fresh = (r: ResponderIdentity) => now >= r.notBefore.getTime() && now < r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
    const hit = await this.#responders.get(slug)?.catch(() => undefined);
    if (hit && fresh(hit)) return hit;
    const next = (async () => {
      const current = await this.readResponder(ca);
      if (current && fresh(current)) return current;
      return this.write(async () => {
        const again = await this.readResponder(ca);
        if (again && fresh(again)) return again;
        const key = this.requireKey('issue an OCSP responder');
        const r = await createOcspResponder(await this.caIdentity(ca), ca, this.caOptions());
        const info = certificateBasics(r.certificate);
        const serial = normalizeSerial(info.serial);
        const paths = responderPaths(ca, serial);
        await fs.mkdir(join(this.dir, OCSP_DIR), { recursive: true, mode: 0o700 });
        await atomicWrite(join(this.dir, `${paths.key}.${this.#meta.keyGeneration}`), sealKey(key, r.privateKey, paths.key), 0o600);
        await atomicWrite(join(this.dir, paths.cert), toPem(r.certificate), 0o644);
        await atomicWrite(join(this.dir, paths.pointer), JSON.stringify({ serial }) + '\n', 0o644);
        // The previous responder expires within days; its files go now.
        if (again) {
          const old = responderPaths(ca, again.serial);
          await fs.rm(join(this.dir, `${old.key}.${this.#meta.keyGeneration}`), { force: true });
          await fs.rm(join(this.dir, old.cert), { force: true });
        }
        return { ...r, serial, notBefore: new Date(new X509Certificate(r.certificate).validFrom), notAfter: info.notAfter };
      });
    })();
    this.#responders.set(slug, next);
    next.catch(() => this.#responders.delete(slug));
    return next;
  }

  private async readResponder(ca: CaRef): Promise<ResponderIdentity | undefined> {
    let serial: string;
    try {
      serial = (JSON.parse(await fs.readFile(join(this.dir, `${OCSP_DIR}/${caSlug(ca)}.json`), 'utf8')) as { serial: string }).serial;
      if (!SERIAL.test(serial)) return undefined;
    } catch {
      return undefined;
    }
    const paths = responderPaths(ca, serial);
    try {
      const certificate = certificatesFrom(await fs.readFile(join(this.dir, paths.cert), 'utf8'))[0];
      if (!certificate) return undefined;
      const x = new X509Certificate(certificate);
      if ((await this.revokedSerials()).has(serial)) return undefined;
      return { certificate, privateKey: await this.readKey(paths.key), serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
    } catch {
      return undefined;
    }
  }

  /**
   * The status of serial `serial` among the certificates `ca` issued, for OCSP: `good`,
   * `revoked` (with date and reason), or `unknown` for a serial it never issued. A retired
   * certificate is good: retiring takes it out of profiles, not out of trust.
   */
  async certificateStatus(ca: CaRef, serial: string): Promise<{ status: 'good' } | { status: 'revoked'; date: Date; reason: RevocationReason } | { status: 'unknown' }> {
    const s = normalizeSerial(serial);
    const revocation = (await this.#index.revocations()).find((r) => r.serial === s && r.kind === 'revoked' && (r.ca ?? 'issuing') === caSlug(ca));
    let issued = false;
    // The common question first: a user certificate (one entry read). The CA's own certificates
    // (signers, responders: a directory listing and a signature check each) only when it is not one.
    if (ca !== 'root' && SERIAL.test(s)) {
      const record = await this.#index.read(s).catch(() => undefined);
      issued = record?.source === 'issued' && (await this.issuingOf(record)) === ca;
    }
    if (!issued && ca === 'root') issued = (await this.caCertificates()).some((c) => c.ca !== 'root' && c.serial === s);
    if (!issued) issued = (await this.caIssued()).some((c) => c.serial === s && c.ca === ca);
    if (!issued) return { status: 'unknown' };
    if (revocation) return { status: 'revoked', date: new Date(revocation.date), reason: revocation.reason as RevocationReason };
    return { status: 'good' };
  }

  /** Relative paths (without generation) of every sealed key in the store. */
  private async keyFiles(): Promise<string[]> {
    const meta = this.#meta;
    const names = await fs.readdir(join(this.dir, 'certs')).catch(() => [] as string[]);
    const issuing = Array.from({ length: meta.issuing ?? 1 }, (_, i) => issuingPaths(i + 1).key);
    const responders = (await fs.readdir(join(this.dir, OCSP_DIR)).catch(() => [] as string[])).filter((n) => n.endsWith('.pem')).map((n) => `${OCSP_DIR}/${n.slice(0, -4)}.key`);
    return ['ca/root.key', ...issuing, signerPaths(meta).key, ...responders, ...names.filter((n) => SERIAL.test(n)).map((n) => `certs/${n}/key`)];
  }

  /**
   * Re-encrypts every private key under a new passphrase (new salt, new key), all or none.
   * @throws ERR_KEY_PASSPHRASE when the current passphrase was not given; ERR_STORE_IO when a key does not decrypt
   */
  async changePassphrase(newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
    checkNewPassphrase(newPassphrase);
    this.requireKey('change the passphrase');
    return this.write(async () => {
      const gen = this.#meta.keyGeneration;
      const next = gen + 1;
      const kdf = newKdfParams(options.kdfCost ?? Math.log2(this.#meta.kdf.N));
      const newKey = await deriveKey(newPassphrase, kdf);
      const files = await this.keyFiles();
      const written: string[] = [];
      try {
        for (const rel of files) {
          const key = await this.readKey(rel);
          const path = join(this.dir, `${rel}.${next}`);
          await atomicWrite(path, sealKey(newKey, key, rel), 0o600);
          written.push(path);
        }
        const meta: StoreMeta = { ...this.#meta, kdf, check: seal(newKey, Buffer.from(CHECK_TEXT), CHECK_AAD), keyGeneration: next };
        await atomicWrite(join(this.dir, 'store.json'), JSON.stringify(meta, null, 2) + '\n', 0o600);
        this.#meta = meta;
        this.#key = newKey;
        this.#issuers.clear();
        this.#responders.clear();
      } catch (err) {
        await Promise.all(written.map((p) => fs.rm(p, { force: true })));
        throw err;
      }
      // Committed: the old generation (keys and cached PKCS#12 files) is garbage now.
      await Promise.all(files.map((rel) => fs.rm(join(this.dir, `${rel}.${gen}`), { force: true })));
      const cached = await fs.readdir(join(this.dir, PKCS12_CACHE)).catch(() => [] as string[]);
      await Promise.all(cached.filter((f) => f.endsWith(`.${gen}`)).map((f) => fs.rm(join(this.dir, PKCS12_CACHE, f), { force: true })));
      // Earlier versions kept the cache in each entry (certs/<serial>/p12.<generation>).
      await Promise.all(files.filter((rel) => rel.startsWith('certs/')).map((rel) => fs.rm(join(this.dir, `${dirname(rel)}/p12.${gen}`), { force: true })));
      this.#lastBundle = undefined;
      return files.length;
    });
  }

  /** @internal For store check. */
  get meta(): StoreMeta {
    return this.#meta;
  }

  /** @internal For store check: is the passphrase known. */
  get unlocked(): boolean {
    return this.#key !== undefined;
  }

  /** @internal For store check: decrypt one key file. */
  checkKey(rel: string): Promise<KeyObject> {
    return this.readKey(rel);
  }
}

