/**
 * The file store's record types: revocations.json's lines (revocations and amendments), and
 * the overlay they make over the entries.
 *
 * @module file-records
 */
import type { RevocationReason } from '../../certs/crl.js';
import type { CertificatePurpose } from '../../certs/issue.js';

/** A line of revocations.json. */
export interface Revocation {
  serial: string;
  date: string;
  reason: RevocationReason | 'retired';
  kind: 'revoked' | 'retired';
  /** The CA whose CRL lists it (`root`, `issuing`, `issuing-2`, ...). Absent: `issuing`. */
  ca?: string;
}

/**
 * An amendment of an entry, kept in revocations.json beside the revocations (entry.json never
 * changes): a certificate imported again for its other purpose (dual use), or with more of its
 * chain (`chain`: issuer fingerprints the entry lacks). Applied to records as `alsoPurpose`
 * and `addedChain`, which index.json never holds: it keeps the entries' facts only.
 */
export interface Amendment {
  serial: string;
  date: string;
  alsoPurpose?: CertificatePurpose;
  chain?: string[];
}

/** What revocations.json lays over the entries. */
export interface Overlay {
  revocations: Map<string, Revocation>;
  amendments: Map<string, Amendment>;
}

/** Entry directory names: serials as normalizeSerial writes them. */
export const SERIAL = /^[0-9a-f]{1,64}$/;
