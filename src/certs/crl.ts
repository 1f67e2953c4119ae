/**
 * Certificate revocation lists (RFC 5280 section 5), signed by the issuing CA.
 *
 * @module crl
 */
import type { KeyObject } from 'node:crypto';
import { int } from '../asn1/der.js';
import { createCrlDer } from './x509.js';
import { REVOCATION_REASONS, type RevocationReason } from './revocation-reasons.js';

export { REVOCATION_REASONS, type RevocationReason } from './revocation-reasons.js';

/** One revoked certificate on a CRL. */
export interface CrlEntry {
  /** Hex serial. */
  serial: string;
  date: Date;
  reason: RevocationReason;
}

/** Options of {@link createCrl}. */
export interface CreateCrlOptions {
  /** The issuing CA's certificate (DER) and key. */
  issuerCertificate: Buffer;
  issuerKey: KeyObject;
  entries: CrlEntry[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** The CRL number. Default: the thisUpdate time in seconds. */
  crlNumber?: number;
}

/**
 * Builds a DER CRL with the authority key identifier and a CRL number (by default the
 * thisUpdate time in seconds, so numbers grow without kept state), as RFC 5280 5.2 requires.
 * @example
 * const ca = await createCertificateAuthority({ organization: 'Example Corp' })
 * const now = new Date()
 * const crl = await createCrl({
 *   issuerCertificate: ca.intermediate.certificate,
 *   issuerKey: ca.intermediate.privateKey,
 *   entries: [{ serial: '0a1b2c', date: now, reason: 'keyCompromise' }],
 *   thisUpdate: now,
 *   nextUpdate: new Date(now.getTime() + 86_400_000),
 * })
 * writeFileSync('issuing.crl', crl)
 */
export function createCrl(options: CreateCrlOptions): Promise<Buffer> {
  const crlNumber = int(BigInt(options.crlNumber ?? Math.floor(options.thisUpdate.getTime() / 1000)));
  return createCrlDer({ ...options, crlNumber });
}
