/**
 * The CRL reason codes, apart from crl.ts (which loads the certificate code): the CLI offers
 * them as the choices of `cert revoke --reason`.
 *
 * @module revocation-reasons
 */

/**
 * RFC 5280 5.3.1 reason codes that we write.
 * @example
 * console.log(Object.keys(REVOCATION_REASONS).join(', ')) // the reasons revokeCertificate takes
 */
export const REVOCATION_REASONS = {
  unspecified: 0,
  keyCompromise: 1,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
} as const;
/** A CRL reason code name (RFC 5280 section 5.3.1). */
export type RevocationReason = keyof typeof REVOCATION_REASONS;
