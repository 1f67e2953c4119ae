/**
 * The file store's record types: revocations.json's lines (revocations and amendments), and
 * the overlay they make over the entries.
 *
 * @module file-records
 */
import type { Amendment, Revocation } from '../port/port.js';

/**
 * A line of revocations.json is the port's {@link Revocation}; an amendment of an entry (a
 * certificate imported again for its other purpose, or with more of its chain) is the port's
 * {@link Amendment}, kept beside the revocations since entry.json never changes, and applied to
 * records as `alsoPurpose` and `addedChain` (index.json never holds them: it keeps the entries'
 * facts only).
 */
export type { Amendment, Revocation } from '../port/port.js';

/** What revocations.json lays over the entries. */
export interface Overlay {
  revocations: Map<string, Revocation>;
  amendments: Map<string, Amendment>;
}
