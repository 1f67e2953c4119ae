/**
 * The PostgreSQL store's entries: issuing (issue-if-missing in one transaction under an
 * advisory lock on the user and purpose), the insert of a sealed entry, and imports (under a
 * lock on the fingerprint, so two nodes importing one file add it once).
 *
 * @module postgres-entries
 */
import type { KeyObject } from 'node:crypto';
import type pg from 'pg';
import { assertEmail } from '../../certs/email.js';
import { checkImport, type IdentityBundle } from '../../certs/import.js';
import type { CertificatePurpose } from '../../certs/issue.js';
import { distinctIssuers, fingerprint, normalizeSerial, toCertificates } from '../../certs/pem.js';
import { caSlug } from '../../certs/publication.js';
import { CertificateInvalid } from '../../errors.js';
import { seal } from '../secret-box.js';
import { planReimport, servesPurpose, statusOf, type CertificateRecord, type ImportIdentityOptions, type ImportIdentityResult, type IssueDeviceCertificateOptions, type IssueUserCertificateOptions } from '../store.js';
import { exportKey, RECORD_SELECT, toRecord, type CertRow } from './rows.js';

import { certifyFor, issueFor, newRecord } from '../issuance.js';
import type { PostgresStore } from './pg-store.js';

export async function validHeld(store: PostgresStore, user: string, purpose: CertificatePurpose): Promise<CertificateRecord | undefined> {
  const now = store.now();
  return (await store.listCertificates({ user, purpose })).find((r) => !r.keyOnDevice && statusOf(r, now) === 'valid');
}

export async function issue(store: PostgresStore, options: IssueUserCertificateOptions, ifMissing: boolean): Promise<{ record: CertificateRecord; issued: boolean }> {
  store.requireKey('issue certificates');
  await store.refreshMeta();
  const user = store.checkedUser(options);
  if (ifMissing) {
    const held = await validHeld(store, user, options.purpose);
    if (held) return { record: held, issued: false };
  }
  const gen = await store.ca.current();
  const identity = await issueFor(await store.ca.caIdentity(gen), user, options, gen, store.keys.meta.pkiUrl, store.now);

  const record = await store.makeRecord(identity.certificate, user, options.purpose, 'issued', []);
  const kept = await store.db.tx(async (c) => {
    if (ifMissing) {
      const now = store.now();
      const rows = await c.query<CertRow>(`${RECORD_SELECT} WHERE c.user_lower = $1`, [user.toLowerCase()]);
      const held = rows.rows.map(toRecord).find((r) => servesPurpose(r, options.purpose) && !r.keyOnDevice && statusOf(r, now) === 'valid');
      if (held) return held;
    }
    await insertEntry(store, c, record, identity, []);
    return undefined;
  }, ifMissing ? { lock: `issue|${user.toLowerCase()}|${options.purpose}` } : {});
  if (kept) return { record: kept, issued: false };
  await store.pkcs12.prebuild(record, identity);
  return { record, issued: true };
}

/** A signing certificate for a device's key (SCEP), recorded with `keyOnDevice` and no sealed key. */
export async function issueDevice(store: PostgresStore, options: IssueDeviceCertificateOptions): Promise<CertificateRecord> {
  store.requireKey('issue certificates');
  await store.refreshMeta();
  const user = store.checkedUser({ user: options.user, name: options.name, purpose: 'smime-signing' });
  const gen = await store.ca.current();
  const renews = options.renews === undefined ? undefined : normalizeSerial(options.renews);
  // The renewed certificate's CA, for its CRL entry; it must be a device certificate of this user.
  const renewed = renews === undefined ? undefined : await store.record(renews);
  if (renewed && (!renewed.keyOnDevice || renewed.user.toLowerCase() !== user.toLowerCase())) {
    throw new CertificateInvalid('not-renewable', `Certificate ${renewed.serial} is not a device certificate of ${user}; only those are renewed this way`);
  }
  const renewedCa = renewed ? caSlug(await store.ca.issuingOf(renewed)) : undefined;
  const { certificate } = await certifyFor(await store.ca.caIdentity(gen), user, options, gen, store.keys.meta.pkiUrl, store.now);
  const record = await newRecord(certificate, { user, purpose: 'smime-signing', source: 'issued', chain: [], now: store.now(), keyOnDevice: true, ...(renews ? { renewedFrom: renews } : {}) });
  await store.db.tx(async (c) => {
    if (renews !== undefined) {
      // One statement decides, across nodes: two renewals of one certificate (a replay) cannot both pass.
      const superseded = await c.query(
        `INSERT INTO revocations (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $2, $3, 'superseded') ON CONFLICT (serial) DO NOTHING RETURNING serial`,
        [renews, renewedCa, store.now()],
      );
      if (!superseded.rowCount) throw new CertificateInvalid('revoked', `Certificate ${renews} is revoked; a revoked certificate cannot be renewed`);
    }
    await insertEntry(store, c, record, { certificate }, []);
  });
  return record;
}

export async function insertEntry(store: PostgresStore, c: pg.ClientBase, record: CertificateRecord, identity: { certificate: Buffer; privateKey?: KeyObject }, chain: Buffer[]): Promise<void> {
  const key = store.requireKey('store keys');
  await store.assertGeneration(c);
  for (const der of chain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
  try {
    await c.query('INSERT INTO certificates (serial, fingerprint, user_lower, purpose, record, certificate, sealed_key) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
      record.serial, record.fingerprint, record.user.toLowerCase(), record.purpose, record, identity.certificate,
      identity.privateKey ? seal(key, exportKey(identity.privateKey), `certs/${record.serial}/key`) : null,
    ]);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new CertificateInvalid('duplicate', `A different certificate with serial ${record.serial} is already in the store`);
    throw err;
  }
}

export async function importIdentity(store: PostgresStore, bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult> {
  assertEmail(options.user);
  store.requireKey('store keys');
  const check = await checkImport(bundle, { user: options.user, purpose: options.purpose, now: store.now(), ...(options.strict ? { strict: true } : {}) });
  const leaf = check.info.fingerprint;
  const chain = distinctIssuers(leaf, bundle.chain, options.chain === undefined ? [] : toCertificates(options.chain, 'chain', { allowEmpty: true }));
  const record = await store.makeRecord(bundle.certificate, check.email, options.purpose, 'imported', chain);
  const identity = { certificate: bundle.certificate, privateKey: bundle.privateKey };
  // By fingerprint, under a lock on it: two nodes importing the same file add it once.
  const out = await store.db.tx(async (c) => {
    const r = await c.query<CertRow>(`${RECORD_SELECT} WHERE c.fingerprint = $1`, [leaf]);
    if (!r.rows[0]) {
      await insertEntry(store, c, record, identity, chain);
      return { record, duplicate: false, warnings: check.warnings } as ImportIdentityResult;
    }
    const existing = toRecord(r.rows[0]);
    const plan = planReimport(existing, options.purpose, chain, check.info.keyUsage);
    if (!plan.alsoPurpose && !plan.addChain.length) return { record: existing, duplicate: true, added: { chain: 0 }, warnings: [] };
    for (const der of plan.addChain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
    const added = [...(existing.addedChain ?? []), ...plan.addChain.map((d) => fingerprint(d))];
    await c.query('UPDATE certificates SET also_purpose = COALESCE($2, also_purpose), added_chain = $3 WHERE serial = $1', [existing.serial, plan.alsoPurpose ?? null, added.length ? JSON.stringify(added) : null]);
    const updated = toRecord((await c.query<CertRow>(`${RECORD_SELECT} WHERE c.serial = $1`, [existing.serial])).rows[0]!);
    return { record: updated, duplicate: true, added: { ...(plan.alsoPurpose ? { purpose: plan.alsoPurpose } : {}), chain: plan.addChain.length }, warnings: check.warnings } as ImportIdentityResult;
  }, { lock: `import|${leaf}` });
  if (!out.duplicate) await store.pkcs12.prebuild(record, identity);
  return out;
}
