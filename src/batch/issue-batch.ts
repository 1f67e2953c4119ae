/**
 * Issuing certificates for every user of a users file. Bound by RSA key generation
 * (~170 ms a key per core), so keys are generated concurrently on the libuv threadpool;
 * users who already hold a valid certificate of the purpose are skipped, so a run that
 * was interrupted is finished by running it again.
 *
 * @module issue-batch
 */
import { availableParallelism } from 'node:os';
import type { CertificatePurpose } from '../certs/issue.js';
import { isProfilesmithError } from '../errors.js';
import { statusOf, type CertificateStore } from '../store/store.js';
import type { BatchFailure, BatchProgress } from './run.js';
import { countUsers, readUsers } from './users.js';

/** Options of {@link issueBatch}. */
export interface IssueBatchOptions {
  store: CertificateStore;
  usersFile: string;
  purpose: CertificatePurpose;
  /** Default: 365. */
  days?: number;
  /** Keys generated at once. Default: the number of cores. */
  jobs?: number;
  /** Called after every row (throttle it yourself for display). */
  onProgress?: (p: BatchProgress) => void;
  /** Called once per failed row. */
  onFailure?: (f: BatchFailure) => void;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/** The outcome of {@link issueBatch}. */
export interface IssueBatchSummary extends BatchProgress {
  /** Users skipped because they already hold a valid certificate of the purpose. */
  existing: number;
  failures: BatchFailure[];
}

/**
 * Issues a certificate of `purpose` to every user who has no valid one.
 * @example
 * await issueBatch({ store, usersFile: 'users.csv', purpose: 'smime-signing' })
 */
export async function issueBatch(options: IssueBatchOptions): Promise<IssueBatchSummary> {
  const started = Date.now();
  const now = options.now ?? (() => new Date());
  const total = await countUsers(options.usersFile);
  const jobs = Math.max(1, Math.min(options.jobs ?? availableParallelism(), 32));
  const s: IssueBatchSummary = { done: 0, total, generated: 0, unchanged: 0, failed: 0, existing: 0, elapsedMs: 0, failures: [] };
  const running = new Set<Promise<void>>();
  const finish = () => {
    s.done++;
    s.elapsedMs = Date.now() - started;
    options.onProgress?.({ done: s.done, total, generated: s.generated, unchanged: s.existing, failed: s.failed, elapsedMs: s.elapsedMs });
  };
  const seen = new Set<string>();
  for await (const row of readUsers(options.usersFile)) {
    const email = typeof row.values.email === 'string' ? row.values.email : '';
    const name = typeof row.values.name === 'string' && row.values.name ? row.values.name : email;
    const repeated = seen.has(email.toLowerCase());
    seen.add(email.toLowerCase());
    const task = (async () => {
      try {
        const request = { user: email, name, purpose: options.purpose, ...(options.days ? { days: options.days } : {}) };
        let issued: boolean;
        if (repeated) issued = false;
        else if (options.store.issueCertificateIfMissing) {
          // Decided under the store's lock: concurrent runs over the same users issue one each.
          issued = (await options.store.issueCertificateIfMissing(request)).issued;
        } else {
          const held = await options.store.listCertificates({ user: email, purpose: options.purpose });
          issued = !held.some((r) => statusOf(r, now()) === 'valid');
          if (issued) await options.store.issueCertificate(request);
        }
        if (issued) s.generated++;
        else {
          s.existing++;
          s.unchanged++;
        }
      } catch (err) {
        if (!isProfilesmithError(err)) throw err;
        s.failed++;
        const f = { line: row.line, email, code: err.code, message: err.message };
        if (s.failures.length < 1000) s.failures.push(f);
        options.onFailure?.(f);
      }
      finish();
    })();
    running.add(task);
    task.finally(() => running.delete(task)).catch(() => {});
    if (running.size >= jobs) await Promise.race(running);
  }
  await Promise.all(running);
  s.elapsedMs = Date.now() - started;
  return s;
}
