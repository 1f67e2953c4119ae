import { spawn, spawnSync, type ChildProcessWithoutNullStreams, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ExecutionContext } from 'ava';
import { request as httpRequestRaw } from 'node:http';
import { request as httpsRequest } from 'node:https';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'dist', 'cli', 'main.js');

function has(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0;
}
export const HAS_OPENSSL = has('openssl', ['version']);
export const HAS_PYTHON = has('python3', ['-c', 'import plistlib']);

/** Skips (saying why) when a tool the oracle needs is missing. Returns true to go on. */
export function need(t: ExecutionContext, tool: 'openssl' | 'python3'): boolean {
  const ok = tool === 'openssl' ? HAS_OPENSSL : HAS_PYTHON;
  if (!ok) {
    t.log(`SKIPPED: ${tool} is not installed, so this oracle cannot run`);
    t.pass();
  }
  return ok;
}

export function tmp(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-test-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the built CLI as a process. */
export function cli(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; input?: string | Buffer } = {},
): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...options.env },
    input: options.input ?? '',
    encoding: 'utf8',
    // A command that should exit but serves instead fails its test rather than hanging the suite.
    timeout: 120_000,
  });
}

export function openssl(args: string[], input?: Buffer | string): SpawnSyncReturns<Buffer> {
  return spawnSync('openssl', args, { input: input ?? '' });
}

export function python(code: string, input?: Buffer): SpawnSyncReturns<string> {
  return spawnSync('python3', ['-c', code], { input: input ?? '', encoding: 'utf8' });
}

/** Every file below `dir` with its bytes and mode, for byte-identical comparisons. */
export function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) {
        out[p + '/'] = (s.mode & 0o777).toString(8);
        walk(p);
      } else out[p] = `${(s.mode & 0o777).toString(8)}:${readFileSync(p).toString('base64')}`;
    }
  };
  walk(dir);
  return out;
}

export function pythonBytes(code: string, input?: Buffer): SpawnSyncReturns<Buffer> {
  return spawnSync('python3', ['-c', code], { input: input ?? '' });
}

/**
 * Starts a server process that prints its URL as the first line of stdout; killed at teardown.
 * Resolves with that URL and a view of its stderr; rejects (with stderr) if it exits first.
 */
export async function startServer(
  t: ExecutionContext,
  args: string[],
  env: Record<string, string>,
): Promise<{ base: string; proc: ChildProcessWithoutNullStreams; log: () => string; logged: (re: RegExp) => Promise<string>; exited: Promise<number | null> }> {
  const proc = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
  t.teardown(() => proc.kill('SIGKILL'));
  let log = '';
  proc.stderr.on('data', (c) => (log += c));
  /**
   * The server's log once it holds a line matching `re`: stderr arrives when it arrives (after
   * a synchronous client returns, say), so this waits for it, by event, not by a clock.
   */
  const logged = (re: RegExp) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        if (!re.test(log)) return false;
        proc.stderr.off('data', onData);
        proc.off('exit', onExit);
        resolve(log);
        return true;
      };
      const onData = () => setImmediate(check);
      const onExit = () => (check() ? undefined : reject(new Error(`the server exited before logging ${re}: ${log}`)));
      if (check()) return;
      proc.stderr.on('data', onData);
      proc.on('exit', onExit);
    });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const base = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    proc.on('exit', () => reject(new Error(`the server exited: ${log}`)));
  });
  return { base, proc, log: () => log, logged, exited };
}

/**
 * An HTTP(S) request on a connection of its own (no keep-alive pool), so that a test pausing
 * between requests never races the server closing an idle connection, as fetch's pool can.
 */
export function httpRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer | string; ca?: string } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; text: () => string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const lib = u.protocol === 'https:' ? httpsRequest : httpRequestRaw;
    const req = lib(u, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false, ...(options.ca ? { ca: options.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: () => body.toString('utf8') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
