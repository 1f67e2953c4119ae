/**
 * No request stops a server: request targets that node:http passes and `new URL()` refuses
 * (absolute forms with bad hosts and ports, percent-encoding, very long targets, NUL and CR/LF),
 * sent over raw sockets to `serve`, `serve --scep`, `serve --tls-from-store`, `pki serve`, and
 * to each library handler inside the test's own node:http server; after each volley a normal
 * request must succeed. Also: an unexpected error is a 500 (or OCSP internalError) for that
 * request alone, and a link token never reaches the log, whatever form the path takes.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { join } from 'node:path';
import { createPkiHandler } from '../../src/pki/handler.js';
import { createScepHandler } from '../../src/scep/handler.js';
import { createProfileHandler } from '../../src/server/handler.js';
import { logSafe, redactPath, requestTarget } from '../../src/server/request-target.js';
import { aliceStoreIn, PASSPHRASE } from '../helpers/fixture.js';
import { hostileTargets, REPORTED } from '../helpers/hostile-targets.js';
import { BIN, cli, httpRequest, startServer } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

/** An OCSP response saying malformedRequest (RFC 6960 4.2.1): a correct answer to a bad OCSP GET. */
const OCSP_MALFORMED = '\x30\x03\x0a\x01\x01';

/**
 * One request over a raw socket, the target sent byte for byte (latin1): the status code of the
 * answer, or 0 when the server closed the connection without one (node does, for some targets).
 * An OCSP malformedRequest answer counts as 400: it is the protocol's own refusal.
 */
function raw(port: number, target: string, tls?: { ca: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls ? tlsConnect({ port, host: '127.0.0.1', ca: tls.ca, servername: 'localhost', rejectUnauthorized: false }) : netConnect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to ${JSON.stringify(target.slice(0, 60))}`)));
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write(Buffer.from(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`, 'latin1')));
    socket.on('data', (c: Buffer) => (data += c.toString('latin1')));
    const status = () => {
      const code = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      return code === 200 && /\r\ncontent-type: application\/ocsp-response\r\n/i.test(data) && data.endsWith(OCSP_MALFORMED) ? 400 : code;
    };
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve(status()) : reject(err)));
    socket.on('close', () => resolve(status()));
  });
}

/** Every hostile target, then a normal request: each answer is a 4xx (or a closed connection), never a 5xx, and the server lives. */
async function volley(t: ExecutionContext, port: number, normal: () => Promise<number>, tls?: { ca: string }) {
  const bad: string[] = [];
  for (const target of hostileTargets()) {
    const status = await raw(port, target, tls);
    if (status !== 0 && (status < 400 || status > 499)) bad.push(`${status} ${JSON.stringify(target.slice(0, 50))}`);
  }
  t.deepEqual(bad, [], 'a hostile target got an answer other than 4xx');
  // `//a:99999/ocsp` is an origin form (a path starting //): a 404, not a URL with a host.
  for (const target of REPORTED) t.is(await raw(port, target, tls), target.startsWith('//') ? 404 : 400, `the reported target ${target}`);
  t.is(await normal(), 200, 'a normal request succeeds afterwards');
}

const store = aliceStoreIn;

test('requestTarget reads origin and absolute forms and refuses what cannot be routed, never throwing', (t) => {
  t.deepEqual(requestTarget('/p/x?a=1#f')?.path, '/p/x');
  t.is(requestTarget('/p/x?a=1')?.query.get('a'), '1');
  t.is(requestTarget('http://example.com:8080/ocsp/AB?x=y')?.path, '/ocsp/AB');
  t.is(requestTarget('//a:99999/ocsp')?.path, '//a:99999/ocsp', 'an origin form starting // is a path, not a host');
  for (const target of REPORTED.filter((r) => !r.startsWith('//'))) t.is(requestTarget(target), undefined, target);
  for (const target of ['*', 'a:80', 'ftp://a/', '/a\x00', '/a\nb', '/' + 'a'.repeat(9000), '']) t.is(requestTarget(target), undefined, JSON.stringify(target.slice(0, 20)));
  for (const target of hostileTargets()) t.notThrows(() => requestTarget(target));
});

test('log fields are escaped and link tokens redacted in every path form', (t) => {
  t.is(logSafe('a\r\nb c\x1b\u202e'), 'a\\x0d\\x0ab\\x20c\\x1b\\u{202e}');
  t.is(logSafe('x'.repeat(200), 10), 'xxxxxxxxxx…');
  const token = 'Ab3_-Cd4Ef5Gh6Ij7Kl8Mn';
  for (const path of [`/p/${token}`, `//p/${token}`, `/p//${token}/install`, `/%70/${token}`, `/p/${token.slice(0, 5)}%${token.charCodeAt(5).toString(16)}${token.slice(6)}`, `/x/${token}`]) {
    const logged = redactPath(path);
    t.false(logged.includes(token), path);
    t.false(logged.includes(token.slice(0, 12)), path);
  }
});

test('serve --http (profiles, PKI routes, SCEP) answers every hostile target with a 4xx and keeps serving; the log keeps no token', async (t) => {
  const { storeDir } = await store(t);
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--scep', '--rate-limit', '100000'], env);
  const port = Number(new URL(server.base).port);
  const link = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env }).stdout.trim();
  const token = link.split('/p/')[1]!;
  await volley(t, port, async () => (await httpRequest(link)).status);
  for (const path of [`//p/${token}`, `/p//${token}`, `/%70/${token}`, `//p/${token}/install`]) t.true([400, 404, 405].includes(await raw(port, path)), path);
  t.is((await httpRequest(`${server.base}/scep?operation=GetCACaps`)).status, 200);
  t.is((await httpRequest(`${server.base}/ca/root.cer`)).status, 200);
  await server.logged(/GET \/ca\/root\.cer 200/);
  t.false(server.log().includes(token), 'no form of the path puts the token in the log');
  t.false(/\r|\x1b|X-Injected: 1\n/.test(server.log()), 'nothing from a target reaches the log unescaped');
  t.false(/\n\s+at /.test(server.log()), 'no stack trace');
  server.proc.kill('SIGTERM');
  t.is(await server.exited, 0, 'the server was alive to the end and stopped cleanly');
});

test('serve --tls-from-store answers every hostile target with a 4xx and keeps serving', async (t) => {
  const { storeDir } = await store(t);
  const ca = cli(['ca', 'export', '--store', storeDir]).stdout;
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-from-store', '--listen', '127.0.0.1:0', '--rate-limit', '100000'], env);
  const port = Number(new URL(server.base).port);
  await volley(t, port, async () => (await httpRequest(`${server.base}/ca/root.cer`, { ca })).status, { ca });
  t.is(server.proc.exitCode, null);
});

test('pki serve answers every hostile target with a 4xx and keeps serving', async (t) => {
  const { storeDir } = await store(t);
  const server = await startServer(t, [BIN, 'pki', 'serve', '--store', storeDir, '--listen', '127.0.0.1:0', '--rate-limit', '100000'], env);
  const port = Number(new URL(server.base).port);
  await volley(t, port, async () => (await httpRequest(`${server.base}/crl/issuing.crl`)).status);
  t.is(server.proc.exitCode, null);
});

/** A library handler in the test's own server: what a vendor embeds. */
async function embed(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('each library handler, embedded in a node:http server, answers every hostile target with a 4xx and keeps serving', async (t) => {
  const { store: s } = await store(t);
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  const profiles = createProfileHandler({ store: s, links: s.links, template: 'exchange-smime', data: { exchange: { host: 'mail.example.com' } }, rateLimit: 100_000, log });
  const pki = createPkiHandler({ store: s, rateLimit: 100_000, log });
  const scep = createScepHandler({ store: s, rateLimit: 100_000, log });
  const notFound = (res: ServerResponse) => res.writeHead(404).end();
  const link = await s.links.create('alice@example.com');
  const ports = {
    profiles: await embed(t, profiles),
    pki: await embed(t, (req, res) => void (pki(req, res) || notFound(res))),
    scep: await embed(t, (req, res) => void (scep(req, res) || notFound(res))),
  };
  await volley(t, ports.profiles, async () => (await httpRequest(`http://127.0.0.1:${ports.profiles}/p/${link.token}`)).status);
  await volley(t, ports.pki, async () => (await httpRequest(`http://127.0.0.1:${ports.pki}/ca/root.cer`)).status);
  await volley(t, ports.scep, async () => (await httpRequest(`http://127.0.0.1:${ports.scep}/scep?operation=GetCACaps`)).status);
  t.false(lines.some((l) => l.includes(link.token)), 'the token is never logged');
});

test('an unexpected error is answered for that request alone (500, or OCSP internalError), logged once, and the next request is served', async (t) => {
  const { store: s } = await store(t);
  const lines: string[] = [];
  let broken = true;
  const source = {
    caCertificates: () => s.caCertificates(),
    publishedCrl: (...a: Parameters<typeof s.publishedCrl>) => (broken ? Promise.reject(new TypeError('boom: not ours')) : s.publishedCrl(...a)),
    ocspResponder: (...a: Parameters<typeof s.ocspResponder>) => s.ocspResponder(...a),
    certificateStatus: (...a: Parameters<typeof s.certificateStatus>) => s.certificateStatus(...a),
  };
  const pki = createPkiHandler({ store: source, log: (l) => lines.push(l) });
  const port = await embed(t, (req, res) => void (pki(req, res) || res.writeHead(404).end()));
  const first = await httpRequest(`http://127.0.0.1:${port}/crl/issuing.crl`);
  t.is(first.status, 500);
  t.is(first.text(), 'Internal error\n');
  t.is(lines.filter((l) => l.includes('ERR_INTERNAL')).length, 1, lines.join('\n'));
  t.false(lines.join('\n').includes('boom'), 'an unexpected error message is not logged: it may carry anything');
  broken = false;
  t.is((await httpRequest(`http://127.0.0.1:${port}/crl/issuing.crl`)).status, 200);
});
