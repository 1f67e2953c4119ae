/**
 * The PostgreSQL store's revocations: a certificate of this store's CAs revoked (a user's, a
 * signer, an OCSP responder, or an older issuing CA once it has no live certificates), and a
 * user unenrolled; each decided by one statement or transaction, so a revocation by another node
 * meanwhile counts as prior.
 *
 * @module postgres-revocation
 */
import type { RevocationReason } from '../../certs/crl.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug } from '../../certs/publication.js';
import { CertificateInvalid, StoreEntryNotFound } from '../../errors.js';
import type { RevokeResult } from '../pki-files.js';
import { removalOf, type CertificateRecord, type RemoveUserResult } from '../store.js';

import { renewalsOf } from '../issuance.js';
import type { PgCa } from './pg-ca.js';

export async function revokeCertificate(authority: PgCa, serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
  const s = normalizeSerial(serial);
  const date = authority.now();
  const own = (await authority.db.query<{ role: string; ca: string | null; generation: number | null }>('SELECT role, ca, generation FROM ca_certs WHERE serial = $1', [s])).rows[0];
  let kind: RevokeResult['kind'] = 'user';
  let ca = 'issuing';
  let record: CertificateRecord | undefined;
  const wasRevoked = (await authority.db.query(`SELECT 1 FROM revocations WHERE serial = $1 AND kind = 'revoked'`, [s])).rowCount;
  if (own) {
    if (own.role === 'root') throw new CertificateInvalid('root', 'The root CA cannot revoke itself; remove it from the devices that trust it instead');
    if (own.role === 'issuing') {
      const gen = own.generation ?? 1;
      const slug = caSlug(gen);
      if (gen === (await authority.current())) throw new CertificateInvalid('in-use', `Issuing CA ${slug} is the current one; run \`profilesmith ca rotate-issuing\` first`);
      const subject = (await authority.caCertificates()).find((c) => c.ca === gen)!.subject;
      const now = authority.now();
      const live = Number((await authority.db.query<{ n: string }>(
        `SELECT count(*) AS n FROM certificates c LEFT JOIN revocations v ON v.serial = c.serial
           WHERE c.record->>'source' = 'issued' AND c.record->>'issuer' = $1 AND v.serial IS NULL AND (c.record->>'notAfter')::timestamptz > $2 AND (c.record->>'notBefore')::timestamptz <= $2`,
        [subject, now],
      )).rows[0]!.n);
      const signerLive = (await authority.db.query(`SELECT 1 FROM ca_certs WHERE role = 'signer' AND current AND ca = $1`, [slug])).rowCount ? 1 : 0;
      if (live + signerLive > 0 && !wasRevoked) {
        throw new CertificateInvalid('in-use', `Issuing CA ${slug} still has ${live} live user certificate(s)${signerLive ? ' and the profile signer' : ''}; revoke or let them expire first`);
      }
      kind = 'issuing-ca';
      ca = 'root';
    } else {
      // A signer without an issuer of ours was imported from an outside CA: its CA alone can revoke it.
      if (own.ca === null) throw new CertificateInvalid('outside-ca', `Certificate ${s} is a profile signer imported from an outside CA; only that CA can revoke it`);
      kind = own.role as RevokeResult['kind'];
      ca = own.ca;
    }
  } else {
    record = await authority.lookup.record(s);
    if (record.source !== 'issued') throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
    ca = caSlug(await authority.issuingOf(record));
  }
  // A compromised key taints what was renewed from it: the renewal was signed with that key.
  const renewals: { serial: string; ca: string }[] = [];
  if (record && reason === 'keyCompromise') {
    for (const r of renewalsOf(await authority.lookup.list({ user: record.user }), s)) renewals.push({ serial: r.serial, ca: caSlug(await authority.issuingOf(r)) });
  }
  // One statement per certificate decides: a revocation by another node meanwhile counts as prior;
  // a retired one becomes revoked; one revoked for another reason becomes keyCompromise (its date kept).
  const upsert = `INSERT INTO revocations AS v (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $2, $3, $4)
       ON CONFLICT (serial) DO UPDATE SET kind = 'revoked', ca = EXCLUDED.ca,
         date = CASE WHEN v.kind = 'retired' THEN EXCLUDED.date ELSE v.date END, reason = EXCLUDED.reason
       WHERE v.kind = 'retired' OR (EXCLUDED.reason = 'keyCompromise' AND v.reason <> 'keyCompromise')
       RETURNING serial, date, reason`;
  const { changed, cascaded } = await authority.db.tx(async (c) => {
    const main = (await c.query<{ date: Date; reason: string }>(upsert, [s, ca, date, reason])).rows[0];
    const done: string[] = [];
    for (const r of renewals) if ((await c.query(upsert, [r.serial, r.ca, date, 'keyCompromise'])).rowCount) done.push(r.serial);
    return { changed: main, cascaded: done };
  });
  const cascade = renewals.length ? { renewals: cascaded } : {};
  if (changed && changed.date.getTime() === date.getTime()) {
    const revoked = { date: changed.date.toISOString(), reason: changed.reason };
    return { serial: s, kind, ca, already: false, revoked, ...(record ? { record: { ...record, revoked } } : {}), ...cascade };
  }
  const prior = (await authority.db.query<{ date: Date; reason: string }>('SELECT date, reason FROM revocations WHERE serial = $1', [s])).rows[0]!;
  return { serial: s, kind, ca, already: true, revoked: { date: prior.date.toISOString(), reason: prior.reason }, ...(record ? { record: await authority.lookup.record(s) } : {}), ...cascade };
}

export async function removeUser(authority: PgCa, user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
  const all = await authority.lookup.list({ user });
  if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
  const date = authority.now();
  const slugs = new Map<string, string>();
  for (const rec of all) if (rec.source === 'issued') slugs.set(rec.serial, caSlug(await authority.issuingOf(rec)));
  return authority.db.tx(async (c) => {
    const out: RemoveUserResult = { revoked: [], retired: [] };
    for (const rec of all) {
      const action = removalOf(rec, options);
      if (!action) continue;
      const r = action === 'revoke'
        ? await c.query(`INSERT INTO revocations AS v (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $3, $2, 'cessationOfOperation')
            ON CONFLICT (serial) DO UPDATE SET kind = 'revoked', ca = EXCLUDED.ca, date = EXCLUDED.date, reason = EXCLUDED.reason WHERE v.kind = 'retired' RETURNING serial`, [rec.serial, date, slugs.get(rec.serial) ?? 'issuing'])
        : await c.query(`INSERT INTO revocations (serial, kind, date, reason) VALUES ($1, 'retired', $2, 'retired') ON CONFLICT DO NOTHING RETURNING serial`, [rec.serial, date]);
      if (!r.rowCount) continue;
      if (action === 'revoke') out.revoked.push({ ...rec, revoked: { date: date.toISOString(), reason: 'cessationOfOperation' } });
      else out.retired.push({ ...rec, retired: { date: date.toISOString() } });
    }
    return out;
  }, { lock: `user|${user.toLowerCase()}` });
}
