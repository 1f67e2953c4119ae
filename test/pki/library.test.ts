/**
 * The PKI as a library: the OCSP request reader on openssl's requests, the responder's
 * automatic renewal under an injected clock, CRL numbers, the rate limit, and a new
 * passphrase re-sealing every CA key.
 */
import test from 'ava';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { createPkiHandler } from '../../src/pki/handler.js';
import { parseOcspRequest } from '../../src/pki/ocsp.js';
import { checkStore } from '../../src/store/check.js';
import { toPem } from '../../src/certs/pem.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { httpRequest, need, openssl, tmp } from '../helpers/tools.js';

const DAY = 86_400_000;

async function clockStore(t: import('ava').ExecutionContext) {
  const dir = tmp(t);
  let now = new Date('2030-01-01T00:00:00Z');
  const clock = () => now;
  await initStore(join(dir, 'store'), { organization: 'Clock Corp', passphrase: PASSPHRASE, kdfCost: 14, now: clock, pkiUrl: 'http://pki.example.com' });
  const store = await openStore(join(dir, 'store'), { passphrase: PASSPHRASE, now: clock });
  return { dir, store, clock, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

test('parseOcspRequest reads what openssl ocsp sends: serial, SHA-1 CertID, nonce', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, store } = await clockStore(t);
  const leaf = await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-signing' });
  writeFileSync(join(dir, 'leaf.pem'), toPem(await store.getCertificate(leaf.serial)));
  writeFileSync(join(dir, 'issuing.pem'), toPem((await store.trustChain()).intermediates[0]!));
  t.is(openssl(['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', join(dir, 'leaf.pem'), '-reqout', join(dir, 'req.der')]).status, 0);
  const req = parseOcspRequest(readFileSync(join(dir, 'req.der')));
  t.is(req.certIds.length, 1);
  t.is(req.certIds[0]!.serial, leaf.serial);
  t.is(req.certIds[0]!.hash, 'sha1');
  t.truthy(req.nonce);
  t.deepEqual(await store.certificateStatus(1, leaf.serial), { status: 'good' });
  t.deepEqual(await store.certificateStatus(1, 'abcdef'), { status: 'unknown' });
  t.deepEqual(await store.certificateStatus('root', leaf.serial), { status: 'unknown' }, 'the root did not issue it');
});

test('the OCSP responder lives a week and is renewed once half of that has passed; the old one goes', async (t) => {
  const { dir, store, advance } = await clockStore(t);
  const first = await store.ocspResponder(1);
  const x = new X509Certificate(first.certificate);
  t.is(new Date(x.validTo).getTime() - new Date(x.validFrom).getTime(), 7 * DAY);
  t.true(x.checkIssued(new X509Certificate((await store.trustChain()).intermediates[0]!)));
  t.regex(openssl(['x509', '-noout', '-ext', 'extendedKeyUsage,authorityInfoAccess,crlDistributionPoints'], toPem(first.certificate)).stdout.toString(), /OCSP Signing[\s\S]*CRL Distribution/);
  advance(3 * DAY);
  t.is((await store.ocspResponder(1)).serial, first.serial, 'still more than half left');
  advance(DAY);
  const second = await store.ocspResponder(1);
  t.not(second.serial, first.serial);
  const again = await openStore(join(dir, 'store'), { passphrase: PASSPHRASE, now: () => new Date('2030-01-05T00:00:01Z') });
  t.is((await again.ocspResponder(1)).serial, second.serial, 'another process finds the renewed one');
  t.deepEqual((await checkStore(again)).filter((f) => f.severity === 'error'), []);
});

test('CRL numbers strictly increase, even within one second; the published CRL is re-signed when a revocation comes in', async (t) => {
  if (!need(t, 'openssl')) return;
  const { store } = await clockStore(t);
  const number = (der: Buffer) => BigInt(/X509v3 CRL Number: \s*(\d+)/.exec(openssl(['crl', '-inform', 'DER', '-noout', '-text'], der).stdout.toString())![1]!);
  const a = number(await store.createCrl());
  const b = number(await store.createCrl());
  t.true(b > a);
  const published = await store.publishedCrl(1);
  t.deepEqual(await store.publishedCrl(1), published, 'unchanged revocations: the same CRL');
  const leaf = await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-signing' });
  await store.revokeCertificate(leaf.serial, 'keyCompromise');
  const next = await store.publishedCrl(1);
  t.true(number(next) > number(published));
  t.regex(openssl(['crl', '-inform', 'DER', '-noout', '-text'], next).stdout.toString(), new RegExp(leaf.serial, 'i'));
  const root = await store.createCrl({ ca: 'root' });
  t.regex(openssl(['crl', '-inform', 'DER', '-noout', '-text'], root).stdout.toString(), /Issuer: CN = Clock Corp Root CA[\s\S]*No Revoked Certificates/);
});

test('createCrl records only its number in the store, never the CRL; the published copy is then re-signed above it, and a copy that is not the recorded one is never served (issue 28)', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, store } = await clockStore(t);
  const number = (der: Buffer) => BigInt(/X509v3 CRL Number: \s*(\d+)/.exec(openssl(['crl', '-inform', 'DER', '-noout', '-text'], der).stdout.toString())![1]!);
  const copy = join(dir, 'store', 'crl', 'issuing.crl');
  const served = await store.publishedCrl(1);
  t.deepEqual(readFileSync(copy), served);
  const made = await store.createCrl();
  t.true(number(made) > number(served));
  t.deepEqual(readFileSync(copy), served, 'the store\'s copy is not written by createCrl');
  t.deepEqual(JSON.parse(readFileSync(join(dir, 'store', 'crl', 'issuing.json'), 'utf8')), { number: Number(number(made)) });
  const after = await store.publishedCrl(1);
  t.true(number(after) > number(made), 'the server never serves a CRL numbered below one handed out');
  t.deepEqual(readFileSync(copy), after);
  // A copy that is not the one recorded (a write of it that failed, an older file) is re-signed, not served.
  writeFileSync(copy, served);
  const again = await store.publishedCrl(1);
  t.true(number(again) > number(after));
  t.deepEqual(await store.publishedCrl(1), again);
});

test('the PKI handler bounds the rate per address, in windows of the injected clock', async (t) => {
  const { store, clock, advance } = await clockStore(t);
  const handler = createPkiHandler({ store, rateLimit: 3, now: clock });
  const server = createServer((req, res) => {
    if (!handler(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push((await httpRequest(`http://127.0.0.1:${port}/ca/root.cer`)).status);
  t.deepEqual(codes, [200, 200, 200, 429, 429]);
  // The window is a minute of the store's clock, however long the requests took on this machine.
  advance(61_000);
  t.is((await httpRequest(`http://127.0.0.1:${port}/ca/root.cer`)).status, 200, 'a new window');
  t.is((await httpRequest(`http://127.0.0.1:${port}/elsewhere`)).status, 404, 'other paths are left to the caller');
});

test('a new passphrase re-seals every CA key: rotated issuing CAs, signers and responders', async (t) => {
  const { dir, store } = await clockStore(t);
  await store.rotateIssuing();
  await store.ocspResponder(1);
  await store.ocspResponder(2);
  await store.ocspResponder('root');
  await store.changePassphrase('another passphrase', { kdfCost: 14 });
  const reopened = await openStore(join(dir, 'store'), { passphrase: 'another passphrase', now: () => new Date('2030-01-01T00:00:01Z') });
  t.deepEqual((await checkStore(reopened)).filter((f) => f.severity !== 'info'), []);
  await reopened.profileSigner();
  await reopened.issueCertificate({ user: 'b@example.com', name: 'B', purpose: 'smime-signing' });
  t.is((await reopened.ocspResponder(2)).serial, (await store.ocspResponder(2)).serial);
});
