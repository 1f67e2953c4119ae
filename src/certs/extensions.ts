/**
 * The DER values of the X.509 extensions we write by hand: CRL distribution points,
 * authority information access, name constraints and OCSP no-check (RFC 5280, RFC 6960).
 *
 * @module extensions
 */
import { nul, oid, seq, tlv } from '../asn1/der.js';

export const EXT = {
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  nameConstraints: '2.5.29.30',
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5',
} as const;

const AD_OCSP = '1.3.6.1.5.5.7.48.1';
const AD_CA_ISSUERS = '1.3.6.1.5.5.7.48.2';

/** GeneralName uniformResourceIdentifier ([6] IMPLICIT IA5String). */
const uri = (url: string) => tlv(0x86, Buffer.from(url, 'ascii'));

/** CRLDistributionPoints with one DistributionPoint per URL, each a fullName. */
export function crlDistributionPoints(urls: string[]): Buffer {
  // DistributionPoint ::= SEQUENCE { distributionPoint [0] { fullName [0] GeneralNames } }
  return seq(...urls.map((u) => seq(tlv(0xa0, tlv(0xa0, uri(u))))));
}

/** AuthorityInfoAccessSyntax: caIssuers and OCSP access descriptions. */
export function authorityInfoAccess(options: { caIssuers?: string[]; ocsp?: string[] }): Buffer {
  return seq(
    ...(options.ocsp ?? []).map((u) => seq(oid(AD_OCSP), uri(u))),
    ...(options.caIssuers ?? []).map((u) => seq(oid(AD_CA_ISSUERS), uri(u))),
  );
}

/** NameConstraints with permitted rfc822Name subtrees (a host, or `.domain` for its subdomains). */
export function permittedEmailConstraints(domains: string[]): Buffer {
  // NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees }
  // GeneralSubtree ::= SEQUENCE { base GeneralName } (minimum 0 is the DEFAULT, left out)
  return seq(tlv(0xa0, Buffer.concat(domains.map((d) => seq(tlv(0x81, Buffer.from(d, 'ascii')))))));
}

/** id-pkix-ocsp-nocheck's value: NULL. */
export const ocspNoCheck = (): Buffer => nul();
