/**
 * A store held in memory: for tests, and for embedders whose certificates live in their own
 * database (load them with `addIdentity`). Same contract as the file store.
 *
 * @module memory-store
 */
import { createCertificateAuthority, type CertificateAuthority } from '../certs/ca.js';
import { assertEmail } from '../certs/email.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../certs/issue.js';
import { fingerprint, normalizeSerial, toCertificates, type CertificateInput } from '../certs/pem.js';
import { describeCertificate } from '../certs/x509.js';
import { keySigner, type Signer } from '../cms/sign.js';
import { CertificateInvalid, InputInvalid, StoreEntryNotFound } from '../errors.js';
import { compareRecords, servesPurpose, type CertificateRecord, type CertificateStore, type IssueUserCertificateOptions, type ListCertificatesOptions, type TrustChain } from './store.js';

/** Options of {@link createMemoryStore}. */
export interface MemoryStoreOptions {
  /** Default: `Example Corp`. */
  organization?: string;
  /** An existing CA; default: a new one is created. */
  ca?: CertificateAuthority;
  /** Default: `() => new Date()`. */
  now?: () => Date;
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

/** The in-memory store. Create it with {@link createMemoryStore}. */
export class MemoryStore implements CertificateStore {
  readonly organization: string;
  readonly #ca: CertificateAuthority;
  readonly #entries = new Map<string, { record: CertificateRecord; identity: Identity; chain: Buffer[] }>();
  readonly #now: () => Date;

  /** @internal */
  constructor(organization: string, ca: CertificateAuthority, now: () => Date) {
    this.organization = organization;
    this.#ca = ca;
    this.#now = now;
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
  return new MemoryStore(organization, ca, now);
}
