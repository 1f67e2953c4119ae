/**
 * Issuing certificates for every user of a users file. Bound by RSA key generation
 * (~170 ms a key per core), so keys are generated concurrently on the libuv threadpool;
 * users who already hold a valid certificate of the purpose (one the store holds the key of:
 * a device's SCEP certificate does not count) are skipped, so a run that
 * was interrupted is finished by running it again.
 *
 * @module issue-batch
 */
import { availableParallelism } from 'node:os';
import { assertCertificateEmail } from '../certs/email.js';
import type { CertificatePurpose } from '../certs/issue.js';
import { checkNameValue } from '../certs/name.js';
import { isProfilesmithError, StoreIOError, UserRemoved, type AnyProfilesmithError } from '../errors.js';
import { isRemovedUser, statusOf, type CertificateStore } from '../store/store.js';
import { isPassingFault } from '../store/postgres/db.js';
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
  /**
   * Check every row and count who would get a certificate, issuing nothing: the store is
   * not changed (and need not be unlocked). `generated` then counts the would-be issues.
   */
  dryRun?: boolean;
  /** Stops the run: no new row is started, the rows in flight finish, and the summary says `interrupted`. */
  signal?: AbortSignal;
  /**
   * Skip users removed from the store (`user remove`) and count them in `skipped`. Without
   * it such a row fails: issuing again would re-enroll somebody who was taken out.
   */
  skipRemoved?: boolean;
}

/** The outcome of {@link issueBatch}. */
export interface IssueBatchSummary extends BatchProgress {
  /** Users skipped because they already hold a valid certificate of the purpose. */
  existing: number;
  failures: BatchFailure[];
  /** True for a {@link IssueBatchOptions.dryRun}: nothing was issued. */
  dryRun: boolean;
  /** True when the signal stopped the run before every row was read. */
  interrupted: boolean;
}

/**
 * Issues a certificate of `purpose` to every user who has no valid one. A row's own failure (a
 * bad address, a removed user) is counted and reported through `onFailure`, as is a PostgreSQL
 * transaction that collided with another node's. Any other fault of the store (ERR_STORE_IO: a
 * full disk, a store that cannot be written, its database unreachable or restarting) would fail
 * every later row too, so it stops the run: no new row is started (no key is generated for a
 * doomed row), the rows in flight finish, and the fault is thrown once. Each certificate is
 * recorded whole, so nothing is half-written, and a second run issues only what is missing.
 * @throws ERR_STORE_IO at the first fault of the store (rows issued before it stay issued);
 * ERR_INPUT_INVALID for an unreadable users file
 * @example
 * await issueBatch({ store, usersFile: 'users.csv', purpose: 'smime-signing' })
 */
export async function issueBatch(options: IssueBatchOptions): Promise<IssueBatchSummary> {
  const started = Date.now();
  const now = options.now ?? (() => new Date());
  const total = await countUsers(options.usersFile);
  const jobs = Math.max(1, Math.min(options.jobs ?? availableParallelism(), 32));
  const s: IssueBatchSummary = { done: 0, total, generated: 0, unchanged: 0, failed: 0, skipped: 0, existing: 0, elapsedMs: 0, failures: [], dryRun: !!options.dryRun, interrupted: false };
  const running = new Set<Promise<void>>();
  const finish = () => {
    s.done++;
    s.elapsedMs = Date.now() - started;
    options.onProgress?.({ done: s.done, total, generated: s.generated, unchanged: s.existing, failed: s.failed, skipped: s.skipped, elapsedMs: s.elapsedMs });
  };
  const seen = new Set<string>();
  // The first store fault: no row starts after it (each would generate a key to fail on it).
  let fault: AnyProfilesmithError | undefined;
  for await (const row of readUsers(options.usersFile)) {
    if (fault) break;
    if (options.signal?.aborted) {
      s.interrupted = true;
      break;
    }
    const email = typeof row.values.email === 'string' ? row.values.email : '';
    const name = typeof row.values.name === 'string' && row.values.name ? row.values.name : email;
    const repeated = seen.has(email.toLowerCase());
    seen.add(email.toLowerCase());
    const task = (async () => {
      try {
        const request = { user: email, name, purpose: options.purpose, ...(options.days ? { days: options.days } : {}) };
        let issued: boolean;
        const removed = !repeated && /^[^@\s]+@[^@\s]+$/.test(email) && isRemovedUser(await options.store.listCertificates({ user: email }));
        if (removed && options.skipRemoved) {
          s.skipped++;
          return finish();
        }
        if (removed) throw new UserRemoved(email);
        if (repeated) issued = false;
        else if (options.dryRun) {
          // What issuing would check first (the store's own checks, when it offers them), then
          // whether the user already holds one.
          const user = assertCertificateEmail(email);
          if (options.store.checkIssuance) await options.store.checkIssuance(request);
          else checkNameValue('name', name.trim());
          const held = await options.store.listCertificates({ user, purpose: options.purpose });
          issued = !held.some((r) => !r.keyOnDevice && statusOf(r, now()) === 'valid');
        } else if (options.store.issueCertificateIfMissing) {
          // Decided under the store's lock: concurrent runs over the same users issue one each.
          issued = (await options.store.issueCertificateIfMissing(request)).issued;
        } else {
          const held = await options.store.listCertificates({ user: email, purpose: options.purpose });
          issued = !held.some((r) => !r.keyOnDevice && statusOf(r, now()) === 'valid');
          if (issued) await options.store.issueCertificate(request);
        }
        if (issued) s.generated++;
        else {
          s.existing++;
          s.unchanged++;
        }
      } catch (err) {
        if (!isProfilesmithError(err)) throw err;
        if (err.code === StoreIOError.code && !isPassingFault(err)) {
          fault ??= err;
          return;
        }
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
  if (fault) throw fault;
  s.elapsedMs = Date.now() - started;
  return s;
}
