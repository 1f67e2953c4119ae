/**
 * A node:http request handler that serves profiles behind one-time links, under a base path
 * (default: the server's root):
 * ```
 * GET  <base>/p/TOKEN          the page: step 1 the trust profile, step 2 the account profile
 * GET  <base>/p/TOKEN/trust    the trust profile (the store's root and issuing CAs); never uses the link up
 * POST <base>/p/TOKEN/install  the freshly generated, signed account profile; uses the link up
 * ```
 * Only the POST of the page's form uses a link: mail security gateways and link scanners
 * fetch every URL in a message with HEAD and GET before the user clicks, and such fetches
 * must not spend it. Usable with http, https, or any framework that passes
 * IncomingMessage/ServerResponse.
 *
 * @module handler
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Signer } from '../cms/sign.js';
import { InputInvalid, isProfilesmithError, TemplateDataError } from '../errors.js';
import { generateProfile } from '../profile/generate.js';
import { loadTemplate, resolveData, unknownDataKeys, type Template, type TemplateRef } from '../profile/template.js';
import type { CertificateStore } from '../store/store.js';
import { clientAddress, TrustedProxies } from './client.js';
import { WindowCounter } from './window-counter.js';
import type { LinkStore } from './links.js';
import { installPage, messagePage } from './page.js';
import { answerBadTarget, logSafe, logText, redactPath, requestTarget, guardHandler } from './request-target.js';

/** Options of {@link createProfileHandler}. */
export interface ProfileHandlerOptions {
  /** The store the profiles' identities and the trust profile come from. */
  store: CertificateStore;
  /** The one-time links (a store's `links`, or {@link MemoryLinks}). */
  links: LinkStore;
  /** The template of the account profile. */
  template: TemplateRef | Template;
  /**
   * The template's variables, the same for every user (`{ exchange: { host } }`). Checked when
   * the handler is created, as a profile for a sample user would be: a missing or mistyped
   * variable, or a key the template does not declare, throws ERR_TEMPLATE_DATA naming it.
   */
  data?: Record<string, unknown>;
  /**
   * Where the routes live: `/enroll` serves `/enroll/p/TOKEN`, and the page's links and form
   * point there. Starts with `/`, no trailing `/`. Default: `''` (the server's root).
   */
  basePath?: string;
  /**
   * A request outside `<basePath>/p/`: `'not-found'` answers 404 (the handler is the whole
   * server); `'pass'` answers nothing and returns false, so the caller answers it (another
   * handler, its own 404). Default: `'not-found'`.
   */
  otherPaths?: 'not-found' | 'pass';
  /** Default: the store's profile signer. */
  signer?: Signer;
  /** Requests per minute per client address, of any kind: a bound on floods. Default: 600. */
  rateLimit?: number;
  /**
   * Unknown links a client may try in 10 minutes before every link request from it gets 429
   * (guessing tokens is the attack; successful installs are not counted). Default: 20.
   */
  guessLimit?: number;
  /** Proxies (addresses or CIDR ranges) whose X-Forwarded-For / Forwarded headers are believed. Default: none. */
  trustProxy?: string[];
  /**
   * Show the trust-profile step (install the store's root first, so the account profile shows
   * "Verified"). Default: true. Leave it out when the signer chains to a root devices already trust.
   */
  trustStep?: boolean;
  /**
   * Tell the user to switch on full TLS trust for the root, with this reason shown (only when
   * the profile's own servers use TLS certificates from this CA). Default: no such step.
   */
  tlsTrustReason?: string;
  /** One line per request, without tokens. */
  log?: (line: string) => void;
  /**
   * What the admin should do about a request that failed, appended to its log line after
   * "next:" (the CLI passes its advice by error code). Default: nothing appended.
   */
  advise?: (err: unknown) => string | undefined;
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

const TOKEN_PATH = /^\/p\/([A-Za-z0-9_-]{22})(\/install|\/trust)?$/;
/** The stand-ins a sample render uses for what is only known per request. */
const SAMPLE_USER = { email: 'sample.user@example.com', name: 'Sample User' };

/** `''`, or `/a/b` without a trailing slash; anything else is refused. */
function checkBasePath(basePath: string | undefined): string {
  const base = basePath ?? '';
  if (base === '' || /^(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)+$/.test(base)) return base;
  throw new InputInvalid('basePath', `basePath must be empty or start with "/" and not end with "/" (like "/enroll"), got ${JSON.stringify(base)}`);
}

/**
 * The template data as a profile for a sample user would resolve it: every declared variable
 * present and of its type, and no key the template does not declare (a typo).
 * @throws ERR_TEMPLATE_DATA naming the variable
 */
function checkTemplateData(template: Template, data: Record<string, unknown>, store: CertificateStore): void {
  const unknown = unknownDataKeys(template, data);
  if (unknown.length) {
    const names = Object.keys(template.meta.variables).join(', ');
    throw new TemplateDataError(template.name, unknown[0]!, `is not a variable of the template (a typo?); it has: ${names}`);
  }
  const scepUrl = (store as { scepUrl?: unknown }).scepUrl;
  resolveData(template, data, {
    user: SAMPLE_USER,
    // The SCEP URL may be recorded after the server listens, and a challenge is minted per user.
    store: { organization: store.organization, scepUrl: typeof scepUrl === 'string' ? scepUrl : 'https://sample.invalid/scep', scepChallenge: 'sample-challenge' },
  });
}
const GUESS_WINDOW_MS = 10 * 60_000;

/** A handler made by {@link createProfileHandler}: true when it answered the request. */
export type ProfileHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * Creates a node:http handler that serves profiles behind one-time links
 * ({@link LinkStore.create} makes them; send users `https://host<basePath>/p/TOKEN`):
 *
 * | route | answer |
 * |---|---|
 * | `GET <basePath>/p/TOKEN` | the install page: step 1 the trust profile, step 2 the account profile |
 * | `GET <basePath>/p/TOKEN/trust` | the trust profile (the store's root and issuing CAs), signed; never uses the link |
 * | `POST <basePath>/p/TOKEN/install` | the account profile, generated and signed for the link's user; uses the link |
 * | `HEAD` of the GET routes | their headers |
 * | an unknown, expired or used link | 404, 410 |
 * | too many requests, or too many unknown links, from one client | 429 with `Retry-After` |
 * | any other path | 404, or nothing and `false` with `otherPaths: 'pass'` |
 *
 * Link scanners that GET every URL in a mail do not spend a link: only the page's POST does.
 * A store fault while answering is a 503, and the `log` line names the error code and message.
 * @returns a handler that returns true when it answered the request, false when it left it to the caller
 * @throws ERR_TEMPLATE_DATA when `data` lacks a required variable, holds one of the wrong type,
 *   or names a key the template does not declare (the error's `variable` names it);
 *   ERR_TEMPLATE_* when the template cannot be loaded; ERR_INPUT_INVALID for a bad `basePath` or `trustProxy`
 * @example
 * import { createServer } from 'node:http'
 * import { createProfileHandler, openStore } from 'profilesmith'
 *
 * const store = await openStore('./store', { passphrase: process.env.STORE_PASSPHRASE! })
 * const profiles = createProfileHandler({
 *   store,
 *   links: store.links,
 *   template: 'exchange-smime',
 *   data: { exchange: { host: 'mail.example.com' } },
 *   basePath: '/enroll',
 *   otherPaths: 'pass',
 *   log: console.error,
 * })
 * const { token } = await store.links.create('alice@example.com')
 * console.log(`send alice: https://profiles.example.com/enroll/p/${token}`)
 * createServer((req, res) => {
 *   if (!profiles(req, res)) res.writeHead(404).end()
 * }).listen(8080)
 */
export function createProfileHandler(options: ProfileHandlerOptions): ProfileHandler {
  const template = loadTemplate(options.template);
  const base = checkBasePath(options.basePath);
  const pass = options.otherPaths === 'pass';
  if (options.otherPaths !== undefined && options.otherPaths !== 'pass' && options.otherPaths !== 'not-found') {
    throw new InputInvalid('otherPaths', `otherPaths is 'not-found' or 'pass', got ${JSON.stringify(options.otherPaths)}`);
  }
  checkTemplateData(template, options.data ?? {}, options.store);
  const limit = options.rateLimit ?? 600;
  const guessLimit = options.guessLimit ?? 20;
  const trusted = new TrustedProxies(options.trustProxy ?? []);
  const requests = new WindowCounter(60_000);
  const guesses = new WindowCounter(GUESS_WINDOW_MS);
  // Rate windows and the trust profile's age follow the injected clock, as profiles do.
  const clock = () => (options.now ?? (() => new Date()))().getTime();
  const signer = options.signer ? Promise.resolve(options.signer) : options.store.profileSigner();
  signer.catch(() => {});
  const payloadNames = (template.meta.payloads ?? []).map((p) => (Object.hasOwn(PAYLOAD_NAMES, p) ? PAYLOAD_NAMES[p] : undefined) ?? p);
  let trustProfile: { bytes: Uint8Array; fileName: string; made: number } | undefined;

  const send = (res: ServerResponse, status: number, body: string | Uint8Array, type = 'text/html; charset=utf-8', extra: Record<string, string> = {}) => {
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
      ...extra,
    });
    res.end(res.req.method === 'HEAD' ? undefined : body);
  };
  const retryPage = (res: ServerResponse, until: number, t: number) => {
    const minutes = Math.max(1, Math.ceil((until - t) / 60_000));
    send(res, 429, messagePage('Please wait a little', `Too many requests came from your network. Try the link again in ${minutes} minute${minutes === 1 ? '' : 's'}.`), undefined, { 'Retry-After': String(Math.ceil((until - t) / 1000)) });
  };

  /** The trust profile (root and issuing CAs), made once a minute at most: it is the same for everyone. */
  const trust = async (): Promise<{ bytes: Uint8Array; fileName: string }> => {
    const t = clock();
    if (trustProfile && t - trustProfile.made < 60_000) return trustProfile;
    // The organization and the identifiers' namespace are the account profile's, so the two read as one set.
    const shared = Object.fromEntries(Object.entries(options.data ?? {}).filter(([k]) => k === 'organization' || k === 'identifierPrefix'));
    const p = await generateProfile({ store: options.store, template: 'root-ca', data: shared, signer: await signer, ...(options.now ? { now: options.now } : {}) });
    trustProfile = { bytes: p.bytes, fileName: p.fileName, made: t };
    return trustProfile;
  };

  /** The path below the base path (`/p/…`), or undefined for a path outside it. */
  const below = (path: string): string | undefined => (base === '' ? path : path.startsWith(`${base}/`) ? path.slice(base.length) : undefined);
  /** The handler's own paths: everything under `<base>/p/`. */
  const owns = (path: string): boolean => {
    const rel = below(path);
    return rel !== undefined && (rel === '/p' || rel.startsWith('/p/'));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string, client: string) => {
    const method = req.method ?? 'GET';
    const m = TOKEN_PATH.exec(below(path) ?? '');
    if (!m) return send(res, 404, messagePage('Not found', 'There is nothing here.'));
    const token = m[1] as string;
    const step = m[2];
    const post = method === 'POST';
    if (!post && method !== 'GET' && method !== 'HEAD') return send(res, 405, messagePage('Not allowed', 'Open the link in Safari.'), undefined, { Allow: step === '/install' ? 'GET, HEAD, POST' : 'GET, HEAD' });
    if (post && step !== '/install') return send(res, 405, messagePage('Not allowed', 'Open the link in Safari.'), undefined, { Allow: 'GET, HEAD' });
    const found = await options.links.peek(token);
    if (!found) {
      guesses.hit(client, clock());
      return send(res, 404, messagePage('Link not found', 'This link is not valid. Ask your administrator for a new one.'));
    }
    if (found.state !== 'valid') {
      return send(res, 410, messagePage('Link no longer valid', found.state === 'expired' ? 'This link has expired. Ask your administrator for a new one.' : 'This link has been used already. Ask your administrator for a new one.'));
    }
    if (step === '/trust') {
      const { bytes, fileName } = await trust();
      return send(res, 200, bytes, 'application/x-apple-aspen-config', { 'Content-Disposition': `attachment; filename="${fileName}"` });
    }
    if (!post) {
      return send(res, 200, installPage({
        organization: options.store.organization,
        user: found.link.user,
        payloads: payloadNames,
        installAction: `${base}/p/${token}/install`,
        ...(options.trustStep === false ? {} : { trustHref: `${base}/p/${token}/trust` }),
        ...(options.tlsTrustReason ? { tlsTrustReason: options.tlsTrustReason } : {}),
        expires: found.link.expires,
        usesLeft: found.link.usesLeft,
      }));
    }
    // A form POST: only a user's tap on the page makes one. Its body (if any) is not needed.
    req.resume();
    const profile = await generateProfile({ store: options.store, template, user: found.link.user, data: options.data ?? {}, signer: await signer, ...(options.now ? { now: options.now } : {}) });
    const spent = await options.links.consume(token);
    if (!('user' in spent)) return send(res, 410, messagePage('Link no longer valid', 'This link has been used already.'));
    send(res, 200, profile.bytes, 'application/x-apple-aspen-config', { 'Content-Disposition': `attachment; filename="${profile.fileName}"` });
  };

  const respond = (req: IncomingMessage, res: ServerResponse): boolean => {
    const started = Date.now();
    const target = requestTarget(req.url);
    // Another handler's path: not counted, not logged, not answered.
    if (pass && target && !owns(target.path)) return false;
    const client = clientAddress(req, trusted);
    const logged = target ? redactPath(target.path) : '<bad target>';
    const method = logSafe(req.method ?? '-', 16);
    // One line per request; a failed one says why (the store's database unreachable, say).
    let failure = '';
    res.on('finish', () => options.log?.(`${client} ${method} ${logged} ${res.statusCode} ${Date.now() - started}ms${failure}`));
    if (!target) {
      answerBadTarget(req, res);
      return true;
    }
    const path = target.path;
    const t = clock();
    if (requests.hit(client, t) > limit) {
      retryPage(res, requests.peek(client, t)!.reset, t);
      return true;
    }
    const g = guesses.peek(client, t);
    // Past the guess limit every link request from the client waits: answering valid ones would tell guesses apart.
    if (g && g.count >= guessLimit && owns(path)) {
      retryPage(res, g.reset, t);
      return true;
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > 4096 || (req.headers['transfer-encoding'] && req.method !== 'POST')) {
      send(res, 413, messagePage('Too large', 'Requests carry no body.'));
      return true;
    }
    handle(req, res, path, client).catch((err: unknown) => {
      const advice = isProfilesmithError(err) ? options.advise?.(err) : undefined;
      failure = ` ${isProfilesmithError(err) ? `${err.code}: ${logText(err.message)}` : 'ERR_INTERNAL'}${advice ? `; next: ${logText(advice)}` : ''}`;
      if (!res.headersSent) send(res, isProfilesmithError(err) ? 503 : 500, messagePage('Cannot make the profile', 'Ask your administrator.'));
      else {
        // A cut answer never finishes: its line is written here.
        options.log?.(`${client} ${method} ${logged} cut${failure}`);
        res.destroy();
      }
    });
    return true;
  };

  return guardHandler(respond, options.log);
}
