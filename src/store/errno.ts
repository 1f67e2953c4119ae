// Errno codes in words, apart from fs-util.ts (which loads node:crypto for its temporary names)
// so that the CLI's error messages can use them without loading it.

/** Errnos of a disk that has no room left: every later write fails the same way. */
const FULL: Record<string, string> = { ENOSPC: 'no space left on the disk', EDQUOT: 'the disk quota is used up' };

/** An errno code in words where a person needs them (a full disk), else the code alone. */
export function errnoWords(code: string): string {
  return FULL[code] ? `${FULL[code]} (${code})` : code;
}

/** True when `err`, or an error it wraps, is a write that failed because the disk or the quota is full. */
export function isDiskFull(err: unknown): boolean {
  for (let e = err; e instanceof Error; e = e.cause) if (FULL[(e as NodeJS.ErrnoException).code ?? '']) return true;
  return false;
}
