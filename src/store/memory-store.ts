/**
 * A store held in memory: the CA over the memory port, for tests, demos, and embedders whose
 * certificates live in their own database (load them with `addIdentity`). The whole lifecycle
 * of the file store: issuing, import, revocation, unenrollment, CRLs and OCSP statuses,
 * rotation, SCEP, one-time links.
 *
 * @module memory-store
 */
import { randomBytes } from 'node:crypto';
import { createCertificateAuthority, type CertificateAuthority } from '../certs/ca.js';
import { assertEmail } from '../certs/email.js';
import type { CertificatePurpose, Identity } from '../certs/issue.js';
import { toCertificates, type CertificateInput } from '../certs/pem.js';
import { checkOrganization, checkPkiUrl } from '../certs/publication.js';
import { InputInvalid } from '../errors.js';
import { CaStore } from './ca/ca-store.js';
import { writeCa } from './ca/init.js';
import { newRecord } from './issuance.js';
import { MemoryPort } from './memory/port.js';
import { newKdfParams } from './secret-box.js';
import { sealCheck } from './settings.js';
import type { CertificateRecord } from './store.js';

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
export class MemoryStore extends CaStore {
  /** @internal What createMemoryStore calls. */
  static async make(port: MemoryPort, key: Buffer, now: () => Date): Promise<MemoryStore> {
    const store = new MemoryStore(port, await port.settings(), now);
    store.unlockWithKey(key);
    return store;
  }

  /**
   * Adds an identity the embedder already holds, as it is (no import checks).
   * @throws ERR_INPUT_INVALID; ERR_CERT_INVALID (`duplicate`) for a serial held already
   */
  async addIdentity(options: AddIdentityOptions): Promise<CertificateRecord> {
    assertEmail(options.user);
    const certs = toCertificates(options.certificate, 'certificate');
    if (certs.length !== 1) throw new InputInvalid('certificate', `certificate must be one certificate, not ${certs.length} (put the issuers in chain)`);
    const certificate = certs[0]!;
    const chain = options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true });
    const record = await newRecord(certificate, { user: options.user, purpose: options.purpose, source: options.source ?? 'imported', chain, now: this.now() });
    const seal = this.keys.sealer(options.privateKey);
    await this.write(async (tx) => {
      await tx.putChains(chain);
      await tx.addCertificate(record, certificate, seal);
    }, 'seals');
    return record;
  }
}

/**
 * Creates an in-memory store, with a new CA unless one is given. Its keys are sealed under a
 * random key of its own: no passphrase, and nothing outlives the process.
 * @example
 * const store = await createMemoryStore({ organization: 'Example Corp' })
 * await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 */
export async function createMemoryStore(options: MemoryStoreOptions = {}): Promise<MemoryStore> {
  const organization = checkOrganization(options.organization ?? 'Example Corp');
  const now = options.now ?? (() => new Date());
  const ca = options.ca ?? (await createCertificateAuthority({ organization, now }));
  const pkiUrl = options.pkiUrl ? checkPkiUrl(options.pkiUrl) : undefined;
  const key = randomBytes(32);
  const port = new MemoryPort();
  await writeCa(port, ca, key, { organization, created: now().toISOString(), kdf: newKdfParams(10), check: sealCheck(key), keyGeneration: 1, ...(pkiUrl ? { pkiUrl } : {}) });
  return MemoryStore.make(port, key, now);
}
