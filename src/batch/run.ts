/**
 * Batch generation: one signed profile per user of a users file, on worker threads, with
 * the users file streamed and profiles written by the workers, so memory stays flat.
 *
 * @module batch
 */
import { availableParallelism } from 'node:os';
import { constants, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { InputInvalid, ProfilesmithError, StoreIOError, UserRemoved } from '../errors.js';
import { challengeToMint, getPath, loadTemplate, SCEP_CHALLENGE_TTL_MS, type Template, type TemplateRef } from '../profile/template.js';
import { openStore } from '../store/open.js';
import { isPostgresUrl } from '../store/postgres/db.js';
import { atomicWrite } from '../store/fs-util.js';
import { csvField } from '../util/csv.js';
import { assertCertificateEmail } from '../certs/email.js';
import { countUsers, readUsers } from './users.js';
import type { WorkerInit, WorkerResult, WorkerTask } from './worker.js';
import { isRemovedUser } from '../store/store.js';
import type { AnyStore } from '../store/open.js';
import { pkcs11Signer, type Pkcs11SignerOptions } from '../cms/pkcs11.js';

/** Progress of a batch, passed to `onProgress` after every row. */
export interface BatchProgress {
  done: number;
  total: number;
  generated: number;
  unchanged: number;
  failed: number;
  /** Rows of removed users skipped by `skipRemoved`. */
  skipped: number;
  elapsedMs: number;
}

/** One failed row: its line number, address and typed error code. */
export interface BatchFailure {
  line: number;
  email: string;
  code: string;
  message: string;
}

/** The outcome of {@link runBatch}. */
export interface BatchSummary extends BatchProgress {
  /** The first 1,000 failures. */
  failures: BatchFailure[];
  profilesPerSecond: number;
  /** True when `strict` stopped the run at a failure. */
  stopped: boolean;
  /** True for a dry run: nothing was written, `generated` counts the profiles that would be. */
  dryRun: boolean;
  /** True when the signal stopped the run: the rows in flight were finished and recorded, the rest not started. */
  interrupted: boolean;
}

/** Options of {@link runBatch}. */
export interface RunBatchOptions {
  storeDir: string;
  passphrase: string;
  /** Which template: a built-in name, `{ builtin }`, `{ path }`, `{ source }`, or a loaded Template. */
  template: TemplateRef | Template;
  usersFile: string;
  outDir: string;
  /** Data for every user; users-file columns override it. */
  data?: Record<string, unknown>;
  /** `--set` values, typed by the template. */
  sets?: Record<string, string>;
  /** Worker threads. Default: the number of cores. */
  jobs?: number;
  /** Default: true. With false, pass `passwordsOut`. */
  embedPkcs12Passwords?: boolean;
  includeRevoked?: boolean;
  /** Skip users whose profile would not change (kept in OUT/.profilesmith-batch.json). */
  onlyChanged?: boolean;
  /** Stop at the first failed row: rows then go one at a time, so nothing after it is made. */
  strict?: boolean;
  /** A CSV (mode 0600) of the PKCS#12 passwords, when they are kept out of the profiles. */
  passwordsOut?: string;
  /**
   * What to do when `passwordsOut` exists: `'refuse'` (throw ERR_INPUT_INVALID before any work),
   * `'merge'` (keep every row it holds and add this run's new rows after them: the re-run that
   * completes an interrupted one) or `'replace'`. Default: `'refuse'`.
   */
  passwordsOutExisting?: 'refuse' | 'merge' | 'replace';
  /** Encrypt every profile to this device certificate; a `device_cert` column (a path) overrides it per user. */
  encryptTo?: Uint8Array;
  /** Default: `aes-256-cbc`. */
  cipher?: 'aes-256-cbc' | 'des-ede3-cbc';
  /**
   * Sign with a key in a PKCS#11 token instead of the store's signing identity. Options, not an
   * open signer: every worker thread opens its own sessions on the token.
   */
  pkcs11?: Pkcs11SignerOptions;
  /**
   * Make every profile in memory and report what would be written, writing nothing: no
   * profile, no run record, no passwords file, no PKCS#12 cache entry in the store.
   */
  dryRun?: boolean;
  /**
   * Skip the rows of users removed from the store (`user remove`: every certificate retired,
   * or revoked as cessationOfOperation) and count them in `skipped`. Without it such a row fails.
   */
  skipRemoved?: boolean;
  /**
   * Stops the run (Ctrl-C in the CLI): no new row is started, the rows in flight finish, the
   * run record and the passwords file are written for what was done, and the summary says
   * `interrupted`. A rerun with `onlyChanged` picks up the rest.
   */
  signal?: AbortSignal;
  /** Called after every row (throttle it yourself for display). */
  onProgress?: (p: BatchProgress) => void;
  /** Called once per failed row. */
  onFailure?: (f: BatchFailure) => void;
}

const MANIFEST = '.profilesmith-batch.json';
const PASSWORDS_HEADER = 'email,fileName,payloadIdentifier,serial,purpose,password';

/**
 * The rows of an existing passwords file to keep (none when there is no file, or it is to be
 * replaced). Refused: an existing file without `'merge'` or `'replace'`, a folder, and a file
 * that is not a passwords file of ours (its rows could not be kept as they are).
 */
async function existingPasswords(path: string, existing: 'refuse' | 'merge' | 'replace'): Promise<string[]> {
  const text = await fs.readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new InputInvalid('passwords-out', `Cannot use "${path}" for the passwords: ${err.code === 'EISDIR' ? 'it is a directory; name a file' : err.code === 'EACCES' ? 'permission denied' : err.code ?? err.message}`);
  });
  if (text === undefined || existing === 'replace') return [];
  if (existing === 'refuse') throw new InputInvalid('passwords-out', `"${path}" exists; pass --only-changed to add this run's passwords to it, or --force to replace it (or choose another --passwords-out)`);
  const lines = text.split(/\r?\n/);
  if (lines[0] !== PASSWORDS_HEADER) throw new InputInvalid('passwords-out', `"${path}" is not a passwords file of profilesmith (its first line is not "${PASSWORDS_HEADER}"); it is left as it was; choose another --passwords-out`);
  return lines.slice(1).filter((l) => l !== '');
}

/**
 * How a batch mints SCEP challenges, when it does: the template takes a minted challenge, the
 * run is not a dry run, and the profiles point at the store's own SCEP server (the data names
 * no other URL and gives no challenge).
 */
function mintsChallenges(template: Template, store: AnyStore, options: RunBatchOptions): ((users: string[]) => Promise<string[]>) | undefined {
  if (options.dryRun) return undefined;
  const given = (key: string) => options.sets?.[key] ?? getPath(options.data ?? {}, key);
  let variable: string | undefined;
  try {
    variable = challengeToMint(template, given, store.scepUrl);
  } catch {
    // A challenge typed for the store's own server: every row refuses it, with its line.
    return undefined;
  }
  if (!variable) return undefined;
  const ttlMs = SCEP_CHALLENGE_TTL_MS;
  return async (users) => {
    const made = await (store.challenges.createMany ? store.challenges.createMany(users, { ttlMs }) : Promise.all(users.map((u) => store.challenges.create(u, { ttlMs }))));
    return made.map((m) => m.token);
  };
}

/**
 * Rows go to a worker in chunks, and come back in chunks: a message per row cost a thread
 * wake-up each way. Two chunks in flight per worker keep it busy while the next is read.
 * 32 rows: against 8, faster in each of 6 paired runs of 10,000 users here (by 0.1-14%, a
 * median of 3%). A small batch gets smaller chunks, so that every worker has rows.
 */
const CHUNK = 32;


function workerUrl(): URL {
  // Under a TypeScript loader (tests) the sibling is .ts; built, it is .js.
  return new URL(import.meta.url.endsWith('.ts') ? './worker.ts' : './worker.js', import.meta.url);
}

/**
 * Generates a signed profile for every user of `usersFile` into `outDir`.
 * A bad row is reported with its line number and skipped; the others complete.
 * @throws ERR_STORE_*, ERR_KEY_PASSPHRASE, ERR_TEMPLATE_* before any work; ERR_INPUT_INVALID for an unreadable users file, or a `passwordsOut` that exists (unless `passwordsOutExisting` says merge or replace)
 * @example
 * const summary = await runBatch({ storeDir: './store', passphrase, template: 'exchange-smime',
 *   usersFile: 'users.csv', outDir: 'out', sets: { 'exchange.host': 'mail.example.com' } })
 */
export async function runBatch(options: RunBatchOptions): Promise<BatchSummary> {
  const started = Date.now();
  // Fail fast, in this thread, on what would fail every row; the workers get it as data.
  const loaded = loadTemplate(options.template);
  // This thread holds the one record index and hands each row its user's records.
  const store = await openStore(options.storeDir);
  const jobs = Math.max(1, Math.min(options.jobs ?? availableParallelism(), 64));
  // Workers start now, so that loading their modules overlaps the key derivation and the
  // index read below; each waits for its WorkerInit.
  // Each profile is ~100 KB of short-lived garbage. A young generation of 12 MB per worker: at 4 MB
  // the scavenges cost 25-30% more CPU (14-17.5 s against 13.3-13.7 s for 10,000 users here);
  // at 16 MB peak RSS went over 300 MB (311-315 MB); 12 MB peaks at 293-296 MB.
  const workers = Array.from({ length: jobs }, () => new Worker(workerUrl(), { workerData: { kind: 'profilesmith-batch' }, resourceLimits: { maxYoungGenerationSizeMb: 12 } }));
  let fatal: Error | undefined;
  const waiting: (() => void)[] = [];
  const wake = () => waiting.splice(0).forEach((w) => w());
  const readyAll = Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((ready, reject) => {
          const onFirst = (m: { ready?: boolean; fatal?: { code: string; message: string } }) => {
            w.off('message', onFirst);
            if (m.fatal) return reject(Object.assign(new ProfilesmithError(m.fatal.message), { code: m.fatal.code }));
            ready();
          };
          w.on('message', onFirst);
          w.on('error', (err) => {
            fatal = err;
            reject(err);
            wake();
          });
        }),
    ),
  );
  // Awaited below; until then an early worker failure is not an unhandled rejection.
  readyAll.catch(() => {});
  let passwords: { handle: fs.FileHandle; tmp: string; path: string; kept: Set<string> } | undefined;
  let manifest: Record<string, string>;
  let manifestPath: string;
  let total: number;
  try {
    // scrypt runs on the threadpool while this thread reads the record index.
    await Promise.all([store.unlock(options.passphrase), store.loadIndex()]);
    if (options.pkcs11) {
      // A wrong PIN, label or certificate fails here, once, not in every worker.
      await (await pkcs11Signer(options.pkcs11)).close();
    }
    total = await countUsers(options.usersFile);
    const outDir = resolve(options.outDir);
    const makeOut = options.dryRun
      ? fs.stat(outDir).then(
          (st) => {
            if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'EEXIST' });
          },
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT') throw err;
          },
        )
      : fs.mkdir(outDir, { recursive: true, mode: 0o700 });
    await makeOut.catch(async (err: NodeJS.ErrnoException) => {
      const what = await fs.stat(outDir).then((st) => (st.isDirectory() ? undefined : 'is a file, not a folder'), () => undefined);
      throw new InputInvalid('out', `Cannot use "${options.outDir}" for the profiles: ${what ?? (err.code === 'EACCES' ? 'permission denied' : err.code === 'ENOTDIR' || err.code === 'EEXIST' ? 'a part of the path is a file' : err.code ?? err.message)}`);
    });

    manifestPath = join(outDir, MANIFEST);
    manifest = await fs
      .readFile(manifestPath, 'utf8')
      .then((t) => (JSON.parse(t) as { entries: Record<string, string> }).entries ?? {})
      .catch(() => ({}));

    if (options.passwordsOut) {
      const kept = await existingPasswords(options.passwordsOut, options.passwordsOutExisting ?? 'refuse');
      if (!options.dryRun) {
        const path = resolve(options.passwordsOut);
        const tmp = join(resolve(path, '..'), `.tmp-${randomBytes(6).toString('hex')}`);
        const handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
        passwords = { handle, tmp, path, kept: new Set(kept) };
        await handle.writeFile([PASSWORDS_HEADER, ...kept].join('\n') + '\n');
      }
    }

    const init: WorkerInit = {
      storeDir: isPostgresUrl(options.storeDir) ? options.storeDir : resolve(options.storeDir),
      storeKey: store.derivedKey(),
      template: { name: loaded.name, source: loaded.source, meta: loaded.meta, ...(loaded.path ? { path: loaded.path } : {}) },
      data: options.data ?? {},
      sets: options.sets ?? {},
      outDir,
      embedPkcs12Passwords: options.embedPkcs12Passwords ?? true,
      includeRevoked: !!options.includeRevoked,
      onlyChanged: !!options.onlyChanged,
      dryRun: !!options.dryRun,
      usersDir: resolve(options.usersFile, '..'),
      ...(options.encryptTo ? { encryptTo: options.encryptTo } : {}),
      ...(options.cipher ? { cipher: options.cipher } : {}),
      ...(options.pkcs11 ? { pkcs11: options.pkcs11 } : {}),
    };
    for (const w of workers) w.postMessage(init);
    await readyAll;
  } catch (err) {
    await Promise.all(workers.map((w) => w.terminate()));
    await passwords?.handle.close();
    if (passwords) await fs.rm(passwords.tmp, { force: true });
    throw err;
  }

  const progress: BatchProgress = { done: 0, total, generated: 0, unchanged: 0, failed: 0, skipped: 0, elapsedMs: 0 };
  const failures: BatchFailure[] = [];
  let interrupted = false;
  const onAbort = () => wake();
  options.signal?.addEventListener('abort', onAbort);
  let stopped = false;
  let outputFull = false;
  let inFlight = 0;
  let writes = Promise.resolve();

  const onResults = (results: WorkerResult[]) => results.forEach(onResult);
  const fail = (line: number, email: string, code: string, message: string) => {
    progress.failed++;
    const f = { line, email, code, message };
    if (failures.length < 1000) failures.push(f);
    options.onFailure?.(f);
    if (options.strict) stopped = true;
  };
  const counted = () => {
    progress.elapsedMs = Date.now() - started;
    options.onProgress?.({ ...progress });
  };
  const onResult = (r: WorkerResult) => {
    inFlight--;
    if (r.outputFull) {
      // One error for the run, not one per remaining row: no row starts after it, those in flight are dropped.
      if (!fatal) {
        const why = /": ([^"]*)$/.exec(r.error?.message ?? '')?.[1] ?? 'no space left on the disk';
        fatal = new InputInvalid('out', `Cannot write the profiles to "${options.outDir}": ${why}; free space there (or choose another --out), then run the batch again with --only-changed: the profiles written so far stay`);
        outputFull = true;
      }
      wake();
      return;
    }
    progress.done++;
    if (r.status === 'failed') fail(r.line, r.email, r.error?.code ?? 'ERR_INTERNAL', r.error?.message ?? 'failed');
    else {
      if (r.status === 'generated') progress.generated++;
      else progress.unchanged++;
      if (r.hash) manifest[r.email.toLowerCase()] = r.hash;
      if (passwords && r.passwords?.length) {
        const { handle, kept } = passwords;
        // A merged file holds a row once: a cached PKCS#12 comes back with the same password.
        const rows = r.passwords.map((p) => [r.email, p.fileName, p.payloadIdentifier, p.serial, p.purpose, p.password].map(csvField).join(',')).filter((l) => !kept.has(l));
        rows.forEach((l) => kept.add(l));
        if (rows.length) writes = writes.then(() => handle.appendFile(rows.join('\n') + '\n'));
      }
    }
    counted();
    wake();
  };

  for (const w of workers) w.on('message', onResults);
  try {
    let id = 0;
    // --strict means nothing after the first failure is made, so rows go one at a time.
    const chunk = options.strict ? 1 : Math.max(1, Math.min(CHUNK, Math.ceil(total / (jobs * 4))));
    const limit = options.strict ? 1 : jobs * 2 * chunk;
    let next = 0;
    let pending: WorkerTask[] = [];
    // A SCEP template for the store's own server: a chunk's challenges are minted in one step
    // (one write of the ledger), here, rather than one write per profile in the workers.
    const mint = mintsChallenges(loaded, store, options);
    const flush = async () => {
      if (!pending.length) return;
      const chunkTasks = pending;
      pending = [];
      if (mint) {
        const made = await mint(chunkTasks.map((task) => String(task.values.email)));
        chunkTasks.forEach((task, i) => {
          const c = made[i];
          if (c) task.scepChallenge = c;
        });
      }
      (workers[next] as Worker).postMessage(chunkTasks);
      next = (next + 1) % jobs;
    };
    for await (const row of readUsers(options.usersFile)) {
      if (inFlight >= limit) await flush();
      while (inFlight >= limit && !fatal && !options.signal?.aborted) await new Promise<void>((r) => waiting.push(r));
      if (options.signal?.aborted) interrupted = true;
      if (stopped || fatal || interrupted) break;
      const email = typeof row.values.email === 'string' ? row.values.email : '';
      const records = /^[^@\s]+@[^@\s]+$/.test(email) ? await store.listCertificates({ user: email }) : [];
      if (isRemovedUser(records)) {
        progress.done++;
        if (options.skipRemoved) progress.skipped++;
        else fail(row.line, email, UserRemoved.code, new UserRemoved(email).message);
        counted();
        continue;
      }
      if (mint) {
        // The store's SCEP server will certify this address: no challenge is minted for one it would refuse.
        try {
          assertCertificateEmail(email);
        } catch (err) {
          if (!(err instanceof ProfilesmithError)) throw err;
          progress.done++;
          fail(row.line, email, err.code, err.message);
          counted();
          continue;
        }
      }
      pending.push({ id: id++, line: row.line, values: row.values, previousHash: manifest[email.toLowerCase()], records });
      inFlight++;
      if (pending.length >= chunk) await flush();
    }
    if (stopped || fatal || interrupted) {
      inFlight -= pending.length; // never sent
      pending = [];
    } else await flush();
    while (inFlight > 0 && !fatal) await new Promise<void>((r) => waiting.push(r));
    if (fatal) throw fatal;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
    await writes;
    if (passwords) {
      await passwords.handle.close();
      await fs.rename(passwords.tmp, passwords.path).catch(async (cause) => {
        await fs.rm(passwords!.tmp, { force: true });
        throw new StoreIOError(passwords!.path, 'write', `Cannot write "${passwords!.path}"`, { cause });
      });
    }
    // On a full output disk the run record may not fit either; the run's one error says what to do.
    if (!options.dryRun) await atomicWrite(manifestPath, JSON.stringify({ version: 1, entries: manifest }) + '\n', 0o600).catch((err: unknown) => {
      if (!outputFull) throw err;
    });
  }
  progress.elapsedMs = Date.now() - started;
  return { ...progress, failures, stopped, dryRun: !!options.dryRun, interrupted, profilesPerSecond: progress.done / Math.max(progress.elapsedMs / 1000, 0.001) };
}
