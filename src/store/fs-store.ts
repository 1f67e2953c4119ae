/**
 * The file store: a directory (mode 0700) holding a CA, the profile-signing identity and
 * every user certificate ever issued or imported, with private keys encrypted under a key
 * derived from the passphrase. Every write is atomic; writers take a cross-process lock.
 *
 * Layout:
 * ```
 * store.json                      format, organization, KDF parameters, passphrase check
 * ca/root.pem ca/root.key         root CA (key sealed)
 * ca/intermediate.pem .key        issuing CA
 * signer/cert.pem signer/key      profile-signing identity
 * certs/<serial>/cert.pem key entry.json   one directory per user certificate
 * ```
 *
 * @module fs-store
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
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
import { issueCertificate, type Identity } from '../certs/issue.js';
import { assertEmail, printable } from '../certs/email.js';
import type { KeyAlgorithm } from '../certs/keys.js';
import { certificatesFrom, toPem } from '../certs/pem.js';
import { describeCertificate } from '../certs/x509.js';
import { keySigner, type Signer } from '../cms/sign.js';
import { atomicDir, ioError, readText } from './fs-util.js';
import { withLock } from './lock.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams, seal, unseal, type KdfParams, type Sealed } from './secret-box.js';
import type {
  CertificateRecord,
  CertificateStore,
  IssueUserCertificateOptions,
  ListCertificatesOptions,
  TrustChain,
} from './store.js';

const FORMAT = 'profilesmith-store';
const CHECK_AAD = 'store-check';
const CHECK_TEXT = 'profilesmith';

interface StoreMeta {
  format: typeof FORMAT;
  version: 1;
  organization: string;
  created: string;
  kdf: KdfParams;
  check: Sealed;
}

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

export interface OpenStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

const SERIAL = /^[0-9a-f]{2,40}$/;

/** Serial as we name entries: lower-case hex without leading zero octets. */
export function normalizeSerial(serial: string): string {
  const s = serial.toLowerCase().replace(/[:\s]/g, '').replace(/^(00)+(?=..)/, '');
  if (!SERIAL.test(s)) throw new InputInvalid('serial', `"${printable(serial)}" is not a certificate serial number`);
  return s;
}

function sealedFile(key: Buffer, privateKey: KeyObject, aad: string): string {
  return JSON.stringify(seal(key, privateKey.export({ format: 'der', type: 'pkcs8' }), aad)) + '\n';
}

async function isEmptyOrMissing(dir: string): Promise<boolean> {
  try {
    return (await fs.readdir(dir)).length === 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw ioError(dir, 'read', err);
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
  };
  // Build the whole store beside its final place, then rename it in: a crash leaves nothing half made.
  const tmp = join(dirname(root), `.${randomBytes(6).toString('hex')}.profilesmith-init`);
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    await atomicDir(join(tmp, 'ca'), {
      'root.pem': { data: toPem(ca.root.certificate), mode: 0o644 },
      'root.key': { data: sealedFile(key, ca.root.privateKey, 'ca/root.key'), mode: 0o600 },
      'intermediate.pem': { data: toPem(ca.intermediate.certificate), mode: 0o644 },
      'intermediate.key': { data: sealedFile(key, ca.intermediate.privateKey, 'ca/intermediate.key'), mode: 0o600 },
    });
    await atomicDir(join(tmp, 'signer'), {
      'cert.pem': { data: toPem(ca.signer.certificate), mode: 0o644 },
      key: { data: sealedFile(key, ca.signer.privateKey, 'signer/key'), mode: 0o600 },
    });
    await fs.mkdir(join(tmp, 'certs'), { mode: 0o700 });
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
  let text: string;
  try {
    text = await fs.readFile(join(root, 'store.json'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new StoreNotInitialized(root);
    }
    throw ioError(join(root, 'store.json'), 'read', err);
  }
  let meta: StoreMeta;
  try {
    meta = JSON.parse(text) as StoreMeta;
    if (meta.format !== FORMAT || meta.version !== 1 || typeof meta.organization !== 'string') throw new Error('format');
  } catch (cause) {
    throw new StoreIOError(join(root, 'store.json'), 'read', `"${join(root, 'store.json')}" is not a profilesmith store file`, { cause });
  }
  const store = new FileStore(root, meta, undefined, options.now ?? (() => new Date()));
  if (options.passphrase !== undefined) await store.unlock(options.passphrase);
  return store;
}

/** The file store. Create it with {@link initStore} or {@link openStore}. */
export class FileStore implements CertificateStore {
  readonly organization: string;
  #key: Buffer | undefined;

  /** @internal */
  constructor(
    readonly dir: string,
    readonly meta: StoreMeta,
    key: Buffer | undefined,
    private readonly now: () => Date,
  ) {
    this.organization = meta.organization;
    this.#key = key;
  }

  /** Checks the passphrase and keeps the derived key for this instance. */
  async unlock(passphrase: string): Promise<void> {
    let key: Buffer;
    try {
      key = await deriveKey(passphrase, this.meta.kdf);
    } catch (cause) {
      throw new StoreIOError(this.dir, 'read', 'The store file has unusable key-derivation parameters', { cause });
    }
    if (unseal(key, this.meta.check, CHECK_AAD)?.toString() !== CHECK_TEXT) {
      throw new KeyPassphraseInvalid(this.dir, `The passphrase for the store at "${this.dir}" is wrong`);
    }
    this.#key = key;
  }

  private async readKey(rel: string): Promise<KeyObject> {
    if (!this.#key) throw new KeyPassphraseInvalid(rel, 'The store passphrase is needed to use private keys');
    const path = join(this.dir, rel);
    let sealed: Sealed;
    try {
      sealed = JSON.parse(await readText(path)) as Sealed;
    } catch (cause) {
      if (cause instanceof StoreIOError) throw cause;
      throw new StoreIOError(path, 'read', `The key file "${path}" is damaged`, { cause });
    }
    const der = unseal(this.#key, sealed, rel);
    if (!der) throw new StoreIOError(path, 'decrypt', `The key file "${path}" does not decrypt: it is damaged or was moved`);
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  private async readCert(rel: string): Promise<Buffer> {
    const der = certificatesFrom(await readText(join(this.dir, rel)))[0];
    if (!der) throw new StoreIOError(join(this.dir, rel), 'read', `"${join(this.dir, rel)}" holds no certificate`);
    return der;
  }

  async trustChain(): Promise<TrustChain> {
    return { roots: [await this.readCert('ca/root.pem')], intermediates: [await this.readCert('ca/intermediate.pem')] };
  }

  async profileSigner(): Promise<Signer> {
    const [certificate, key, chain] = await Promise.all([
      this.readCert('signer/cert.pem'),
      this.readKey('signer/key'),
      this.trustChain(),
    ]);
    return keySigner({ key, certificate, chain: chain.intermediates });
  }

  private async readRecord(serial: string): Promise<CertificateRecord> {
    const path = join(this.dir, 'certs', serial, 'entry.json');
    let text: string;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new StoreEntryNotFound(serial, 'certificate');
      throw ioError(path, 'read', err);
    }
    try {
      const r = JSON.parse(text) as CertificateRecord;
      if (r.serial !== serial || typeof r.user !== 'string') throw new Error('mismatch');
      return r;
    } catch (cause) {
      throw new StoreIOError(path, 'read', `The store entry "${path}" is damaged`, { cause });
    }
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    let names: string[];
    try {
      names = await fs.readdir(join(this.dir, 'certs'));
    } catch (err) {
      throw ioError(join(this.dir, 'certs'), 'read', err);
    }
    const user = options.user?.toLowerCase();
    const records = await Promise.all(names.filter((n) => SERIAL.test(n)).map((n) => this.readRecord(n)));
    return records
      .filter((r) => (!user || r.user.toLowerCase() === user) && (!options.purpose || r.purpose === options.purpose))
      .sort((a, b) => a.notBefore.localeCompare(b.notBefore) || a.created.localeCompare(b.created) || a.serial.localeCompare(b.serial));
  }

  async getCertificate(serial: string): Promise<Buffer> {
    const s = normalizeSerial(serial);
    await this.readRecord(s);
    return this.readCert(`certs/${s}/cert.pem`);
  }

  async getIdentity(serial: string): Promise<Identity> {
    const s = normalizeSerial(serial);
    const certificate = await this.getCertificate(s);
    return { certificate, privateKey: await this.readKey(`certs/${s}/key`) };
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    const user = assertEmail(options.user);
    if (!this.#key) throw new KeyPassphraseInvalid(this.dir, 'The store passphrase is needed to issue certificates');
    const issuer: Identity = {
      certificate: await this.readCert('ca/intermediate.pem'),
      privateKey: await this.readKey('ca/intermediate.key'),
    };
    const identity = await issueCertificate(issuer, {
      purpose: options.purpose,
      email: user,
      name: options.name,
      now: this.now,
      ...(options.days !== undefined ? { days: options.days } : {}),
    });
    return this.addEntry(identity, user, options.purpose, 'issued');
  }

  /** Records an identity under its serial, atomically and under the store lock. */
  protected async addEntry(
    identity: Identity,
    user: string,
    purpose: CertificateRecord['purpose'],
    source: CertificateRecord['source'],
  ): Promise<CertificateRecord> {
    const key = this.#key;
    if (!key) throw new KeyPassphraseInvalid(this.dir, 'The store passphrase is needed to store keys');
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
    };
    await withLock(this.dir, async () => {
      const path = join(this.dir, 'certs', serial);
      if (await fs.stat(path).then(() => true, () => false)) {
        throw new CertificateInvalid('duplicate', `A certificate with serial ${serial} is already in the store`);
      }
      await atomicDir(path, {
        'cert.pem': { data: toPem(identity.certificate), mode: 0o644 },
        key: { data: sealedFile(key, identity.privateKey, `certs/${serial}/key`), mode: 0o600 },
        'entry.json': { data: JSON.stringify(record, null, 2) + '\n', mode: 0o644 },
      });
    });
    return record;
  }
}
