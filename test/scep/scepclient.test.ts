/**
 * SCEP end to end with clients nobody here wrote: Debian's `scep` package (micromdm's
 * scepclient, which sends DES envelopes and SHA-1 signatures whatever GetCACaps says) against
 * a real `serve --scep` on a loopback port; openssl and python's plistlib check what comes out.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, httpRequest, need, openssl, python, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const HAS_SCEPCLIENT = spawnSync('scepclient', ['-version']).status === 0;
const CERTMONGER = '/usr/sbin/certmonger';
const HAS_CERTMONGER = existsSync(CERTMONGER) && existsSync('/usr/lib/certmonger/scep-submit') && spawnSync('getcert', ['-v']).error === undefined;

/**
 * Runs `script` (sh) beside a certmonger daemon of its own: no system or session bus, a
 * private listening socket (-L -P), and its state in `dir` (CERTMONGER_*_DIR), so nothing of
 * the machine's certmonger is touched.
 */
function withCertmonger(dir: string, script: string) {
  for (const d of ['req', 'cas', 'tmp', 'conf']) mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'run.sh'), `export CERTMONGER_PVT_ADDRESS=unix:path=${dir}/sock\n${script}\n`);
  return spawnSync(CERTMONGER, ['-L', '-P', join(dir, 'sock'), '-n', '-c', `sh ${join(dir, 'run.sh')}`], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 120_000,
    env: { PATH: process.env.PATH ?? '', HOME: dir, CERTMONGER_REQUESTS_DIR: join(dir, 'req'), CERTMONGER_CAS_DIR: join(dir, 'cas'), CERTMONGER_TMPDIR: join(dir, 'tmp'), CERTMONGER_CONFIG_DIR: join(dir, 'conf') },
  });
}

function scepclient(cwd: string, args: string[]) {
  return spawnSync('scepclient', ['-private-key', 'k.pem', '-certificate', 'c.pem', ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
}

/** The payload content of a signed profile, verified under `root` by openssl and read by plistlib. */
function profileContent(t: ExecutionContext, file: string, root: string): Record<string, unknown>[] {
  const xml = openssl(['cms', '-verify', '-inform', 'DER', '-in', file, '-CAfile', root, '-purpose', 'any']);
  t.is(xml.status, 0, xml.stderr.toString());
  const r = python('import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps(p["PayloadContent"], default=lambda b: "<bytes>"))', xml.stdout);
  t.is(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>[];
}

async function setup(t: ExecutionContext) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const root = join(dir, 'root.pem');
  writeFileSync(root, cli(['ca', 'export', '--store', storeDir]).stdout);
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'scep-smime-signing', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--scep'], env);
  return { dir, storeDir, root, server };
}

/** Asserts that the server logs a line matching `re` (waiting for its stderr by event). */
async function sawLog(t: ExecutionContext, server: { logged: (re: RegExp) => Promise<string> }, re: RegExp): Promise<void> {
  t.regex(await server.logged(re), re);
}

/** A SCEP profile for `user`: its challenge and URL, read by plistlib. */
function scepProfile(t: ExecutionContext, s: { dir: string; storeDir: string; root: string }, user: string, name: string) {
  const file = join(s.dir, `${name}.mobileconfig`);
  const g = cli(['generate', 'scep-smime-signing', '--store', s.storeDir, '--user', user, '--set', 'exchange.host=mail.example.com', '-o', file], { env });
  t.is(g.status, 0, g.stderr);
  const scep = profileContent(t, file, s.root).find((p) => p.PayloadType === 'com.apple.security.scep')!.PayloadContent as Record<string, unknown>;
  return { challenge: scep.Challenge as string, url: scep.URL as string, scep };
}

if (!HAS_SCEPCLIENT) {
  test('scepclient (Debian package scep) enrolls against serve --scep', (t) => {
    t.log('skipped: scepclient is not installed (apt-get install scep)');
    t.pass();
  });
} else {
  test("scepclient enrolls with a minted challenge: the certificate is the user's (CN and only rfc822Name from the store, not the request), verifies for smimesign, and the challenge is spent; renewal with it; cert list, user remove --revoke, the CRL and OCSP cover it", async (t) => {
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const s = await setup(t);
    const p = scepProfile(t, s, 'alice@example.com', 'alice');
    t.is(p.url, `${s.server.base}/scep`, "the profile points at the server's own SCEP URL");
    t.is(cli(['ca', 'scep-url', '--store', s.storeDir]).stdout, `${s.server.base}/scep\n`, 'serve --scep recorded it in the store');
    const bad = cli(['ca', 'scep-url', 'ftp://x', '--store', s.storeDir]);
    t.is(bad.status, 1);
    t.is(bad.stderr, 'error: The SCEP URL must be http:// or https://, got "ftp:"\n');
    t.regex(p.challenge, /^[A-Za-z0-9_-]{22}$/);
    t.false(readFileSync(join(s.storeDir, 'challenges.json'), 'utf8').includes(p.challenge), 'the store keeps only a hash of the challenge');
    t.is((p.scep.SubjectAltName as Record<string, unknown>).rfc822Name, 'alice@example.com');

    const device = join(s.dir, 'device');
    mkdirSync(device);
    // The client asks for another name: the server decides.
    const enrolled = scepclient(device, ['-server-url', p.url, '-challenge', p.challenge, '-cn', 'Mallory', '-organization', 'Evil']);
    t.is(enrolled.status, 0, enrolled.stderr);
    const cert = join(device, 'c.pem');
    const chain = join(s.dir, 'chain.pem');
    writeFileSync(chain, readFileSync(join(s.storeDir, 'ca', 'intermediate.pem')));
    const v = openssl(['verify', '-purpose', 'smimesign', '-CAfile', s.root, '-untrusted', chain, cert]);
    t.is(v.status, 0, v.stderr.toString() + v.stdout.toString());
    const text = openssl(['x509', '-in', cert, '-noout', '-subject', '-ext', 'subjectAltName,keyUsage,extendedKeyUsage', '-nameopt', 'RFC2253']).stdout.toString();
    t.regex(text, /^subject=CN=Alice Example\n/);
    t.regex(text, /X509v3 Subject Alternative Name: *\n *email:alice@example\.com\n/);
    t.regex(text, /X509v3 Key Usage: critical\n *Digital Signature\n/);
    t.regex(text, /X509v3 Extended Key Usage: *\n *E-mail Protection\n/);
    t.notRegex(text, /Mallory|Evil/);
    const serial = openssl(['x509', '-in', cert, '-noout', '-serial']).stdout.toString().trim().replace(/^serial=/, '').toLowerCase();
    // scepclient 2.1 sends DES and SHA-1 whatever GetCACaps offers: read, and answered in kind.
    await sawLog(t, s.server, /SCEP PKCSReq \S+ SUCCESS alice@example\.com \S+ \(des-cbc, sha1\)/);
    t.false(s.server.log().includes(p.challenge), 'the log never shows a challenge');

    // The same challenge again: a FAILURE, and nothing issued.
    const other = join(s.dir, 'other');
    mkdirSync(other);
    const again = scepclient(other, ['-server-url', p.url, '-challenge', p.challenge]);
    t.not(again.status, 0);
    t.regex(again.stdout + again.stderr, /failInfo: badRequest/);
    t.false(existsSync(join(other, 'c.pem')));
    await sawLog(t, s.server, /FAILURE badRequest: the challenge is used/);
    // An unknown one too.
    const unknown = scepclient(other, ['-server-url', p.url, '-challenge', 'AAAAAAAAAAAAAAAAAAAAAA']);
    t.regex(unknown.stdout + unknown.stderr, /failInfo: badRequest/);

    // Renewal: the client signs a RenewalReq with its current certificate; no challenge.
    copyFileSync(cert, join(device, 'first.pem'));
    const renewed = scepclient(device, ['-server-url', p.url]);
    t.is(renewed.status, 0, renewed.stderr);
    const serial2 = openssl(['x509', '-in', cert, '-noout', '-serial']).stdout.toString().trim().replace(/^serial=/, '').toLowerCase();
    t.not(serial2, serial);
    t.regex(openssl(['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'RFC2253']).stdout.toString(), /^subject=CN=Alice Example\n/);
    await sawLog(t, s.server, /SCEP RenewalReq \S+ SUCCESS alice@example\.com /);

    // The store records both, without keys; profiles never ship them.
    const list = (JSON.parse(cli(['cert', 'list', '--store', s.storeDir, '--user', 'alice@example.com', '--json']).stdout) as { serial: string; purpose: string; keyOnDevice?: boolean }[]).filter((r) => r.purpose === 'smime-signing');
    const devices = list.filter((r) => r.keyOnDevice).map((r) => r.serial.replace(/^0+/, ''));
    t.deepEqual(devices.sort(), [serial, serial2].map((x) => x.replace(/^0+/, '')).sort());
    t.is(cli(['store', 'check', '--store', s.storeDir], { env }).status, 0, 'store check knows a device certificate has no key here');
    const ex = join(s.dir, 'exchange.mobileconfig');
    t.is(cli(['generate', 'exchange-smime', '--store', s.storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', ex], { env }).status, 0);
    const held = list.find((r) => !r.keyOnDevice)!.serial;
    const shipped = profileContent(t, ex, s.root).filter((x) => x.PayloadType === 'com.apple.security.pkcs12').map((x) => String(x.PayloadIdentifier));
    t.true(shipped.some((id) => id.endsWith(`.signing.${held}`)), 'the signing identity shipped is the one the store holds');
    t.false(shipped.some((id) => devices.some((d) => id.endsWith(d))));

    // Unenrolment revokes them; the CRL and OCSP say so.
    t.is(cli(['user', 'remove', '--store', s.storeDir, 'alice@example.com', '--revoke'], { env }).status, 0);
    const crl = await httpRequest(`${s.server.base}/crl/issuing.crl`);
    const crlFile = join(s.dir, 'issuing.crl');
    writeFileSync(crlFile, crl.body);
    const listed = openssl(['crl', '-inform', 'DER', '-in', crlFile, '-noout', '-text']).stdout.toString().toLowerCase();
    for (const x of [serial, serial2]) t.true(listed.includes(x.replace(/^0+/, '')), `${x} is on the CRL`);
    const ocsp = openssl(['ocsp', '-issuer', chain, '-cert', join(device, 'first.pem'), '-url', `${s.server.base}/ocsp`, '-CAfile', s.root]);
    t.regex(ocsp.stdout.toString(), /first\.pem: revoked/, ocsp.stderr.toString());
    const v2 = openssl(['verify', '-purpose', 'smimesign', '-crl_check', '-CAfile', s.root, '-untrusted', chain, '-CRLfile', crlFile, '-inform', 'PEM', cert]);
    t.not(v2.status, 0);
    // A revoked certificate cannot renew.
    const refused = scepclient(device, ['-server-url', p.url]);
    t.regex(refused.stdout + refused.stderr, /failInfo: badCertID/);
  });

  test('batch scep-smime-signing mints one challenge per profile in one step; each enrolls once; a dry run mints none', async (t) => {
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const s = await setup(t);
    for (const u of ['bob', 'carol']) {
      t.is(cli(['cert', 'issue', '--store', s.storeDir, '--user', `${u}@example.com`, '--name', u, '--purpose', 'smime-encryption'], { env }).status, 0);
    }
    const users = join(s.dir, 'users.csv');
    writeFileSync(users, 'email,name\nbob@example.com,Bob\ncarol@example.com,Carol\n');
    const ledger = join(s.storeDir, 'challenges.json');
    const before = existsSync(ledger) ? readFileSync(ledger, 'utf8') : '';
    const dry = cli(['batch', 'scep-smime-signing', '--store', s.storeDir, '--users', users, '--out', join(s.dir, 'dry'), '--set', 'exchange.host=mail.example.com', '--dry-run'], { env });
    t.is(dry.status, 0, dry.stderr);
    t.is(existsSync(ledger) ? readFileSync(ledger, 'utf8') : '', before, 'a dry run mints nothing');
    const out = join(s.dir, 'out');
    const run = cli(['batch', 'scep-smime-signing', '--store', s.storeDir, '--users', users, '--out', out, '--set', 'exchange.host=mail.example.com'], { env });
    t.is(run.status, 0, run.stderr);
    const challenges = ['bob', 'carol'].map((u) => {
      const content = profileContent(t, join(out, `${u}@example.com.mobileconfig`), s.root);
      return (content.find((p) => p.PayloadType === 'com.apple.security.scep')!.PayloadContent as Record<string, string>).Challenge!;
    });
    t.not(challenges[0], challenges[1]);
    for (const [i, u] of ['bob', 'carol'].entries()) {
      const device = join(s.dir, u);
      mkdirSync(device);
      const r = scepclient(device, ['-server-url', `${s.server.base}/scep`, '-challenge', challenges[i]!]);
      t.is(r.status, 0, r.stderr);
      t.regex(openssl(['x509', '-in', join(device, 'c.pem'), '-noout', '-ext', 'subjectAltName']).stdout.toString(), new RegExp(`email:${u}@example\\.com`));
    }
  });
}

if (!HAS_CERTMONGER) {
  test("certmonger's SCEP helper enrolls against serve --scep", (t) => {
    t.log('skipped: certmonger is not installed (apt-get install certmonger)');
    t.pass();
  });
} else {
  test("certmonger (its scep-submit, driven by a certmonger of the test's own on a private socket, no bus) enrolls in AES with SHA-256 as GetCACaps offers, gets the user's certificate, renews it by resubmitting, and a bad challenge is rejected", async (t) => {
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const s = await setup(t);
    t.is(cli(['cert', 'issue', '--store', s.storeDir, '--user', 'dave@example.com', '--name', 'Dave Example', '--purpose', 'smime-encryption'], { env }).status, 0);
    const p = scepProfile(t, s, 'dave@example.com', 'dave');
    const dir = join(s.dir, 'certmonger');
    const cert = join(dir, 'cert.pem');
    const r = withCertmonger(dir, [
      `getcert add-scep-ca -c profilesmith -u '${p.url}' >/dev/null || exit 10`,
      `getcert request -c profilesmith -I dev -f ${cert} -k ${join(dir, 'key.pem')} -L '${p.challenge}' -N 'CN=Somebody Else' -w >/dev/null || exit 11`,
      `openssl x509 -in ${cert} -noout -serial > ${join(dir, 'first.txt')}`,
      'getcert resubmit -i dev -w >/dev/null || exit 12',
      `getcert request -c profilesmith -I bad -f ${join(dir, 'bad.pem')} -k ${join(dir, 'bad.key')} -L AAAAAAAAAAAAAAAAAAAAAA -N CN=x -w >/dev/null`,
      'getcert list -i bad',
    ].join('\n'));
    t.is(r.status, 0, r.stdout + r.stderr);
    const first = readFileSync(join(dir, 'first.txt'), 'utf8').trim().replace(/^serial=/, '').toLowerCase();
    const now = openssl(['x509', '-in', cert, '-noout', '-serial']).stdout.toString().trim().replace(/^serial=/, '').toLowerCase();
    t.not(now, first, 'resubmitting renewed the certificate');
    const text = openssl(['x509', '-in', cert, '-noout', '-subject', '-ext', 'subjectAltName', '-nameopt', 'RFC2253']).stdout.toString();
    t.regex(text, /^subject=CN=Dave Example\n/);
    t.regex(text, /email:dave@example\.com\n/);
    t.regex(r.stdout, /status: CA_REJECTED/);
    t.false(existsSync(join(dir, 'bad.pem')));
    await sawLog(t, s.server, /SCEP PKCSReq \S+ SUCCESS dave@example\.com \S+ \(aes-\d+-cbc, sha256\)/);
    await sawLog(t, s.server, /SCEP PKCSReq \(renewal\) \S+ SUCCESS dave@example\.com /);
    const chain = join(s.dir, 'chain.pem');
    writeFileSync(chain, readFileSync(join(s.storeDir, 'ca', 'intermediate.pem')));
    t.is(openssl(['verify', '-purpose', 'smimesign', '-CAfile', s.root, '-untrusted', chain, cert]).status, 0);
  });
}
