/**
 * The state one CA instance keeps over its port: the store key, the settings as last read (at
 * most a second old), the CA certificates and the CA keys decrypted once, the service identities
 * while fresh, and the one way it writes (a port transaction, with the key generation checked for
 * writes that seal). The CA's parts see it as their {@link CaContext}.
 *
 * @module ca-state
 */
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug, type CaRef } from '../../certs/publication.js';
import { StoreEntryNotFound, StoreIOError } from '../../errors.js';
import type { Credential, PortTransaction, StoragePort, StoreSettings } from '../port/port.js';
import type { ResponderIdentity, StoreCa } from '../pki-files.js';
import type { CertificateRecord } from '../record.js';
import type { CaContext } from './context.js';
import { Keyring } from './keyring.js';

// The CA certificates need the certificate code: loaded on first use (a store opened to list it needs none).
const authority = () => import('./authority.js');

/** @internal The state of one CA instance. */
export class CaState implements CaContext {
  readonly keys: Keyring;
  readonly services = new Map<string, Promise<ResponderIdentity>>();
  #settings: StoreSettings;
  #settingsAt = Date.now();
  #cas: { at: number; value: Promise<StoreCa[]> } | undefined;
  #credentials: { at: number; value: Promise<Credential[]> } | undefined;
  #issuers = new Map<string, Promise<Identity>>();

  constructor(
    readonly port: StoragePort,
    settings: StoreSettings,
    readonly now: () => Date,
  ) {
    this.#settings = settings;
    this.keys = new Keyring(port.location, settings);
  }

  /** The settings as last read. */
  get meta(): StoreSettings {
    return this.#settings;
  }

  /** After a change of a setting by this instance: the settings read again. */
  async reload(): Promise<void> {
    this.#settings = await this.port.settings();
    this.#settingsAt = Date.now();
  }

  async settings(): Promise<StoreSettings> {
    if (Date.now() - this.#settingsAt < 1000) return this.#settings;
    const fresh = await this.port.settings();
    this.#settingsAt = Date.now();
    // A new key generation is this instance's only after it opens with the new passphrase.
    if (fresh.keyGeneration === this.keys.generation) this.#settings = fresh;
    return this.#settings;
  }

  async write<T>(fn: (tx: PortTransaction) => Promise<T>, seals?: 'seals'): Promise<T> {
    try {
      return await this.port.transaction(async (tx) => {
        if (seals) {
          const current = await tx.settings();
          if (current.keyGeneration !== this.keys.generation) throw this.stale('run it again');
        }
        return fn(tx);
      });
    } finally {
      this.#settingsAt = 0;
      this.#credentials = undefined;
    }
  }

  /** What a key that does not open means when the passphrase was changed since this instance opened the store. */
  stale(then: string): StoreIOError {
    return new StoreIOError(this.port.location, 'write', `The store passphrase was changed (${this.port.elsewhere ?? 'by another process'}) since this one opened the store; ${then}`);
  }

  /** `err`, or why a key did not open: the passphrase was changed elsewhere since this instance opened the store. */
  async explain(err: unknown): Promise<unknown> {
    if (!(err instanceof StoreIOError) || err.op !== 'decrypt') return err;
    const now = await this.port.settings().catch(() => undefined);
    return now && now.keyGeneration !== this.keys.generation ? this.stale('open it again with the new one') : err;
  }

  /**
   * The port's credentials, read at most once a second (a batch asks for them with every
   * profile: the trust chain, the signer) and again after this instance's writes; another
   * process's rotation is seen within a second, as the settings are.
   */
  credentials(): Promise<Credential[]> {
    if (!this.#credentials || Date.now() - this.#credentials.at > 1000) {
      const value = this.port.credentials();
      value.catch(() => (this.#credentials = undefined));
      this.#credentials = { at: Date.now(), value };
    }
    return this.#credentials.value;
  }

  cas(): Promise<StoreCa[]> {
    if (!this.#cas || Date.now() - this.#cas.at > 1000) {
      const value = this.credentials().then(async (c) => (await authority()).caCertificatesOf(c, this.port.location));
      value.catch(() => (this.#cas = undefined));
      this.#cas = { at: Date.now(), value };
    }
    return this.#cas.value;
  }

  forgetCas(): void {
    this.#cas = undefined;
    this.#credentials = undefined;
    this.#issuers.clear();
    this.services.clear();
    this.#settingsAt = 0;
  }

  async currentIssuing(): Promise<number> {
    const c = (await authority()).currentOf(await this.credentials(), 'issuing');
    return c?.generation ?? Math.max(1, ...(await this.cas()).filter((x) => x.ca !== 'root').map((x) => x.ca as number));
  }

  async caIdentity(ca: CaRef): Promise<Identity> {
    const slug = caSlug(ca);
    let hit = this.#issuers.get(slug);
    if (!hit) {
      hit = (await authority()).loadCaIdentity(this, ca).catch(async (err: unknown) => Promise.reject(await this.explain(err)));
      hit.catch(() => this.#issuers.delete(slug));
      this.#issuers.set(slug, hit);
    }
    return hit;
  }

  async issuingOf(record: { issuer: string }): Promise<number> {
    const hit = (await this.cas()).find((c) => c.ca !== 'root' && c.subject === record.issuer);
    return hit ? (hit.ca as number) : 1;
  }

  async record(serial: string): Promise<CertificateRecord> {
    const hit = (await this.port.records({ serial: normalizeSerial(serial) }))[0];
    if (!hit) throw new StoreEntryNotFound(serial, 'certificate');
    return hit;
  }

}
