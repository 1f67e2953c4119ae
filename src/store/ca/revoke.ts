/**
 * The CA's revocations: a certificate of its own revoked (a user's, a signer, an OCSP
 * responder, a SCEP RA, or an older issuing CA once it has no live certificates), and a user
 * unenrolled. Each decision is taken again in the transaction that writes it, so a revocation
 * by another process or node meanwhile counts as prior.
 *
 * @module ca-revoke
 */
import type { RevocationReason } from '../../certs/crl.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug, type CaRef } from '../../certs/publication.js';
import { CertificateInvalid, StoreEntryNotFound } from '../../errors.js';
import { renewalsOf } from '../issuance.js';
import type { PortTransaction, Revocation } from '../port/port.js';
import { removalOf, statusOf, type CertificateRecord, type RemoveUserResult, type RevokeResult } from '../store.js';
import { caIssued, currentOf, generationOf } from './authority.js';
import type { CaContext } from './context.js';

/**
 * What a new revocation line does to the one before: none → it; retired → revoked; revoked for
 * another reason → keyCompromise with the first date (RFC 5280 5.3.1); else nothing.
 */
export function mergeRevocation(prior: Revocation | undefined, item: Revocation): Revocation | undefined {
  if (!prior) return item;
  if (prior.kind === 'retired' && item.kind === 'revoked') return item;
  if (prior.kind === 'revoked' && item.kind === 'revoked' && item.reason === 'keyCompromise' && prior.reason !== 'keyCompromise') return { ...prior, reason: 'keyCompromise' };
  return undefined;
}

/** Puts each line that changes something, in the caller's transaction; returns those. */
export async function putRevocations(tx: PortTransaction, items: readonly Revocation[]): Promise<Revocation[]> {
  const prior = new Map((await tx.revocations()).map((r) => [r.serial, r]));
  const changed: Revocation[] = [];
  for (const item of items) {
    const next = mergeRevocation(prior.get(item.serial), item);
    if (!next) continue;
    await tx.putRevocation(next);
    prior.set(next.serial, next);
    changed.push(next);
  }
  return changed;
}

/**
 * Revokes a certificate issued by this store's CAs. Only what the CRL of its issuer will list
 * is revoked.
 * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID for an outside CA's certificate, the
 * root, the current issuing CA, or an issuing CA with live certificates
 */
export async function revokeCertificate(ctx: CaContext, serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
  const s = normalizeSerial(serial);
  const date = ctx.now().toISOString();
  const known = new Set((await ctx.port.revocations()).filter((r) => r.kind === 'revoked').map((r) => r.serial));
  const result = (kind: RevokeResult['kind'], ca: CaRef, record?: CertificateRecord, renewals: Revocation[] = []): Promise<RevokeResult> =>
    ctx.write(async (tx) => {
      const changed = await putRevocations(tx, [{ serial: s, date, reason, kind: 'revoked', ca: caSlug(ca) }, ...renewals]);
      const cascade = renewals.length ? { renewals: changed.filter((c) => c.serial !== s).map((c) => c.serial) } : {};
      const mine = changed.find((c) => c.serial === s);
      if (mine && !known.has(s) && mine.date === date) {
        const revoked = { date, reason: reason as string };
        return { serial: s, kind, ca: caSlug(ca), already: false, revoked, ...(record ? { record: withRevocation(record, revoked) } : {}), ...cascade };
      }
      const prior = mine ?? (await tx.revocations()).find((r) => r.serial === s && r.kind === 'revoked')!;
      const was = { date: prior.date, reason: prior.reason as string };
      return { serial: s, kind, ca: caSlug(ca), already: true, revoked: was, ...(record ? { record: withRevocation(record, was) } : {}), ...cascade };
    });
  const cas = await ctx.cas();
  const ca = cas.find((c) => c.serial === s);
  const credentials = await ctx.credentials();
  if (ca) {
    if (ca.ca === 'root') throw new CertificateInvalid('root', 'The root CA cannot revoke itself; remove it from the devices that trust it instead');
    if (ca.ca === (await ctx.currentIssuing())) throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} is the current one; run \`profilesmith ca rotate-issuing\` first`);
    const now = ctx.now();
    const live = (await ctx.port.records()).filter((r) => r.source === 'issued' && r.issuer === ca.subject && statusOf(r, now) === 'valid').length;
    const signer = currentOf(credentials, 'signer');
    const signerLive = signer?.ca !== undefined && generationOf(signer.ca) === ca.ca ? 1 : 0;
    if (live + signerLive > 0 && !known.has(s)) {
      throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} still has ${live} live user certificate(s)${signerLive ? ' and the profile signer' : ''}; revoke or let them expire first`);
    }
    return result('issuing-ca', 'root');
  }
  const own = caIssued(credentials).find((c) => c.serial === s);
  if (own) return result(own.kind, own.ca);
  // A signer kept here that none of our CAs issued was imported from an outside CA: its CA alone can revoke it.
  if (credentials.some((c) => c.serial === s && c.role === 'signer')) {
    throw new CertificateInvalid('outside-ca', `Certificate ${s} is a profile signer imported from an outside CA; only that CA can revoke it`);
  }
  const record = await ctx.record(s);
  if (record.source !== 'issued') {
    throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
  }
  // A compromised key taints what was renewed from it: the renewal was signed with that key.
  const renewals: Revocation[] = [];
  if (reason === 'keyCompromise') {
    for (const r of renewalsOf(await ctx.port.records({ user: record.user }), s)) {
      renewals.push({ serial: r.serial, date, reason: 'keyCompromise', kind: 'revoked', ca: caSlug(await ctx.issuingOf(r)) });
    }
  }
  return result('user', await ctx.issuingOf(record), record, renewals);
}

/** The record as a revocation leaves it. */
function withRevocation(record: CertificateRecord, revoked: { date: string; reason: string }): CertificateRecord {
  const { retired: _retired, ...rest } = record;
  return { ...rest, revoked };
}

/**
 * Unenrollment: every certificate of the user leaves generation. With `revoke`, those of this
 * store's CA are revoked (`cessationOfOperation`), retired ones included; those of outside CAs,
 * which we cannot revoke, are retired. The records returned are as the removal left them.
 * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
 */
export async function removeUser(ctx: CaContext, user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
  const all = await ctx.port.records({ user });
  if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
  const date = ctx.now().toISOString();
  const revoked = all.filter((r) => removalOf(r, options) === 'revoke');
  const retired = all.filter((r) => removalOf(r, options) === 'retire');
  const slugs = await Promise.all(revoked.map(async (r) => caSlug(await ctx.issuingOf(r))));
  const changed = await ctx.write((tx) =>
    putRevocations(tx, [
      ...revoked.map((r, i) => ({ serial: r.serial, date, reason: 'cessationOfOperation' as const, kind: 'revoked' as const, ca: slugs[i]! })),
      ...retired.map((r) => ({ serial: r.serial, date, reason: 'retired' as const, kind: 'retired' as const })),
    ]),
  );
  const did = new Set(changed.map((c) => c.serial));
  return {
    revoked: revoked.filter((r) => did.has(r.serial)).map((r) => withRevocation(r, { date, reason: 'cessationOfOperation' })),
    retired: retired.filter((r) => did.has(r.serial)).map((r) => ({ ...r, retired: { date } })),
  };
}
