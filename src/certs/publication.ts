/**
 * Where a store publishes its CA certificates, CRLs and OCSP responder, under one PKI base
 * URL, and the names of its CA certificates.
 *
 * Layout under the base URL (served by `pki serve`):
 * ```
 * /ca/root.cer      /crl/root.crl          the root, and its CRL (revoked issuing CAs)
 * /ca/issuing.cer   /crl/issuing.crl       the first issuing CA and its CRL
 * /ca/issuing-N.cer /crl/issuing-N.crl     issuing CA generation N (after `ca rotate-issuing`)
 * /ocsp                                    one OCSP responder for the certificates of every CA
 * ```
 *
 * @module publication
 */
import { InputInvalid } from '../errors.js';
import { characters, hiddenCharacter, hiddenMessage, MAX_COMMON_NAME } from './name.js';
import type { PublicationSpec } from './x509.js';

/** A CA of the store: `root`, or an issuing CA by generation (1 for the first). */
export type CaRef = 'root' | number;

/** The name a CA goes by in URLs and file names: `root`, `issuing`, `issuing-2`, ... */
export function caSlug(ca: CaRef): string {
  return ca === 'root' ? 'root' : ca === 1 ? 'issuing' : `issuing-${ca}`;
}

/** The CA a slug names, or undefined. */
export function parseCaSlug(slug: string): CaRef | undefined {
  if (slug === 'root') return 'root';
  if (slug === 'issuing') return 1;
  const m = /^issuing-([1-9][0-9]{0,3})$/.exec(slug);
  return m ? Number(m[1]) : undefined;
}

/**
 * A PKI base URL as we keep it: http or https, a host, no query, fragment or credentials,
 * without the trailing slash.
 * @throws ERR_INPUT_INVALID
 */
export function checkPkiUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputInvalid('pki-url', `"${text}" is not a URL (example: http://pki.example.com)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputInvalid('pki-url', `The PKI URL must be http:// or https://, got "${url.protocol}"`);
  if (url.username || url.password || url.search || url.hash || !url.hostname) {
    throw new InputInvalid('pki-url', `The PKI URL must be a plain base URL without credentials, query or fragment, got "${text}"`);
  }
  if (!/^[\u0021-\u007e]+$/.test(url.href)) throw new InputInvalid('pki-url', `The PKI URL must be ASCII, got "${text}"`);
  return url.href.replace(/\/+$/, '');
}

/**
 * Checks the URL of a SCEP server: http or https (SCEP's own envelopes protect the request,
 * so plain HTTP is allowed, as RFC 8894 allows it), no credentials or fragment. A query is
 * kept: some servers are reached at `.../pkiclient.exe?` style addresses.
 * @throws ERR_INPUT_INVALID
 */
export function checkScepUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputInvalid('scep-url', `"${text}" is not a URL (example: https://profiles.example.com/scep)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputInvalid('scep-url', `The SCEP URL must be http:// or https://, got "${url.protocol}"`);
  if (url.username || url.password || url.hash || !url.hostname) throw new InputInvalid('scep-url', `The SCEP URL must not carry credentials or a fragment, got "${text}"`);
  if (!/^[\u0021-\u007e]+$/.test(url.href)) throw new InputInvalid('scep-url', `The SCEP URL must be ASCII, got "${text}"`);
  return url.href;
}

/** CDP, caIssuers and OCSP of a certificate issued by `issuer` (no OCSP URL on a responder's own). */
export function publicationFor(pkiUrl: string | undefined, issuer: CaRef, options: { ocsp?: boolean } = {}): PublicationSpec | undefined {
  if (!pkiUrl) return undefined;
  const slug = caSlug(issuer);
  return {
    crl: [`${pkiUrl}/crl/${slug}.crl`],
    caIssuers: [`${pkiUrl}/ca/${slug}.cer`],
    ...(options.ocsp === false || issuer === 'root' ? {} : { ocsp: [`${pkiUrl}/ocsp`] }),
  };
}

/** The subject CNs of the store's CA certificates for an organization. */
export const caNames = {
  root: (org: string) => `${org} Root CA`,
  issuing: (org: string, generation: number) => `${org} S/MIME Issuing CA${generation > 1 ? ` ${generation}` : ''}`,
  signer: (org: string) => `${org} Profile Signing`,
  responder: (org: string, ca: CaRef) => `${org} ${ca === 'root' ? 'Root ' : ''}OCSP Responder`,
  scepRa: (org: string) => `${org} SCEP RA`,
};

/** The longest organization whose CA names, up to issuing CA 99, fit ub-common-name. */
export const MAX_ORGANIZATION = MAX_COMMON_NAME - characters(caNames.issuing('', 99));

/**
 * Checks an organization name: 1 to MAX_ORGANIZATION characters, no control, invisible or
 * text-direction characters.
 * @throws ERR_INPUT_INVALID
 */
export function checkOrganization(text: string): string {
  const org = text.trim();
  if (!org || /[\u0000-\u001f\u007f]/.test(org)) throw new InputInvalid('organization', 'The organization must be 1 or more characters without control characters');
  const hidden = hiddenCharacter(org);
  if (hidden) throw new InputInvalid('organization', hiddenMessage('organization', hidden));
  const n = characters(org);
  if (n > MAX_ORGANIZATION) {
    throw new InputInvalid(
      'organization',
      `The organization has ${n} characters; at most ${MAX_ORGANIZATION} fit, since it names the CAs ("${caNames.issuing('…', 99)}") and a CN holds 64 (ub-common-name)`,
    );
  }
  return org;
}

/**
 * Checks `--permit-email-domain` values: host names (or `.domain` for every subdomain), lower-cased.
 * @throws ERR_INPUT_INVALID
 */
export function checkEmailDomains(domains: string[]): string[] {
  return [...new Set(domains.map((d) => {
    const v = d.trim().toLowerCase();
    if (!/^\.?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(v)) {
      throw new InputInvalid('permit-email-domain', `"${d}" is not a domain (example.com, or .example.com for its subdomains)`);
    }
    return v;
  }))];
}

/** True when `email` is inside the permitted rfc822Name subtrees (RFC 5280 4.2.1.10). */
export function emailPermitted(email: string, domains: readonly string[]): boolean {
  if (!domains.length) return true;
  const host = email.slice(email.lastIndexOf('@') + 1).toLowerCase();
  return domains.some((d) => (d.startsWith('.') ? host.endsWith(d) : host === d));
}
