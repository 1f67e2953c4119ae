/**
 * The CA's administration: the PKI and SCEP URLs, rotating the profile signer and the issuing
 * CA, importing an outside signer, and changing the passphrase. Each is one transaction.
 *
 * @module ca-admin
 */
import { createIssuingCa, createProfileSigner } from '../../certs/ca.js';
import type { IdentityBundle } from '../../certs/import.js';
import { fingerprint, normalizeSerial, type CertificateInput } from '../../certs/pem.js';
import { caSlug, checkPkiUrl, checkScepUrl } from '../../certs/publication.js';
import { certificateBasics } from '../../certs/x509.js';
import { CertificateInvalid, StoreIOError } from '../../errors.js';
import { checkNewPassphrase, checkSignerImport } from '../issuance.js';
import type { Credential, PortTransaction, Sealer, StoreSettings } from '../port/port.js';
import { deriveKey, newKdfParams } from '../secret-box.js';
import { sealCheck } from '../settings.js';
import { currentOf } from './authority.js';
import type { CaContext } from './context.js';
import { Keyring } from './keyring.js';
import { caOptions } from './publish.js';

/** Sets (or, with undefined, clears) a URL setting. @throws ERR_INPUT_INVALID for a URL that is not http(s) */
export async function setUrl(ctx: CaContext, field: 'pkiUrl' | 'scepUrl', url: string | undefined): Promise<string | undefined> {
  const checked = url === undefined ? undefined : field === 'pkiUrl' ? checkPkiUrl(url) : checkScepUrl(url);
  await ctx.write(async (tx) => {
    const next: StoreSettings = { ...(await tx.settings()) };
    if (checked) next[field] = checked;
    else delete next[field];
    await tx.putSettings(next);
  });
  return checked;
}

/**
 * In the caller's transaction: `signer` (issued by CA `slug`, or by an outside CA without one)
 * becomes the profile signer; the previous one loses its key and, if one of our CAs issued it,
 * is revoked (superseded). Returns the previous signer's serial.
 */
async function putSigner(ctx: CaContext, tx: PortTransaction, signer: Omit<Credential, 'key' | 'role' | 'current'>, seal: Sealer): Promise<string> {
  const old = currentOf(await tx.credentials(), 'signer');
  if (old?.serial === signer.serial) throw new CertificateInvalid('duplicate', 'This certificate is the profile signer already');
  await tx.putCredential({ ...signer, role: 'signer', current: true }, seal);
  if (old) {
    await tx.putCredential({ ...old, current: false }, null);
    // An imported signer belongs to an outside CA, which alone can revoke it.
    if (old.ca !== undefined) await tx.putRevocation({ serial: old.serial, date: ctx.now().toISOString(), reason: 'superseded', kind: 'revoked', ca: old.ca });
  }
  return old?.serial ?? '';
}

/**
 * A new profile-signing identity from the current issuing CA; the previous signer is revoked
 * (superseded) and its key deleted.
 */
export async function rotateSigner(ctx: CaContext): Promise<{ previous: string; serial: string }> {
  ctx.keys.require('rotate the profile signer');
  const gen = await ctx.currentIssuing();
  const made = await createProfileSigner(await ctx.caIdentity(gen), gen, await caOptions(ctx));
  const serial = normalizeSerial(certificateBasics(made.certificate).serial);
  const seal = ctx.keys.sealer(made.privateKey);
  const previous = await ctx.write(async (tx) => {
    const settings = await tx.settings();
    const prior = await putSigner(ctx, tx, { serial, ca: caSlug(gen), certificate: made.certificate }, seal);
    // The store's own signer again: the issuers of an imported one no longer apply.
    if (settings.signerChain) {
      const { signerChain: _outside, ...rest } = settings;
      await tx.putSettings(rest);
    }
    return prior;
  }, 'seals');
  ctx.forgetCas();
  return { previous, serial };
}

/**
 * Makes an identity from an outside CA the profile signer; its issuers are kept for the
 * signature. The store's own previous signer is revoked (superseded).
 * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, or one without digitalSignature
 */
export async function importSigner(ctx: CaContext, bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
  ctx.keys.require('import a signer');
  const { chain, serial, warnings } = await checkSignerImport(bundle, options, ctx.now());
  const seal = ctx.keys.sealer(bundle.privateKey);
  const previous = await ctx.write(async (tx) => {
    const settings = await tx.settings();
    await tx.putChains(chain);
    const prior = await putSigner(ctx, tx, { serial, certificate: bundle.certificate }, seal);
    await tx.putSettings({ ...settings, signerChain: chain.map((c) => fingerprint(c)) });
    return prior;
  }, 'seals');
  ctx.forgetCas();
  return { previous, serial, warnings };
}

/**
 * A new issuing CA under the same root (with the store's name constraints and PKI URLs), and a
 * new profile signer from it, in one transaction. Certificates of the old CA stay valid under it.
 */
export async function rotateIssuing(ctx: CaContext): Promise<{ generation: number; serial: string; signer: string }> {
  ctx.keys.require('rotate the issuing CA');
  const settings = await ctx.settings();
  const generation = (await ctx.currentIssuing()) + 1;
  const options = await caOptions(ctx);
  const ca = await createIssuingCa(await ctx.caIdentity('root'), generation, { ...options, ...(settings.permittedEmailDomains?.length ? { permittedEmailDomains: settings.permittedEmailDomains } : {}) });
  const signer = await createProfileSigner(ca, generation, options);
  const caSerial = normalizeSerial(certificateBasics(ca.certificate).serial);
  const signerSerial = normalizeSerial(certificateBasics(signer.certificate).serial);
  const sealCa = ctx.keys.sealer(ca.privateKey);
  const sealSigner = ctx.keys.sealer(signer.privateKey);
  await ctx.write(async (tx) => {
    const credentials = await tx.credentials();
    const newest = Math.max(1, ...credentials.filter((c) => c.role === 'issuing').map((c) => c.generation ?? 1));
    if (newest + 1 !== generation) throw new StoreIOError(ctx.port.location, 'write', 'Another process rotated the issuing CA while this ran; run it again');
    await tx.putCredential({ serial: caSerial, role: 'issuing', ca: 'root', generation, current: true, certificate: ca.certificate }, sealCa);
    await putSigner(ctx, tx, { serial: signerSerial, ca: caSlug(generation), certificate: signer.certificate }, sealSigner);
    const now = await tx.settings();
    if (now.signerChain) {
      const { signerChain: _outside, ...rest } = now;
      await tx.putSettings(rest);
    }
  }, 'seals');
  ctx.forgetCas();
  return { generation, serial: caSerial, signer: signerSerial };
}

/**
 * Re-encrypts every private key under a new passphrase (new salt, new key), all or none.
 * @throws ERR_KEY_PASSPHRASE when the current passphrase was not given; ERR_STORE_IO when a key does not decrypt
 */
export async function changePassphrase(ctx: CaContext, newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
  checkNewPassphrase(newPassphrase);
  const old = ctx.keys.require('change the passphrase');
  const settings = await ctx.settings();
  const kdf = newKdfParams(options.kdfCost ?? Math.log2(settings.kdf.N));
  const key = await deriveKey(newPassphrase, kdf);
  const where = ctx.port.location;
  let generation = 0;
  const count = await ctx.write(async (tx) => {
    const current = await tx.settings();
    generation = current.keyGeneration + 1;
    return tx.rekey((k) => Keyring.reseal(old, key, k, where), { ...current, kdf, check: sealCheck(key), keyGeneration: generation });
  }, 'seals');
  ctx.keys.replace(key, generation);
  ctx.forgetCas();
  return count;
}
