/**
 * The file store's PKI files: where its CA certificates, profile signers and OCSP
 * responders live, and the state of the CRLs it signs (number, and the last one published).
 *
 * ```
 * ca/root.pem ca/root.key.<g>                 root CA
 * ca/intermediate.pem .key.<g>                issuing CA 1
 * ca/issuing-<n>.pem .key.<g>                 issuing CA n (after `ca rotate-issuing`)
 * signer/cert.pem signer/key.<g>              the first profile signer
 * signer/<serial>.pem <serial>.key.<g>        later signers (store.json names the current one; old keys are deleted)
 * ocsp/<ca>.json, ocsp/<ca>-<serial>.pem .key.<g>   the delegated OCSP responder of each CA
 * crl/<ca>.json, crl/<ca>.crl                 the last CRL number handed out, and the CRL the PKI server publishes, for each CA
 * ```
 *
 * @module pki-files
 */
import { createHash, X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { createCrl, type RevocationReason } from '../certs/crl.js';
import type { Identity } from '../certs/issue.js';
import { caSlug, type CaRef } from '../certs/publication.js';
import { atomicWrite } from './fs-util.js';
import type { Revocation } from './file/records.js';

export const OCSP_DIR = 'ocsp';
const CRL_DIR = 'crl';

/** Paths (keys without the generation suffix) of issuing CA `generation`. */
export function issuingPaths(generation: number): { cert: string; key: string } {
  return generation === 1 ? { cert: 'ca/intermediate.pem', key: 'ca/intermediate.key' } : { cert: `ca/issuing-${generation}.pem`, key: `ca/issuing-${generation}.key` };
}

/** Paths of the current profile signer. */
export function signerPaths(meta: { signer?: string }): { cert: string; key: string } {
  return meta.signer ? { cert: `signer/${meta.signer}.pem`, key: `signer/${meta.signer}.key` } : { cert: 'signer/cert.pem', key: 'signer/key' };
}

/** Paths of an OCSP responder certificate. */
export function responderPaths(ca: CaRef, serial: string, dir: string = OCSP_DIR): { cert: string; key: string; pointer: string } {
  const base = `${dir}/${caSlug(ca)}-${serial}`;
  return { cert: `${base}.pem`, key: `${base}.key`, pointer: `${dir}/${caSlug(ca)}.json` };
}

/** Where the file store keeps its SCEP RA identities (as OCSP responders are kept in OCSP_DIR). */
export const SCEP_DIR = 'scep';

/** The store's own identities that a CA issues and renews by itself: the OCSP responder and the SCEP RA. */
export type ServiceKind = 'ocsp' | 'scep';

/** One of the store's CA certificates. */
export interface StoreCa {
  ca: CaRef;
  /** `root`, `issuing`, `issuing-2`, ... */
  slug: string;
  certificate: Buffer;
  serial: string;
  /** As record.issuer writes it. */
  subject: string;
  notBefore: Date;
  notAfter: Date;
}

/** A certificate the store's CAs issued for the store itself. */
export interface CaIssuedCertificate {
  serial: string;
  kind: 'signer' | 'responder' | 'scep-ra';
  /** The CA that issued it. */
  ca: CaRef;
  certificate: Buffer;
}

/** A delegated OCSP responder's identity and the CA it answers for. */
export interface ResponderIdentity extends Identity {
  serial: string;
  notBefore: Date;
  notAfter: Date;
}


export type { RevokeResult } from './store.js';

/** True when `issuer`'s key verifies `der`'s signature. */
export function verifiesWith(der: Buffer, issuer: Buffer): boolean {
  try {
    return new X509Certificate(der).verify(new X509Certificate(issuer).publicKey);
  } catch {
    return false;
  }
}

/** The revocations a CA's CRL lists. Entries from before issuing CA rotation name no CA: the first issuing CA's. */
export function crlEntries(revocations: Revocation[], ca: CaRef) {
  const slug = caSlug(ca);
  return revocations
    .filter((r) => r.kind === 'revoked' && (r.ca ?? 'issuing') === slug)
    .map((r) => ({ serial: r.serial, date: new Date(r.date), reason: r.reason as RevocationReason }));
}

interface CrlState {
  /** The last CRL number handed out, by either way: never handed out again. */
  number: number;
  /** The rest describes crl/<ca>.crl, when it is the CRL numbered `number`; absent, nothing is published. */
  thisUpdate?: string;
  nextUpdate?: string;
  /** SHA-256 of the entries the published CRL lists. */
  digest?: string;
  /** SHA-256 of crl/<ca>.crl itself: a copy that failed to be written is never taken for it. Absent in earlier versions. */
  sha256?: string;
}

const digestOf = (entries: ReturnType<typeof crlEntries>) =>
  createHash('sha256').update(JSON.stringify(entries.map((e) => [e.serial, e.date.toISOString(), e.reason]))).digest('hex');

async function readState(dir: string, ca: CaRef): Promise<CrlState | undefined> {
  try {
    const s = JSON.parse(await fs.readFile(join(dir, CRL_DIR, `${caSlug(ca)}.json`), 'utf8')) as CrlState;
    return Number.isSafeInteger(s.number) ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Signs a CRL for `ca` with the next CRL number. The caller holds the store lock. Numbers
 * start at the thisUpdate time in seconds (what earlier versions wrote) and then only grow.
 *
 * The number is recorded before anything else, in a file of a few hundred bytes: a number not
 * recorded could be handed out again. With `publish` (the PKI server) the CRL is then kept in
 * crl/<ca>.crl, the copy the server serves; without it (`crl`, whose output goes where the
 * admin says) the store's copy is not written at all, so a CRL of any size needs no room on
 * the store's disk, and the older copy is no longer served (its number is below this one).
 */
export async function signCrl(dir: string, ca: CaRef, issuer: Identity, revocations: Revocation[], now: Date, validityMs: number, publish: boolean): Promise<{ der: Buffer; number: number }> {
  const entries = crlEntries(revocations, ca);
  const previous = await readState(dir, ca);
  const number = Math.max((previous?.number ?? 0) + 1, Math.floor(now.getTime() / 1000));
  const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
  const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
  const der = await createCrl({ issuerCertificate: issuer.certificate, issuerKey: issuer.privateKey, entries, thisUpdate, nextUpdate, crlNumber: number });
  await fs.mkdir(join(dir, CRL_DIR), { recursive: true, mode: 0o755 });
  const state: CrlState = publish
    ? { number, thisUpdate: thisUpdate.toISOString(), nextUpdate: nextUpdate.toISOString(), digest: digestOf(entries), sha256: createHash('sha256').update(der).digest('hex') }
    : { number };
  await atomicWrite(join(dir, CRL_DIR, `${caSlug(ca)}.json`), JSON.stringify(state) + '\n', 0o644);
  if (publish) await atomicWrite(join(dir, CRL_DIR, `${caSlug(ca)}.crl`), der, 0o644);
  return { der, number };
}

/**
 * The published CRL of `ca`, when it is the last one handed out, lists exactly `revocations`
 * and is less than half through its validity.
 */
export async function readPublishedCrl(dir: string, ca: CaRef, revocations: Revocation[], now: Date): Promise<Buffer | undefined> {
  const state = await readState(dir, ca);
  if (!state?.digest || !state.thisUpdate || !state.nextUpdate || state.digest !== digestOf(crlEntries(revocations, ca))) return undefined;
  const start = Date.parse(state.thisUpdate);
  const end = Date.parse(state.nextUpdate);
  if (!(now.getTime() >= start && now.getTime() < start + (end - start) / 2)) return undefined;
  const der = await fs.readFile(join(dir, CRL_DIR, `${caSlug(ca)}.crl`)).catch(() => undefined);
  if (der && state.sha256 && createHash('sha256').update(der).digest('hex') !== state.sha256) return undefined;
  return der;
}
