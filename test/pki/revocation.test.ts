/**
 * Revocation as relying parties see it: CRLs and OCSP fetched from a real `pki serve` at
 * the URLs inside the certificates, checked by openssl.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, need, openssl } from '../helpers/tools.js';
import { env, fetchBytes, fetchCrls, issue, pkiStore, run, urlsIn } from './helpers.js';

const verify = (dir: string, leaf: string, crls: string[], extra: string[] = []) =>
  openssl(['verify', '-crl_check_all', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), ...crls.flatMap((c) => ['-CRLfile', c]), ...extra, leaf]);

const ocsp = (dir: string, leaf: string, url: string, extra: string[] = []) =>
  openssl(['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', leaf, '-url', url, '-CAfile', join(dir, 'root.pem'), ...extra]);

function exportCas(t: import('ava').ExecutionContext, dir: string, storeDir: string) {
  const pems = run(t, dir, ['ca', 'export', '--store', storeDir, '--chain']).stdout.split(/(?<=-----END CERTIFICATE-----\n)/);
  writeFileSync(join(dir, 'root.pem'), pems[0]!);
  writeFileSync(join(dir, 'issuing.pem'), pems.slice(1).join(''));
}

test('certificates name the PKI URLs; openssl verify -crl_check_all with the CRLs fetched from them accepts a live leaf and refuses a revoked one', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir, pkiUrl } = await pkiStore(t);
  exportCas(t, dir, storeDir);
  const live = issue(t, dir, storeDir, 'live@example.com');
  const gone = issue(t, dir, storeDir, 'gone@example.com', 'smime-encryption');
  t.deepEqual(urlsIn(live.pem), { crl: [`${pkiUrl}/crl/issuing.crl`], caIssuers: [`${pkiUrl}/ca/issuing.cer`], ocsp: [`${pkiUrl}/ocsp`] });
  t.deepEqual(urlsIn(join(dir, 'issuing.pem')), { crl: [`${pkiUrl}/crl/root.crl`], caIssuers: [`${pkiUrl}/ca/root.cer`], ocsp: [] });
  // The signer is a leaf of the issuing CA too.
  writeFileSync(join(dir, 'signer.pem'), readFileSync(join(storeDir, 'signer', 'cert.pem')));
  t.deepEqual(urlsIn(join(dir, 'signer.pem')).crl, [`${pkiUrl}/crl/issuing.crl`]);

  // caIssuers serves the very certificates, DER.
  const cer = await fetchBytes(urlsIn(live.pem).caIssuers[0]!);
  t.is(cer.headers.get('content-type'), 'application/pkix-cert');
  t.is(openssl(['x509', '-inform', 'DER', '-noout', '-fingerprint', '-sha256'], cer.body).stdout.toString(), openssl(['x509', '-in', join(dir, 'issuing.pem'), '-noout', '-fingerprint', '-sha256']).stdout.toString());

  let crls = await fetchCrls(dir, [live.pem, join(dir, 'issuing.pem')]);
  t.is(crls.length, 2);
  for (const leaf of [live.pem, gone.pem]) {
    const r = verify(dir, leaf, crls);
    t.is(r.status, 0, r.stdout.toString() + r.stderr.toString());
  }
  const revoked = run(t, dir, ['cert', 'revoke', gone.serial, '--store', storeDir, '--reason', 'keyCompromise']);
  t.regex(revoked.stderr, /Revoked .*keyCompromise; the issuing CRL lists it/);

  crls = await fetchCrls(dir, [gone.pem, join(dir, 'issuing.pem')]);
  const refused = verify(dir, gone.pem, crls);
  t.not(refused.status, 0);
  t.regex(refused.stdout.toString() + refused.stderr.toString(), /certificate revoked/);
  t.is(verify(dir, live.pem, crls).status, 0);

  // Both CRLs carry the CRL number, the AKI and nextUpdate (openssl's own reading).
  for (const c of crls) {
    const text = openssl(['crl', '-in', c, '-noout', '-text']).stdout.toString();
    t.regex(text, /X509v3 CRL Number/);
    t.regex(text, /X509v3 Authority Key Identifier/);
    t.regex(text, /Next Update: \w+/);
  }
  const issuingCrl = openssl(['crl', '-in', crls[0]!, '-noout', '-text']).stdout.toString();
  t.regex(issuingCrl, new RegExp(`Serial Number: ${gone.serial}`, 'i'));
  t.regex(issuingCrl, /Key Compromise/);
});

test('openssl ocsp at the AIA URL says good, then revoked with time and reason, with the response verified; nonce echoed', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await pkiStore(t);
  exportCas(t, dir, storeDir);
  const leaf = issue(t, dir, storeDir, 'ocsp@example.com');
  const url = openssl(['x509', '-in', leaf.pem, '-noout', '-ocsp_uri']).stdout.toString().trim();
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/ocsp$/);
  const good = ocsp(dir, leaf.pem, url, ['-resp_text']);
  const goodText = good.stdout.toString() + good.stderr.toString();
  t.is(good.status, 0, goodText);
  t.regex(goodText, /Response verify OK/);
  t.regex(goodText, new RegExp(`${leaf.pem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: good`));
  t.regex(goodText, /OCSP Nonce/);
  t.regex(goodText, /id-kp-OCSPSigning|OCSP Signing/);
  t.regex(goodText, /OCSP No Check/);

  run(t, dir, ['cert', 'revoke', leaf.serial, '--store', storeDir, '--reason', 'affiliationChanged']);
  const bad = ocsp(dir, leaf.pem, url);
  const badText = bad.stdout.toString() + bad.stderr.toString();
  t.regex(badText, /Response verify OK/);
  t.regex(badText, /: revoked/);
  t.regex(badText, /Reason: affiliationChanged/);
  t.regex(badText, /Revocation Time: /);

  // The root's responder answers for the issuing CA.
  const ca = openssl(['ocsp', '-issuer', join(dir, 'root.pem'), '-cert', join(dir, 'issuing.pem'), '-url', url, '-CAfile', join(dir, 'root.pem')]);
  t.regex(ca.stderr.toString(), /Response verify OK/);
  t.regex(ca.stdout.toString(), /issuing\.pem: good/);
});

test('OCSP over GET is cacheable per RFC 5019; unknown serials say unknown; garbage gets malformedRequest, oversized a 413, other paths a 404', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir, pkiUrl } = await pkiStore(t);
  exportCas(t, dir, storeDir);
  const leaf = issue(t, dir, storeDir, 'get@example.com');
  t.is(openssl(['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', leaf.pem, '-no_nonce', '-reqout', join(dir, 'req.der')]).status, 0);
  const req = readFileSync(join(dir, 'req.der'));
  const got = await fetchBytes(`${pkiUrl}/ocsp/${encodeURIComponent(req.toString('base64'))}`);
  t.is(got.status, 200);
  t.is(got.headers.get('content-type'), 'application/ocsp-response');
  t.regex(got.headers.get('cache-control') ?? '', /^max-age=\d+, public, no-transform, must-revalidate$/);
  t.truthy(got.headers.get('last-modified'));
  t.truthy(got.headers.get('expires'));
  writeFileSync(join(dir, 'resp.der'), got.body);
  const checked = openssl(['ocsp', '-respin', join(dir, 'resp.der'), '-issuer', join(dir, 'issuing.pem'), '-cert', leaf.pem, '-CAfile', join(dir, 'root.pem')]);
  t.regex(checked.stderr.toString(), /Response verify OK/);
  t.regex(checked.stdout.toString(), /: good/);

  const unknown = openssl(['ocsp', '-issuer', join(dir, 'issuing.pem'), '-serial', '0x0123456789abcdef', '-url', `${pkiUrl}/ocsp`, '-CAfile', join(dir, 'root.pem')]);
  t.regex(unknown.stdout.toString() + unknown.stderr.toString(), /0x0123456789abcdef: unknown/i);

  const garbage = await fetchBytes(`${pkiUrl}/ocsp`, { method: 'POST', body: Buffer.from('garbage'), headers: { 'content-type': 'application/ocsp-request' } });
  t.is(garbage.status, 200);
  t.deepEqual([...garbage.body], [0x30, 0x03, 0x0a, 0x01, 0x01], 'OCSPResponse { malformedRequest }');
  const big = await fetchBytes(`${pkiUrl}/ocsp`, { method: 'POST', body: Buffer.alloc(100_000, 0x30), headers: { 'content-type': 'application/ocsp-request' } });
  t.is(big.status, 413);
  t.is((await fetchBytes(`${pkiUrl}/crl/nope.crl`)).status, 404);
  t.is((await fetchBytes(`${pkiUrl}/crl/issuing-7.crl`)).status, 404);
  t.is((await fetchBytes(`${pkiUrl}/ocsp/!!!`)).body[4], 0x01);
  t.is((await fetchBytes(`${pkiUrl}/crl/issuing.crl`, { method: 'DELETE' })).status, 405);
  // The server is still up after all of that.
  t.is((await fetchBytes(`${pkiUrl}/ca/root.cer`)).status, 200);
});

test('a leaf requested for 3650 days is clamped to the issuing CA (with a warning) and verifies at any time inside its validity', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await pkiStore(t);
  exportCas(t, dir, storeDir);
  const leaf = issue(t, dir, storeDir, 'long@example.com', 'smime-signing', ['--days', '3650']);
  t.regex(leaf.stderr, /clamped to the issuing CA's notAfter/);
  const issuingEnd = new Date(openssl(['x509', '-in', join(dir, 'issuing.pem'), '-noout', '-enddate']).stdout.toString().trim().slice('notAfter='.length));
  t.true(Date.parse(leaf.notAfter) <= issuingEnd.getTime());
  const start = Date.parse(leaf.notBefore) / 1000;
  const end = Date.parse(leaf.notAfter) / 1000;
  for (const at of [start + 1, (start + end) / 2, end - 1]) {
    const r = openssl(['verify', '-attime', String(Math.floor(at)), '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'issuing.pem'), leaf.pem]);
    t.is(r.status, 0, `at ${new Date(at * 1000).toISOString()}: ${r.stdout}${r.stderr}`);
  }
});

test('pki serve: a bad --listen is a usage error, a port in use one clear line, exit 1; ca pki-url shows and changes the URL for what is issued next', async (t) => {
  const { dir, storeDir, pkiUrl } = await pkiStore(t);
  const bad = cli(['pki', 'serve', '--store', storeDir, '--listen', 'nonsense'], { cwd: dir, env });
  t.is(bad.status, 2);
  t.regex(bad.stderr, /^error: --listen takes HOST:PORT/);
  const busy = cli(['pki', 'serve', '--store', storeDir, '--listen', pkiUrl.slice('http://'.length)], { cwd: dir, env });
  t.is(busy.status, 1);
  t.regex(busy.stderr, /^error: Cannot listen on 127\.0\.0\.1:\d+: the port is in use; stop what listens there, or pick another port with --listen HOST:PORT\n$/m);
  t.notRegex(busy.stderr, /This is a bug|at .*\.js:\d+/);
  const dns = cli(['serve', '--store', storeDir, '--template', 'root-ca', '--http', '--listen', 'no-such-host.invalid:0'], { cwd: dir, env });
  t.is(dns.status, 1, dns.stderr);
  t.regex(dns.stderr, /^error: Cannot listen on no-such-host\.invalid:0: the name "no-such-host\.invalid" does not resolve here; give an address of this machine with --listen HOST:PORT\n$/m);
  t.notRegex(dns.stderr, /This is a bug/);
  t.is(run(t, dir, ['ca', 'pki-url', '--store', storeDir]).stdout, `${pkiUrl}\n`);
  const set = run(t, dir, ['ca', 'pki-url', 'https://pki.example.com/base/', '--store', storeDir]);
  t.regex(set.stderr, /PKI URL set to https:\/\/pki\.example\.com\/base\n.*applies to certificates issued from now on/);
  const leaf = issue(t, dir, storeDir, 'next@example.com');
  t.deepEqual(urlsIn(leaf.pem).crl, ['https://pki.example.com/base/crl/issuing.crl']);
  const ftp = cli(['ca', 'pki-url', 'ftp://pki.example.com', '--store', storeDir], { cwd: dir, env });
  t.is(ftp.status, 1);
  t.regex(ftp.stderr, /must be http:\/\/ or https:\/\//);
  run(t, dir, ['ca', 'pki-url', '--clear', '--store', storeDir]);
  t.deepEqual(urlsIn(issue(t, dir, storeDir, 'none@example.com').pem), { crl: [], caIssuers: [], ocsp: [] });
});
