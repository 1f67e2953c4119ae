/**
 * The file store's PKI files: where its CA certificates, profile signers, OCSP responders and
 * SCEP RAs live (the file port's layout), and the types the CA describes them with.
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
import { X509Certificate } from 'node:crypto';
import type { Identity } from '../certs/issue.js';
import { caSlug, type CaRef } from '../certs/publication.js';

export const OCSP_DIR = 'ocsp';

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
