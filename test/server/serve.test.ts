import test from 'ava';
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyProfile } from '../../src/cms/verify.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, httpRequest, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

interface Server {
  base: string;
  proc: ChildProcessWithoutNullStreams;
  log: () => string;
  /** The log once it holds a line matching the expression (waited for by event). */
  logged: (re: RegExp) => Promise<string>;
  exited: Promise<number | null>;
}

function serve(t: import('ava').ExecutionContext, storeDir: string, extra: string[] = []): Promise<Server> {
  return startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-from-store', '--port', '0', ...extra], env);
}

function get(url: string, ca: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, agent: false, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end(method === 'POST' ? '' : undefined);
  });
}

/** What tapping Install does: the page's form, posted. */
const install = (url: string, ca: string, headers: Record<string, string> = {}) => get(`${url}/install`, ca, 'POST', { 'content-type': 'application/x-www-form-urlencoded', ...headers });

async function setup(t: import('ava').ExecutionContext, extra: string[] = []) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const ca = cli(['ca', 'export', '--store', storeDir]).stdout;
  const server = await serve(t, storeDir, extra);
  const link = (uses = 1) => cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--uses', String(uses), '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env }).stdout.trim();
  return { dir, storeDir, store, ca, server, link };
}

test('a link shows a page; HEAD, GET and the trust profile never use it up; the form POST returns the signed profile once; then 410', async (t) => {
  const { ca, server, link, store } = await setup(t);
  const url = link();
  const token = url.split('/p/')[1]!;
  const page = await get(url, ca);
  t.is(page.status, 200);
  const html = page.body.toString();
  t.regex(html, /Example Corp: mail settings for alice@example\.com/);
  t.true(html.includes(`<form method="post" action="/p/${token}/install">`));
  t.true(html.includes(`href="/p/${token}/trust"`));
  t.regex(html, /Step 1: trust Example Corp/);
  t.regex(html, /Profile Downloaded/);
  t.regex(html, /VPN &amp; Device Management/, 'how to remove it');
  t.notRegex(html, /Certificate Trust Settings/, 'no TLS trust step unless asked for');
  t.regex(html, /<li>the certificate authority \(root\)<\/li><li>intermediate certificates<\/li><li>your S\/MIME identities \(signing and encryption\)<\/li><li>your Exchange mail account<\/li>/);
  t.notRegex(html, /https?:\/\/(?!www\.w3)/, 'no external assets');
  // What a mail scanner does: HEAD and GET of every URL, OPTIONS; none of it spends the link.
  for (const [path, method] of [['', 'HEAD'], ['/install', 'GET'], ['/install', 'HEAD'], ['/install', 'OPTIONS'], ['/trust', 'GET'], ['/trust', 'HEAD'], ['', 'GET']] as const) {
    const r = await get(`${url}${path}`, ca, method);
    t.true([200, 405].includes(r.status), `${method} ${path}: ${r.status}`);
  }
  const trust = await get(`${url}/trust`, ca);
  t.is(trust.headers['content-type'], 'application/x-apple-aspen-config');
  t.true((await verifyProfile(trust.body, { ca: (await store.trustChain()).roots })).valid);
  const dl = await install(url, ca);
  t.is(dl.status, 200);
  t.is(dl.headers['content-type'], 'application/x-apple-aspen-config');
  t.is(dl.headers['content-disposition'], 'attachment; filename="alice@example.com.mobileconfig"');
  const v = await verifyProfile(dl.body, { ca: (await store.trustChain()).roots });
  t.true(v.valid, JSON.stringify(v.reasons));
  t.is((await install(url, ca)).status, 410);
  t.is((await get(url, ca)).status, 410);
  t.is((await get(`${url}/trust`, ca)).status, 410);
  t.is((await get(`${server.base}/p/AAAAAAAAAAAAAAAAAAAAAA`, ca)).status, 404);
  t.is((await get(`${server.base}/../../store/store.json`, ca)).status, 404);
  t.is((await get(`${server.base}/`, ca)).status, 404);
  // The log travels over a pipe and may trail the answers: wait for its line (by event).
  t.false((await server.logged(/POST \/p\/<token>\/install 200/)).includes(token), 'the access log never holds the token');
});

test('100 downloads at once all succeed and verify; SIGTERM finishes the requests in flight and exits', async (t) => {
  const { ca, server, link, store } = await setup(t);
  const url = link(100);
  const results = await Promise.all(Array.from({ length: 100 }, () => install(url, ca)));
  t.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  const roots = (await store.trustChain()).roots;
  for (const r of results) t.true((await verifyProfile(r.body, { ca: roots })).valid);
  t.is((await install(url, ca)).status, 410, 'the 101st is refused');
  // A request the server is handling when SIGTERM comes, by construction rather than by a
  // pause: with Expect: 100-continue the server answers "100 Continue" once it has the request,
  // and only then is the signal sent (and the request finished).
  const last = new URL(`${link()}/install`);
  const inFlight = new Promise<number>((resolve, reject) => {
    const req = request(last, { method: 'POST', ca, agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': '0', expect: '100-continue' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.on('continue', () => {
      server.proc.kill('SIGTERM');
      req.end();
    });
    req.flushHeaders();
  });
  t.is(await inFlight, 200);
  t.is(await server.exited, 0);
});

test('per-address rate limit answers 429', async (t) => {
  const { ca, server } = await setup(t, ['--rate-limit', '3']);
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await get(`${server.base}/x`, ca)).status);
  t.deepEqual(statuses, [404, 404, 404, 429, 429]);
});

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((c) => spawnSync(c, ['--version']).status === 0);

test('headless Chromium follows the trust step, then the account step; the account profile verifies in openssl; a crawler of every href and form action leaves the link usable', async (t) => {
  if (!CHROMIUM) {
    t.log('SKIPPED: Chromium is not installed (Debian package chromium; .ci/run installs it)');
    t.pass();
    return;
  }
  const { server, link, dir, ca } = await setup(t);
  writeFileSync(join(dir, 'root.pem'), ca);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.teardown(() => browser.close());
  const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true });
  const page = await context.newPage();
  const url = link();
  await page.goto(url);
  t.regex(await page.textContent('h1') ?? '', /Example Corp: mail settings for alice@example\.com/);
  const order: string[] = [];
  for (const [id, file] of [['#trust', 'trust.mobileconfig'], ['#install', 'account.mobileconfig']] as const) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.click(id)]);
    await download.saveAs(join(dir, file));
    order.push(file);
  }
  t.deepEqual(order, ['trust.mobileconfig', 'account.mobileconfig']);
  for (const f of ['trust.mobileconfig', 'account.mobileconfig']) {
    const r = spawnSync('openssl', ['cms', '-verify', '-inform', 'DER', '-in', join(dir, f), '-CAfile', join(dir, 'root.pem'), '-out', join(dir, `${f}.xml`)], { encoding: 'utf8' });
    t.is(r.status, 0, `${f}: ${r.stderr}`);
  }
  const { readFileSync } = await import('node:fs');
  t.regex(readFileSync(join(dir, 'trust.mobileconfig.xml'), 'utf8'), /com\.apple\.security\.root/);
  t.notRegex(readFileSync(join(dir, 'trust.mobileconfig.xml'), 'utf8'), /com\.apple\.security\.pkcs12/, 'the trust profile holds no identity');
  t.regex(readFileSync(join(dir, 'account.mobileconfig.xml'), 'utf8'), /com\.apple\.eas\.account/);
  t.is((await get(url, ca)).status, 410, 'the account step used the link');

  // A link scanner: every href and form action of the page, with HEAD and GET.
  const second = link();
  const html = (await get(second, ca)).body.toString();
  const targets = [...html.matchAll(/(?:href|action)="([^"]+)"/g)].map((m) => new URL(m[1]!, second).href);
  t.true(targets.length >= 2, targets.join(' '));
  for (const target of targets) for (const method of ['HEAD', 'GET']) await get(target, ca, method);
  const after = await install(second, ca);
  t.is(after.status, 200, 'the link still works after the crawler');
  // The log lines travel over a pipe: wait for them, by event, not by a clock.
  t.regex(await server.logged(/GET \/p\/<token>\/trust 200/), /GET \/p\/<token>\/trust 200/);
});

test('serve with a given --tls-cert and --tls-key; a missing half of the pair is a usage error', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const { generateKeyPairSync } = await import('node:crypto');
  const { createCertificate } = await import('../../src/certs/x509.js');
  const { toPem } = await import('../../src/certs/pem.js');
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const cert = await createCertificate({ subject: [['CN', '127.0.0.1']], notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 86_400_000), publicKey: pair.publicKey, signingKey: pair.privateKey, keyUsage: ['digitalSignature', 'keyEncipherment'], ipAddresses: ['127.0.0.1'] });
  writeFileSync(join(dir, 'tls.pem'), toPem(cert));
  writeFileSync(join(dir, 'tls.key'), pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const half = cli(['serve', '--store', storeDir, '--template', 'root-ca', '--tls-cert', join(dir, 'tls.pem')], { env });
  t.is(half.status, 2);
  t.is(half.stderr.trim(), 'error: --tls-cert and --tls-key go together');
  const { base } = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=m.example.com', '--port', '0', '--tls-cert', join(dir, 'tls.pem'), '--tls-key', join(dir, 'tls.key')], env);
  const url = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', base, '--template', 'exchange-smime', '--set', 'exchange.host=m.example.com'], { env }).stdout.trim();
  const dl = await install(url, toPem(cert));
  t.is(dl.status, 200);
  t.true((await verifyProfile(dl.body, { ca: (await store.trustChain()).roots })).valid);
});

test('serve mounts the PKI routes: the CRL and CA certificates over its HTTPS, OCSP answered by openssl', async (t) => {
  const { dir, storeDir, ca, server } = await setup(t);
  const crl = await get(`${server.base}/crl/issuing.crl`, ca);
  t.is(crl.status, 200);
  t.is(crl.headers['content-type'], 'application/pkix-crl');
  const cer = await get(`${server.base}/ca/root.cer`, ca);
  t.is(cer.headers['content-type'], 'application/pkix-cert');
  if (spawnSync('openssl', ['version']).status !== 0) return t.log('SKIPPED: openssl is not installed, so the OCSP client cannot run');
  const text = spawnSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], { input: crl.body }).stdout.toString();
  t.regex(text, /Issuer: CN = Example Corp S\/MIME Issuing CA/);
  const serial = (JSON.parse(cli(['cert', 'list', '--store', storeDir, '--json']).stdout) as { serial: string }[])[0]!.serial;
  writeFileSync(join(dir, 'root.pem'), ca);
  writeFileSync(join(dir, 'chain.pem'), cli(['ca', 'export', '--store', storeDir, '--chain']).stdout.split(/(?<=-----END CERTIFICATE-----\n)/)[1]!);
  const r = spawnSync('openssl', ['ocsp', '-issuer', join(dir, 'chain.pem'), '-serial', `0x${serial}`, '-url', `${server.base}/ocsp`, '-CAfile', join(dir, 'root.pem'), '-verify_other', join(dir, 'chain.pem')], { encoding: 'utf8' });
  t.regex(r.stderr, /Response verify OK/, r.stdout + r.stderr);
  t.regex(r.stdout, /: good/);
});

test('serve with a missing template variable exits 1 before listening, naming the variable; --listen and --public-url are separate', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const missing = cli(['serve', '--store', storeDir, '--template', 'exchange-smime', '--tls-from-store', '--listen', '127.0.0.1:0'], { env });
  t.is(missing.status, 1);
  t.regex(missing.stderr, /^error: .*exchange\.host/m);
  t.is(missing.stdout, '', 'it never listened');
  t.notRegex(missing.stderr, /This is a bug|\n\s+at /);
  const anywhere = cli(['serve', '--store', storeDir, '--template', 'root-ca', '--http', '--listen', '0.0.0.0:0'], { env });
  t.is(anywhere.status, 2);
  t.regex(anywhere.stderr, /needs --public-url/);

  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-from-store', '--listen', '127.0.0.1:0', '--public-url', 'https://profiles.example.com'], env);
  t.is(server.base, 'https://profiles.example.com');
  // The socket's port is in the note on stderr, which may arrive just after the URL on stdout.
  for (let i = 0; i < 100 && !/listening on 127\.0\.0\.1:\d+/.test(server.log()); i++) await new Promise((r) => setTimeout(r, 50));
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(server.log())?.[1]);
  t.true(port > 0, server.log());
  const { connect } = await import('node:tls');
  const cert = await new Promise<import('node:tls').PeerCertificate>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername: 'profiles.example.com', rejectUnauthorized: false }, () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on('error', reject);
  });
  t.is(cert.subject.CN, 'profiles.example.com');
  t.is(cert.subjectaltname, 'DNS:profiles.example.com');
  const url = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env }).stdout.trim();
  t.regex(url, /^https:\/\/profiles\.example\.com\/p\/[A-Za-z0-9_-]{22}$/);
});

test('link create refuses a user whose profile cannot be made now, with the reason', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const nobody = cli(['link', 'create', '--store', storeDir, '--user', 'nobody@example.com', '--base-url', 'https://p.example.com', '--template', 'exchange-smime'], { env });
  t.is(nobody.status, 1);
  t.regex(nobody.stderr, /^error: "nobody@example\.com" holds no certificate in this store/);
  const noVar = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', 'https://p.example.com', '--template', 'exchange-smime'], { env });
  t.is(noVar.status, 1);
  t.regex(noVar.stderr, /exchange\.host/);
  const ok = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', 'https://p.example.com', '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env });
  t.is(ok.status, 0, ok.stderr);
  t.is(JSON.parse(cli(['link', 'list', '--store', storeDir, '--json'], { env }).stdout).length, 1, 'only the good one was made');
});

test('100 installs of 100 links at once from one address, default settings: each once, then 410', async (t) => {
  const { ca, server, storeDir } = await setup(t);
  const { LinkBook } = await import('../../src/server/links.js');
  const book = new LinkBook(storeDir);
  const urls: string[] = [];
  for (let i = 0; i < 100; i++) urls.push(`${server.base}/p/${(await book.create('alice@example.com')).token}`);
  const first = await Promise.all(urls.map((u) => install(u, ca)));
  t.deepEqual([...new Set(first.map((r) => r.status))], [200]);
  const again = await Promise.all(urls.map((u) => install(u, ca)));
  t.deepEqual([...new Set(again.map((r) => r.status))], [410]);
});

test('behind a proxy named by --trust-proxy, wrong guesses from one client are limited while other clients are not; without it, X-Forwarded-For is ignored', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--trust-proxy', '127.0.0.1', '--guess-limit', '5'], env);
  const link = () => cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env }).stdout.trim();
  const from = (ip: string, path: string, method = 'GET') => httpRequest(`${server.base}${path}`, { method, headers: { 'x-forwarded-for': `${ip}, 127.0.0.1` } });
  const guesses = [];
  for (let i = 0; i < 7; i++) guesses.push((await from('203.0.113.5', `/p/${'A'.repeat(21)}${i}`)).status);
  t.deepEqual(guesses, [404, 404, 404, 404, 404, 429, 429]);
  const good = new URL(link()).pathname;
  const blocked = await from('203.0.113.5', good);
  t.is(blocked.status, 429, 'the guesser waits, even for a real link');
  t.regex(String(blocked.headers['retry-after'] ?? ''), /^\d+$/);
  t.regex(blocked.text(), /Try the link again in \d+ minutes?/);
  t.is((await from('198.51.100.7', good)).status, 200, 'another client behind the same proxy is not limited');
  t.is((await from('198.51.100.7', `${good}/install`, 'POST')).status, 200);
  const log = server.log();
  t.regex(log, /203\.0\.113\.5 GET \/p\/<token> 404/);

  // A server that trusts no proxy takes the socket's address: the header cannot dodge the limit.
  const plain = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--guess-limit', '3'], env);
  const codes = [];
  for (let i = 0; i < 5; i++) codes.push((await httpRequest(`${plain.base}/p/${'B'.repeat(21)}${i}`, { headers: { 'x-forwarded-for': `10.0.0.${i}` } })).status);
  t.deepEqual(codes, [404, 404, 404, 429, 429]);
});

test('serve with a key the template does not declare in --data warns and ignores it, as generate does, and the install still works', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ exchange: { host: 'mail.example.com', hots: 'typo' } }));
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--data', join(dir, 'data.json'), '--http', '--port', '0'], env);
  // stderr and the URL on stdout travel over two pipes: the warning may come after the URL.
  await server.logged(/warning: --data .*data\.json: "exchange\.hots" is not a variable of template "exchange-smime" \(did you mean exchange\.host\?\); it is ignored\n/);
  const link = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--template', 'exchange-smime', '--data', join(dir, 'data.json')], { env });
  t.is(link.status, 0, link.stderr);
  const url = link.stdout.trim();
  const installed = await httpRequest(`${url}/install`, { method: 'POST' });
  t.is(installed.status, 200, server.log());
  t.true((await verifyProfile(installed.body)).reasons.every((r) => r.code === 'untrusted'));
});
