/**
 * A node:http request handler that serves profiles behind one-time links:
 * `GET /p/TOKEN` shows a page, `GET /p/TOKEN/install` returns the freshly generated, signed
 * profile and uses the link up. Anything else is 404. Usable with http, https, or any
 * framework that passes IncomingMessage/ServerResponse.
 *
 * @module handler
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Signer } from '../cms/sign.js';
import { isProfilesmithError } from '../errors.js';
import { generateProfile } from '../profile/generate.js';
import { loadTemplate, type Template } from '../profile/template.js';
import type { CertificateStore } from '../store/store.js';
import { profileFileName } from '../batch/names.js';
import type { LinkBook } from './links.js';
import { installPage, messagePage } from './page.js';

/** Options of {@link createProfileHandler}. */
export interface ProfileHandlerOptions {
  store: CertificateStore;
  links: LinkBook;
  template: string | Template;
  data?: Record<string, unknown>;
  /** Default: the store's profile signer. */
  signer?: Signer;
  /** Requests per minute per client address. Default: 60. */
  rateLimit?: number;
  /** One line per request, without tokens. */
  log?: (line: string) => void;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/** What each payload type is, in words for the install page. */
const PAYLOAD_NAMES: Record<string, string> = {
  'com.apple.security.root': 'the certificate authority (root)',
  'com.apple.security.pkcs1': 'intermediate certificates',
  'com.apple.security.pkcs12': 'your S/MIME identities (signing and encryption)',
  'com.apple.security.scep': 'a signing key made on your device',
  'com.apple.eas.account': 'your Exchange mail account',
  'com.apple.mail.managed': 'your mail account',
};

const TOKEN_PATH = /^\/p\/([A-Za-z0-9_-]{22})(\/install)?$/;

/** Creates the handler. */
export function createProfileHandler(options: ProfileHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const template = typeof options.template === 'string' ? loadTemplate(options.template) : options.template;
  const limit = options.rateLimit ?? 60;
  const buckets = new Map<string, { count: number; reset: number }>();
  const signer = options.signer ? Promise.resolve(options.signer) : options.store.profileSigner();
  signer.catch(() => {});
  const payloadNames = (template.meta.payloads ?? []).map((p) => (Object.hasOwn(PAYLOAD_NAMES, p) ? PAYLOAD_NAMES[p] : undefined) ?? p);

  const send = (res: ServerResponse, status: number, body: string | Uint8Array, type = 'text/html; charset=utf-8', extra: Record<string, string> = {}) => {
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
      ...extra,
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string) => {
    const m = TOKEN_PATH.exec(path);
    if (!m || (req.method !== 'GET' && req.method !== 'HEAD')) return send(res, 404, messagePage('Not found', 'There is nothing here.'));
    const token = m[1] as string;
    const found = await options.links.peek(token);
    if (!found) return send(res, 404, messagePage('Link not found', 'This link is not valid. Ask your administrator for a new one.'));
    if (found.state !== 'valid') {
      return send(res, 410, messagePage('Link no longer valid', found.state === 'expired' ? 'This link has expired. Ask your administrator for a new one.' : 'This link has been used already. Ask your administrator for a new one.'));
    }
    if (!m[2]) {
      return send(res, 200, installPage({ organization: options.store.organization, user: found.link.user, payloads: payloadNames, installHref: `/p/${token}/install`, expires: found.link.expires }));
    }
    const profile = await generateProfile({ store: options.store, template, user: found.link.user, data: options.data ?? {}, signer: await signer, ...(options.now ? { now: options.now } : {}) });
    const spent = await options.links.consume(token);
    if (!('user' in spent)) return send(res, 410, messagePage('Link no longer valid', 'This link has been used already.'));
    send(res, 200, profile.bytes, 'application/x-apple-aspen-config', { 'Content-Disposition': `attachment; filename="${profileFileName(found.link.user)}"` });
  };

  return (req, res) => {
    const started = Date.now();
    const ip = req.socket.remoteAddress ?? '?';
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const logged = path.replace(/^\/p\/[^/]+/, '/p/<token>');
    res.on('finish', () => options.log?.(`${ip} ${req.method} ${logged} ${res.statusCode} ${Date.now() - started}ms`));
    const now = Date.now();
    const b = buckets.get(ip);
    if (!b || b.reset < now) buckets.set(ip, { count: 1, reset: now + 60_000 });
    else if (++b.count > limit) return send(res, 429, messagePage('Too many requests', 'Try again in a minute.'), undefined, { 'Retry-After': '60' });
    if (buckets.size > 10_000) for (const [k, v] of buckets) if (v.reset < now) buckets.delete(k);
    if (req.headers['content-length'] && req.headers['content-length'] !== '0') return send(res, 413, messagePage('Too large', 'Requests carry no body.'));
    handle(req, res, path).catch((err: unknown) => {
      options.log?.(`${ip} ${req.method} ${logged} error ${isProfilesmithError(err) ? err.code : 'ERR_INTERNAL'}`);
      if (!res.headersSent) send(res, isProfilesmithError(err) ? 404 : 500, messagePage('Cannot make the profile', 'Ask your administrator.'));
      else res.destroy();
    });
  };
}
