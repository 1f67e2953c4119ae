import test from 'ava';
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { request } from 'node:https';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyProfile } from '../../src/cms/verify.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

interface Server {
  base: string;
  proc: ChildProcessWithoutNullStreams;
  log: () => string;
  exited: Promise<number | null>;
}

function serve(t: import('ava').ExecutionContext, storeDir: string, extra: string[] = []): Promise<Server> {
  return startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-from-store', '--port', '0', ...extra], env);
}

function get(url: string, ca: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { ca, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

async function setup(t: import('ava').ExecutionContext, extra: string[] = []) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const ca = cli(['ca', 'export', '--store', storeDir]).stdout;
  const server = await serve(t, storeDir, extra);
  const link = (uses = 1) => cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', server.base, '--uses', String(uses)], { env }).stdout.trim();
  return { dir, storeDir, store, ca, server, link };
}

test('a link shows a page, then the signed profile once; then 410; other paths 404; the log holds no token', async (t) => {
  const { ca, server, link, store } = await setup(t);
  const url = link();
  const token = url.split('/p/')[1]!;
  const page = await get(url, ca);
  t.is(page.status, 200);
  const html = page.body.toString();
  t.regex(html, /Example Corp: mail settings for alice@example\.com/);
  t.true(html.includes(`href="/p/${token}/install"`));
  t.regex(html, /Profile Downloaded/);
  t.regex(html, /<li>the certificate authority \(root\)<\/li><li>intermediate certificates<\/li><li>your S\/MIME identities \(signing and encryption\)<\/li><li>your Exchange mail account<\/li>/);
  t.notRegex(html, /https?:\/\/(?!www\.w3)/, 'no external assets');
  const dl = await get(`${url}/install`, ca);
  t.is(dl.status, 200);
  t.is(dl.headers['content-type'], 'application/x-apple-aspen-config');
  t.is(dl.headers['content-disposition'], 'attachment; filename="alice@example.com.mobileconfig"');
  const v = await verifyProfile(dl.body, { ca: (await store.trustChain()).roots });
  t.true(v.valid, JSON.stringify(v.reasons));
  t.is((await get(`${url}/install`, ca)).status, 410);
  t.is((await get(url, ca)).status, 410);
  t.is((await get(`${server.base}/p/AAAAAAAAAAAAAAAAAAAAAA`, ca)).status, 404);
  t.is((await get(`${server.base}/../../store/store.json`, ca)).status, 404);
  t.is((await get(`${server.base}/`, ca)).status, 404);
  t.false(server.log().includes(token), 'the access log never holds the token');
  t.regex(server.log(), /GET \/p\/<token>\/install 200/);
});

test('100 downloads at once all succeed and verify; SIGTERM finishes the requests in flight and exits', async (t) => {
  const { ca, server, link, store } = await setup(t, ['--rate-limit', '1000']);
  const url = link(100);
  const results = await Promise.all(Array.from({ length: 100 }, () => get(`${url}/install`, ca)));
  t.deepEqual([...new Set(results.map((r) => r.status))], [200]);
  const roots = (await store.trustChain()).roots;
  for (const r of results) t.true((await verifyProfile(r.body, { ca: roots })).valid);
  t.is((await get(`${url}/install`, ca)).status, 410, 'the 101st is refused');
  const last = link();
  const inFlight = get(`${last}/install`, ca);
  await new Promise((r) => setTimeout(r, 20));
  server.proc.kill('SIGTERM');
  t.is((await inFlight).status, 200);
  t.is(await server.exited, 0);
});

test('per-address rate limit answers 429', async (t) => {
  const { ca, server } = await setup(t, ['--rate-limit', '3']);
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await get(`${server.base}/x`, ca)).status);
  t.deepEqual(statuses, [404, 404, 404, 429, 429]);
});

test('the page works in headless Chromium: the Install link and the steps are there', async (t) => {
  const chromium = ['chromium', 'chromium-browser'].find((c) => spawnSync(c, ['--version']).status === 0);
  if (!chromium) {
    t.log('SKIPPED: Chromium is not installed (Debian package chromium; .ci/run installs it)');
    t.pass();
    return;
  }
  const { server, link, dir } = await setup(t);
  const url = link();
  const r = spawnSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${join(dir, 'chrome')}`, '--ignore-certificate-errors', '--dump-dom', url], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /<a class="install" id="install" href="\/p\/[A-Za-z0-9_-]{22}\/install">Install profile<\/a>/);
  t.regex(r.stdout, /Certificate Trust Settings/);
  await new Promise((resolve) => setTimeout(resolve, 300)); // spawnSync held our event loop; let the log arrive
  t.regex(server.log(), /GET \/p\/<token> 200/);
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
  const url = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', base], { env }).stdout.trim();
  const dl = await get(`${url}/install`, toPem(cert));
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
