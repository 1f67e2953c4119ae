/**
 * What every store keeps about itself, whatever holds it (the file store's store.json, the
 * PostgreSQL store's meta row): the organization, the key derivation and its check value, the
 * key generation, and the CA's settings. One definition, so that a setting added here is kept
 * by both stores and carried by `store migrate`.
 *
 * @module store-settings
 */
import type { KeyAlgorithm } from '../certs/keys.js';
import { seal, unseal, type KdfParams, type Sealed } from './secret-box.js';

/** The settings both stores keep. */
export interface StoreSettings {
  organization: string;
  created: string;
  kdf: KdfParams;
  /** A known text sealed under the store key: what tells a right passphrase from a wrong one. */
  check: Sealed;
  keyGeneration: number;
  /** The key algorithm of the CA keys, for the CA certificates issued after init. Absent: rsa-2048. */
  keyAlgorithm?: KeyAlgorithm;
  /** PKI base URL written into certificates issued from then on (CDP, AIA). */
  pkiUrl?: string;
  /** The URL of the store's SCEP server, written into SCEP profiles. */
  scepUrl?: string;
  /** Permitted rfc822Name subtrees of the issuing CAs (nameConstraints). */
  permittedEmailDomains?: string[];
  /** The current signer came from an outside CA (`ca import-signer`): its issuers, by SHA-256. */
  signerChain?: string[];
}

/** Every optional setting, for copying a store's settings to another store. */
const OPTIONAL = ['keyAlgorithm', 'pkiUrl', 'scepUrl', 'permittedEmailDomains', 'signerChain'] as const;

/** @internal The {@link StoreSettings} of `meta`, and nothing else of it (an empty setting left out). */
export function storeSettings(meta: StoreSettings): StoreSettings {
  const out: StoreSettings = { organization: meta.organization, created: meta.created, kdf: meta.kdf, check: meta.check, keyGeneration: meta.keyGeneration };
  for (const k of OPTIONAL) {
    const v = meta[k];
    // An empty signerChain still says something: the signer came from an outside CA, with no issuers given.
    if (v !== undefined && (!Array.isArray(v) || v.length || k === 'signerChain')) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}

const CHECK_AAD = 'store-check';
const CHECK_TEXT = 'profilesmith';

/** @internal The check value a store keeps, sealed under its key. */
export function sealCheck(key: Buffer): Sealed {
  return seal(key, Buffer.from(CHECK_TEXT), CHECK_AAD);
}

/** @internal True when `key` opens the store's check value: the one test of a passphrase or a handed-over key. */
export function opensCheck(key: Buffer, check: Sealed): boolean {
  return unseal(key, check, CHECK_AAD)?.toString() === CHECK_TEXT;
}
