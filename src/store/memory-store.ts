/**
 * A store held in memory: for tests, and for embedders whose certificates live in their own
 * database (load them with `addIdentity`). The same lifecycle contract as the file store:
 * import, revocation, unenrollment, CRLs and one-time links.
 *
 * @module memory-store
 */
import { createCertificateAuthority, type CertificateAuthority } from '../certs/ca.js';
import { assertEmail } from '../certs/email.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../certs/issue.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates, type CertificateInput } from '../certs/pem.js';
import { describeCertificate } from '../certs/x509.js';
import { keySigner, type Signer } from '../cms/sign.js';
import { CertificateInvalid, InputInvalid, StoreEntryNotFound } from '../errors.js';
import { createCrl, type RevocationReason } from '../certs/crl.js';
import { checkImport, type IdentityBundle } from '../certs/import.js';
import { checkPkiUrl, publicationFor } from '../certs/publication.js';
import { MemoryLinks } from '../server/links.js';
import type { RevokeResult } from './pki-files.js';
import {
  compareRecords,
  findRecord,
  planReimport,
  removalOf,
  servesPurpose,
  type CertificateRecord,
  type ImportIdentityOptions,
  type ImportIdentityResult,
  type IssueUserCertificateOptions,
  type LifecycleStore,
  type ListCertificatesOptions,
  type RemoveUserResult,
  type TrustChain,
} from './store.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Default: `Example Corp`. */
  organization?: string;
  /** An existing CA; default: a new one is created. */
  ca?: CertificateAuthority;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Base URL of the PKI (CRL, CA certificates, OCSP): issued certificates name it in their CDP and AIA. */
  pkiUrl?: string;
}

/** Options of {@link MemoryStore.addIdentity}. */
export interface AddIdentityOptions {
  /** The certificate: PEM text, or DER or PEM bytes. */
  certificate: string | Uint8Array;
  privateKey: Identity['privateKey'];
  user: string;
  purpose: CertificatePurpose;
  /** Default: `imported`. */
  source?: CertificateRecord['source'];
  /** Issuer certificates that came with it: PEM text, bytes, or an array of those. */
  chain?: CertificateInput;
}

/**
 * The in-memory store. Create it with {@link createMemoryStore}.
 * @example
 * import type { MemoryStore } from 'profilesmith'
 * const store: MemoryStore = await createMemoryStore({ organization: 'Example Corp' })
 * for (const purpose of ['smime-signing', 'smime-encryption'] as const) {
 *   await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose })
 * }
 * const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } })
 */
export class MemoryStore implements LifecycleStore {
  readonly organization: string;
  readonly #ca: CertificateAuthority;
  readonly #entries = new Map<string, { record: CertificateRecord; identity: Identity; chain: Buffer[] }>();
  readonly #now: () => Date;
  #crlNumber = 0;
  /** The store's one-time download links, in memory. */
  readonly links: MemoryLinks;
  readonly pkiUrl: string | undefined;

  /** Use {@link createMemoryStore}: the constructor is not part of the API. */
  private constructor(organization: string, ca: CertificateAuthority, now: () => Date, pkiUrl?: string) {
    this.organization = organization;
    this.#ca = ca;
    this.#now = now;
    this.links = new MemoryLinks(now);
    this.pkiUrl = pkiUrl;
  }

  /** @internal What createMemoryStore calls. */
  static create(organization: string, ca: CertificateAuthority, now: () => Date, pkiUrl?: string): MemoryStore {
    return new MemoryStore(organization, ca, now, pkiUrl);
  }

  async findCertificate(serialOrFingerprint: string): Promise<CertificateRecord> {
    return findRecord([...this.#entries.values()].map((e) => e.record), serialOrFingerprint);
  }

  async importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
    assertEmail(options.user);
    const check = await checkImport(bundle, { user: options.user, purpose: options.purpose, now: this.#now(), ...(options.strict ? { strict: true } : {}) });
    const leaf = check.info.fingerprint;
    const given = options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true });
    const chain = distinctIssuers(leaf, bundle.chain, given);
    const held = () => [...this.#entries.values()].find((e) => e.record.fingerprint === leaf);
    const reimport = (existing: NonNullable<ReturnType<typeof held>>): ImportIdentityResult => {
      const plan = planReimport(existing.record, options.purpose, chain, check.info.keyUsage);
      if (plan.alsoPurpose) existing.record.alsoPurpose = plan.alsoPurpose;
      if (plan.addChain.length) {
        existing.record.addedChain = [...(existing.record.addedChain ?? []), ...plan.addChain.map((d) => fingerprint(d))];
        existing.chain.push(...plan.addChain);
      }
      const changed = !!plan.alsoPurpose || plan.addChain.length > 0;
      return { record: structuredClone(existing.record), duplicate: true, added: { ...(plan.alsoPurpose ? { purpose: plan.alsoPurpose } : {}), chain: plan.addChain.length }, warnings: changed ? check.warnings : [] };
    };
    const existing = held();
    if (existing) return reimport(existing);
    try {
      const record = await this.addIdentity({ certificate: bundle.certificate, privateKey: bundle.privateKey, user: check.email, purpose: options.purpose, chain });
      return { record: structuredClone(record), duplicate: false, warnings: check.warnings };
    } catch (err) {
      // The same certificate taken in by a concurrent import meanwhile: this one is a re-import.
      const raced = held();
      if (raced) return reimport(raced);
      throw err;
    }
  }

  async revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    const e = this.#get(serial);
    if (e.record.source !== 'issued') throw new CertificateInvalid('outside-ca', `Certificate ${e.record.serial} was issued by an outside CA ("${e.record.issuer}"); only that CA can revoke it`);
    const already = !!e.record.revoked;
    if (!already) {
      e.record.revoked = { date: this.#now().toISOString(), reason };
      delete e.record.retired;
    }
    return { serial: e.record.serial, kind: 'user', ca: 'issuing', already, revoked: { ...e.record.revoked! }, record: structuredClone(e.record) };
  }

  async removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    const all = [...this.#entries.values()].filter((e) => e.record.user.toLowerCase() === user.toLowerCase());
    if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
    const date = this.#now().toISOString();
    const out: RemoveUserResult = { revoked: [], retired: [] };
    for (const e of all) {
      const action = removalOf(e.record, options);
      if (action === 'revoke') {
        e.record.revoked = { date, reason: 'cessationOfOperation' };
        delete e.record.retired;
        out.revoked.push(structuredClone(e.record));
      } else if (action === 'retire') {
        e.record.retired = { date };
        out.retired.push(structuredClone(e.record));
      }
    }
    return out;
  }

  async createCrl(options: { nextUpdateMs?: number } = {}): Promise<Buffer> {
    const now = this.#now();
    const entries = [...this.#entries.values()]
      .filter((e) => e.record.revoked && e.record.source === 'issued')
      .map((e) => ({ serial: e.record.serial, date: new Date(e.record.revoked!.date), reason: e.record.revoked!.reason as RevocationReason }));
    return createCrl({
      issuerCertificate: this.#ca.intermediate.certificate,
      issuerKey: this.#ca.intermediate.privateKey,
      entries,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + (options.nextUpdateMs ?? 7 * 86_400_000)),
      crlNumber: ++this.#crlNumber,
    });
  }

  /** Adds an identity the embedder already holds. */
  async addIdentity(options: AddIdentityOptions): Promise<CertificateRecord> {
    assertEmail(options.user);
    const certs = toCertificates(options.certificate, 'certificate');
    if (certs.length !== 1) throw new InputInvalid('certificate', `certificate must be one certificate, not ${certs.length} (put the issuers in chain)`);
    const certificate = certs[0]!;
    const chain = options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true });
    const info = await describeCertificate(certificate);
    if (this.#entries.has(normalizeSerial(info.serial))) throw new CertificateInvalid('duplicate', `A certificate with serial ${info.serial} is already in the store`);
    const record: CertificateRecord = {
      serial: normalizeSerial(info.serial),
      user: options.user,
      purpose: options.purpose,
      source: options.source ?? 'imported',
      subject: info.subject,
      issuer: info.issuer,
      notBefore: info.notBefore.toISOString(),
      notAfter: info.notAfter.toISOString(),
      fingerprint: info.fingerprint,
      created: this.#now().toISOString(),
      ...(info.commonName ? { name: info.commonName } : {}),
      ...(chain.length ? { chain: chain.map((c) => fingerprint(c)) } : {}),
    };
    this.#entries.set(record.serial, { record, identity: { certificate, privateKey: options.privateKey }, chain });
    return record;
  }

  async listCertificates(options: ListCertificatesOptions = {}): Promise<CertificateRecord[]> {
    const user = options.user?.toLowerCase();
    return [...this.#entries.values()]
      .map((e) => structuredClone(e.record))
      .filter((r) => (!user || r.user.toLowerCase() === user) && (!options.purpose || servesPurpose(r, options.purpose)))
      .sort(compareRecords);
  }

  #get(serial: string) {
    const e = this.#entries.get(normalizeSerial(serial));
    if (!e) throw new StoreEntryNotFound(serial, 'certificate');
    return e;
  }

  async getCertificate(serial: string): Promise<Buffer> {
    return this.#get(serial).identity.certificate;
  }

  async getIdentity(serial: string): Promise<Identity> {
    return this.#get(serial).identity;
  }

  async issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord> {
    const identity = await issueCertificate(this.#ca.intermediate, {
      purpose: options.purpose,
      email: options.user,
      name: options.name,
      now: this.#now,
      ...(options.days !== undefined ? { days: options.days } : {}),
      ...(options.privateKey ? { privateKey: options.privateKey } : {}),
      ...(this.pkiUrl ? { publication: publicationFor(this.pkiUrl, 1)! } : {}),
    });
    return this.addIdentity({ ...identity, user: options.user, purpose: options.purpose, source: 'issued' });
  }

  async trustChain(): Promise<TrustChain> {
    return { roots: [this.#ca.root.certificate], intermediates: [this.#ca.intermediate.certificate] };
  }

  async issuerChain(serial: string): Promise<Buffer[]> {
    const e = this.#get(serial);
    return e.record.source === 'issued' ? [this.#ca.intermediate.certificate, this.#ca.root.certificate] : e.chain;
  }

  async profileSigner(): Promise<Signer> {
    return keySigner({ key: this.#ca.signer.privateKey, certificate: this.#ca.signer.certificate, chain: [this.#ca.intermediate.certificate] });
  }
}

/**
 * Creates an in-memory store, with a new CA unless one is given.
 * @example
 * const store = await createMemoryStore({ organization: 'Example Corp' })
 * await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 */
export async function createMemoryStore(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
  const organization = options.organization ?? 'Example Corp';
  const now = options.now ?? (() => new Date());
  const ca = options.ca ?? (await createCertificateAuthority({ organization, now }));
  return MemoryStore.create(organization, ca, now, options.pkiUrl ? checkPkiUrl(options.pkiUrl) : undefined);
}
