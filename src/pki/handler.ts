/**
 * The PKI's HTTP routes, for `pki serve` and for `serve` to mount beside its own:
 * ```
 * GET  /crl/<ca>.crl       the CA's CRL, DER, application/pkix-crl, always current
 * GET  /ca/<ca>.cer        the CA's certificate, DER, application/pkix-cert
 * POST /ocsp               RFC 6960 (application/ocsp-request)
 * GET  /ocsp/<base64>      RFC 6960 appendix A.1 / RFC 5019 (cacheable)
 * ```
 * `<ca>` is `root`, `issuing`, `issuing-2`, ... Bad requests get a 4xx or an OCSP
 * malformedRequest; request size and rate per client address are bounded.
 *
 * @module pki-handler
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RevocationReason } from '../certs/crl.js';
import { parseCaSlug, type CaRef } from '../certs/publication.js';
import { isProfilesmithError } from '../errors.js';
import { clientAddress, TrustedProxies } from '../server/client.js';
import { answerBadTarget, logSafe, logText, requestTarget, safeDecode, guardHandler } from '../server/request-target.js';
import { WindowCounter } from '../server/window-counter.js';
import { buildOcspResponse, certIdMatcher, ocspErrorResponse, OcspMalformed, parseOcspRequest, type OcspAnswer } from './ocsp.js';

/** What the PKI routes need of a store (the file store has all of it). */
export interface PkiSource {
  /** The root and every issuing CA (DER), with the slug that names each in URLs. */
  caCertificates(): Promise<{ ca: CaRef; slug: string; certificate: Buffer }[]>;
  /** The CA's current CRL (DER), listing every revocation made so far; a new one is valid for `validityMs`. */
  publishedCrl(ca: CaRef, options?: { validityMs?: number }): Promise<Buffer>;
  /** The CA's delegated OCSP responder, issued or renewed as needed. */
  ocspResponder(ca: CaRef): Promise<{ certificate: Buffer; privateKey: import('node:crypto').KeyObject }>;
  /** The status of a serial among the certificates the CA issued. */
  certificateStatus(ca: CaRef, serial: string): Promise<SerialStatus>;
  /**
   * Optional: the statuses of several serials at once, in order, with the store's shared reads
   * (revocations, the CA's own certificates) done once. An OCSP request may name up to 16.
   */
  certificateStatuses?(ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]>;
}

/** What OCSP says of one serial. */
export type SerialStatus = { status: 'good' } | { status: 'revoked'; date: Date; reason: RevocationReason } | { status: 'unknown' };

/** The kinds of route, each with a rate limit of its own per client. */
export type PkiRoute = 'ocsp' | 'crl' | 'ca';

/** Options of {@link createPkiHandler}. */
export interface PkiHandlerOptions {
  store: PkiSource;
  /**
   * Requests per minute per client address, counted for each kind of route apart (OCSP, CRLs,
   * CA certificates), so a flood of one cannot starve revocation checking of another. A number
   * is the limit of every kind; an object sets kinds one by one. Default: 600 each.
   */
  rateLimit?: number | Partial<Record<PkiRoute, number>>;
  /**
   * Proxies (addresses or CIDR ranges) whose X-Forwarded-For / Forwarded headers are believed,
   * so that clients behind one reverse proxy are counted apart. Default: none.
   */
  trustProxy?: string[];
  /** One line per request (no secrets are in these requests). */
  log?: (line: string) => void;
  /**
   * How long a newly signed CRL is valid (nextUpdate); it is re-signed at half of that, or as
   * soon as a revocation comes in. Relying parties such as dirmngr keep a CRL until its
   * nextUpdate, so this is the longest they may miss a revocation. Default: 1 day.
   */
  crlValidityMs?: number;
  /** How long an OCSP answer is good for (nextUpdate). Default: 1 hour. */
  ocspValidityMs?: number;
  /** HTTP caches may keep a GET answer this long (RFC 5019 6.2). Default: 60 s. */
  ocspMaxAgeSeconds?: number;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/** The largest OCSP request body read; RFC 5019 requests are about 100 bytes. */
export const MAX_OCSP_REQUEST = 16 * 1024;

/** A handler that answers the PKI routes and returns false for any other path. */
export type PkiHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * True for the paths the PKI handler answers.
 * @example
 * isPkiPath('/crl/root.crl') // true
 * isPkiPath('/p/abc') // false
 */
export function isPkiPath(path: string): boolean {
  return path === '/ocsp' || path.startsWith('/ocsp/') || path.startsWith('/crl/') || path.startsWith('/ca/');
}

/**
 * Creates the PKI request handler.
 * @example
 * // GET /crl/<ca>.crl, GET /ca/<ca>.cer, POST /ocsp, GET /ocsp/<base64>; false for any other path
 * const pki = createPkiHandler({ store, log: console.error })
 * http.createServer((req, res) => {
 *   if (!pki(req, res)) res.writeHead(404).end()
 * }).listen(8080)
 */
export function createPkiHandler(options: PkiHandlerOptions): PkiHandler {
  const now = options.now ?? (() => new Date());
  const given = options.rateLimit ?? 600;
  const limits: Record<PkiRoute, number> = typeof given === 'number' ? { ocsp: given, crl: given, ca: given } : { ocsp: given.ocsp ?? 600, crl: given.crl ?? 600, ca: given.ca ?? 600 };
  const requests: Record<PkiRoute, WindowCounter> = { ocsp: new WindowCounter(60_000), crl: new WindowCounter(60_000), ca: new WindowCounter(60_000) };
  const trusted = new TrustedProxies(options.trustProxy ?? []);
  const validity = options.ocspValidityMs ?? 3_600_000;
  const maxAge = options.ocspMaxAgeSeconds ?? 60;
  const matcherCache = new WeakMap<Buffer, ReturnType<typeof certIdMatcher>>();

  const send = (res: ServerResponse, status: number, body: Buffer | string, type = 'text/plain; charset=utf-8', extra: Record<string, string> = {}) => {
    res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'X-Content-Type-Options': 'nosniff', ...extra });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };

  const answer = async (der: Buffer): Promise<{ body: Buffer; cacheable: boolean; thisUpdate?: Date; nextUpdate?: Date }> => {
    let request;
    try {
      request = parseOcspRequest(der);
    } catch (err) {
      if (err instanceof OcspMalformed) return { body: ocspErrorResponse('malformedRequest'), cacheable: false };
      throw err;
    }
    const cas = await options.store.caCertificates();
    // A CA's name and key hashes are worked out once per certificate, not once per request.
    const matchers = cas.map((c) => {
      let match = matcherCache.get(c.certificate);
      if (!match) matcherCache.set(c.certificate, (match = certIdMatcher(c.certificate)));
      return { ca: c, match };
    });
    // One response is signed by one CA's delegated responder: every CertID must name that CA.
    const owners = request.certIds.map((id) => matchers.find((m) => m.match(id))?.ca);
    const first = owners[0];
    if (!first || owners.some((o) => o !== first)) return { body: ocspErrorResponse('unauthorized'), cacheable: false };
    const serials = request.certIds.map((id) => id.serial);
    const statuses = options.store.certificateStatuses
      ? await options.store.certificateStatuses(first.ca, serials)
      : await Promise.all(serials.map((serial) => options.store.certificateStatus(first.ca, serial)));
    const answers: OcspAnswer[] = request.certIds.map((id, i) => {
      const s = statuses[i] ?? { status: 'unknown' as const };
      return s.status === 'revoked' ? { certId: id.raw, status: 'revoked', date: s.date, reason: s.reason } : { certId: id.raw, status: s.status };
    });
    const responder = await options.store.ocspResponder(first.ca);
    const thisUpdate = new Date(Math.floor(now().getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + validity);
    const body = buildOcspResponse({ responder, chain: [first.certificate], answers, thisUpdate, nextUpdate, ...(request.nonce ? { nonce: request.nonce } : {}) });
    return { body, cacheable: !request.nonce, thisUpdate, nextUpdate };
  };

  const sendOcsp = async (res: ServerResponse, der: Buffer, viaGet: boolean) => {
    const r = await answer(der);
    const headers: Record<string, string> = {};
    if (viaGet && r.cacheable && r.thisUpdate && r.nextUpdate) {
      const age = Math.max(0, Math.min(maxAge, Math.floor((r.nextUpdate.getTime() - now().getTime()) / 1000)));
      headers['Cache-Control'] = `max-age=${age}, public, no-transform, must-revalidate`;
      headers['Last-Modified'] = r.thisUpdate.toUTCString();
      headers['Expires'] = r.nextUpdate.toUTCString();
      headers['ETag'] = `"${createHash('sha1').update(r.body).digest('hex')}"`;
    } else {
      headers['Cache-Control'] = 'no-store';
    }
    send(res, 200, r.body, 'application/ocsp-response', headers);
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer | undefined>((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_OCSP_REQUEST) return resolve(undefined);
      const parts: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_OCSP_REQUEST) {
          req.removeAllListeners('data');
          req.resume();
          resolve(undefined);
        } else parts.push(c);
      });
      req.on('end', () => resolve(Buffer.concat(parts)));
      req.on('error', reject);
    });

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const method = req.method ?? 'GET';
    if (path === '/ocsp' && method === 'POST') {
      const body = await readBody(req);
      if (!body) return send(res, 413, 'The OCSP request is too large\n', undefined, { Connection: 'close' });
      return sendOcsp(res, body, false);
    }
    if (method !== 'GET' && method !== 'HEAD') return send(res, 405, 'Method not allowed\n', undefined, { Allow: path === '/ocsp' ? 'POST' : 'GET, HEAD' });
    if (path.startsWith('/ocsp/')) {
      const encoded = safeDecode(path.slice('/ocsp/'.length)) ?? '';
      if (encoded.length > MAX_OCSP_REQUEST * 2 || !/^[A-Za-z0-9+/_=-]+$/.test(encoded)) return send(res, 200, ocspErrorResponse('malformedRequest'), 'application/ocsp-response', { 'Cache-Control': 'no-store' });
      return sendOcsp(res, Buffer.from(encoded.replace(/-/g, '+').replace(/_/g, '/'), 'base64'), true);
    }
    const m = /^\/(crl|ca)\/([a-z0-9-]+)\.(crl|cer)$/.exec(path);
    const ca = m ? parseCaSlug(m[2]!) : undefined;
    if (!m || ca === undefined || (m[1] === 'crl') !== (m[3] === 'crl')) return send(res, 404, 'Not found\n');
    const known = (await options.store.caCertificates()).find((c) => c.ca === ca);
    if (!known) return send(res, 404, 'Not found\n');
    if (m[1] === 'ca') return send(res, 200, known.certificate, 'application/pkix-cert', { 'Cache-Control': 'public, max-age=86400' });
    const crl = await options.store.publishedCrl(ca, { validityMs: options.crlValidityMs ?? 86_400_000 });
    return send(res, 200, crl, 'application/pkix-crl', { 'Cache-Control': 'no-cache' });
  };

  const respond = (req: IncomingMessage, res: ServerResponse): boolean => {
    const target = requestTarget(req.url);
    if (!target) {
      // No handler can route a target that cannot be read: answered here, never a crash.
      answerBadTarget(req, res);
      return true;
    }
    const path = target.path;
    if (!isPkiPath(path)) return false;
    const started = Date.now();
    const ip = clientAddress(req, trusted);
    const logged = logSafe(path, 64);
    const method = logSafe(req.method ?? '-', 16);
    // One line per request; a failed one says why (the store's database unreachable, say).
    let failure = '';
    res.on('finish', () => options.log?.(`${ip} ${method} ${logged} ${res.statusCode} ${Date.now() - started}ms${failure}`));
    const t = now().getTime();
    const route: PkiRoute = path.startsWith('/ocsp') ? 'ocsp' : path.startsWith('/crl/') ? 'crl' : 'ca';
    if (requests[route].hit(ip, t) > limits[route]) {
      const reset = requests[route].peek(ip, t)?.reset ?? t + 60_000;
      req.resume();
      send(res, 429, 'Too many requests; try again in a minute\n', undefined, { 'Retry-After': String(Math.max(1, Math.ceil((reset - t) / 1000))) });
      return true;
    }
    handle(req, res, path).catch((err: unknown) => {
      failure = ` ${isProfilesmithError(err) ? `${err.code}: ${logText(err.message)}` : 'ERR_INTERNAL'}`;
      if (res.headersSent) {
        // A cut answer never finishes: its line is written here.
        options.log?.(`${ip} ${method} ${logged} cut${failure}`);
        return res.destroy();
      }
      if (path.startsWith('/ocsp')) send(res, 200, ocspErrorResponse('internalError'), 'application/ocsp-response', { 'Cache-Control': 'no-store' });
      // A store fault (its database unreachable, say) is the server's, and passes: 503, try again.
      else if (isProfilesmithError(err)) send(res, 503, 'The server cannot answer now; try again later\n', undefined, { 'Retry-After': '30' });
      else send(res, 500, 'Internal error\n');
    });
    return true;
  };

  return guardHandler(respond, options.log);
}
