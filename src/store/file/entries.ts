/**
 * The file store's entries: issuing (once per user and purpose under the lock), renewing,
 * importing identities and amending a re-imported one.
 *
 * @module file-entries
 */
import type { KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CertificateInvalid, StoreEntryNotFound } from '../../errors.js';
import { checkImport, type IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose, Identity } from '../../certs/issue.js';
import { assertEmail } from '../../certs/email.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates, toPem } from '../../certs/pem.js';
import { caSlug } from '../../certs/publication.js';
import { describeCertificate } from '../../certs/x509.js';
import { profilePkcs12 } from '../../certs/pkcs12.js';
import { atomicDir, atomicWrite } from '../fs-util.js';
import { certifyFor, issueFor, checkedIssuance, newRecord } from '../issuance.js';
import { planReimport, statusOf, type CertificateRecord, type ImportIdentityOptions, type ImportIdentityResult, type IssueDeviceCertificateOptions, type IssueUserCertificateOptions } from '../store.js';
import type { Amendment } from './record-index.js';
import type { FileStore } from './file-store.js';
import type { StoreMeta } from './meta.js';
import { sealKey, exists } from './meta.js';

export async function validHeld(store: FileStore, user: string, purpose: CertificatePurpose): Promise<CertificateRecord | undefined> {
  const now = store.now();
  return (await store.listCertificates({ user, purpose })).find((r) => !r.keyOnDevice && statusOf(r, now) === 'valid');
}

export async function checkedUser(store: FileStore, options: IssueUserCertificateOptions, meta: StoreMeta): Promise<string> {
  return checkedIssuance(options, meta.permittedEmailDomains ?? []);
}

export async function issue(store: FileStore, options: IssueUserCertificateOptions, ifMissing: boolean): Promise<{ record: CertificateRecord; issued: boolean }> {
  store.requireKey('issue certificates');
  const meta = await store.freshMeta();
  const user = await checkedUser(store, options, meta);
  if (ifMissing) {
    const held = await validHeld(store, user, options.purpose);
    if (held) return { record: held, issued: false };
  }
  const gen = meta.issuing ?? 1;
  // The issuing key is decrypted once per instance: issue-batch issues thousands.
  const identity = await issueFor(await store.issuerIdentity(gen), user, options, gen, meta.pkiUrl, store.now);
  let existing: CertificateRecord | undefined;
  const guard = ifMissing
    ? async () => {
        store.index.rescan();
        return !(existing = await validHeld(store, user, options.purpose));
      }
    : undefined;
  const { record } = await addEntry(store, identity, user, options.purpose, 'issued', [], guard);
  if (existing) return { record: existing, issued: false };
  await prebuildPkcs12(store, record, identity);
  return { record, issued: true };
}

/**
 * Builds the identity's profile PKCS#12 as it enters the store (beside a key generation of
 * ~170 ms it costs ~0.1 ms), sealed in the PKCS#12 cache, so that no batch, not even the first,
 * builds one. A cache: if writing it fails, generation builds it on demand.
 */
export async function prebuildPkcs12(store: FileStore, record: CertificateRecord, identity: Identity): Promise<void> {
  try {
    // The record and identity in hand: no index lookup, no key decrypted again.
    await store.pkcs12.store(record, profilePkcs12(identity, record));
  } catch {
    // on demand, later
  }
}

/**
 * Issues a new certificate for the user and purpose, named like the newest one; the old
 * one stays in the history.
 * @throws ERR_STORE_ENTRY_NOT_FOUND when the user holds no certificate of that purpose
 */
export async function renewCertificate(store: FileStore, user: string, purpose: CertificatePurpose, days?: number): Promise<CertificateRecord> {
  const newest = (await store.listCertificates({ user, purpose })).at(-1);
  if (!newest) throw new StoreEntryNotFound(user, 'user', `User "${user}" holds no ${purpose} certificate to renew`);
  const info = await describeCertificate(await store.getCertificate(newest.serial));
  return store.issueCertificate({ user: newest.user, name: info.commonName ?? newest.user, purpose, ...(days ? { days } : {}) });
}

/**
 * Takes in an identity issued elsewhere, after {@link checkImport}. The same certificate
 * again is a no-op (`duplicate: true`).
 * @throws ERR_CERT_INVALID, ERR_KEY_UNSUPPORTED, ERR_INPUT_INVALID
 */
export async function importIdentity(store: FileStore, bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
  assertEmail(options.user);
  store.requireKey('store keys');
  const check = await checkImport(bundle, {
    user: options.user,
    purpose: options.purpose,
    now: store.now(),
    ...(options.strict ? { strict: true } : {}),
  });
  const leafFp = check.info.fingerprint;
  const chain = distinctIssuers(leafFp, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
  const existing = (await store.listCertificates()).find((r) => r.fingerprint === leafFp);
  if (existing) return amendEntry(store, existing, options.purpose, chain, check.info.keyUsage, check.warnings);
  // Decided again under the lock: another import of the same certificate (another process, a
  // concurrent call) may have taken it in since, which makes this one a re-import, not a clash.
  // One entry read (its serial's), not the whole listing: imports come by the thousand (import-batch).
  let raced: CertificateRecord | undefined;
  const serial = normalizeSerial(check.info.serial);
  const guard = async () => {
    const there = await store.index.read(serial).catch((err: unknown) => (err instanceof StoreEntryNotFound ? undefined : Promise.reject(err)));
    raced = there?.fingerprint === leafFp ? there : undefined;
    return !raced;
  };
  const { record } = await addEntry(store, { certificate: bundle.certificate, privateKey: bundle.privateKey }, check.email, options.purpose, 'imported', chain, guard);
  if (raced) return amendEntry(store, raced, options.purpose, chain, check.info.keyUsage, check.warnings);
  await prebuildPkcs12(store, record, { certificate: bundle.certificate, privateKey: bundle.privateKey });
  return { record, duplicate: false, warnings: check.warnings };
}

/**
 * A certificate imported again: for its other purpose (a dual-use certificate, which
 * checkImport has found fit for it), or with issuer certificates the entry lacks. Both are
 * amendments in revocations.json, since entry.json never changes.
 */
export async function amendEntry(store: FileStore, existing: CertificateRecord, purpose: CertificatePurpose, chain: Buffer[], keyUsage: string[], warnings: string[]): Promise<ImportIdentityResult> {
  const serial = existing.serial;
  const { alsoPurpose: otherPurpose, addChain: more } = planReimport(existing, purpose, chain, keyUsage);
  if (!otherPurpose && !more.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
  await store.write(async () => {
    await writeChains(store, more);
    const file = await store.index.overlayFile();
    const prior = file.amendments.find((a) => a.serial === serial);
    const amendment: Amendment = {
      serial,
      date: prior?.date ?? store.now().toISOString(),
      ...(otherPurpose || prior?.alsoPurpose ? { alsoPurpose: (otherPurpose ?? prior?.alsoPurpose)! } : {}),
      ...(more.length || prior?.chain?.length ? { chain: [...new Set([...(prior?.chain ?? []), ...more.map((d) => fingerprint(d))])] } : {}),
    };
    await store.writeOverlay(file.entries, [...file.amendments.filter((a) => a !== prior), amendment]);
  });
  const record = await store.index.get(serial);
  return { record, duplicate: true, added: { ...(otherPurpose ? { purpose: otherPurpose } : {}), chain: more.length }, warnings };
}

/**
 * Issues a signing certificate for a key a device made (SCEP): recorded like any other
 * certificate of the user, with `keyOnDevice` and no key file.
 * @throws what issueCertificate throws; ERR_KEY_UNSUPPORTED for a key other than RSA of 2048 bits or more
 */
export async function issueDevice(store: FileStore, options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
  store.requireKey('issue certificates');
  const meta = await store.freshMeta();
  const purpose = 'smime-signing';
  const user = await checkedUser(store, { user: options.user, name: options.name, purpose }, meta);
  const gen = meta.issuing ?? 1;
  const renews = options.renews === undefined ? undefined : normalizeSerial(options.renews);
  // The renewed certificate's CA, for its CRL entry; it must be a device certificate of this user.
  const renewed = renews === undefined ? undefined : await store.index.get(renews);
  if (renewed && (!renewed.keyOnDevice || renewed.user.toLowerCase() !== user.toLowerCase())) {
    throw new CertificateInvalid('not-renewable', `Certificate ${renewed.serial} is not a device certificate of ${user}; only those are renewed this way`);
  }
  const renewedCa = renewed ? caSlug(await store.issuingOf(renewed)) : undefined;
  const { certificate } = await certifyFor(await store.issuerIdentity(gen), user, options, gen, meta.pkiUrl, store.now);
  const guard = renews === undefined ? undefined : async () => {
    // Decided under the lock: two renewals of one certificate (a replay) cannot both pass.
    if ((await store.index.revocations()).some((r) => r.serial === renews)) {
      throw new CertificateInvalid('revoked', `Certificate ${renews} is revoked; a revoked certificate cannot be renewed`);
    }
    return true;
  };
  const after = renews === undefined ? undefined : async () => {
    await store.putRevocations([{ serial: renews, date: store.now().toISOString(), reason: 'superseded', kind: 'revoked', ca: renewedCa! }]);
  };
  return (await addEntry(store, { certificate }, user, purpose, 'issued', [], guard, after, renews)).record;
}

/** Records an identity under its serial, atomically and under the store lock; `guard` (run under the lock) may veto it. */
export async function addEntry(store: FileStore, 
  identity: { certificate: Buffer; privateKey?: KeyObject },
  user: string,
  purpose: CertificatePurpose,
  source: CertificateRecord['source'],
  chain: Buffer[],
  guard?: () => Promise<boolean>,
  after?: () => Promise<void>,
  renewedFrom?: string,
): Promise<{ record: CertificateRecord }> {
  const key = store.requireKey('store keys');
  const record = await newRecord(identity.certificate, { user, purpose, source, chain, now: store.now(), keyOnDevice: !identity.privateKey, ...(renewedFrom ? { renewedFrom } : {}) });
  const serial = record.serial;
  await store.write(async () => {
    if (guard && !(await guard())) return;
    const path = join(store.dir, 'certs', serial);
    if (await exists(path)) {
      throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
    }
    await writeChains(store, chain);
    await atomicDir(path, {
      'cert.pem': { data: toPem(identity.certificate), mode: 0o644 },
      ...(identity.privateKey ? { [`key.${store.meta.keyGeneration}`]: { data: sealKey(key, identity.privateKey, `certs/${serial}/key`), mode: 0o600 } } : {}),
      'entry.json': { data: JSON.stringify(record, null, 2) + '\n', mode: 0o644 },
    }, store.durable);
    // Under the same lock, after the entry is safely in: a crash between leaves the old one live, never neither.
    await after?.();
  });
  return { record };
}

/** Issuer certificates into chains/ (by SHA-256), those not there yet; under the lock the caller holds. */
export async function writeChains(store: FileStore, ders: readonly Buffer[]): Promise<void> {
  await fs.mkdir(join(store.dir, 'chains'), { recursive: true, mode: 0o700 });
  for (const der of ders) {
    const p = join(store.dir, 'chains', `${fingerprint(der)}.pem`);
    if (!(await exists(p))) await atomicWrite(p, toPem(der), 0o644);
  }
}
