/**
 * A new CA on an empty port: the root, the first issuing CA and the profile signer, with the
 * settings (organization, key derivation and check, URLs, permitted domains), written in one
 * transaction.
 *
 * @module ca-init
 */
import type { CertificateAuthority } from '../../certs/ca.js';
import type { KeyAlgorithm } from '../../certs/keys.js';
import { normalizeSerial } from '../../certs/pem.js';
import { checkOrganization } from '../../certs/publication.js';
import { certificateBasics } from '../../certs/x509.js';
import { StoreExists } from '../../errors.js';
import { checkNewPassphrase, newStoreCa } from '../issuance.js';
import type { StoragePort, StoreSettings } from '../port/port.js';
import { deriveKey, DEFAULT_KDF_COST, newKdfParams, seal } from '../secret-box.js';
import { sealCheck } from '../settings.js';

/** Options of {@link initializeCa}. */
export interface InitializeCaOptions {
  organization: string;
  passphrase: string;
  /** Default: `rsa-2048`. */
  keyAlgorithm?: KeyAlgorithm;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** log2 of scrypt's N. Default: 17. Lower only in tests. */
  kdfCost?: number;
  /** PKI base URL: certificates then carry CRL distribution points and AIA under it. */
  pkiUrl?: string;
  /** Permitted email domains: the issuing CA gets nameConstraints, and only these addresses are issued. */
  permittedEmailDomains?: string[];
  /** An existing CA to take (its keys are sealed like new ones); default: a new one. */
  ca?: CertificateAuthority;
}

/**
 * Writes a new CA into an empty port.
 * @throws ERR_STORE_EXISTS when the port holds a store already; ERR_INPUT_INVALID
 * @example
 * const port = new MemoryPort()
 * await initializeCa(port, { organization: 'Example Corp', passphrase: 'correct horse battery staple' })
 */
export async function initializeCa(port: StoragePort, options: InitializeCaOptions): Promise<StoreSettings> {
  return (await initialize(port, options)).settings;
}

/** @internal {@link initializeCa}, and the store key it derived (so that the store opens without deriving it again). */
export async function initialize(port: StoragePort, options: InitializeCaOptions): Promise<{ settings: StoreSettings; key: Buffer }> {
  checkNewPassphrase(options.passphrase);
  const organization = checkOrganization(options.organization);
  const now = options.now ?? (() => new Date());
  const made = options.ca ? { ca: options.ca, pkiUrl: options.pkiUrl, domains: options.permittedEmailDomains ?? [] } : await newStoreCa({ ...options, organization, now });
  const kdf = newKdfParams(options.kdfCost ?? DEFAULT_KDF_COST);
  const key = await deriveKey(options.passphrase, kdf);
  const settings = await writeCa(port, made.ca, key, {
    organization,
    created: now().toISOString(),
    kdf,
    check: sealCheck(key),
    keyGeneration: 1,
    ...(made.pkiUrl ? { pkiUrl: made.pkiUrl } : {}),
    ...(made.domains.length ? { permittedEmailDomains: made.domains } : {}),
    ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
  });
  return { settings, key };
}

/** @internal The CA and settings into an empty port, keys sealed under `key`. */
export async function writeCa(port: StoragePort, ca: CertificateAuthority, key: Buffer, settings: StoreSettings): Promise<StoreSettings> {
  const serial = (der: Buffer) => normalizeSerial(certificateBasics(der).serial);
  const sealer = (id: { privateKey: CertificateAuthority['root']['privateKey'] }) => {
    const der = id.privateKey.export({ format: 'der', type: 'pkcs8' });
    return (aad: string) => seal(key, der, aad);
  };
  await port.transaction(async (tx) => {
    const held = await tx.settings().then(() => true, () => false);
    if (held) throw new StoreExists(port.location);
    await tx.putCredential({ serial: serial(ca.root.certificate), role: 'root', current: true, certificate: ca.root.certificate }, sealer(ca.root));
    await tx.putCredential({ serial: serial(ca.intermediate.certificate), role: 'issuing', ca: 'root', generation: 1, current: true, certificate: ca.intermediate.certificate }, sealer(ca.intermediate));
    await tx.putCredential({ serial: serial(ca.signer.certificate), role: 'signer', ca: 'issuing', current: true, certificate: ca.signer.certificate }, sealer(ca.signer));
    await tx.putSettings(settings);
  });
  return settings;
}
