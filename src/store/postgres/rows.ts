/**
 * Certificate rows as records: the query the PostgreSQL port reads them with, and the record
 * of a row (its facts, what later imports added, its revocation or retirement).
 *
 * @module postgres-rows
 */
import type { CertificatePurpose } from '../../certs/issue.js';
import type { CertificateRecord } from '../store.js';

/** A certificate row with its revocation, as RECORD_SELECT reads it. */
export interface CertRow {
  serial: string;
  record: CertificateRecord;
  also_purpose: string | null;
  added_chain: string[] | null;
  rkind: string | null;
  rdate: Date | null;
  rreason: string | null;
}

export const RECORD_SELECT = `SELECT c.serial, c.record, c.also_purpose, c.added_chain, r.kind AS rkind, r.date AS rdate, r.reason AS rreason
  FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial`;

/** The record of a row: its facts, what later imports added, and its revocation or retirement. */
export function toRecord(row: CertRow): CertificateRecord {
  const r: CertificateRecord = { ...row.record };
  if (row.also_purpose) r.alsoPurpose = row.also_purpose as CertificatePurpose;
  if (row.added_chain?.length) r.addedChain = row.added_chain;
  if (row.rkind === 'revoked') r.revoked = { date: row.rdate!.toISOString(), reason: row.rreason! };
  else if (row.rkind === 'retired') r.retired = { date: row.rdate!.toISOString() };
  return r;
}
