import { styleText } from 'node:util';
import { statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputInvalid } from '../errors.js';
import { atomicWrite } from '../store/fs-util.js';
import { ioWords } from './files.js';
import { UsageError } from './errors.js';
import type { Io } from './io.js';

export function printJson(io: Io, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function colour(io: Io, format: 'red' | 'yellow', text: string): string {
  const off = io.env.NO_COLOR !== undefined || io.env.NODE_DISABLE_COLORS !== undefined;
  if (!off && (io.stderr.isTTY || io.env.FORCE_COLOR)) return styleText(format, text);
  return text;
}

/** A note for people, on stderr. */
export function note(io: Io, text: string): void {
  io.stderr.write(text + '\n');
}

export function warn(io: Io, text: string): void {
  io.stderr.write(`${colour(io, 'yellow', 'warning:')} ${text}\n`);
}

export function errorLine(io: Io, text: string): void {
  const [first = '', ...rest] = text.split('\n');
  io.stderr.write([first.replace(/^error:/, colour(io, 'red', 'error:')), ...rest].join('\n') + '\n');
}

/** Columns padded to the widest cell. */
export function printTable(io: Io, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  io.stdout.write([line(header), ...rows.map(line)].join('\n') + '\n');
}

/**
 * Checks, before any work is done, that `out` can be written: not a directory, in a directory
 * that exists, and not an existing file unless `force`. `-` (stdout) always can.
 */
export function checkOutput(io: Io, out: string, force: boolean, flag = '-o'): void {
  if (out === '-') return;
  const path = resolve(io.cwd, out);
  let st: Stats | undefined;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new InputInvalid('out', `Cannot write "${out}": ${ioWords(err)}`);
  }
  if (st?.isDirectory()) throw new InputInvalid('out', `Cannot write "${out}": it is a directory; name a file`);
  if (st && !force) throw new InputInvalid('out', `"${out}" exists; pass --force to replace it (or choose another ${flag})`);
  if (!st) {
    try {
      if (!statSync(dirname(path)).isDirectory()) throw new InputInvalid('out', `Cannot write "${out}": "${dirname(out)}" is not a directory`);
    } catch (err) {
      if (err instanceof InputInvalid) throw err;
      throw new InputInvalid('out', `Cannot write "${out}": the directory "${dirname(out)}" ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : ioWords(err)}`);
    }
  }
}

/**
 * Writes an artifact atomically (never half a file); `-` means stdout, refused for binary
 * data on a terminal. An existing file is replaced only with `force`: without it the write
 * is a link(2), which fails if the file appeared since {@link checkOutput}.
 */
export async function writeArtifact(io: Io, out: string, bytes: Uint8Array, binary: boolean, mode = 0o600, force = false): Promise<string> {
  if (out === '-') {
    if (binary && io.stdout.isTTY) throw new UsageError('Refusing to write a binary profile to a terminal; use -o FILE');
    io.stdout.write(bytes);
    return 'stdout';
  }
  checkOutput(io, out, force);
  const path = resolve(io.cwd, out);
  try {
    await atomicWrite(path, bytes, mode, true, force);
  } catch (err) {
    const cause = (err as Error).cause ?? err;
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') throw new InputInvalid('out', `"${out}" exists; pass --force to replace it`);
    throw new InputInvalid('out', `Cannot write "${out}": ${ioWords(cause)}`);
  }
  return path;
}

/**
 * An AbortSignal that the first Ctrl-C (or SIGTERM) aborts, for a batch: it finishes the rows
 * in flight, records them and stops. `exitCode` is then 130 (SIGINT) or 143 (SIGTERM), as a
 * shell reports a process the signal ended.
 */
export function interruptSignal(io: Io): { signal: AbortSignal; exitCode: () => number | undefined } {
  const controller = new AbortController();
  let code: number | undefined;
  io.onTerminate?.((signal) => {
    code = signal === 'SIGTERM' ? 143 : 130;
    note(io, `\nStopping: finishing the rows in flight and writing the run record (${signal === 'SIGINT' ? 'Ctrl-C' : 'SIGTERM'} again stops at once)`);
    controller.abort();
  });
  return { signal: controller.signal, exitCode: () => code };
}

/**
 * Waits until the process is told to stop (SIGTERM, SIGINT), then stops taking connections
 * and finishes the requests in flight.
 */
export function serveUntilTerminated(io: Io, server: { close(cb: () => void): unknown; closeIdleConnections(): void }): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = () => {
      note(io, 'Stopping: no new connections; finishing the requests in flight');
      server.close(() => resolve());
      server.closeIdleConnections();
    };
    if (io.onTerminate) io.onTerminate(stop);
  });
}

/** A word for a command line the user may paste into a POSIX shell: as is when safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
