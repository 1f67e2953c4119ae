/**
 * The CA's entries: issuing (once per user and purpose, decided in a transaction), a device's
 * certificate (SCEP, with renewal), renewing, and importing identities issued elsewhere
 * (a re-import amends the entry).
 *
 * @module ca-entries
 */
import type { KeyObject } from 'node:crypto';
import { assertEmail } from '../../certs/email.js';
import { checkImport, type IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose, Identity } from '../../certs/issue.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates } from '../../certs/pem.js';
import { profilePkcs12 } from '../../certs/pkcs12.js';
import { caSlug } from '../../certs/publication.js';
import { describeCertificate } from '../../certs/x509.js';
import { CertificateInvalid, StoreEntryNotFound } from '../../errors.js';
import { certifyFor, checkedIssuance, issueFor, newRecord } from '../issuance.js';
import type { PortReads, PortTransaction } from '../port/port.js';
import { planReimport, servesPurpose, statusOf, type CertificateRecord, type ImportIdentityOptions, type ImportIdentityResult, type IssueDeviceCertificateOptions, type IssueUserCertificateOptions } from '../store.js';
import type { CaContext } from './context.js';

/** A valid certificate of the user and purpose whose key the store holds, if any. */
async function validHeld(reads: PortReads, now: Date, user: string, purpose: CertificatePurpose): Promise<CertificateRecord | undefined> {
  return (await reads.records({ user })).find((r) => servesPurpose(r, purpose) && !r.keyOnDevice && statusOf(r, now) === 'valid');
}

/** What issuing would refuse, before any key is made: the address, the name, the CA's permitted domains. Returns the address. */
export async function checkedUser(ctx: CaContext, options: IssueUserCertificateOptions): Promise<string> {
  return checkedIssuance(options, (await ctx.settings()).permittedEmailDomains ?? []);
}

/**
 * Issues a user certificate; with `ifMissing`, only when the user holds no valid one of the
 * purpose, decided again in the transaction that records it (any number of concurrent batch
 * runs leave one certificate per user and purpose).
 */
export async function issue(ctx: CaContext, options: IssueUserCertificateOptions, ifMissing: boolean): Promise<{ record: CertificateRecord; issued: boolean }> {
  ctx.keys.require('issue certificates');
  const user = await checkedUser(ctx, options);
  if (ifMissing) {
    const held = await validHeld(ctx.port, ctx.now(), user, options.purpose);
    if (held) return { record: held, issued: false };
  }
  const gen = await ctx.currentIssuing();
  const settings = await ctx.settings();
  const identity = await issueFor(await ctx.caIdentity(gen), user, options, gen, settings.pkiUrl, ctx.now);
  const record = await newRecord(identity.certificate, { user, purpose: options.purpose, source: 'issued', chain: [], now: ctx.now() });
  const seal = ctx.keys.sealer(identity.privateKey);
  const existing = await ctx.write(async (tx) => {
    if (ifMissing) {
      const held = await validHeld(tx, ctx.now(), user, options.purpose);
      if (held) return held;
    }
    await tx.addCertificate(record, identity.certificate, seal);
    return undefined;
  }, 'seals');
  if (existing) return { record: existing, issued: false };
  await prebuildPkcs12(ctx, record, identity);
  return { record, issued: true };
}

/**
 * Builds the identity's profile PKCS#12 as it enters the store (beside a key generation of
 * ~170 ms it costs ~0.1 ms) into the port's cache, so that no batch, not even the first,
 * builds one. A cache: if it fails, generation builds it on demand.
 */
export async function prebuildPkcs12(ctx: CaContext, record: CertificateRecord, identity: Identity): Promise<void> {
  if (!ctx.port.cache) return;
  try {
    await ctx.port.cache.put(record, profilePkcs12(identity, record), ctx.keys.box());
  } catch {
    // on demand, later
  }
}

/**
 * A new certificate for the user and purpose, named like the newest one; the old one stays in
 * the history.
 * @throws ERR_STORE_ENTRY_NOT_FOUND when the user holds no certificate of that purpose
 */
export async function renewCertificate(ctx: CaContext, issueOne: (o: IssueUserCertificateOptions) => Promise<CertificateRecord>, user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
  const newest = (await ctx.port.records({ user })).filter((r) => servesPurpose(r, purpose)).at(-1);
  if (!newest) throw new StoreEntryNotFound(user, 'user', `User "${user}" holds no ${purpose} certificate to renew`);
  const held = await ctx.port.certificate(newest.serial);
  const info = held ? await describeCertificate(held.der) : undefined;
  return issueOne({ user: newest.user, name: info?.commonName ?? newest.name ?? newest.user, purpose, ...(days ? { days } : {}) });
}

/**
 * A signing certificate for a key a device made (SCEP): recorded with `keyOnDevice` and no key.
 * With `renews`, the renewed certificate is revoked as superseded in the same transaction, so
 * two renewals of one certificate (a replay) cannot both pass.
 */
export async function issueDevice(ctx: CaContext, options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
  ctx.keys.require('issue certificates');
  const purpose = 'smime-signing';
  const user = await checkedUser(ctx, { user: options.user, name: options.name, purpose });
  const gen = await ctx.currentIssuing();
  const renews = options.renews === undefined ? undefined : normalizeSerial(options.renews);
  const renewed = renews === undefined ? undefined : await ctx.record(renews);
  if (renewed && (!renewed.keyOnDevice || renewed.user.toLowerCase() !== user.toLowerCase())) {
    throw new CertificateInvalid('not-renewable', `Certificate ${renewed.serial} is not a device certificate of ${user}; only those are renewed this way`);
  }
  const renewedCa = renewed ? caSlug(await ctx.issuingOf(renewed)) : undefined;
  const settings = await ctx.settings();
  const { certificate } = await certifyFor(await ctx.caIdentity(gen), user, options, gen, settings.pkiUrl, ctx.now);
  const record = await newRecord(certificate, { user, purpose, source: 'issued', chain: [], now: ctx.now(), keyOnDevice: true, ...(renews ? { renewedFrom: renews } : {}) });
  await ctx.write(async (tx) => {
    if (renews !== undefined) {
      if ((await tx.revocations()).some((r) => r.serial === renews && r.kind === 'revoked')) {
        throw new CertificateInvalid('revoked', `Certificate ${renews} is revoked; a revoked certificate cannot be renewed`);
      }
    }
    await tx.addCertificate(record, certificate);
    // A crash between cannot leave the old one revoked without its renewal: one transaction.
    if (renews !== undefined) await tx.putRevocation({ serial: renews, date: ctx.now().toISOString(), reason: 'superseded', kind: 'revoked', ca: renewedCa! });
  });
  return record;
}

/**
 * Takes in an identity issued elsewhere, after checkImport. The same certificate again is a
 * re-import: a no-op, or an amendment (the other purpose of a dual-use certificate, issuers the
 * entry lacks). Decided in the transaction, so two imports of one file (two processes, two
 * nodes) add it once.
 * @throws ERR_CERT_INVALID, ERR_KEY_UNSUPPORTED, ERR_INPUT_INVALID
 */
export async function importIdentity(ctx: CaContext, bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
  assertEmail(options.user);
  ctx.keys.require('store keys');
  const check = await checkImport(bundle, { user: options.user, purpose: options.purpose, now: ctx.now(), ...(options.strict ? { strict: true } : {}) });
  const leaf = check.info.fingerprint;
  const chain = distinctIssuers(leaf, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
  const identity = { certificate: bundle.certificate, privateKey: bundle.privateKey as KeyObject };
  const record = await newRecord(bundle.certificate, { user: check.email, purpose: options.purpose, source: 'imported', chain, now: ctx.now() });
  // Outside the transaction first: a re-import that changes nothing writes nothing.
  const known = (await ctx.port.records({ fingerprint: leaf }))[0];
  if (known) {
    const plan = planReimport(known, options.purpose, chain, check.info.keyUsage);
    if (!plan.alsoPurpose && !plan.addChain.length) return { record: known, duplicate: true, added: { chain: 0 }, warnings: [] };
  }
  const seal = ctx.keys.sealer(identity.privateKey);
  const out = await ctx.write(async (tx): Promise<ImportIdentityResult> => {
    const existing = (await tx.records({ fingerprint: leaf }))[0];
    if (!existing) {
      await tx.putChains(chain);
      await tx.addCertificate(record, bundle.certificate, seal);
      return { record, duplicate: false, warnings: check.warnings };
    }
    return amend(ctx, tx, existing, options.purpose, chain, check.info.keyUsage, check.warnings);
  }, 'seals');
  if (!out.duplicate) await prebuildPkcs12(ctx, record, identity);
  return out;
}

/** A re-import's amendment, in the caller's transaction. */
async function amend(ctx: CaContext, tx: PortTransaction, existing: CertificateRecord, purpose: CertificatePurpose, chain: Buffer[], keyUsage: string[], warnings: string[]): Promise<ImportIdentityResult> {
  const { alsoPurpose, addChain } = planReimport(existing, purpose, chain, keyUsage);
  if (!alsoPurpose && !addChain.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
  await tx.putChains(addChain);
  const addedChain = [...new Set([...(existing.addedChain ?? []), ...addChain.map((d) => fingerprint(d))])];
  const also = alsoPurpose ?? existing.alsoPurpose;
  await tx.amend({ serial: existing.serial, date: ctx.now().toISOString(), ...(also ? { alsoPurpose: also } : {}), ...(addedChain.length ? { chain: addedChain } : {}) });
  const record: CertificateRecord = { ...existing, ...(also ? { alsoPurpose: also } : {}), ...(addedChain.length ? { addedChain } : {}) };
  return { record, duplicate: true, added: { ...(alsoPurpose ? { purpose: alsoPurpose } : {}), chain: addChain.length }, warnings };
}
