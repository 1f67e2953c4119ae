/**
 * A cross-process write lock: a lock file created with O_EXCL. The holder refreshes its
 * mtime every few seconds; a lock left by a killed process goes stale and is taken over.
 */
import { randomBytes } from 'node:crypto';
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreIOError } from '../errors.js';
import { errnoWords } from './fs-util.js';

const HEARTBEAT_MS = 2_000;
const STALE_MS = 15_000;

export interface LockOptions {
  /** How long to wait for another writer. Default: 60 s. */
  timeoutMs?: number;
}

/**
 * Whether a writer holds the store's lock now: `held` while its holder refreshes it, `stale`
 * when it was left by a writer that died (the next writer takes it over), `none` without one.
 */
export async function lockState(dir: string, now: Date = new Date()): Promise<'none' | 'held' | 'stale'> {
  const stat = await fs.stat(join(dir, 'store.lock')).catch(() => undefined);
  if (!stat) return 'none';
  return now.getTime() - stat.mtimeMs > STALE_MS ? 'stale' : 'held';
}

/** Writers of this process, queued per store: they wait in line rather than poll the file lock. */
const queues = new Map<string, Promise<unknown>>();

/** Runs `fn` while holding `dir/store.lock`; writers in one process take turns first. */
export function withLock<T>(dir: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const previous = queues.get(dir) ?? Promise.resolve();
  const run = previous.then(
    () => withFileLock(dir, fn, options),
    () => withFileLock(dir, fn, options),
  );
  const tail = run.catch(() => {});
  queues.set(dir, tail);
  tail.then(() => {
    if (queues.get(dir) === tail) queues.delete(dir);
  });
  return run;
}

async function withFileLock<T>(dir: string, fn: () => Promise<T>, options: LockOptions): Promise<T> {
  const path = join(dir, 'store.lock');
  const token = randomBytes(8).toString('hex');
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let delay = 10;
  for (;;) {
    try {
      const h = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        await h.writeFile(token);
      } catch (err) {
        // A full disk creates the file but not its token: a lock of nobody's, which would
        // hold off every writer until it went stale. It is ours to remove.
        await h.close().catch(() => {});
        await fs.rm(path, { force: true }).catch(() => {});
        throw err;
      }
      await h.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreIOError(path, 'lock', `Cannot lock the store at "${dir}": ${errnoWords((err as NodeJS.ErrnoException).code ?? 'error')}`, { cause: err });
      }
      const stat = await fs.stat(path).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > STALE_MS) {
        // Take over a stale lock: rename is atomic, so only one contender wins it.
        const grave = `${path}.stale-${token}`;
        if (await fs.rename(path, grave).then(() => true, () => false)) await fs.rm(grave, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new StoreIOError(path, 'lock', `The store at "${dir}" is locked by another process`);
      }
      await sleep(delay + Math.random() * delay);
      delay = Math.min(delay * 2, 200);
    }
  }
  const beat = setInterval(() => {
    const t = new Date();
    fs.utimes(path, t, t).catch(() => {});
  }, HEARTBEAT_MS);
  beat.unref();
  try {
    return await fn();
  } finally {
    clearInterval(beat);
    const held = await fs.readFile(path, 'utf8').catch(() => '');
    if (held === token) await fs.rm(path, { force: true });
  }
}
