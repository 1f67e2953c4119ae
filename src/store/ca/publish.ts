/**
 * The CA's publication: CRLs (numbered in the transaction that signs them, so numbers strictly
 * increase across processes and nodes), the CRL a PKI server publishes, OCSP statuses, and the
 * identities the CAs issue for the store's own services (OCSP responders, SCEP RAs), issued and
 * renewed by themselves.
 *
 * @module ca-publish
 */
import { createHash, X509Certificate } from 'node:crypto';
import { createOcspResponder, createScepRa } from '../../certs/ca.js';
import { createCrl as signCrlDer, type RevocationReason } from '../../certs/crl.js';
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug, type CaRef } from '../../certs/publication.js';
import { certificateBasics } from '../../certs/x509.js';
import { InputInvalid } from '../../errors.js';
import type { SerialStatus } from '../../pki/handler.js';
import type { CrlState, PortTransaction, Revocation } from '../port/port.js';
import type { ResponderIdentity, ServiceKind } from '../pki-files.js';
import { caIssued } from './authority.js';
import type { CaContext } from './context.js';

/** The revocations a CA's CRL lists. Lines from before issuing CA rotation name no CA: the first issuing CA's. */
export function crlEntries(revocations: readonly Revocation[], ca: CaRef) {
  const slug = caSlug(ca);
  return revocations
    .filter((r) => r.kind === 'revoked' && (r.ca ?? 'issuing') === slug)
    .map((r) => ({ serial: r.serial, date: new Date(r.date), reason: r.reason as RevocationReason }));
}

/** SHA-256 of the entries a CRL lists: whether the published one is still current. */
export const digestOf = (entries: ReturnType<typeof crlEntries>) =>
  createHash('sha256').update(JSON.stringify(entries.map((e) => [e.serial, e.date.toISOString(), e.reason]))).digest('hex');

/**
 * Signs a CRL for `ca` with the next number, in the caller's transaction. Numbers start at the
 * thisUpdate time in seconds (what earlier versions wrote) and then only grow. With `publish`,
 * the port keeps it as the CRL a PKI server serves; without, only the number is written.
 */
async function signNext(tx: PortTransaction, ca: CaRef, issuer: Identity, now: Date, validityMs: number, publish: boolean): Promise<Buffer> {
  const slug = caSlug(ca);
  const entries = crlEntries(await tx.revocations(), ca);
  const previous = await tx.crlState(slug);
  const number = Math.max((previous?.number ?? 0) + 1, Math.floor(now.getTime() / 1000));
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
  const der = await signCrlDer({ issuerCertificate: issuer.certificate, issuerKey: issuer.privateKey, entries, thisUpdate, nextUpdate, crlNumber: number });
  const state: CrlState = publish ? { number, published: { thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(), digest: digestOf(entries), der } } : { number };
  await tx.putCrlState(slug, state);
  return der;
}

/** The CA a CRL is asked of: a CA of this store. @throws ERR_INPUT_INVALID */
async function crlCa(ctx: CaContext, ca: CaRef | undefined): Promise<CaRef> {
  const current = await ctx.currentIssuing();
  const which = ca ?? current;
  if (which !== 'root' && !(await ctx.cas()).some((c) => c.ca === which)) throw new InputInvalid('ca', `This store has no issuing CA ${caSlug(which)}`);
  return which;
}

/**
 * A DER CRL signed by one of the store's CAs (default: the current issuing CA), listing every
 * serial it revoked; its number is one more than the last this store signed for that CA. The
 * root's CRL lists revoked issuing CAs (an ARL). The CRL is the caller's to publish.
 */
export async function createCrl(ctx: CaContext, options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
  const ca = await crlCa(ctx, options.ca);
  const issuer = await ctx.caIdentity(ca);
  return ctx.write((tx) => signNext(tx, ca, issuer, ctx.now(), options.nextUpdateMs ?? 7 * 86_400_000, false));
}

/** The published CRL of `ca` when it lists exactly `revocations` and is less than half through its validity. */
function current(state: CrlState | undefined, revocations: readonly Revocation[], ca: CaRef, now: Date): Buffer | undefined {
  const p = state?.published;
  if (!p || p.digest !== digestOf(crlEntries(revocations, ca))) return undefined;
  const start = Date.parse(p.thisUpdate);
  const end = Date.parse(p.nextUpdate);
  return now.getTime() >= start && now.getTime() < start + (end - start) / 2 ? p.der : undefined;
}

/**
 * The CRL a relying party fetches for `ca`: the one last published while it still lists
 * exactly the current revocations and less than half its validity has passed, else a newly
 * signed one. A revocation is on the very next fetch.
 */
export async function publishedCrl(ctx: CaContext, ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
  const cached = current(await ctx.port.crlState(caSlug(ca)), await ctx.port.revocations(), ca, ctx.now());
  if (cached) return cached;
  const issuer = await ctx.caIdentity(await crlCa(ctx, ca));
  return ctx.write(async (tx) => {
    const again = current(await tx.crlState(caSlug(ca)), await tx.revocations(), ca, ctx.now());
    return again ?? signNext(tx, ca, issuer, ctx.now(), options.validityMs ?? 7 * 86_400_000, true);
  });
}

/**
 * The statuses of serials among the certificates `ca` issued, for OCSP: `good`, `revoked`
 * (with date and reason), or `unknown` for a serial it never issued. A retired certificate is
 * good: retiring takes it out of profiles, not out of trust.
 */
export async function certificateStatuses(ctx: CaContext, ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
  const slug = caSlug(ca);
  const revoked = new Map((await ctx.port.revocations()).filter((r) => r.kind === 'revoked' && (r.ca ?? 'issuing') === slug).map((r) => [r.serial, r]));
  let own: Promise<Set<string>> | undefined;
  const ownSerials = () =>
    (own ??= (async () => {
      const set = new Set(caIssued(await ctx.credentials()).filter((c) => c.ca === ca).map((c) => c.serial));
      if (ca === 'root') for (const c of await ctx.cas()) if (c.ca !== 'root') set.add(c.serial);
      return set;
    })());
  const out: SerialStatus[] = [];
  for (const serial of serials) {
    const s = normalizeSerial(serial);
    let issued = false;
    // The common question first: a user certificate (one lookup).
    if (ca !== 'root' && /^[0-9a-f]{1,64}$/.test(s)) {
      const record = (await ctx.port.records({ serial: s }))[0];
      issued = record?.source === 'issued' && (await ctx.issuingOf(record)) === ca;
    }
    if (!issued) issued = (await ownSerials()).has(s);
    const revocation = revoked.get(s);
    if (!issued) out.push({ status: 'unknown' });
    else if (revocation) out.push({ status: 'revoked', date: new Date(revocation.date), reason: revocation.reason as RevocationReason });
    else out.push({ status: 'good' });
  }
  return out;
}

const SERVICES = {
  ocsp: { role: 'responder', make: createOcspResponder, what: 'issue an OCSP responder' },
  scep: { role: 'scep-ra', make: createScepRa, what: 'issue the SCEP RA certificate' },
} as const;

/** The CA options the store's later certificates are made with. */
export async function caOptions(ctx: CaContext) {
  const s = await ctx.settings();
  return { organization: s.organization, now: ctx.now, ...(s.keyAlgorithm ? { keyAlgorithm: s.keyAlgorithm } : {}), ...(s.pkiUrl ? { pkiUrl: s.pkiUrl } : {}) };
}

/** A service identity as the port holds it, unless it is revoked or has no key. */
async function readService(ctx: CaContext, kind: ServiceKind, ca: CaRef, serial?: string): Promise<ResponderIdentity | undefined> {
  const role = SERVICES[kind].role;
  const slug = caSlug(ca);
  const c = (await ctx.credentials()).find((x) => x.role === role && x.ca === slug && (serial === undefined ? x.current : x.serial === serial));
  if (!c?.key) return undefined;
  if ((await ctx.port.revocations()).some((r) => r.serial === c.serial && r.kind === 'revoked')) return undefined;
  try {
    const x = new X509Certificate(c.certificate);
    return { certificate: c.certificate, privateKey: ctx.keys.open(c.key), serial: c.serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
  } catch {
    return undefined;
  }
}

/**
 * One of the identities a CA issues for the store's own services (the OCSP responder, the SCEP
 * RA), issued and later renewed by itself: a new one once less than half its validity is left,
 * decided again in the transaction that records it, so two processes make one.
 */
export async function serviceIdentity(ctx: CaContext, ca: CaRef, kind: ServiceKind): Promise<ResponderIdentity> {
  const service = SERVICES[kind];
  const slot = `${kind}:${caSlug(ca)}`;
  const now = ctx.now().getTime();
  const fresh = (r: ResponderIdentity) => now >= r.notBefore.getTime() && now < r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
  const hit = await ctx.services.get(slot)?.catch(() => undefined);
  if (hit && fresh(hit)) return hit;
  const next = (async () => {
    const held = await readService(ctx, kind, ca);
    if (held && fresh(held)) return held;
    ctx.keys.require(service.what);
    const made = await service.make(await ctx.caIdentity(ca), ca, await caOptions(ctx));
    const serial = normalizeSerial(certificateBasics(made.certificate).serial);
    const seal = ctx.keys.sealer(made.privateKey);
    const kept = await ctx.write(async (tx) => {
      const again = (await tx.credentials()).find((x) => x.role === service.role && x.ca === caSlug(ca) && x.current);
      if (again && again.serial !== held?.serial) return 'raced' as const;
      await tx.putCredential({ serial, role: service.role, ca: caSlug(ca), current: true, certificate: made.certificate }, seal);
      // A replaced OCSP responder expires within days: its key goes now. A SCEP RA keeps its
      // key, so that a request a device encrypted to it just before still opens.
      if (again && kind === 'ocsp') await tx.putCredential({ ...again, current: false }, null);
      return 'made' as const;
    }, 'seals');
    if (kept === 'raced') {
      const other = await readService(ctx, kind, ca);
      if (other) return other;
    }
    const x = new X509Certificate(made.certificate);
    return { certificate: made.certificate, privateKey: made.privateKey, serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
  })();
  ctx.services.set(slot, next);
  next.catch(() => ctx.services.delete(slot));
  return next;
}

/** A service identity of `ca` by serial (a SCEP RA that devices encrypted to), while the store holds its key. */
export function serviceIdentityBySerial(ctx: CaContext, ca: CaRef, kind: ServiceKind, serial: string): Promise<ResponderIdentity | undefined> {
  if (!/^[0-9a-f]{1,64}$/.test(serial)) return Promise.resolve(undefined);
  return readService(ctx, kind, ca, serial);
}
