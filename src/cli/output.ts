import { styleText } from 'node:util';
import { resolve } from 'node:path';
import { atomicWrite } from '../store/fs-util.js';
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

/** Writes an artifact atomically; `-` means stdout, refused for binary data on a terminal. */
export async function writeArtifact(io: Io, out: string, bytes: Uint8Array, binary: boolean, mode = 0o600): Promise<string> {
  if (out === '-') {
    if (binary && io.stdout.isTTY) throw new UsageError('Refusing to write a binary profile to a terminal; use -o FILE');
    io.stdout.write(bytes);
    return 'stdout';
  }
  const path = resolve(io.cwd, out);
  await atomicWrite(path, bytes, mode);
  return path;
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
