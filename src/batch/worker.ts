/**
 * A batch worker thread: opens the store once, parses the signing key once, then turns
 * user rows into signed profiles written straight to disk, so the main thread never holds
 * profile bytes.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { assertEmail } from '../certs/email.js';
import { signerCertificates, type Signer } from '../cms/sign.js';
import { pkcs11Signer, type Pkcs11SignerOptions } from '../cms/pkcs11.js';
import { InputInvalid, isProfilesmithError } from '../errors.js';
import { generateProfile, selectIdentities } from '../profile/generate.js';
import { applySetValues, setPath, type Template } from '../profile/template.js';
import { openStore, type AnyStore } from '../store/open.js';
import { atomicWriteSyncFast, isDiskFull } from '../store/fs-util.js';
import type { CertificateRecord } from '../store/store.js';
import { profileFileName } from '../profile/file-name.js';

/** What the main thread hands each worker. */
export interface WorkerInit {
  storeDir: string;
  /** The store key, derived once by the main thread (scrypt is not run again per worker). */
  storeKey: Uint8Array;
  /** Loaded once by the main thread. */
  template: Template;
  data: Record<string, unknown>;
  sets: Record<string, string>;
  outDir: string;
  embedPkcs12Passwords: boolean;
  includeRevoked: boolean;
  onlyChanged: boolean;
  /** Make the profile, write nothing. */
  dryRun?: boolean;
  /** Device certificate (PEM/DER) to encrypt every profile to; a `device_cert` column overrides it per user. */
  encryptTo?: Uint8Array;
  cipher?: 'aes-256-cbc' | 'des-ede3-cbc';
  /** Where relative `device_cert` paths start. */
  usersDir?: string;
  /** Sign through this PKCS#11 token instead of the store's signing identity; each worker opens its own sessions. */
  pkcs11?: Pkcs11SignerOptions;
}

export interface WorkerTask {
  id: number;
  line: number;
  values: Record<string, unknown>;
  previousHash: string | undefined;
  /** The user's certificate records, from the main thread's index. */
  records: CertificateRecord[];
  /** A SCEP challenge the main thread minted for this row, when the template takes one. */
  scepChallenge?: string;
}

export interface WorkerResult {
  id: number;
  line: number;
  email: string;
  status: 'generated' | 'unchanged' | 'failed';
  file?: string;
  hash?: string;
  passwords?: { payloadIdentifier: string; fileName: string; serial: string; purpose: string; password: string }[];
  error?: { code: string; message: string };
  /** The profile could not be written because the output folder's disk is full (ENOSPC, EDQUOT): the run stops. */
  outputFull?: true;
}

const USERNAME_VARIABLES = ['exchange.username', 'imap.username', 'smtp.username'];

interface Ready {
  store: AnyStore;
  signer: Signer;
  template: Template;
  base: Record<string, unknown>;
  fixed: string;
}

function readDeviceCert(init: WorkerInit, path: string): Uint8Array {
  const full = resolve(init.usersDir ?? '.', path);
  try {
    if (statSync(full).size > 1024 * 1024) throw new Error('larger than 1 MiB');
    return readFileSync(full);
  } catch (err) {
    throw new InputInvalid('device_cert', `Cannot read the device certificate "${path}": ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Everything that does not change per user, done once. */
export async function prepareWorker(init: WorkerInit): Promise<Ready> {
  const store = await openStore(init.storeDir);
  store.unlockWithKey(init.storeKey);
  const signer = init.pkcs11 ? await pkcs11Signer(init.pkcs11) : await store.profileSigner();
  const template = init.template;
  const base = structuredClone(init.data);
  applySetValues(template, base, init.sets);
  const fixed = createHash('sha256')
    .update(JSON.stringify([1, template.source, template.meta, store.organization, createHash('sha256').update(signerCertificates(signer).certificate).digest('hex'), init.embedPkcs12Passwords, init.includeRevoked]))
    .digest('hex');
  return { store, signer, template, base, fixed };
}

/** One row: the data it adds, the input hash, and (unless unchanged) the written profile. */
export async function processRow(init: WorkerInit, ready: Ready, task: WorkerTask): Promise<WorkerResult> {
  const email = typeof task.values.email === 'string' ? task.values.email : '';
  try {
    assertEmail(email);
    const data = structuredClone(ready.base);
    const strings: Record<string, string> = {};
    for (const [key, value] of Object.entries(task.values)) {
      if (key === 'email' || key === 'name' || key === 'device_cert' || value === '' || value === undefined || value === null) continue;
      if (key === 'username') {
        for (const v of USERNAME_VARIABLES) if (ready.template.meta.variables[v]) strings[v] = String(value);
      } else if (ready.template.meta.variables[key]) {
        if (typeof value === 'string') strings[key] = value;
        else setPath(data, key, value);
      }
    }
    applySetValues(ready.template, data, strings);
    const deviceCert = typeof task.values.device_cert === 'string' && task.values.device_cert ? readDeviceCert(init, task.values.device_cert) : init.encryptTo;
    const records = task.records;
    ready.store.remember(records);
    const sel = selectIdentities(records, new Date(), init.includeRevoked);
    const hash = createHash('sha256')
      .update(ready.fixed)
      .update(deviceCert ? createHash('sha256').update(deviceCert).digest() : '')
      // A minted SCEP challenge is new on every run, so such a profile is always made anew.
      .update(JSON.stringify([data, task.scepChallenge ?? null, records.map((r) => [r.serial, r.fingerprint, !!r.revoked, !!r.retired]), sel.signing?.serial, sel.current?.serial, sel.history.map((r) => r.serial)]))
      .digest('hex');
    const file = join(init.outDir, profileFileName(email));
    if (init.onlyChanged && task.previousHash === hash && existsSync(file)) {
      return { id: task.id, line: task.line, email, status: 'unchanged', file, hash };
    }
    const profile = await generateProfile({
      store: ready.store,
      template: ready.template,
      user: email,
      data,
      signer: ready.signer,
      embedPkcs12Passwords: init.embedPkcs12Passwords,
      includeRevoked: init.includeRevoked,
      // A dry run changes nothing, not even the store's PKCS#12 cache.
      pkcs12Cache: !init.dryRun,
      records,
      // The main thread mints challenges (a chunk at a time); a worker never writes the ledger.
      scepChallenge: task.scepChallenge ?? false,
      ...(deviceCert ? { encryptTo: deviceCert, ...(init.cipher ? { cipher: init.cipher } : {}) } : {}),
    });
    // Batch output can be regenerated: atomic (never partial) but without fsync per file,
    // and synchronous, since this is a worker thread.
    if (!init.dryRun) {
      try {
        atomicWriteSyncFast(file, profile.bytes, 0o600);
      } catch (err) {
        // The output folder's disk is full: every row after this one would fail the same way, so the run stops.
        if (isDiskFull(err)) return { id: task.id, line: task.line, email, status: 'failed', error: { code: (err as { code: string }).code, message: (err as Error).message }, outputFull: true };
        throw err;
      }
    }
    return { id: task.id, line: task.line, email, status: 'generated', file, hash, passwords: init.embedPkcs12Passwords ? [] : profile.passwords };
  } catch (err) {
    const error = isProfilesmithError(err) ? { code: err.code, message: err.message } : { code: 'ERR_INTERNAL', message: (err as Error)?.message ?? String(err) };
    return { id: task.id, line: task.line, email, status: 'failed', error };
  }
}

if (parentPort && (workerData as { kind?: string } | undefined)?.kind === 'profilesmith-batch') {
  const port = parentPort;
  // The main thread starts workers before it has unlocked the store and read its index, so
  // that loading modules here overlaps that. The first message is the WorkerInit, then tasks.
  port.once('message', (init: WorkerInit) => {
    prepareWorker(init).then(
      (ready) => {
        // Tasks come in chunks; the chunk's results go back together, in order.
        port.on('message', async (tasks: WorkerTask[]) => {
          const results: WorkerResult[] = [];
          for (const task of tasks) results.push(await processRow(init, ready, task));
          port.postMessage(results);
        });
        port.postMessage({ ready: true });
      },
      (err: unknown) => port.postMessage({ fatal: { code: isProfilesmithError(err) ? err.code : 'ERR_INTERNAL', message: (err as Error).message } }),
    );
  });
}
