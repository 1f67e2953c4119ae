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
 * is in the state it was written from (see file/record-index.ts). `store check` compares it to
 * the entries.
 * Changing the passphrase writes every key under generation g+1, then switches
 * store.json in one rename: a crash leaves the old keys or the new ones in force, never a mix.
 *
 * @module file-store
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyPassphraseInvalid, StoreEntryNotFound, StoreIOError } from '../../errors.js';
import type { RevocationReason } from '../../certs/crl.js';
import type { checkImport, IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose, Identity } from '../../certs/issue.js';
import { certificatesFrom, normalizeSerial, type CertificateInput } from '../../certs/pem.js';
import type { CaRef } from '../../certs/publication.js';
import type { Signer } from '../../cms/sign.js';
import { LinkBook } from '../../server/links.js';
import { atomicWrite, ioError, readText } from '../fs-util.js';
import { withLock } from '../lock.js';
import type { ResponderIdentity, RevokeResult, StoreCa } from '../pki-files.js';
import { deriveKey, unseal, type Sealed } from '../secret-box.js';
import { findRecord, keyOnDeviceError, type CertificateRecord, type IssueDeviceCertificateOptions, type ImportIdentityOptions, type ImportIdentityResult, type IssueUserCertificateOptions, type LifecycleStore, type ListCertificatesOptions, type RemoveUserResult, type TrustChain } from '../store.js';
import { RecordIndex, type Amendment, type DamagedEntry, type Revocation } from './record-index.js';
import { FilePkcs12Cache } from './pkcs12-cache.js';
import { parseMeta, type StoreMeta } from './meta.js';
import { opensCheck } from '../settings.js';
import type { SerialStatus } from '../../pki/handler.js';

// The parts that issue, administer, publish revocation or read the CAs load on first use, so
// that opening a store to list it (cert list, user list) loads none of them nor the certificate
// code they need: about half of what a command loaded. (import() of a module already loaded is
// a lookup.)
const admin = () => import('./admin.js');
const entries = () => import('./entries.js');
const pki = () => import('./pki.js');
const caRead = () => import('./ca-read.js');

/** The file store. Create it with {@link initStore} or {@link openStore}. */
export class FileStore implements LifecycleStore {
  readonly organization: string;
  #key: Buffer | undefined;
  #meta: StoreMeta;

  readonly #index: RecordIndex;
  /** CA and signer certificates never change in place: read once. */
  #certs = new Map<string, Promise<Buffer>>();
  readonly #pkcs12: FilePkcs12Cache;
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
    /** @internal */ readonly now: () => Date,
    /** @internal */ readonly durable = true,
  ) {
    this.organization = meta.organization;
    this.#index = new RecordIndex(dir);
    this.#meta = meta;
    this.#key = key;
    this.#pkcs12 = new FilePkcs12Cache(this);
  }

  /** @internal What openStore and initStore call. */
  static create(dir: string, meta: StoreMeta, key: Buffer | undefined, now: () => Date, durable = true): FileStore {
    return new FileStore(dir, meta, key, now, durable);
  }
  /** @internal The record index (the parts in store/file/ use it). */
  get index(): RecordIndex {
    return this.#index;
  }

  /** @internal CA identities by slug, decrypted once per instance. */
  get issuers(): Map<string, Promise<Identity>> {
    return this.#issuers;
  }

  /** @internal OCSP responders by CA slug. */
  get responders(): Map<string, Promise<ResponderIdentity>> {
    return this.#responders;
  }

  /** @internal The PKCS#12 cache. */
  get pkcs12(): FilePkcs12Cache {
    return this.#pkcs12;
  }

  /** @internal After a write of store.json or a passphrase change. */
  setMeta(meta: StoreMeta): void {
    this.#meta = meta;
  }

  /** @internal After a passphrase change: the new key. */
  setKey(key: Buffer): void {
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
    if (!opensCheck(k, this.#meta.check)) throw new KeyPassphraseInvalid(this.dir, `The key for the store at "${this.dir}" is wrong`);
    this.#key = k;
  }

  private async derive(passphrase: string, meta: StoreMeta): Promise<Buffer> {
    let key: Buffer;
    try {
      key = await deriveKey(passphrase, meta.kdf);
    } catch (cause) {
      throw new StoreIOError(this.dir, 'read', 'The store file has unusable key-derivation parameters', { cause });
    }
    if (!opensCheck(key, meta.check)) throw new KeyPassphraseInvalid(this.dir, `The passphrase for the store at "${this.dir}" is wrong`);
    return key;
  }

  /** @internal */
  requireKey(what: string): Buffer {
    if (!this.#key) throw new KeyPassphraseInvalid(this.dir, `The store passphrase is needed to ${what}`);
    return this.#key;
  }






  /** @internal Runs a write under the store lock, after checking no passphrase change happened meanwhile. */
  async write<T>(fn: () => Promise<T>): Promise<T> {
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

  /** @internal */
  async readKey(rel: string): Promise<KeyObject> {
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

  /** @internal */
  readCert(rel: string): Promise<Buffer> {
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

  /** @internal Re-reads store.json at most once a second, so a long-running server sees a rotation. */
  async freshMeta(): Promise<StoreMeta> {
    if (Date.now() - this.#metaReadAt < 1000) return this.#meta;
    const path = join(this.dir, 'store.json');
    const current = parseMeta(await readText(path), path);
    this.#metaReadAt = Date.now();
    if (current.keyGeneration === this.#meta.keyGeneration) this.#meta = current;
    return this.#meta;
  }







  /** Serials revoked by this store's CAs (the signer's and issuing CAs' included), for `verify`. */
  async revokedSerials(): Promise<Set<string>> {
    return new Set((await this.#index.revocations()).filter((r) => r.kind === 'revoked').map((r) => r.serial));
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    return this.#index.list(options);
  }

  /**
   * The records that can be read, and the damaged entries that may be among those asked for
   * (with `user`: that user's, or those whose certificate is damaged too): `cert list` lists
   * the rest and names them, where {@link listCertificates} fails.
   * @internal
   */
  listReadable(options: ListCertificatesOptions = {}): Promise<{ records: CertificateRecord[]; damaged: DamagedEntry[] }> {
    return this.#index.listReadable(options);
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
    try {
      return { certificate, privateKey: await this.readKey(`certs/${s}/key`) };
    } catch (err) {
      // Only when there is no key to read is the record asked why: a device holds it (SCEP).
      if ((await this.#index.get(s).catch(() => undefined))?.keyOnDevice) throw keyOnDeviceError(s);
      throw err;
    }
  }

  /**
   * Issues a signing certificate for a key a device made and keeps (SCEP): recorded as the
   * user's smime-signing certificate with `keyOnDevice`, without a key. Needs the passphrase.
   * @throws ERR_INPUT_INVALID; ERR_KEY_UNSUPPORTED for a key other than RSA of 2048 bits or more
   */
  async issueDeviceCertificate(options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
    return (await entries()).issueDevice(this, options);
  }

  #challenges: LinkBook | undefined;
  /** One-time SCEP enrollment challenges, each bound to a user (`challenges.json`, kept as hashes). */
  get challenges(): LinkBook {
    return (this.#challenges ??= new LinkBook(this.dir, this.now, 'challenges.json'));
  }

  /** The SCEP RA of the current issuing CA (RSA, keyEncipherment), issued and renewed automatically. Needs the passphrase. */
  async scepRa(): Promise<ResponderIdentity> {
    return (await pki()).serviceIdentity(this, (await this.freshMeta()).issuing ?? 1, 'scep');
  }

  /** A SCEP RA the store issued, by serial, while the store keeps it (a device may have encrypted to the one before). */
  async scepRaBySerial(serial: string): Promise<ResponderIdentity | undefined> {
    for (const c of await this.caCertificates()) {
      if (c.ca === 'root') continue;
      const r = await (await pki()).serviceIdentityBySerial(this, c.ca, 'scep', normalizeSerial(serial));
      if (r) return r;
    }
    return undefined;
  }

  /** The URL devices reach this store's SCEP server at, written into SCEP profiles, if set. */
  get scepUrl(): string | undefined {
    return this.#meta.scepUrl;
  }

  /**
   * Sets (or, with undefined, clears) the SCEP URL that profiles point devices at
   * (`serve --scep` sets it to its own public URL).
   * @throws ERR_INPUT_INVALID for a URL that is not http(s)
   */
  async setScepUrl(url: string | undefined): Promise<string | undefined> {
    return (await admin()).setScepUrl(this, url);
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    return (await (await entries()).issue(this, options, false)).record;
  }

  /**
   * Issues a certificate unless the user already holds a valid one of the purpose. The
   * decision is made under the store lock, so any number of concurrent runs over the same
   * users leave exactly one new certificate per user and purpose.
   */
  async issueCertificateIfMissing(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }> {
    return (await entries()).issue(this, options, true);
  }


  /** What issuing would refuse, before any key is made: the address, the name, the CA's permitted domains. */
  async checkIssuance(options: IssueUserCertificateOptions): Promise<void> {
    await (await entries()).checkedUser(this, options, await this.freshMeta());
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

  /** @internal Writes store.json (under the lock the caller holds). */
  async putMeta(meta: StoreMeta): Promise<void> {
    await atomicWrite(join(this.dir, 'store.json'), JSON.stringify(meta, null, 2) + '\n', 0o600);
    this.#meta = meta;
    this.#metaReadAt = Date.now();
  }












  /**
   * Revokes a certificate issued by this store's CAs: a user certificate (retired ones too),
   * a profile signer, an OCSP responder, or an older issuing CA that no longer has live
   * certificates (on the root's CRL). Only what the CRL of its issuer will list is revoked.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID for an outside CA's certificate, the
   * root, the current issuing CA, or an issuing CA with live certificates
   */
  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    return (await pki()).revokeCertificate(this, serial, reason);
  }

  /**
   * Unenrollment: takes every certificate of the user out of generation. With `revoke`,
   * certificates of this store's CA are revoked (`cessationOfOperation`), retired ones
   * included; those of outside CAs, which we cannot revoke, are marked retired.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
   */
  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    return (await pki()).removeUser(this, user, options);
  }

  /**
   * A DER CRL signed by one of the store's CAs (default: the current issuing CA), listing
   * every serial it revoked with reason and date; its CRL number is one more than the last
   * this store signed for that CA (kept under the lock), so numbers strictly increase.
   * The root's CRL lists revoked issuing CAs (an ARL). Only the number is written to the
   * store (a few hundred bytes); the CRL is the caller's to publish.
   * @example
   * await writeFile('crl.der', await store.createCrl({ nextUpdateMs: 7 * 86400_000 }))
   */
  async createCrl(options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
    return (await pki()).createCrl(this, options);
  }

  /**
   * The CRL a relying party fetches for `ca`: the one last signed while it still lists
   * exactly the current revocations and less than half its validity has passed, else a
   * newly signed one. A revocation is on the very next fetch.
   */
  async publishedCrl(ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
    return (await pki()).publishedCrl(this, ca, options);
  }

  /**
   * The delegated OCSP responder of `ca`, issued (and later renewed) automatically: a new
   * one once less than half its validity is left. Needs the passphrase.
   */
  async ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    return (await pki()).ocspResponder(this, ca);
  }

  /**
   * The status of serial `serial` among the certificates `ca` issued, for OCSP: `good`,
   * `revoked` (with date and reason), or `unknown` for a serial it never issued. A retired
   * certificate is good: retiring takes it out of profiles, not out of trust.
   */
  async certificateStatus(ca: CaRef, serial: string): Promise<SerialStatus> {
    return (await pki()).certificateStatus(this, ca, serial);
  }

  /** {@link FileStore.certificateStatus} of several serials, the shared reads done once (an OCSP request names up to 16). */
  async certificateStatuses(ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
    return (await pki()).certificateStatuses(this, ca, serials);
  }

  /**
   * Sets (or, with undefined, clears) the PKI base URL. It applies to certificates issued
   * from then on; those issued before keep the URLs they carry.
   * @throws ERR_INPUT_INVALID for a URL that is not http(s)
   */
  async setPkiUrl(url: string | undefined): Promise<string | undefined> {
    return (await admin()).setPkiUrl(this, url);
  }

  /**
   * A new profile-signing identity from the current issuing CA; the previous signer is
   * revoked (superseded) and its key deleted. Profiles signed from then on verify with the new one.
   */
  async rotateSigner(): Promise<{ previous: string; serial: string }> {
    return (await admin()).rotateSigner(this);
  }

  /**
   * Makes an identity from an outside CA the profile signer (an organization's certificate from
   * a publicly trusted CA: profiles then show "Verified" on any iPhone without a trust profile).
   * The key is sealed like every other; the issuers are kept for the signature. The store's own
   * previous signer is revoked (superseded).
   * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, or one without digitalSignature
   */
  async importSigner(bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
    return (await admin()).importSigner(this, bundle, options);
  }

  /**
   * A new issuing CA under the same root (with the store's name constraints and PKI URLs);
   * new certificates come from it, those of the old one stay valid under it. The profile
   * signer moves to the new CA too (the old signer is revoked, superseded), so the old CA
   * can be revoked on the root's CRL once its last user certificate is gone.
   */
  async rotateIssuing(): Promise<{ generation: number; serial: string; signer: string }> {
    return (await admin()).rotateIssuing(this);
  }

  /**
   * Re-encrypts every private key under a new passphrase (new salt, new key), all or none.
   * @throws ERR_KEY_PASSPHRASE when the current passphrase was not given; ERR_STORE_IO when a key does not decrypt
   */
  async changePassphrase(newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
    return (await admin()).changePassphrase(this, newPassphrase, options);
  }

  /**
   * Issues a new certificate for the user and purpose, named like the newest one; the old
   * one stays in the history.
   * @throws ERR_STORE_ENTRY_NOT_FOUND when the user holds no certificate of that purpose
   */
  async renewCertificate(user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
    return (await entries()).renewCertificate(this, user, purpose, days);
  }

  /**
   * Takes in an identity issued elsewhere, after {@link checkImport}. The same certificate
   * again is a no-op (`duplicate: true`).
   * @throws ERR_CERT_INVALID, ERR_KEY_UNSUPPORTED, ERR_INPUT_INVALID
   */
  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    return (await entries()).importIdentity(this, bundle, options);
  }

  /**
   * The identity as an iOS-form PKCS#12, built once and kept in the store, sealed like the
   * keys (see file/pkcs12-cache.ts). Batch runs use it: the PKCS#12 key derivation is the
   * per-user cost once signing is native.
   */
  cachedPkcs12(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    return this.#pkcs12.get(serial, build);
  }

  /** The store's CA certificates: the root and every issuing CA generation, oldest first. */
  async caCertificates(): Promise<StoreCa[]> {
    return (await caRead()).caCertificates(this);
  }

  /** @internal */
  async caInfo(ca: CaRef, rel: string): Promise<StoreCa> {
    return (await caRead()).caInfo(this, ca, rel);
  }

  /** @internal The issuing CA generation that issued a record of this store's CA. */
  async issuingOf(record: { issuer: string }): Promise<number> {
    return (await caRead()).issuingOf(this, record);
  }

  /**
   * The root, and the issuing CAs a device needs: the current one first, then each older one
   * that is neither revoked nor expired and still has live certificates (or issued the signer).
   */
  async trustChain(): Promise<TrustChain> {
    return (await caRead()).trustChain(this);
  }

  /** The issuers of a stored certificate, as far as the store knows them (leaf-most first). */
  async issuerChain(serial: string): Promise<Buffer[]> {
    return (await caRead()).issuerChain(this, serial);
  }

  async profileSigner(): Promise<Signer> {
    return (await caRead()).profileSigner(this);
  }

  /** The issuing CA's certificate and key (default: the current one), decrypted once per instance; needs the passphrase. */
  async issuerIdentity(generation?: number): Promise<Identity> {
    return (await caRead()).issuerIdentity(this, generation);
  }

  /** @internal A CA's certificate and key, decrypted once per instance. */
  async caIdentity(ca: CaRef): Promise<Identity> {
    return (await caRead()).caIdentity(this, ca);
  }

  /** @internal
   * Adds revocations (under the lock the caller holds). A serial already revoked stays as it
   * was; a retired one becomes revoked. Returns the items that changed something.
   */
  async putRevocations(items: Revocation[]): Promise<Revocation[]> {
    return (await caRead()).putRevocations(this, items);
  }

  /** @internal revocations.json: the revocations, and the amendments of entries (see file/record-index.ts). */
  async writeOverlay(entries: Revocation[], amendments: Amendment[]): Promise<void> {
    return (await caRead()).writeOverlay(this, entries, amendments);
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

