/**
 * The file port's credentials: the store's own certificates as today's layout keeps them
 * (see pki-files.ts), read from four directory listings, the responder pointers and store.json's
 * pointers. Certificates never change in place, so the answer is kept while those are unchanged.
 *
 * @module file-port-credentials
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { certificateBasics } from '../../../certs/x509.js';
import { caSlug, parseCaSlug } from '../../../certs/publication.js';
import type { Credential, CredentialRole } from '../../port/port.js';
import { issuingPaths, OCSP_DIR, responderPaths, SCEP_DIR, verifiesWith } from '../../pki-files.js';
import type { StoreMeta } from '../meta.js';
import { SERIAL } from '../record-index.js';
import { errnoOf, listDir, readSealed, type PortContext } from './layout.js';

/** A credential and where its files are. */
export interface HeldCredential extends Credential {
  /** The certificate file, relative to the store. */
  certRel: string;
  /** The key file without its generation suffix (also the key's AAD). */
  keyRel: string;
  /** Responders and RAs: the pointer file of their CA. */
  pointerRel?: string;
}

/** The service directories: OCSP responders and SCEP RAs. */
export const SERVICE_DIRS = [
  [OCSP_DIR, 'responder'],
  [SCEP_DIR, 'scep-ra'],
] as const satisfies readonly (readonly [string, CredentialRole])[];

const SERVICE_PEM = /^(root|issuing(?:-[1-9][0-9]*)?)-([0-9a-f]{1,64})\.pem$/;
const POINTER = /^(root|issuing(?:-[1-9][0-9]*)?)\.json$/;
const ISSUING_PEM = /^issuing-([1-9][0-9]*)\.pem$/;

/** A responder pointer's serial; undefined when it is missing or damaged (as readResponder in file/pki.ts reads it). */
async function pointerSerial(path: string): Promise<string | undefined> {
  try {
    const serial = (JSON.parse(await fs.readFile(path, 'utf8')) as { serial?: unknown }).serial;
    return typeof serial === 'string' && SERIAL.test(serial) ? serial : undefined;
  } catch (err) {
    if (errnoOf(err) && errnoOf(err) !== 'ENOENT') throw err;
    return undefined;
  }
}

/** The generation an issuing CA slug names (`issuing` → 1), or undefined. */
export function generationOf(slug: string | undefined): number | undefined {
  const ref = slug === undefined ? undefined : parseCaSlug(slug);
  return typeof ref === 'number' ? ref : undefined;
}

/** Where a signer's files are: the first at `signer/cert.pem`, later ones by serial. */
export function signerFiles(serial: string, first: boolean): { certRel: string; keyRel: string } {
  return first ? { certRel: 'signer/cert.pem', keyRel: 'signer/key' } : { certRel: `signer/${serial}.pem`, keyRel: `signer/${serial}.key` };
}

/** Where a responder's or RA's files are. */
export function serviceFiles(role: 'responder' | 'scep-ra', slug: string, serial: string): { certRel: string; keyRel: string; pointerRel: string } | undefined {
  const ref = parseCaSlug(slug);
  if (ref === undefined) return undefined;
  const p = responderPaths(ref, serial, role === 'responder' ? OCSP_DIR : SCEP_DIR);
  return { certRel: p.cert, keyRel: p.key, pointerRel: p.pointer };
}

/**
 * Every credential in the store, with where its files are. `meta` is store.json (undefined
 * before it exists: no pointers then). The answer is cached in `ctx` by what decides it.
 */
export async function readCredentials(ctx: PortContext, meta: StoreMeta | undefined): Promise<HeldCredential[]> {
  const dir = ctx.dir;
  const g = ctx.generation ?? meta?.keyGeneration ?? 1;
  const [ca, signer, services] = await Promise.all([listDir(join(dir, 'ca')), listDir(join(dir, 'signer')), Promise.all(SERVICE_DIRS.map(([d]) => listDir(join(dir, d))))]);
  const pointers: Record<string, string | undefined> = {};
  for (const [i, [d]] of SERVICE_DIRS.entries()) {
    for (const n of services[i]!) {
      const m = POINTER.exec(n);
      if (m) pointers[`${d}/${m[1]}`] = await pointerSerial(join(dir, d, n));
    }
  }
  const key = JSON.stringify([g, ca.sort(), signer.sort(), services.map((s) => s.sort()), pointers, meta?.issuing, meta?.signer, meta?.signerIssuing, meta?.signerChain !== undefined]);
  if (ctx.credentials?.key === key) return (ctx.credentials.value as HeldCredential[]).map((c) => ({ ...c }));

  const out: HeldCredential[] = [];
  const make = async (role: CredentialRole, certRel: string, keyRel: string, listing: readonly string[], extra: Partial<HeldCredential>): Promise<HeldCredential | undefined> => {
    const certificate = ctx.readCert(certRel);
    if (!certificate) return undefined;
    const base = keyRel.slice(keyRel.lastIndexOf('/') + 1);
    const sealed = listing.includes(`${base}.${g}`) ? await readSealed(dir, keyRel, g) : undefined;
    const c: HeldCredential = { serial: certificateBasics(certificate).serial, role, current: false, certificate, certRel, keyRel, ...extra };
    if (sealed) c.key = sealed;
    out.push(c);
    return c;
  };

  if (ca.includes('root.pem')) await make('root', 'ca/root.pem', 'ca/root.key', ca, { current: true });
  const generations = [...(ca.includes('intermediate.pem') ? [1] : []), ...ca.map((n) => ISSUING_PEM.exec(n)?.[1]).filter((n) => n !== undefined).map(Number)].sort((a, b) => a - b);
  const issuing: HeldCredential[] = [];
  for (const gen of generations) {
    const p = issuingPaths(gen);
    const c = await make('issuing', p.cert, p.key, ca, { ca: 'root', generation: gen, current: gen === (meta?.issuing ?? 1) });
    if (c) issuing.push(c);
  }

  // The current signer's CA is store.json's; an earlier one's, the issuing CA whose key signed it.
  const issuerOf = (der: Buffer): string | undefined => {
    const x = new X509Certificate(der);
    const hit = issuing.find((c) => new X509Certificate(c.certificate).subject === x.issuer && verifiesWith(der, c.certificate));
    return hit ? caSlug(hit.generation!) : undefined;
  };
  const signers = signer.filter((n) => n === 'cert.pem' || (n.endsWith('.pem') && SERIAL.test(n.slice(0, -4)))).sort((a, b) => (a === 'cert.pem' ? -1 : b === 'cert.pem' ? 1 : a < b ? -1 : 1));
  for (const n of signers) {
    const first = n === 'cert.pem';
    const files = signerFiles(n.slice(0, -4), first);
    const current = meta?.signer ? n === `${meta.signer}.pem` : first;
    const c = await make('signer', files.certRel, files.keyRel, signer, { current });
    if (!c) continue;
    const slug = current ? (meta?.signerChain !== undefined ? undefined : caSlug(meta?.signerIssuing ?? 1)) : issuerOf(c.certificate);
    if (slug) c.ca = slug;
  }

  for (const [i, [d, role]] of SERVICE_DIRS.entries()) {
    const listing = services[i]!;
    for (const n of [...listing].sort()) {
      const m = SERVICE_PEM.exec(n);
      if (!m) continue;
      const files = serviceFiles(role, m[1]!, m[2]!)!;
      await make(role, files.certRel, files.keyRel, listing, { ca: m[1]!, current: pointers[`${d}/${m[1]}`] === m[2], pointerRel: files.pointerRel });
    }
  }
  ctx.credentials = { key, value: out };
  return out.map((c) => ({ ...c }));
}

/** A credential as the port hands it out, without where its files are. */
export function publicCredential(c: HeldCredential): Credential {
  const { certRel: _c, keyRel: _k, pointerRel: _p, ...rest } = c;
  return rest;
}
