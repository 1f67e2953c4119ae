import type { KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputInvalid } from '../errors.js';
import { assertSecretFileMode } from '../util/secret-file.js';
import { UsageError } from './errors.js';
import type { Io } from './io.js';

const MiB = 1024 * 1024;

/** What a file-system error code means, in words. */
export function ioWords(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    default:
      return code ?? (err as Error)?.message ?? 'error';
  }
}

/** Reads an input file after checking it is a file under `max` bytes: a 50 MB mistake is refused before it is read. */
export async function readInputFile(io: Io, path: string, what: string, max = 16 * MiB): Promise<Buffer> {
  const full = resolve(io.cwd, path);
  try {
    const s = await stat(full);
    if (!s.isFile()) throw new InputInvalid(what, `"${path}" is not a file`);
    if (s.size > max) throw new InputInvalid(what, `"${path}" is larger than ${Math.round(max / MiB)} MiB; refusing to read it`);
    return await readFile(full);
  } catch (err) {
    if (err instanceof InputInvalid) throw err;
    throw new InputInvalid(what, `Cannot read "${path}": ${ioWords(err)}`);
  }
}

/**
 * Reads a secret from a file (or stdin for `-`), without its final line break. A file that
 * other users have any access to is refused (as ssh refuses such a key), before it is read.
 */
export async function readSecretFile(io: Io, path: string, what = 'passphrase'): Promise<string> {
  let text: string;
  try {
    if (path === '-') {
      const chunks: Buffer[] = [];
      for await (const c of io.stdin) chunks.push(Buffer.from(c as Buffer));
      text = Buffer.concat(chunks).toString('utf8');
    } else {
      const st = await stat(resolve(io.cwd, path)).catch(() => undefined);
      // A missing file or a folder is left to readInputFile, which says so.
      if (st?.isFile()) assertSecretFileMode(path, st.mode, what);
      text = (await readInputFile(io, path, what, MiB)).toString('utf8');
    }
  } catch (err) {
    if (err instanceof InputInvalid) throw new InputInvalid(what, err.message.replace(/^Cannot read /, `Cannot read the ${what} file `));
    throw new InputInvalid(what, `Cannot read the ${what} file "${path}": ${ioWords(err)}`);
  }
  return text.replace(/\r?\n$/, '');
}

/** Reads a JSON object of template data (at most 1 MiB). */
export async function readDataFile(io: Io, path: string): Promise<Record<string, unknown>> {
  const text = (await readInputFile(io, path, 'data', MiB)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new InputInvalid('data', `The data file "${path}" is not JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new InputInvalid('data', `The data file "${path}" must hold a JSON object`);
  return value as Record<string, unknown>;
}

/** A private key file (PEM, encrypted PEM with a password file, or DER PKCS#8). */
export async function readPrivateKeyFile(io: Io, path: string, option: string, passwordFile?: string): Promise<KeyObject> {
  const bytes = await readInputFile(io, path, option, 1024 * 1024);
  const password = passwordFile ? await readSecretFile(io, passwordFile, 'password') : undefined;
  // node:crypto loads here, not with this module: config and output read files through it too.
  const { createPrivateKey } = await import('node:crypto');
  try {
    const text = bytes.toString('latin1');
    return text.includes('-----BEGIN')
      ? createPrivateKey(password !== undefined ? { key: text, passphrase: password } : text)
      : createPrivateKey({ key: bytes, format: 'der', type: 'pkcs8' });
  } catch {
    throw new InputInvalid(option, `"${path}" is not a private key, or its password is wrong or missing`);
  }
}
