/**
 * What store check reports: one type, shared by the check of every backend.
 *
 * @module store-findings
 */

/** One finding of {@link checkStore}. */
export interface StoreFinding {
  severity: 'error' | 'warning' | 'info';
  path: string;
  message: string;
  /**
   * For damage to one certificate's entry: its folder (`certs/<serial>`, relative to the store),
   * which `store check --quarantine` can move aside.
   */
  entry?: string;
}
