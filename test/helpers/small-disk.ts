/**
 * A small disk of the test's own that can really be filled (issue 28): a tmpfs, which needs
 * root and mount(8). Without them `smallDisk` returns undefined and the caller skips, saying
 * why. tmpfs counts whole 4 KiB pages: a small file takes one, a directory none.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

export function smallDisk(t: ExecutionContext, size = '2m'): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const mnt = mkdtempSync(join(tmpdir(), 'profilesmith-disk-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', mnt]).status !== 0) {
    rmSync(mnt, { recursive: true, force: true });
    return undefined;
  }
  t.teardown(() => {
    spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/** Fills `disk` with a file `name` until only `leaveBytes` (whole pages) are free; returns its path. */
export function fill(disk: string, name: string, leaveBytes = 0): string {
  const { bavail, bsize } = statfsSync(disk);
  const path = join(disk, name);
  writeFileSync(path, Buffer.alloc(Math.max(0, bavail * bsize - leaveBytes)));
  return path;
}

export const SKIP_NO_DISK = 'SKIPPED: needs root and mount(8) for a tmpfs to fill';
