/**
 * The file store's revocation and publication: revoking, unenrolling, CRLs (signed and
 * published), the delegated OCSP responders and the status OCSP answers with.
 *
 * @module file-pki
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CertificateInvalid, InputInvalid, StoreEntryNotFound } from '../../errors.js';
import { createOcspResponder, createScepRa } from '../../certs/ca.js';
import type { RevocationReason } from '../../certs/crl.js';
import { certificatesFrom, normalizeSerial, toPem } from '../../certs/pem.js';
import { certificateBasics, describeCertificate } from '../../certs/x509.js';
import { caSlug, type CaRef } from '../../certs/publication.js';
import { atomicWrite } from '../fs-util.js';
import { OCSP_DIR, SCEP_DIR, readPublishedCrl, responderPaths, type ServiceKind, signCrl, verifiesWith, type CaIssuedCertificate, type ResponderIdentity, type RevokeResult } from '../pki-files.js';
import type { SerialStatus } from '../../pki/handler.js';
import { removalOf, statusOf, type CertificateRecord, type RemoveUserResult } from '../store.js';
import { SERIAL, type Revocation } from './record-index.js';
import { renewalsOf } from '../issuance.js';
import type { FileStore } from './file-store.js';
import { sealKey } from './meta.js';
import { caOptions } from './admin.js';

/** caIssued's last answer per store, keyed by what it was read from (file names are serials: their content never changes). */
const caIssuedCache = new WeakMap<FileStore, { key: string; value: CaIssuedCertificate[] }>();

/**
 * The certificates the store's CAs issued for themselves: profile signers (current and past),
 * OCSP responders and SCEP RAs. Three directory listings; the certificates are read and
 * checked again only when a listing or the CA list changed.
 */
export async function caIssued(store: FileStore): Promise<CaIssuedCertificate[]> {
  const cas = await store.caCertificates();
  const dirs = [['signer', 'signer'], [OCSP_DIR, 'responder'], [SCEP_DIR, 'scep-ra']] as const;
  const listed = await Promise.all(dirs.map(async ([dir]) => (await fs.readdir(join(store.dir, dir)).catch(() => [] as string[])).filter((n) => n.endsWith('.pem')).sort()));
  const key = JSON.stringify([listed, cas.map((c) => c.serial)]);
  const cached = caIssuedCache.get(store);
  if (cached?.key === key) return cached.value;
  const out: CaIssuedCertificate[] = [];
  const add = async (rel: string, kind: CaIssuedCertificate['kind']) => {
    const der = await store.readCert(rel).catch(() => undefined);
    if (!der) return;
    const info = await describeCertificate(der);
    const issuer = cas.find((c) => c.subject === info.issuer && der && verifiesWith(der, c.certificate));
    // An imported signer is an outside CA's: not ours to revoke or to answer for.
    if (issuer) out.push({ serial: normalizeSerial(info.serial), kind, ca: issuer.ca, certificate: der });
  };
  for (const [i, [dir, kind]] of dirs.entries()) for (const n of listed[i]!) await add(`${dir}/${n}`, kind);
  caIssuedCache.set(store, { key, value: out });
  return out;
}

/**
 * Revokes a certificate issued by this store's CAs: a user certificate (retired ones too),
 * a profile signer, an OCSP responder, or an older issuing CA that no longer has live
 * certificates (on the root's CRL). Only what the CRL of its issuer will list is revoked.
 * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID for an outside CA's certificate, the
 * root, the current issuing CA, or an issuing CA with live certificates
 */
export async function revokeCertificate(store: FileStore, serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
  const s = normalizeSerial(serial);
  const date = store.now().toISOString();
  const meta = await store.freshMeta();
  const known = new Map((await store.index.revocations()).filter((r) => r.kind === 'revoked').map((r) => [r.serial, r]));
  const result = (kind: RevokeResult['kind'], ca: CaRef, record?: CertificateRecord, renewals: Revocation[] = []): Promise<RevokeResult> => store.write(async () => {
    // Decided under the lock: a revocation by another process meanwhile counts as prior.
    const changed = await store.putRevocations([{ serial: s, date, reason, kind: 'revoked', ca: caSlug(ca) }, ...renewals]);
    const cascade = renewals.length ? { renewals: changed.filter((c) => c.serial !== s).map((c) => c.serial) } : {};
    const mine = changed.find((c) => c.serial === s);
    if (mine && !known.has(s) && mine.date === date) {
      return { serial: s, kind, ca: caSlug(ca), already: false, revoked: { date, reason }, ...(record ? { record: { ...record, revoked: { date, reason } } } : {}), ...cascade };
    }
    const prior = (await store.index.revocations()).find((r) => r.serial === s && r.kind === 'revoked')!;
    const revoked = { date: prior.date, reason: prior.reason };
    return { serial: s, kind, ca: caSlug(ca), already: true, revoked, ...(record ? { record: { ...record, revoked } } : {}), ...cascade };
  });
  const cas = await store.caCertificates();
  const ca = cas.find((c) => c.serial === s);
  if (ca) {
    if (ca.ca === 'root') throw new CertificateInvalid('root', 'The root CA cannot revoke itself; remove it from the devices that trust it instead');
    if (ca.ca === (meta.issuing ?? 1)) throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} is the current one; run \`profilesmith ca rotate-issuing\` first`);
    const now = store.now();
    const live = (await store.listCertificates()).filter((r) => r.source === 'issued' && r.issuer === ca.subject && statusOf(r, now) === 'valid').length;
    const signerLive = (meta.signerIssuing ?? 1) === ca.ca ? 1 : 0;
    if (live + signerLive > 0 && !known.has(s)) {
      throw new CertificateInvalid('in-use', `Issuing CA ${ca.slug} still has ${live} live user certificate(s)${signerLive ? ' and the profile signer' : ''}; revoke or let them expire first`);
    }
    return result('issuing-ca', 'root');
  }
  const own = (await caIssued(store)).find((c) => c.serial === s);
  if (own) return result(own.kind, own.ca);
  // A signer kept here that none of our CAs issued was imported from an outside CA: its CA alone can revoke it.
  if (/^[0-9a-f]{1,64}$/.test(s) && (await fs.stat(join(store.dir, 'signer', `${s}.pem`)).catch(() => undefined))) {
    throw new CertificateInvalid('outside-ca', `Certificate ${s} is a profile signer imported from an outside CA; only that CA can revoke it`);
  }
  const record = await store.index.read(s);
  if (record.source !== 'issued') {
    throw new CertificateInvalid('outside-ca', `Certificate ${s} was issued by an outside CA ("${record.issuer}"); only that CA can revoke it`);
  }
  // A compromised key taints what was renewed from it: the renewal was signed with that key.
  const renewals: Revocation[] = [];
  if (reason === 'keyCompromise') {
    for (const r of renewalsOf(await store.listCertificates({ user: record.user }), s)) {
      renewals.push({ serial: r.serial, date, reason: 'keyCompromise', kind: 'revoked', ca: caSlug(await store.issuingOf(r)) });
    }
  }
  return result('user', await store.issuingOf(record), record, renewals);
}

/**
 * Unenrollment: takes every certificate of the user out of generation. With `revoke`,
 * certificates of this store's CA are revoked (`cessationOfOperation`), retired ones
 * included; those of outside CAs, which we cannot revoke, are marked retired.
 * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
 */
export async function removeUser(store: FileStore, user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
  const all = await store.listCertificates({ user });
  if (!all.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
  const date = store.now().toISOString();
  const revoked = all.filter((r) => removalOf(r, options) === 'revoke');
  const retired = all.filter((r) => removalOf(r, options) === 'retire');
  const slugs = await Promise.all(revoked.map(async (r) => caSlug(await store.issuingOf(r))));
  const changed = await store.write(() =>
    store.putRevocations([
      ...revoked.map((r, i) => ({ serial: r.serial, date, reason: 'cessationOfOperation' as const, kind: 'revoked' as const, ca: slugs[i]! })),
      ...retired.map((r) => ({ serial: r.serial, date, reason: 'retired' as const, kind: 'retired' as const })),
    ]),
  );
  const did = new Set(changed.map((c) => c.serial));
  return { revoked: revoked.filter((r) => did.has(r.serial)), retired: retired.filter((r) => did.has(r.serial)) };
}

/**
 * A DER CRL signed by one of the store's CAs (default: the current issuing CA), listing
 * every serial it revoked with reason and date; its CRL number is one more than the last
 * this store signed for that CA (kept under the lock), so numbers strictly increase.
 * The root's CRL lists revoked issuing CAs (an ARL). Only the number is written to the
 * store (a few hundred bytes); the CRL is the caller's to publish.
 * @example
 * await writeFile('crl.der', await store.createCrl({ nextUpdateMs: 7 * 86400_000 }))
 */
export async function createCrl(store: FileStore, options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
  const meta = await store.freshMeta();
  const ca = options.ca ?? meta.issuing ?? 1;
  if (ca !== 'root' && (ca < 1 || ca > (meta.issuing ?? 1))) throw new InputInvalid('ca', `This store has no issuing CA ${caSlug(ca)}`);
  const issuer = await store.caIdentity(ca);
  return store.write(async () => {
    const revocations = await store.index.revocations();
    return (await signCrl(store.dir, ca, issuer, revocations, store.now(), options.nextUpdateMs ?? 7 * 86_400_000, false)).der;
  });
}

/**
 * The CRL a relying party fetches for `ca`: the one last signed while it still lists
 * exactly the current revocations and less than half its validity has passed, else a
 * newly signed one. A revocation is on the very next fetch.
 */
export async function publishedCrl(store: FileStore, ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
  const revocations = await store.index.revocations();
  const now = store.now();
  const cached = await readPublishedCrl(store.dir, ca, revocations, now);
  if (cached) return cached;
  const issuer = await store.caIdentity(ca);
  return store.write(async () => {
    const fresh = await store.index.revocations();
    const again = await readPublishedCrl(store.dir, ca, fresh, store.now());
    if (again) return again;
    return (await signCrl(store.dir, ca, issuer, fresh, store.now(), options.validityMs ?? 7 * 86_400_000, true)).der;
  });
}

/**
 * The delegated OCSP responder of `ca`, issued (and later renewed) automatically: a new
 * one once less than half its validity is left. Needs the passphrase.
 */
export function ocspResponder(store: FileStore, ca: CaRef): Promise<ResponderIdentity> {
  return serviceIdentity(store, ca, 'ocsp');
}

const SERVICES = {
  ocsp: { dir: OCSP_DIR, make: createOcspResponder, what: 'issue an OCSP responder' },
  scep: { dir: SCEP_DIR, make: createScepRa, what: 'issue the SCEP RA certificate' },
} as const;

/**
 * One of the identities a CA issues for the store's own services (the OCSP responder, the
 * SCEP RA), issued and later renewed automatically: a new one once less than half its
 * validity is left, made under the lock after reading again, so that two processes make one.
 */
export async function serviceIdentity(store: FileStore, ca: CaRef, kind: ServiceKind): Promise<ResponderIdentity> {
  const service = SERVICES[kind];
  const slot = `${kind}:${caSlug(ca)}`;
  const now = store.now().getTime();
  const fresh = (r: ResponderIdentity) => now >= r.notBefore.getTime() && now < r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
  const hit = await store.responders.get(slot)?.catch(() => undefined);
  if (hit && fresh(hit)) return hit;
  const next = (async () => {
    const current = await readResponder(store, ca, service.dir);
    if (current && fresh(current)) return current;
    return store.write(async () => {
      const again = await readResponder(store, ca, service.dir);
      if (again && fresh(again)) return again;
      const key = store.requireKey(service.what);
      const r = await service.make(await store.caIdentity(ca), ca, caOptions(store));
      const info = certificateBasics(r.certificate);
      const serial = normalizeSerial(info.serial);
      const paths = responderPaths(ca, serial, service.dir);
      await fs.mkdir(join(store.dir, service.dir), { recursive: true, mode: 0o700 });
      await atomicWrite(join(store.dir, `${paths.key}.${store.meta.keyGeneration}`), sealKey(key, r.privateKey, paths.key), 0o600);
      await atomicWrite(join(store.dir, paths.cert), toPem(r.certificate), 0o644);
      await atomicWrite(join(store.dir, paths.pointer), JSON.stringify({ serial }) + '\n', 0o644);
      // An OCSP responder that is replaced expires within days: its files go now. A SCEP RA
      // keeps its key, so that a request a device encrypted to it just before still opens.
      if (again && kind === 'ocsp') {
        const old = responderPaths(ca, again.serial, service.dir);
        await fs.rm(join(store.dir, `${old.key}.${store.meta.keyGeneration}`), { force: true });
        await fs.rm(join(store.dir, old.cert), { force: true });
      }
      return { ...r, serial, notBefore: new Date(new X509Certificate(r.certificate).validFrom), notAfter: info.notAfter };
    });
  })();
  store.responders.set(slot, next);
  next.catch(() => store.responders.delete(slot));
  return next;
}

/** A service identity of `ca` by serial (a SCEP RA that devices encrypted to), if the store still holds it. */
export async function serviceIdentityBySerial(store: FileStore, ca: CaRef, kind: ServiceKind, serial: string): Promise<ResponderIdentity | undefined> {
  if (!SERIAL.test(serial)) return undefined;
  return readResponder(store, ca, SERVICES[kind].dir, serial);
}

export async function readResponder(store: FileStore, ca: CaRef, dir: string = OCSP_DIR, given?: string): Promise<ResponderIdentity | undefined> {
  let serial: string;
  try {
    serial = given ?? (JSON.parse(await fs.readFile(join(store.dir, `${dir}/${caSlug(ca)}.json`), 'utf8')) as { serial: string }).serial;
    if (!SERIAL.test(serial)) return undefined;
  } catch {
    return undefined;
  }
  const paths = responderPaths(ca, serial, dir);
  try {
    const certificate = certificatesFrom(await fs.readFile(join(store.dir, paths.cert), 'utf8'))[0];
    if (!certificate) return undefined;
    const x = new X509Certificate(certificate);
    if ((await store.revokedSerials()).has(serial)) return undefined;
    return { certificate, privateKey: await store.readKey(paths.key), serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
  } catch {
    return undefined;
  }
}

/**
 * The status of serial `serial` among the certificates `ca` issued, for OCSP: `good`,
 * `revoked` (with date and reason), or `unknown` for a serial it never issued. A retired
 * certificate is good: retiring takes it out of profiles, not out of trust.
 */
export async function certificateStatus(store: FileStore, ca: CaRef, serial: string): Promise<SerialStatus> {
  return (await certificateStatuses(store, ca, [serial]))[0]!;
}

/**
 * {@link certificateStatus} of several serials, with the shared reads done once: revocations.json,
 * and the CA's own certificates only when a serial is not a user certificate. A serial the store
 * never issued costs one failed entry lookup, never a certificate read.
 */
export async function certificateStatuses(store: FileStore, ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
  const slug = caSlug(ca);
  const revoked = new Map((await store.index.revocations()).filter((r) => r.kind === 'revoked' && (r.ca ?? 'issuing') === slug).map((r) => [r.serial, r]));
  let own: Promise<Set<string>> | undefined;
  const ownSerials = () =>
    (own ??= (async () => {
      const set = new Set((await caIssued(store)).filter((c) => c.ca === ca).map((c) => c.serial));
      if (ca === 'root') for (const c of await store.caCertificates()) if (c.ca !== 'root') set.add(c.serial);
      return set;
    })());
  const out: SerialStatus[] = [];
  for (const serial of serials) {
    const s = normalizeSerial(serial);
    let issued = false;
    // The common question first: a user certificate (one entry read).
    if (ca !== 'root' && SERIAL.test(s)) {
      const record = await store.index.get(s).catch(() => undefined);
      issued = record?.source === 'issued' && (await store.issuingOf(record)) === ca;
    }
    if (!issued) issued = (await ownSerials()).has(s);
    const revocation = revoked.get(s);
    if (!issued) out.push({ status: 'unknown' });
    else if (revocation) out.push({ status: 'revoked', date: new Date(revocation.date), reason: revocation.reason as RevocationReason });
    else out.push({ status: 'good' });
  }
  return out;
}
