/**
 * Reading a request's target defensively, and writing what a request said into a log line
 * safely. node:http passes any request target its parser accepts: origin form (`/p/x?y`),
 * absolute form (`http://host/p/x`, which RFC 9112 3.2.2 says a server must accept), and
 * shapes `new URL()` refuses (`http://[/`, `//a:99999/ocsp`, `http://%zz/`). Nothing here
 * throws: a target that cannot be read is `undefined`, and the handler answers 400.
 *
 * @module request-target
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isProfilesmithError } from '../errors.js';

/** A request target as the handlers use it. */
export interface RequestTarget {
  /** The path, as sent (not percent-decoded, dot segments kept). */
  path: string;
  /** The query parameters. */
  query: URLSearchParams;
}

/** Longer targets are refused: no route of ours needs more (an RFC 5019 OCSP GET is ~150 bytes). */
export const MAX_TARGET_LENGTH = 8192;

const ABSOLUTE = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/**
 * The path and query of `req.url`, or undefined when the target is not one a handler can
 * answer (malformed absolute form, asterisk or authority form, control characters, too long).
 * @example
 * const target = requestTarget(req.url)
 * if (!target) return res.writeHead(400).end()
 */
export function requestTarget(raw: string | undefined): RequestTarget | undefined {
  if (raw === undefined || raw.length === 0 || raw.length > MAX_TARGET_LENGTH) return undefined;
  // Control characters (node's parser lets some through), spaces, DEL: never in a valid target.
  if (/[\x00-\x20\x7f]/.test(raw)) return undefined;
  let rest: string;
  if (raw.startsWith('/')) {
    rest = raw;
  } else if (ABSOLUTE.test(raw)) {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return undefined;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    rest = url.pathname + url.search;
  } else {
    return undefined;
  }
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const q = rest.indexOf('?');
  const path = q >= 0 ? rest.slice(0, q) : rest;
  return { path, query: new URLSearchParams(q >= 0 ? rest.slice(q + 1) : '') };
}

/** `decodeURIComponent` that answers undefined instead of throwing on `%zz`. */
export function safeDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/**
 * A value from a request made safe for a one-line log: every byte outside printable ASCII
 * (CR, LF, escape sequences, bidirectional controls) is written as `\xHH` or `\u{H}`, and the
 * result is cut at `max` characters. A forged log line cannot be injected through it.
 * @example
 * log(`${client} GET ${logSafe(path)} 404`)
 */
export function logSafe(value: string, max = 96): string {
  let out = '';
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    out += c >= 0x21 && c <= 0x7e && ch !== '\\' ? ch : c === 0x5c ? '\\\\' : c <= 0xff ? `\\x${c.toString(16).padStart(2, '0')}` : `\\u{${c.toString(16)}}`;
    if (out.length > max) return out.slice(0, max) + '…';
  }
  return out;
}

/**
 * A message for a log line: its first line, with control, line-separator and bidirectional
 * characters escaped (spaces kept), cut at `max` characters.
 * @example
 * log(`${client} GET /x 503 ${err.code}: ${logText(err.message)}`)
 */
export function logText(value: string, max = 300): string {
  const line = value.split('\n')[0] ?? '';
  const out = line.replace(/[\x00-\x1f\x7f\u0085\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
  return out.length > max ? out.slice(0, max) + '…' : out;
}

/**
 * A path for the log with anything that may be a one-time link token taken out, in every form
 * a client may send it (`/p/TOKEN`, `//p/TOKEN`, `/p/%54OKEN`, `/x/TOKEN`): any run of 16 or
 * more base64url characters, before and after percent-decoding.
 * @example
 * redactPath('//p/AAAAAAAAAAAAAAAAAAAAAA/install') // '//p/<token>/install'
 */
export function redactPath(path: string): string {
  const decoded = safeDecode(path) ?? path;
  return logSafe(decoded.replace(/[A-Za-z0-9_-]{16,}/g, '<token>'));
}

/**
 * The answer to a request that failed in a way nobody planned for: a 500 if nothing was sent
 * yet, else the connection is closed. Never throws, so one request cannot stop the server.
 */
export function answerInternalError(res: ServerResponse, body = 'Internal error\n'): void {
  try {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', Connection: 'close' });
    res.end(body);
  } catch {
    res.destroy();
  }
}

/**
 * `respond` with a last guard: whatever it throws synchronously costs this request only (a 500,
 * logged once with the error's code, never its message), never the server. Returns what
 * `respond` returned, or true (answered) after a fault.
 */
export function guardHandler(respond: (req: IncomingMessage, res: ServerResponse) => boolean, log?: (line: string) => void): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    try {
      return respond(req, res);
    } catch (err) {
      log?.(`${logSafe(req.socket.remoteAddress ?? '?')} ${logSafe(req.method ?? '-', 16)} error ${isProfilesmithError(err) ? err.code : 'ERR_INTERNAL'}`);
      answerInternalError(res);
      return true;
    }
  };
}

/** A 400 for a target {@link requestTarget} could not read. */
export function answerBadTarget(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', Connection: 'close' });
  res.end(req.method === 'HEAD' ? undefined : 'Bad request target\n');
}
