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
import { createHash, randomBytes, createPrivateKey, type KeyObject } from 'node:crypto';
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
import { createCertificateAuthority } from '../certs/ca.js';
import { createCrl, type RevocationReason } from '../certs/crl.js';
import { checkImport, type IdentityBundle } from '../certs/import.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../certs/issue.js';
import { assertEmail } from '../certs/email.js';
import type { KeyAlgorithm } from '../certs/keys.js';
import { certificatesFrom, fingerprint, normalizeSerial, toPem } from '../certs/pem.js';

export { normalizeSerial };
import { certificateBasics, describeCertificate } from '../certs/x509.js';
import { keySigner, type Signer } from '../cms/sign.js';
import { atomicDir, atomicWrite, ioError, readText } from './fs-util.js';
import { withLock } from './lock.js';
import { RecordIndex, SERIAL, type Revocation } from './record-index.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams, seal, sealBytes, unseal, unsealBytes, type KdfParams, type Sealed } from './secret-box.js';
import {
  type CertificateRecord,
  type CertificateStore,
  type IssueUserCertificateOptions,
  type ListCertificatesOptions,
  type TrustChain,
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
}


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

/** Options of {@link FileStore.importIdentity}. */
export interface ImportIdentityOptions {
  user: string;
  purpose: CertificatePurpose;
  /** Issuer certificates to keep with it (besides those in the bundle). */
  chain?: Buffer[];
  /** Refuse what would otherwise be a warning. */
  strict?: boolean;
}

/** What an import recorded, with its warnings. */
export interface ImportIdentityResult {
  record: CertificateRecord;
  /** True when the same certificate was already in the store: nothing was written. */
  duplicate: boolean;
  warnings: string[];
}

/** What removing a user did: serials revoked (our CA) and retired (outside CAs). */
export interface RemoveUserResult {
  revoked: CertificateRecord[];
  retired: CertificateRecord[];
}

const KEY_FILES = ['ca/root.key', 'ca/intermediate.key', 'signer/key'];
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
  if (!options.passphrase) throw new InputInvalid('passphrase', 'The passphrase must not be empty');
  if (!(await isEmptyOrMissing(root))) throw new StoreExists(root);
  const now = options.now ?? (() => new Date());
  const ca = await createCertificateAuthority({
    organization: options.organization,
    now,
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
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
  return new FileStore(root, meta, key, now);
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
  const store = new FileStore(root, parseMeta(text, path), undefined, options.now ?? (() => new Date()), options.durable ?? true);
  if (options.passphrase !== undefined) await store.unlock(options.passphrase);
  return store;
}

/** The file store. Create it with {@link initStore} or {@link openStore}. */
export class FileStore implements CertificateStore {
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
  #issuer: Identity | undefined;

  /** @internal */
  constructor(
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
    const user = record.user.toLowerCase();
    const hit = this.readBundle(user).get(s);
    if (hit && hit.fingerprint === record.fingerprint) return { password: hit.password, pkcs12: hit.pkcs12 };
    const built = build(await this.getIdentity(s));
    // Updates of one user's file go one after another (a profile builds its identities
    // concurrently). Across processes the last rename wins, which costs at most a rebuild.
    const path = this.bundlePath(user);
    const previous = this.#bundleWrites.get(path) ?? Promise.resolve();
    const update = previous.then(async () => {
      const bundle = this.readBundle(user, true);
      bundle.set(s, { fingerprint: record.fingerprint, password: built.password, pkcs12: built.pkcs12 });
      // A cache: atomic but not fsynced (losing it costs one rebuild).
      await fs.mkdir(join(this.dir, PKCS12_CACHE), { recursive: true, mode: 0o700 });
      await atomicWrite(path, sealBytes(this.requireKey('use private keys'), encodeBundle(bundle), this.bundleAad(user)), 0o600, false);
    });
    const settled = update.catch(() => {});
    this.#bundleWrites.set(path, settled);
    await settled;
    if (this.#bundleWrites.get(path) === settled) this.#bundleWrites.delete(path);
    return built;
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

  async trustChain(): Promise<TrustChain> {
    return { roots: [await this.readCert('ca/root.pem')], intermediates: [await this.readCert('ca/intermediate.pem')] };
  }

  /** The issuers of a stored certificate, as far as the store knows them (leaf-most first). */
  async issuerChain(serial: string): Promise<Buffer[]> {
    const record = await this.#index.get(normalizeSerial(serial));
    if (record.source === 'issued') {
      const { roots, intermediates } = await this.trustChain();
      return [...intermediates, ...roots];
    }
    return Promise.all((record.chain ?? []).map((fp) => this.readCert(`chains/${fp}.pem`)));
  }

  async profileSigner(): Promise<Signer> {
    const [certificate, key, chain] = await Promise.all([
      this.readCert('signer/cert.pem'),
      this.readKey('signer/key'),
      this.trustChain(),
    ]);
    const { serial } = certificateBasics(certificate);
    if ((await this.#index.revocations()).some((r) => r.serial === serial && r.kind === 'revoked')) {
      throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked');
    }
    return keySigner({ key, certificate, chain: chain.intermediates });
  }

  /** Serials revoked by this store's CA (the signer's included), for `verify`. */
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
    return this.#index.read(normalizeSerial(q));
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
    const user = assertEmail(options.user);
    this.requireKey('issue certificates');
    // The issuing key is decrypted once per instance: issue-batch issues thousands.
    const identity = await issueCertificate(await this.issuerIdentity(), {
      purpose: options.purpose,
      email: user,
      name: options.name,
      now: this.now,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
    });
    return (await this.addEntry(identity, user, options.purpose, 'issued', [])).record;
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
    const existing = (await this.listCertificates()).find((r) => r.fingerprint === check.info.fingerprint);
    if (existing) return { record: existing, duplicate: true, warnings: [] };
    const leafFp = check.info.fingerprint;
    const chain = [...bundle.chain, ...(options.chain ?? [])].filter(
      (der, i, all) => fingerprint(der) !== leafFp && all.findIndex((d) => d.equals(der)) === i,
    );
    const { record } = await this.addEntry(
      { certificate: bundle.certificate, privateKey: bundle.privateKey },
      check.email,
      options.purpose,
      'imported',
      chain,
    );
    return { record, duplicate: false, warnings: check.warnings };
  }

  /** Records an identity under its serial, atomically and under the store lock. */
  private async addEntry(
    identity: Identity,
    user: string,
    purpose: CertificatePurpose,
    source: CertificateRecord['source'],
    chain: Buffer[],
  ): Promise<{ record: CertificateRecord }> {
    const key = this.requireKey('store keys');
    const info = await describeCertificate(identity.certificate);
    const serial = normalizeSerial(info.serial);
    const record: CertificateRecord = {
      serial,
      user,
      purpose,
      source,
      subject: info.subject,
      issuer: info.issuer,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      fingerprint: info.fingerprint,
      created: this.now().toISOString(),
      ...(info.commonName ? { name: info.commonName } : {}),
      ...(chain.length ? { chain: chain.map((c) => fingerprint(c)) } : {}),
    };
    await this.write(async () => {
      const path = join(this.dir, 'certs', serial);
      if (await exists(path)) {
        throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
      }
      await fs.mkdir(join(this.dir, 'chains'), { recursive: true, mode: 0o700 });
      for (const der of chain) {
        const p = join(this.dir, 'chains', `${fingerprint(der)}.pem`);
        if (!(await exists(p))) await atomicWrite(p, toPem(der), 0o644);
      }
      await atomicDir(path, {
        'cert.pem': { data: toPem(identity.certificate), mode: 0o644 },
        [`key.${this.#meta.keyGeneration}`]: { data: sealKey(key, identity.privateKey, `certs/${serial}/key`), mode: 0o600 },
        'entry.json': { data: JSON.stringify(record, null, 2) + '\n', mode: 0o644 },
      }, this.durable);
    });
    return { record };
  }

  private async addRevocations(items: Revocation[]): Promise<void> {
    await this.write(async () => {
      const entries = await this.#index.revocations();
      for (const item of items) if (!entries.some((e) => e.serial === item.serial)) entries.push(item);
      await atomicWrite(join(this.dir, 'revocations.json'), JSON.stringify({ version: 1, entries }, null, 2) + '\n', 0o644);
    });
  }

  /**
   * Revokes a certificate issued by this store's CA (a user certificate or the profile signer).
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID for an outside CA's certificate
   */
  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<CertificateRecord | { serial: string; signer: true }> {
    const s = normalizeSerial(serial);
    const signerSerial = normalizeSerial((await describeCertificate(await this.readCert('signer/cert.pem'))).serial);
    const date = this.now().toISOString();
    if (s === signerSerial) {
      await this.addRevocations([{ serial: s, date, reason, kind: 'revoked' }]);
      return { serial: s, signer: true };
    }
    const record = await this.#index.read(s);
    if (record.source !== 'issued') {
      throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
    }
    if (record.revoked) return record;
    await this.addRevocations([{ serial: s, date, reason, kind: 'revoked' }]);
    return { ...record, revoked: { date, reason } };
  }

  /**
   * Unenrollment: takes every certificate of the user out of generation. With `revoke`,
   * certificates of this store's CA are revoked (`cessationOfOperation`); those of outside
   * CAs, which we cannot revoke, are marked retired.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
   */
  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    const records = (await this.listCertificates({ user })).filter((r) => !r.revoked && !r.retired);
    if (!(await this.listCertificates({ user })).length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
    const date = this.now().toISOString();
    const revoked = options.revoke ? records.filter((r) => r.source === 'issued') : [];
    const retired = records.filter((r) => !revoked.includes(r));
    await this.addRevocations([
      ...revoked.map((r) => ({ serial: r.serial, date, reason: 'cessationOfOperation' as const, kind: 'revoked' as const })),
      ...retired.map((r) => ({ serial: r.serial, date, reason: 'retired' as const, kind: 'retired' as const })),
    ]);
    return { revoked, retired };
  }

  /**
   * A DER CRL signed by the issuing CA, listing every serial it revoked with reason and date.
   * @example
   * await writeFile('crl.der', await store.createCrl({ nextUpdate: 7 * 86400_000 }))
   */
  async createCrl(options: { nextUpdateMs?: number } = {}): Promise<Buffer> {
    const now = this.now();
    const entries = (await this.#index.revocations())
      .filter((r) => r.kind === 'revoked')
      .map((r) => ({ serial: r.serial, date: new Date(r.date), reason: r.reason as RevocationReason }));
    const issuer = await this.issuerIdentity();
    return createCrl({
      issuerCertificate: issuer.certificate,
      issuerKey: issuer.privateKey,
      entries,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + (options.nextUpdateMs ?? 7 * 86_400_000)),
    });
  }

  /** The issuing CA's certificate and key, decrypted once per instance; needs the passphrase. */
  async issuerIdentity(): Promise<Identity> {
    this.#issuer ??= { certificate: await this.readCert('ca/intermediate.pem'), privateKey: await this.readKey('ca/intermediate.key') };
    return this.#issuer;
  }

  /** Relative paths (without generation) of every sealed key in the store. */
  private async keyFiles(): Promise<string[]> {
    const names = await fs.readdir(join(this.dir, 'certs')).catch(() => [] as string[]);
    return [...KEY_FILES, ...names.filter((n) => SERIAL.test(n)).map((n) => `certs/${n}/key`)];
  }

  /**
   * Re-encrypts every private key under a new passphrase (new salt, new key), all or none.
   * @throws ERR_KEY_PASSPHRASE when the current passphrase was not given; ERR_STORE_IO when a key does not decrypt
   */
  async changePassphrase(newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
    if (!newPassphrase) throw new InputInvalid('passphrase', 'The new passphrase must not be empty');
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
        this.#issuer = undefined;
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

