/**
 * The CA, written once over a storage port: issuing, renewal, import, revocation,
 * unenrollment, CRLs and OCSP statuses, signer and issuing-CA rotation, signer import,
 * passphrase change, the SCEP RA and challenges, and one-time links. The file store, the
 * PostgreSQL store and the memory store are this class over their ports; a vendor's own
 * database needs only a port (see examples/bring-your-own-store).
 *
 * @module ca-store
 */
import type { IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose, Identity } from '../../certs/issue.js';
import { normalizeSerial, type CertificateInput } from '../../certs/pem.js';
import type { CaRef } from '../../certs/publication.js';
import type { RevocationReason } from '../../certs/crl.js';
import type { Signer } from '../../cms/sign.js';
import { StoreEntryNotFound } from '../../errors.js';
import type { SerialStatus } from '../../pki/handler.js';
import { PortLinks, type LinkStore } from '../../server/links.js';
import type { BuiltPkcs12, PortTransaction, StoragePort, StoreSettings } from '../port/port.js';
import type { ResponderIdentity, StoreCa } from '../pki-files.js';
import { findRecord, keyOnDeviceError, servesPurpose, type CertificateRecord } from '../record.js';
import type { EnrollingStore, ImportIdentityOptions, ImportIdentityResult, IssueDeviceCertificateOptions, IssueUserCertificateOptions, ListCertificatesOptions, RemoveUserResult, RevokeResult, TrustChain } from '../store.js';
import type { Keyring } from './keyring.js';
import { CaState } from './state.js';

// The parts that issue, publish, revoke, administer or read the CA certificates load on first
// use, so that opening a store to list it (cert list, user list) loads none of them nor the
// certificate code they need. (import() of a module already loaded is a lookup.)
const admin = () => import('./admin.js');
const authority = () => import('./authority.js');
const entries = () => import('./entries.js');
const publish = () => import('./publish.js');
const revoke = () => import('./revoke.js');

/** Options of {@link CaStore.open}. */
export interface OpenCaOptions {
  /** Needed for anything that uses a private key; checked now when given. */
  passphrase?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/**
 * The CA over a port. Open one with {@link CaStore.open} (or a backend's openStore).
 * @example
 * import { CaStore, MemoryPort, initializeCa } from 'profilesmith'
 * const port = new MemoryPort()
 * await initializeCa(port, { organization: 'Example Corp', passphrase: 'correct horse battery staple', kdfCost: 14 })
 * const store = await CaStore.open(port, { passphrase: 'correct horse battery staple' })
 * await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 */
export class CaStore implements EnrollingStore {
  readonly organization: string;
  readonly #state: CaState;
  #links: LinkStore | undefined;
  #challenges: LinkStore | undefined;

  /** Use {@link CaStore.open}. */
  protected constructor(
    /** The storage the CA keeps its state in. */
    readonly port: StoragePort,
    settings: StoreSettings,
    /** The clock every issue, signature and expiry is judged by. */
    readonly now: () => Date,
  ) {
    this.organization = settings.organization;
    this.#state = new CaState(port, settings, now);
  }

  /**
   * Opens the CA a port holds. With `passphrase`, it is checked now.
   * @throws ERR_STORE_NOT_INITIALIZED; ERR_KEY_PASSPHRASE
   */
  static async open(port: StoragePort, options: OpenCaOptions = {}): Promise<CaStore> {
    const store = new CaStore(port, await port.settings(), options.now ?? (() => new Date()));
    if (options.passphrase !== undefined) await store.unlock(options.passphrase);
    return store;
  }

  /** Where the store is, as messages name it. */
  get dir(): string {
    return this.port.location;
  }

  /** Checks the passphrase and keeps the derived key for this instance. @throws ERR_KEY_PASSPHRASE */
  async unlock(passphrase: string): Promise<void> {
    await this.keys.unlock(passphrase, this.#state.meta);
  }

  /** @internal A copy of the derived key, for a batch worker (so each does not run scrypt again). */
  derivedKey(): Buffer {
    return this.keys.copy();
  }

  /** @internal Unlocks with a key from {@link CaStore.derivedKey}, checked like a passphrase. */
  unlockWithKey(key: Uint8Array): void {
    this.keys.unlockWithKey(key, this.#state.meta);
  }

  /** True once the passphrase (or a handed-over key) was given. */
  get unlocked(): boolean {
    return this.keys.unlocked;
  }

  /** @internal The settings as last read. */
  get meta(): StoreSettings {
    return this.#state.meta;
  }

  /** The PKI base URL certificates are issued with, if any. */
  get pkiUrl(): string | undefined {
    return this.#state.meta.pkiUrl;
  }

  /** The URL devices reach this store's SCEP server at, if set. */
  get scepUrl(): string | undefined {
    return this.#state.meta.scepUrl;
  }

  /** The email domains the issuing CA may issue for (empty: any). */
  get permittedEmailDomains(): readonly string[] {
    return this.#state.meta.permittedEmailDomains ?? [];
  }

  /** @internal The CA's state, as its parts see it. */
  get state(): CaState {
    return this.#state;
  }

  /** @internal */
  get keys(): Keyring {
    return this.#state.keys;
  }

  /** @internal One port transaction (see CaContext.write). */
  write<T>(fn: (tx: PortTransaction) => Promise<T>, seals?: 'seals'): Promise<T> {
    return this.#state.write(fn, seals);
  }

  // ---- CertificateStore ----

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const records = await this.port.records(options.user ? { user: options.user } : {});
    return options.purpose ? records.filter((r) => servesPurpose(r, options.purpose!)) : records;
  }

  async findCertificate(serialOrFingerprint: string): Promise<CertificateRecord> {
    const q = String(serialOrFingerprint).toLowerCase().replace(/[:\s]/g, '');
    if (/^[0-9a-f]+$/.test(q)) {
      const exact = [...(await this.port.records({ serial: q.replace(/^(00)+(?=..)/, '') })), ...(q.length === 64 ? await this.port.records({ fingerprint: q }) : [])];
      if (exact[0]) return exact[0];
      if (q.length >= 6) return findRecord(await this.port.records({ prefix: q }), serialOrFingerprint);
    }
    throw new StoreEntryNotFound(serialOrFingerprint, 'certificate');
  }

  async getCertificate(serial: string): Promise<Buffer> {
    const held = await this.port.certificate(normalizeSerial(serial));
    if (!held) throw new StoreEntryNotFound(serial, 'certificate');
    return held.der;
  }

  async getIdentity(serial: string): Promise<Identity> {
    const s = normalizeSerial(serial);
    const held = await this.port.certificate(s);
    if (!held) throw new StoreEntryNotFound(serial, 'certificate');
    if (!held.key) {
      if ((await this.#state.record(s)).keyOnDevice) throw keyOnDeviceError(s);
      throw new StoreEntryNotFound(serial, 'certificate', `Certificate ${s} has no private key in the store`);
    }
    try {
      return { certificate: held.der, privateKey: this.keys.open(held.key) };
    } catch (err) {
      throw await this.#state.explain(err);
    }
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    return (await (await entries()).issue(this.#state, options, false)).record;
  }

  /** Issues unless the user holds a valid certificate of the purpose, decided in the transaction that records it. */
  async issueCertificateIfMissing(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }> {
    return (await entries()).issue(this.#state, options, true);
  }

  /** What issuing would refuse, before any key is made: the address, the name, the CA's permitted domains. */
  async checkIssuance(options: IssueUserCertificateOptions): Promise<void> {
    await (await entries()).checkedUser(this.#state, options);
  }

  async trustChain(): Promise<TrustChain> {
    return (await authority()).trustChain(this.#state);
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    return (await authority()).issuerChain(this.#state, serial);
  }

  async profileSigner(): Promise<Signer> {
    return (await authority()).profileSigner(this.#state).catch(async (err: unknown) => Promise.reject(await this.#state.explain(err)));
  }

  /** The identity as an iOS-form PKCS#12, from the port's cache when it has one (built and kept otherwise). */
  async cachedPkcs12(serial: string, build: (identity: Identity) => BuiltPkcs12): Promise<BuiltPkcs12> {
    const record = await this.#state.record(serial);
    const cache = this.port.cache;
    const hit = cache ? await cache.get(record, this.keys.box()) : undefined;
    if (hit) return hit;
    const built = build(await this.getIdentity(record.serial));
    if (cache) await cache.put(record, built, this.keys.box()).catch(() => {});
    return built;
  }

  /** @internal A batch's hint: read every record once. */
  async loadIndex(): Promise<void> {
    await this.port.preload?.();
  }

  /** @internal A batch worker's records, so lookups of them need no read. */
  remember(records: CertificateRecord[]): void {
    this.port.remember?.(records);
  }

  /** Releases what the port holds open (a connection pool). */
  async close(): Promise<void> {
    await this.port.close?.();
  }

  // ---- the lifecycle ----

  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    return (await entries()).importIdentity(this.#state, bundle, options);
  }

  /** A new certificate for the user and purpose, named like the newest one; the old one stays in the history. */
  async renewCertificate(user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
    return (await entries()).renewCertificate(this.#state, (o) => this.issueCertificate(o), user, purpose, days);
  }

  async issueDeviceCertificate(options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
    return (await entries()).issueDevice(this.#state, options);
  }

  async revokeCertificate(serial: string, reason?: RevocationReason): Promise<RevokeResult> {
    return (await revoke()).revokeCertificate(this.#state, serial, reason);
  }

  async removeUser(user: string, options?: { revoke?: boolean }): Promise<RemoveUserResult> {
    return (await revoke()).removeUser(this.#state, user, options);
  }

  /** Serials revoked by this store's CAs (the signer's and issuing CAs' included). */
  async revokedSerials(): Promise<Set<string>> {
    return new Set((await this.port.revocations()).filter((r) => r.kind === 'revoked').map((r) => r.serial));
  }

  async createCrl(options?: { ca?: CaRef; nextUpdateMs?: number }): Promise<Buffer> {
    return (await publish()).createCrl(this.#state, options);
  }

  /** The CRL a relying party fetches for `ca`: the last published while still current, else a new one. */
  async publishedCrl(ca: CaRef, options?: { validityMs?: number }): Promise<Buffer> {
    return (await publish()).publishedCrl(this.#state, ca, options);
  }

  /** The delegated OCSP responder of `ca`, issued and renewed by itself. Needs the passphrase. */
  async ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    return (await publish()).serviceIdentity(this.#state, ca, 'ocsp');
  }

  /** The OCSP status of a serial among those `ca` issued. */
  async certificateStatus(ca: CaRef, serial: string): Promise<SerialStatus> {
    return (await (await publish()).certificateStatuses(this.#state, ca, [serial]))[0]!;
  }

  /** {@link CaStore.certificateStatus} of several serials, the shared reads done once. */
  async certificateStatuses(ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
    return (await publish()).certificateStatuses(this.#state, ca, serials);
  }

  /** The store's CA certificates: the root and every issuing CA generation, oldest first. */
  caCertificates(): Promise<StoreCa[]> {
    return this.#state.cas();
  }

  /** The issuing CA's certificate and key (default: the current one); needs the passphrase. */
  async issuerIdentity(generation?: number): Promise<Identity> {
    return this.#state.caIdentity(generation ?? (await this.#state.currentIssuing()));
  }

  get links(): LinkStore {
    return (this.#links ??= this.port.linkStore?.('links', this.now) ?? new PortLinks(this.port, 'links', this.now));
  }

  get challenges(): LinkStore {
    return (this.#challenges ??= this.port.linkStore?.('challenges', this.now) ?? new PortLinks(this.port, 'challenges', this.now));
  }

  async scepRa(): Promise<ResponderIdentity> {
    return (await publish()).serviceIdentity(this.#state, await this.#state.currentIssuing(), 'scep');
  }

  async scepRaBySerial(serial: string): Promise<ResponderIdentity | undefined> {
    for (const c of await this.#state.cas()) {
      if (c.ca === 'root') continue;
      const r = await (await publish()).serviceIdentityBySerial(this.#state, c.ca, 'scep', normalizeSerial(serial));
      if (r) return r;
    }
    return undefined;
  }

  async setScepUrl(url: string | undefined): Promise<string | undefined> {
    const set = await (await admin()).setUrl(this.#state, 'scepUrl', url);
    await this.#state.reload();
    return set;
  }

  /** Sets (or clears) the PKI base URL, for certificates issued from then on. @throws ERR_INPUT_INVALID */
  async setPkiUrl(url: string | undefined): Promise<string | undefined> {
    const set = await (await admin()).setUrl(this.#state, 'pkiUrl', url);
    await this.#state.reload();
    return set;
  }

  /** A new profile signer from the current issuing CA; the previous one is revoked (superseded). */
  async rotateSigner(): Promise<{ previous: string; serial: string }> {
    return (await admin()).rotateSigner(this.#state);
  }

  /** Makes an outside CA's identity the profile signer. @throws ERR_CERT_INVALID */
  async importSigner(bundle: IdentityBundle, options?: { chain?: CertificateInput }): Promise<{ previous: string; serial: string; warnings: string[] }> {
    return (await admin()).importSigner(this.#state, bundle, options);
  }

  /** A new issuing CA under the same root, and a new signer from it. */
  async rotateIssuing(): Promise<{ generation: number; serial: string; signer: string }> {
    return (await admin()).rotateIssuing(this.#state);
  }

  /** Re-encrypts every private key under a new passphrase, all or none. Returns how many keys. */
  async changePassphrase(newPassphrase: string, options?: { kdfCost?: number }): Promise<number> {
    return (await admin()).changePassphrase(this.#state, newPassphrase, options);
  }
}
