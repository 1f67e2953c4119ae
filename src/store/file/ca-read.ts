/**
 * The file store's CA as its files hold it: the CA certificates of every generation, the
 * trust chain a device needs, a certificate's issuers, the profile signer, the CA keys
 * (decrypted once per instance), and revocations.json's writes.
 *
 * @module file-ca-read
 */
import { join } from 'node:path';
import { CertificateInvalid } from '../../errors.js';
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { certificateBasics, describeCertificate } from '../../certs/x509.js';
import { caSlug, type CaRef } from '../../certs/publication.js';
import { keySigner, type Signer } from '../../cms/sign.js';
import { atomicWrite } from '../fs-util.js';
import { issuingPaths, signerPaths, type StoreCa } from '../pki-files.js';
import { statusOf, type TrustChain } from '../store.js';
import type { Amendment, Revocation } from './record-index.js';
import type { FileStore } from './file-store.js';

/** The store's CA certificates: the root and every issuing CA generation, oldest first. */
export async function caCertificates(store: FileStore): Promise<StoreCa[]> {
  const meta = await store.freshMeta();
  const out: StoreCa[] = [await caInfo(store, 'root', 'ca/root.pem')];
  for (let g = 1; g <= (meta.issuing ?? 1); g++) out.push(await caInfo(store, g, issuingPaths(g).cert));
  return out;
}

/** @internal */
export async function caInfo(store: FileStore, ca: CaRef, rel: string): Promise<StoreCa> {
  const certificate = await store.readCert(rel);
  const info = await describeCertificate(certificate);
  return { ca, slug: caSlug(ca), certificate, serial: normalizeSerial(info.serial), subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter };
}

/** @internal The issuing CA generation that issued a record of this store's CA. */
export async function issuingOf(store: FileStore, record: { issuer: string }): Promise<number> {
  const cas = await caCertificates(store);
  const hit = cas.find((c) => c.ca !== 'root' && c.subject === record.issuer);
  return hit ? (hit.ca as number) : 1;
}

/**
 * The root, and the issuing CAs a device needs: the current one first, then each older one
 * that is neither revoked nor expired and still has live certificates (or issued the signer).
 */
export async function trustChain(store: FileStore): Promise<TrustChain> {
  const meta = await store.freshMeta();
  const current = meta.issuing ?? 1;
  const root = await store.readCert('ca/root.pem');
  if (current === 1) return { roots: [root], intermediates: [await store.readCert('ca/intermediate.pem')] };
  const cas = (await caCertificates(store)).filter((c) => c.ca !== 'root');
  const revoked = await store.revokedSerials();
  const now = store.now();
  const live = new Set<string>();
  for (const r of await store.listCertificates()) if (r.source === 'issued' && statusOf(r, now) === 'valid') live.add(r.issuer);
  const keep = cas.filter((c) => c.ca === current || c.ca === (meta.signerIssuing ?? 1) || (!revoked.has(c.serial) && c.notAfter > now && live.has(c.subject)));
  keep.sort((a, b) => (a.ca === current ? -1 : b.ca === current ? 1 : (b.ca as number) - (a.ca as number)));
  return { roots: [root], intermediates: keep.map((c) => c.certificate) };
}

/** The issuers of a stored certificate, as far as the store knows them (leaf-most first). */
export async function issuerChain(store: FileStore, serial: string): Promise<Buffer[]> {
  const record = await store.index.get(normalizeSerial(serial));
  if (record.source === 'issued') {
    const gen = (store.meta.issuing ?? 1) === 1 ? 1 : await issuingOf(store, record);
    return [await store.readCert(issuingPaths(gen).cert), await store.readCert('ca/root.pem')];
  }
  return Promise.all([...new Set([...(record.chain ?? []), ...(record.addedChain ?? [])])].map((fp) => store.readCert(`chains/${fp}.pem`)));
}

export async function profileSigner(store: FileStore): Promise<Signer> {
  const meta = await store.freshMeta();
  const paths = signerPaths(meta);
  const [certificate, key, chain] = await Promise.all([
    store.readCert(paths.cert),
    store.readKey(paths.key),
    meta.signerChain ? Promise.all(meta.signerChain.map((fp) => store.readCert(`chains/${fp}.pem`))) : Promise.all([store.readCert(issuingPaths(meta.signerIssuing ?? 1).cert)]),
  ]);
  const { serial } = certificateBasics(certificate);
  if ((await store.index.revocations()).some((r) => r.serial === serial && r.kind === 'revoked')) {
    throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked; issue a new one with `profilesmith ca rotate-signer`');
  }
  return keySigner({ key, certificate, chain });
}

/** The issuing CA's certificate and key (default: the current one), decrypted once per instance; needs the passphrase. */
export async function issuerIdentity(store: FileStore, generation?: number): Promise<Identity> {
  return caIdentity(store, generation ?? (await store.freshMeta()).issuing ?? 1);
}

/** @internal A CA's certificate and key, decrypted once per instance. */
export async function caIdentity(store: FileStore, ca: CaRef): Promise<Identity> {
  const slug = caSlug(ca);
  let hit = store.issuers.get(slug);
  if (!hit) {
    const paths = ca === 'root' ? { cert: 'ca/root.pem', key: 'ca/root.key' } : issuingPaths(ca);
    hit = Promise.all([store.readCert(paths.cert), store.readKey(paths.key)]).then(([certificate, privateKey]) => ({ certificate, privateKey }));
    hit.catch(() => store.issuers.delete(slug));
    store.issuers.set(slug, hit);
  }
  return hit;
}

/** @internal
 * Adds revocations (under the lock the caller holds). A serial already revoked stays as it
 * was; a retired one becomes revoked. Returns the items that changed something.
 */
export async function putRevocations(store: FileStore, items: Revocation[]): Promise<Revocation[]> {
  const entries = await store.index.revocations();
  const changed: Revocation[] = [];
  for (const item of items) {
    const at = entries.findIndex((e) => e.serial === item.serial);
    const prior = entries[at];
    if (!prior) entries.push(item);
    else if (prior.kind === 'retired' && item.kind === 'revoked') entries[at] = item;
    // A key found compromised after its certificate was revoked for another reason (superseded by a
    // renewal, say): the reason becomes keyCompromise, the date stays (RFC 5280 5.3.1).
    else if (prior.kind === 'revoked' && item.kind === 'revoked' && item.reason === 'keyCompromise' && prior.reason !== 'keyCompromise') entries[at] = { ...prior, reason: 'keyCompromise' };
    else continue;
    changed.push(entries[at] ?? item);
  }
  if (changed.length) await writeOverlay(store, entries, (await store.index.overlayFile()).amendments);
  return changed;
}

/** @internal revocations.json: the revocations, and the amendments of entries (see file/record-index.ts). */
export async function writeOverlay(store: FileStore, entries: Revocation[], amendments: Amendment[]): Promise<void> {
  const body = { version: 1, entries, ...(amendments.length ? { amendments } : {}) };
  await atomicWrite(join(store.dir, 'revocations.json'), JSON.stringify(body, null, 2) + '\n', 0o644);
  store.index.invalidate();
}
