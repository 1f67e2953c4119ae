/**
 * The CA as its credentials hold it: the CA certificates of every generation, the trust chain
 * a device needs, a certificate's issuers, the profile signer, and the certificates the CAs
 * issued for the store itself (signers, OCSP responders, SCEP RAs).
 *
 * @module ca-authority
 */
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug, parseCaSlug, type CaRef } from '../../certs/publication.js';
import { describeCertificate } from '../../certs/x509.js';
import { keySigner, type Signer } from '../../cms/sign.js';
import { CertificateInvalid, StoreIOError } from '../../errors.js';
import type { Credential } from '../port/port.js';
import type { CaIssuedCertificate, StoreCa } from '../pki-files.js';
import { statusOf, type TrustChain } from '../store.js';
import type { CaContext } from './context.js';

/** The root and every issuing CA generation, oldest first, from the credentials. */
export async function caCertificatesOf(credentials: readonly Credential[], where: string): Promise<StoreCa[]> {
  const root = credentials.find((c) => c.role === 'root');
  if (!root) throw new StoreIOError(where, 'read', `The store at "${where}" has no root CA`);
  const issuing = credentials.filter((c) => c.role === 'issuing').sort((a, b) => (a.generation ?? 1) - (b.generation ?? 1));
  const out: StoreCa[] = [];
  for (const c of [root, ...issuing]) {
    const ca: CaRef = c.role === 'root' ? 'root' : (c.generation ?? 1);
    const info = await describeCertificate(c.certificate);
    out.push({ ca, slug: caSlug(ca), certificate: c.certificate, serial: normalizeSerial(info.serial), subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter });
  }
  return out;
}

/** The current credential of a role (and CA). */
export function currentOf(credentials: readonly Credential[], role: Credential['role'], ca?: string): Credential | undefined {
  return credentials.find((c) => c.role === role && c.current && (ca === undefined || c.ca === ca));
}

/** The generation a CA slug names (`issuing` is 1). */
export function generationOf(slug: string | undefined): number {
  const ca = slug === undefined ? undefined : parseCaSlug(slug);
  return typeof ca === 'number' ? ca : 1;
}

/**
 * The certificates the store's CAs issued for the store itself: profile signers (current and
 * past), OCSP responders and SCEP RAs. An imported signer (no CA of ours) is left out: not
 * ours to revoke or to answer for.
 */
export function caIssued(credentials: readonly Credential[]): CaIssuedCertificate[] {
  const kinds = { signer: 'signer', responder: 'responder', 'scep-ra': 'scep-ra' } as const;
  const out: CaIssuedCertificate[] = [];
  for (const c of credentials) {
    if (c.role === 'root' || c.role === 'issuing' || c.ca === undefined) continue;
    const ca = parseCaSlug(c.ca);
    if (ca !== undefined) out.push({ serial: c.serial, kind: kinds[c.role], ca, certificate: c.certificate });
  }
  return out;
}

/**
 * The root, and the issuing CAs a device needs: the current one first, then each older one
 * that is neither revoked nor expired and still has live certificates (or issued the signer).
 */
export async function trustChain(ctx: CaContext): Promise<TrustChain> {
  const cas = await ctx.cas();
  const current = await ctx.currentIssuing();
  const root = cas.find((c) => c.ca === 'root')!.certificate;
  const issuing = cas.filter((c) => c.ca !== 'root');
  if (issuing.length === 1) return { roots: [root], intermediates: [issuing[0]!.certificate] };
  const signer = currentOf(await ctx.credentials(), 'signer');
  const signerIssuing = signer?.ca === undefined ? undefined : generationOf(signer.ca);
  const revoked = new Set((await ctx.port.revocations()).filter((r) => r.kind === 'revoked').map((r) => r.serial));
  const now = ctx.now();
  const live = new Set<string>();
  for (const r of await ctx.port.records()) if (r.source === 'issued' && statusOf(r, now) === 'valid') live.add(r.issuer);
  const keep = issuing.filter((c) => c.ca === current || c.ca === signerIssuing || (!revoked.has(c.serial) && c.notAfter > now && live.has(c.subject)));
  keep.sort((a, b) => (a.ca === current ? -1 : b.ca === current ? 1 : (b.ca as number) - (a.ca as number)));
  return { roots: [root], intermediates: keep.map((c) => c.certificate) };
}

/** The issuers of a stored certificate, as far as the store knows them (leaf-most first). */
export async function issuerChain(ctx: CaContext, serial: string): Promise<Buffer[]> {
  const record = await ctx.record(normalizeSerial(serial));
  const cas = await ctx.cas();
  const root = cas.find((c) => c.ca === 'root')!.certificate;
  if (record.source === 'issued') {
    const gen = cas.length === 2 ? 1 : await ctx.issuingOf(record);
    return [cas.find((c) => c.ca === gen)!.certificate, root];
  }
  const fps = [...new Set([...(record.chain ?? []), ...(record.addedChain ?? [])])];
  if (!fps.length) return [];
  const held = await ctx.port.chains(fps);
  return fps.map((fp) => held.get(fp)).filter((d): d is Buffer => d !== undefined);
}

/** The current profile signer. @throws ERR_CERT_INVALID (`revoked`) when it was revoked */
export async function profileSigner(ctx: CaContext): Promise<Signer> {
  const settings = await ctx.settings();
  const signer = currentOf(await ctx.credentials(), 'signer');
  if (!signer?.key) throw new StoreIOError(ctx.port.location, 'read', `The store at "${ctx.port.location}" has no profile signer with a key; run \`profilesmith ca rotate-signer\``);
  if ((await ctx.port.revocations()).some((r) => r.serial === signer.serial && r.kind === 'revoked')) {
    throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked; issue a new one with `profilesmith ca rotate-signer`');
  }
  let chain: Buffer[];
  if (settings.signerChain) {
    const held = await ctx.port.chains(settings.signerChain);
    chain = settings.signerChain.map((fp) => held.get(fp)).filter((d): d is Buffer => d !== undefined);
  } else {
    const gen = generationOf(signer.ca);
    chain = [(await ctx.cas()).find((c) => c.ca === gen)!.certificate];
  }
  return keySigner({ key: ctx.keys.open(signer.key), certificate: signer.certificate, chain });
}

/** The identity of one of the store's CAs (certificate and key); needs the passphrase. */
export async function loadCaIdentity(ctx: CaContext, ca: CaRef): Promise<Identity> {
  const credentials = await ctx.credentials();
  const c = ca === 'root' ? credentials.find((x) => x.role === 'root') : credentials.find((x) => x.role === 'issuing' && (x.generation ?? 1) === ca);
  if (!c) throw new StoreIOError(ctx.port.location, 'read', `The store at "${ctx.port.location}" has no CA ${caSlug(ca)}`);
  if (!c.key) throw new StoreIOError(ctx.port.location, 'read', `The key of CA ${caSlug(ca)} is missing from the store at "${ctx.port.location}"`);
  return { certificate: c.certificate, privateKey: ctx.keys.open(c.key) };
}
