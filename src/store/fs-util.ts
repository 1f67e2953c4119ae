import { randomBytes } from 'node:crypto';
import { constants, promises as fs, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreIOError } from '../errors.js';
import { errnoWords } from './errno.js';

export { errnoWords, isDiskFull } from './errno.js';

/** Maps a filesystem failure to StoreIOError, shaped like smallstep's FileError. */
export function ioError(path: string, op: string, cause: unknown): StoreIOError {
  const code = (cause as NodeJS.ErrnoException)?.code ?? 'error';
  return new StoreIOError(path, op, `Cannot ${op} "${path}": ${errnoWords(code)}`, { cause });
}

async function fsyncDir(dir: string): Promise<void> {
  try {
    const h = await fs.open(dir, constants.O_RDONLY);
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename is still atomic.
  }
}

/**
 * Writes a file atomically: temp file in the same directory, fsync, rename, fsync the directory.
 * With `durable: false` the fsyncs are skipped: readers still never see a partial file, but a
 * power cut may lose the newest version (right for regenerable output such as batch profiles).
 */
export async function atomicWrite(path: string, data: string | Uint8Array, mode = 0o600, durable = true, replace = true): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    const h = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
    try {
      await h.writeFile(data);
      if (durable) await h.sync();
    } finally {
      await h.close();
    }
    if (replace) await fs.rename(tmp, path);
    else {
      // No clobbering, atomically: link() fails with EEXIST where rename() would replace.
      await fs.link(tmp, path);
      await fs.rm(tmp, { force: true });
    }
    if (durable) await fsyncDir(dirname(path));
  } catch (cause) {
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw ioError(path, 'write', cause);
  }
}

/** Writes files into a fresh temp directory and renames it into place: all of them or none. */
export async function atomicDir(
  path: string,
  files: Record<string, { data: string | Uint8Array; mode: number }>,
  durable = true,
): Promise<void> {
  const tmp = join(dirname(path), `.tmp-${randomBytes(6).toString('hex')}`);
  try {
    await fs.mkdir(tmp, { mode: 0o700 });
    for (const [name, f] of Object.entries(files)) {
      const h = await fs.open(join(tmp, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, f.mode);
      try {
        await h.writeFile(f.data);
        if (durable) await h.sync();
      } finally {
        await h.close();
      }
    }
    if (durable) await fsyncDir(tmp);
    await fs.rename(tmp, path);
    if (durable) await fsyncDir(dirname(path));
  } catch (cause) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw ioError(path, 'write', cause);
  }
}

export async function readText(path: string): Promise<string> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (cause) {
    throw ioError(path, 'read', cause);
  }
}

let fastTag: string | undefined;
let fastCount = 0;

/**
 * Atomic (never partial) but not durable, and synchronous: for regenerable output written
 * from a worker thread, where a threadpool round trip per call costs more than the write.
 */
export function atomicWriteSyncFast(path: string, data: Uint8Array, mode = 0o600): void {
  // A random tag drawn once per thread plus a counter: unique without a CSPRNG call per file,
  // and 'wx' refuses a name that exists anyway.
  const tmp = join(dirname(path), `.tmp-${(fastTag ??= randomBytes(6).toString('hex'))}-${(fastCount++).toString(36)}`);
  try {
    writeFileSync(tmp, data, { mode, flag: 'wx' });
    renameSync(tmp, path);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw ioError(path, 'write', cause);
  }
}
