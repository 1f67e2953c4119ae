/**
 * SCEP over node:http: `createScepHandler` serves {@link createScepService} at one path, with
 * a body limit, a rate limit and a limit on failed enrolments per client address.
 *
 * @module scep-handler
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientAddress, TrustedProxies } from '../server/client.js';
import { answerBadTarget, requestTarget, guardHandler } from '../server/request-target.js';
import { WindowCounter } from '../server/window-counter.js';
import { createScepService, MAX_SCEP_MESSAGE, type ScepServiceOptions } from './service.js';

/** Options of {@link createScepHandler}. */
export interface ScepHandlerOptions extends ScepServiceOptions {
  /** The path served. Default: `/scep`. */
  path?: string;
  /** Requests per minute per client address. Default: 120. */
  rateLimit?: number;
  /** Failed enrolments (a bad challenge, say) a client may make in 10 minutes before it must wait. Default: 20. */
  failureLimit?: number;
  /** Proxies whose X-Forwarded-For / Forwarded headers are believed. */
  trustProxy?: string[];
}

/**
 * A node:http handler for SCEP at `path`: returns false (and does nothing) for other paths,
 * so it mounts beside other handlers, as `serve --scep` does.
 * @example
 * const scep = createScepHandler({ store, log: console.error })
 * http.createServer((req, res) => {
 *   if (!scep(req, res)) res.writeHead(404).end()
 * }).listen(8080)
 */
export function createScepHandler(options: ScepHandlerOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const path = options.path ?? '/scep';
  const now = options.now ?? (() => new Date());
  const requests = new WindowCounter(60_000);
  const failures = new WindowCounter(10 * 60_000);
  const trusted = new TrustedProxies(options.trustProxy ?? []);
  const limit = options.rateLimit ?? 120;
  const failureLimit = options.failureLimit ?? 20;
  const service = createScepService(options);
  const respond = (req: IncomingMessage, res: ServerResponse): boolean => {
    const target = requestTarget(req.url);
    if (!target) {
      answerBadTarget(req, res);
      return true;
    }
    const query = target.query;
    if (target.path !== path && target.path !== `${path}/pkiclient.exe`) return false;
    const who = clientAddress(req, trusted);
    const t = now().getTime();
    const send = (status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', ...extra });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (requests.hit(who, t) > limit || (failures.peek(who, t)?.count ?? 0) >= failureLimit) {
      const until = Math.max(requests.peek(who, t)?.reset ?? t, failures.peek(who, t)?.reset ?? t);
      send(429, 'text/plain; charset=utf-8', 'Too many requests\n', { 'Retry-After': String(Math.max(1, Math.ceil((until - t) / 1000))) });
      return true;
    }
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'POST' && method !== 'HEAD') {
      send(405, 'text/plain; charset=utf-8', 'GET or POST\n', { Allow: 'GET, HEAD, POST' });
      return true;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_SCEP_MESSAGE * 2 || (query.get('message')?.length ?? 0) > MAX_SCEP_MESSAGE * 2) {
      req.resume();
      send(413, 'text/plain; charset=utf-8', 'The PKIMessage is too large\n', { Connection: 'close' });
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_SCEP_MESSAGE * 2) {
        over = true;
        req.destroy();
      } else if (!over) chunks.push(c);
    });
    req.on('error', () => {});
    req.on('end', () => {
      if (over) return;
      service({ method: method === 'HEAD' ? 'GET' : method, operation: query.get('operation') ?? undefined, message: query.get('message') ?? undefined, body: Buffer.concat(chunks), client: who })
        .then((r) => {
          // A FAILURE, and any request refused as unreadable or malformed, counts toward the limit.
          if (r.failInfo || (r.status >= 400 && r.status < 500)) failures.hit(who, now().getTime());
          send(r.status, r.contentType, r.body);
        })
        .catch(() => {
          if (!res.headersSent) send(500, 'text/plain; charset=utf-8', 'The SCEP server cannot answer now\n');
        });
    });
    return true;
  };
  return guardHandler(respond, options.log);
}
