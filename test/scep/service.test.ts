/**
 * The SCEP service as a library, over hostile and unusual requests. Requests are made by
 * openssl (key, PKCS#10 with challengePassword, self-signed certificate, the envelope to the
 * RA) with SCEP's signed attributes added by the test; replies are read back by openssl.
 */
import test, { type ExecutionContext } from 'ava';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { toPem } from '../../src/certs/pem.js';
import { envelope } from '../../src/cms/envelope.js';
import { createScepService, type ScepHttpResponse } from '../../src/scep/service.js';
import { initStore, type FileStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { opensslEnvelope, pkiMessage, readReply, requester } from '../helpers/scep.js';
import { need, openssl, tmp } from '../helpers/tools.js';

async function setup(t: ExecutionContext) {
  const dir = tmp(t);
  let clock = Date.parse('2026-06-01T12:00:00Z');
  const now = () => new Date(clock);
  const store = await initStore(join(dir, 'store'), { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14, now, pkiUrl: 'http://pki.example.com' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice "Al" Example, #1', purpose: 'smime-encryption' });
  const lines: string[] = [];
  const scep = createScepService({ store, now, log: (l) => lines.push(l) });
  const ra = await store.scepRa();
  const raPem = toPem(ra.certificate);
  const post = (body: Buffer) => scep({ method: 'POST', operation: 'PKIOperation', body });
  const mint = async (ttlMs?: number) => (await store.challenges.create('alice@example.com', ttlMs ? { ttlMs } : {})).token;
  return { dir, store, scep, ra, raPem, post, mint, lines, now, advance: (ms: number) => (clock += ms) };
}

function reply(t: ExecutionContext, dir: string, r: ScepHttpResponse, who: Parameters<typeof readReply>[2]) {
  t.is(r.status, 200, r.body.toString());
  t.is(r.contentType, 'application/x-pki-message');
  return readReply(dir, r.body, who);
}

test('GetCACaps and GetCACert: the capabilities, and the RA (keyEncipherment, cmcRA), the issuing CA and the root as a certs-only PKCS#7 openssl reads', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const caps = await s.scep({ method: 'GET', operation: 'GetCACaps' });
  t.deepEqual(caps.body.toString().trim().split('\n'), ['POSTPKIOperation', 'SHA-256', 'AES', 'SCEPStandard', 'Renewal']);
  const ca = await s.scep({ method: 'GET', operation: 'GetCACert' });
  t.is(ca.contentType, 'application/x-x509-ca-ra-cert');
  const printed = openssl(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], ca.body).stdout.toString();
  t.deepEqual([...printed.matchAll(/subject=CN ?= ?([^,\n]+)/g)].map((m) => m[1]), ['Example Corp SCEP RA', 'Example Corp S/MIME Issuing CA', 'Example Corp Root CA']);
  const ext = openssl(['x509', '-noout', '-ext', 'keyUsage,extendedKeyUsage'], s.raPem).stdout.toString();
  t.regex(ext, /Digital Signature, Key Encipherment/);
  t.regex(ext, /1\.3\.6\.1\.5\.5\.7\.3\.28|CMC Registration Authority/);
});

test('AES-128 with SHA-256 and 3DES with SHA-1 requests (openssl envelopes) are answered in the cipher and digest each used; the certificate is the challenge user\'s, with a name of quotes, commas and #', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  for (const [cipher, digest, want] of [['-aes128', 'sha256', 'aes-128-cbc'], ['-des3', 'sha1', 'des-ede3-cbc']] as const) {
    const who = requester(s.dir, `dev-${digest}`, { challenge: await s.mint() });
    const r = reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem, cipher), who, { digest })), who);
    t.is(r.status, '0', JSON.stringify(r));
    t.is(r.digest, digest);
    t.is(r.cipher, want);
    const cert = new X509Certificate(r.certificate!);
    t.is(cert.subject, 'CN=Alice \\"Al\\" Example\\, #1', 'node escapes the quotes and the comma; the CN is the record\'s');
    t.is(cert.subjectAltName, 'email:alice@example.com');
    // The smime-signing template, with the store's publication URLs.
    const ext = openssl(['x509', '-noout', '-ext', 'keyUsage,extendedKeyUsage,crlDistributionPoints,authorityInfoAccess'], r.certificate!).stdout.toString();
    t.regex(ext, /Key Usage: critical\n *Digital Signature\n/);
    t.regex(ext, /E-mail Protection/);
    t.regex(ext, /URI:http:\/\/pki\.example\.com\/crl\/issuing\.crl/);
    t.regex(ext, /OCSP - URI:http:\/\/pki\.example\.com\/ocsp/);
  }
  const records = await s.store.listCertificates({ user: 'alice@example.com', purpose: 'smime-signing' });
  t.is(records.length, 2);
  t.true(records.every((r) => r.keyOnDevice));
  await t.throwsAsync(s.store.getIdentity(records[0]!.serial), { code: 'ERR_CERT_INVALID', message: `Certificate ${records[0]!.serial} was enrolled by a device over SCEP: its private key is on the device, not in the store` });
});

test('refused, with the right failInfo, and the challenge kept for a good request: a weak key, an EC key, a CSR whose signature fails, no challenge; spent or expired challenges are refused', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const challenge = await s.mint();
  const send = async (who: ReturnType<typeof requester>, csr = who.csr) => reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, csr, s.raPem), who)), who);
  const weak = requester(s.dir, 'weak', { bits: 1024, challenge });
  t.like(await send(weak), { status: '2', failInfo: '2' });
  const ec = requester(s.dir, 'ec', { ec: true, challenge });
  // An EC device cannot even get an answer encrypted to it: a FAILURE, unencrypted.
  const ecReply = await s.post(pkiMessage(envelope(ec.csr, s.ra.certificate), { key: weak.key, certificate: weak.certificate }));
  t.like(readReply(s.dir, ecReply.body, weak), { status: '2', failInfo: '2' });
  const good = requester(s.dir, 'good', { challenge });
  const tampered = Buffer.from(good.csr);
  tampered[tampered.length - 5]! ^= 0xff;
  t.like(await send(good, tampered), { status: '2', failInfo: '2' });
  t.like(await send(requester(s.dir, 'none')), { status: '2', failInfo: '2' });
  t.like(await send(good), { status: '0' }, 'the challenge survived every refused request');
  t.like(await send(requester(s.dir, 'again', { challenge })), { status: '2', failInfo: '2' });
  const soon = await s.mint(60_000);
  s.advance(120_000);
  t.like(await send(requester(s.dir, 'late', { challenge: soon })), { status: '2', failInfo: '2' });
  t.true(s.lines.some((l) => /FAILURE badRequest: the challenge is expired/.test(l)));
  t.true(s.lines.some((l) => /FAILURE badRequest: S\/MIME needs RSA of 2048 bits or more, got rsa-1024$/.test(l)));
  t.false(s.lines.some((l) => l.includes(challenge) || l.includes(soon)), 'no challenge is logged');
});

test('a wrong recipient and a broken signature are badMessageCheck; a request cannot be replayed for a second certificate, but a retried one gets the same certificate again', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const who = requester(s.dir, 'dev', { challenge: await s.mint() });
  const stranger = requester(s.dir, 'stranger');
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, stranger.certPem), who)), who), { status: '2', failInfo: '1' });
  const msg = pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem), who, { transactionID: 'tx-1' });
  const broken = Buffer.from(msg);
  broken[broken.length - 3]! ^= 0x01;
  t.like(reply(t, s.dir, await s.post(broken), who), { status: '2', failInfo: '1' });
  const first = reply(t, s.dir, await s.post(msg), who);
  t.is(first.status, '0');
  const second = reply(t, s.dir, await s.post(msg), who);
  t.is(second.certificate, first.certificate, 'the same request again: the same certificate');
  t.is((await s.store.listCertificates({ purpose: 'smime-signing' })).length, 1);
});

test('renewal: a RenewalReq signed with the current device certificate gets a new one for the same user without a challenge; one signed by a stranger is badCertId', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const who = requester(s.dir, 'dev', { challenge: await s.mint() });
  const first = reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem), who)), who);
  const current = new X509Certificate(first.certificate!);
  const next = requester(s.dir, 'next');
  const asDevice = { key: who.key, certificate: current.raw };
  const renewed = reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, next.csr, s.raPem), asDevice, { messageType: 17 })), { ...who, certPem: toPem(current.raw) });
  t.is(renewed.status, '0', JSON.stringify(renewed));
  const cert = new X509Certificate(renewed.certificate!);
  t.is(cert.subjectAltName, 'email:alice@example.com');
  t.true(cert.publicKey.equals(createPublicKey(next.key)), 'the new certificate is for the key of the renewal request');
  const stranger = requester(s.dir, 'stranger');
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, next.csr, s.raPem), stranger, { messageType: 17 })), stranger), { status: '2', failInfo: '4' });
  await s.store.revokeCertificate(current.serialNumber, 'keyCompromise');
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, next.csr, s.raPem), asDevice, { messageType: 17 })), { ...who, certPem: toPem(current.raw) }), { status: '2', failInfo: '4' });
});

test('what cannot be answered is a 4xx, never a crash: garbage, BER junk, an empty or oversized body, an unknown operation or message type, a PUT', async (t) => {
  const s = await setup(t);
  for (const body of [Buffer.from('hello'), Buffer.from([0x30, 0x80, 0x00, 0x00]), Buffer.alloc(0), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])]) {
    const r = await s.post(body);
    t.is(r.status, 400, body.toString('hex'));
  }
  t.is((await s.post(Buffer.alloc(70 * 1024, 0x30))).status, 413);
  t.is((await s.scep({ method: 'GET', operation: 'GetNextCACert' })).status, 400);
  t.is((await s.scep({ method: 'PUT', operation: 'PKIOperation', body: Buffer.from('x') })).status, 405);
  t.is((await s.scep({ method: 'GET', operation: 'PKIOperation', message: '%%%' })).status, 400);
  if (!need(t, 'openssl')) return;
  const who = requester(s.dir, 'dev', { challenge: await s.mint() });
  const poll = reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem), who, { messageType: 20 })), who);
  t.like(poll, { status: '2', failInfo: '2' });
  // GET with the message in the query, base64 with '+' turned into spaces by a careless client.
  const get = await s.scep({ method: 'GET', operation: 'PKIOperation', message: pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem), who).toString('base64').replace(/\+/g, ' ') });
  t.like(reply(t, s.dir, get, who), { status: '0' });
});

test('the store records what SCEP issued: store check is clean, a passphrase change re-seals the RA and skips the keyless entries', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const who = requester(s.dir, 'dev', { challenge: await s.mint() });
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, s.raPem), who)), who), { status: '0' });
  // A device's certificate is not an identity the store can ship: issue-if-missing still issues one.
  t.true((await s.store.issueCertificateIfMissing({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })).issued);
  t.false((await s.store.issueCertificateIfMissing({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })).issued);
  const { checkStore } = await import('../../src/store/check.js');
  t.deepEqual((await checkStore(s.store)).filter((f) => f.severity !== 'info'), []);
  await s.store.changePassphrase('another passphrase of length', { kdfCost: 14 });
  const ra = await (s.store as FileStore).scepRa();
  t.is(ra.serial, s.ra.serial, 'the RA is kept across a passphrase change');
  t.deepEqual((await checkStore(s.store)).filter((f) => f.severity !== 'info'), []);
});

test('over HTTP (createScepHandler): other paths are left to the next handler; an oversized body is 413; a client past its failures in 10 minutes or its rate waits (429, Retry-After)', async (t) => {
  const s = await setup(t);
  const { createServer } = await import('node:http');
  const { createScepHandler } = await import('../../src/scep/handler.js');
  const { httpRequest } = await import('../helpers/tools.js');
  const scep = createScepHandler({ store: s.store, failureLimit: 3, rateLimit: 50, now: s.now });
  const server = createServer((req, res) => {
    if (!scep(req, res)) res.writeHead(404).end('next');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as import('node:net').AddressInfo).port}`;
  t.is((await httpRequest(`${base}/other`)).text(), 'next');
  t.is((await httpRequest(`${base}/scep?operation=GetCACaps`)).status, 200);
  t.is((await httpRequest(`${base}/scep?operation=PKIOperation`, { method: 'POST', body: Buffer.alloc(200 * 1024, 0x30) })).status, 413);
  for (let i = 0; i < 3; i++) t.is((await httpRequest(`${base}/scep?operation=PKIOperation`, { method: 'POST', body: Buffer.from('junk') })).status, 400);
  const waiting = await httpRequest(`${base}/scep?operation=GetCACaps`);
  t.is(waiting.status, 429);
  t.regex(String(waiting.headers['retry-after']), /^\d+$/);
  s.advance(11 * 60_000);
  t.is((await httpRequest(`${base}/scep?operation=GetCACaps`)).status, 200, 'the window has passed (the injected clock)');
  let last = 0;
  for (let i = 0; i < 60; i++) last = (await httpRequest(`${base}/scep?operation=GetCACaps`)).status;
  t.is(last, 429, 'past the rate limit');
});

test('after the RA renews (half its year, on the injected clock), a request encrypted to the previous RA still opens, and GetCACert names the new one', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const oldPem = s.raPem;
  s.advance(200 * 86_400_000);
  const renewed = await s.store.scepRa();
  t.not(renewed.serial, s.ra.serial, 'a new RA past half of its validity');
  const ca = await s.scep({ method: 'GET', operation: 'GetCACert' });
  t.regex(openssl(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], ca.body).stdout.toString(), /subject=CN ?= ?Example Corp SCEP RA/);
  t.true(ca.body.includes(renewed.certificate), 'GetCACert carries the new RA');
  const who = requester(s.dir, 'late', { challenge: await s.mint() });
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, who.csr, oldPem), who)), who), { status: '0' });
  const next = requester(s.dir, 'next', { challenge: await s.mint() });
  t.like(reply(t, s.dir, await s.post(pkiMessage(opensslEnvelope(s.dir, next.csr, toPem(renewed.certificate)), next)), next), { status: '0' });
});

test("generateProfile: the store's SCEP URL and a minted challenge by default; a challenge typed for the store's own server is refused; an outside server's URL and challenge are written as given and mint nothing (read back by plistlib)", async (t) => {
  if (!need(t, 'python3')) return;
  const s = await setup(t);
  const { generateProfile } = await import('../../src/profile/generate.js');
  const { python } = await import('../helpers/tools.js');
  await s.store.setScepUrl('https://profiles.example.com/scep');
  const scepOf = (xml: string) => JSON.parse(python('import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([x["PayloadContent"] for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.scep"][0]))', Buffer.from(xml)).stdout) as { URL: string; Challenge?: string };
  const base = { store: s.store, template: 'scep-smime-signing' as const, user: 'alice@example.com', sign: false };
  const ours = scepOf((await generateProfile({ ...base, data: { exchange: { host: 'mail.example.com' } } })).xml);
  t.is(ours.URL, 'https://profiles.example.com/scep');
  t.like(await s.store.challenges.peek(ours.Challenge!), { state: 'valid', link: { user: 'alice@example.com' } });
  await t.throwsAsync(generateProfile({ ...base, data: { exchange: { host: 'mail.example.com' }, scep: { challenge: 'typed-in' } } }), { code: 'ERR_INPUT_INVALID', message: 'scep.challenge is minted by the store for its own SCEP server (https://profiles.example.com/scep); give none' });
  const minted = (await s.store.challenges.list()).length;
  const outside = scepOf((await generateProfile({ ...base, data: { exchange: { host: 'mail.example.com' }, scep: { url: 'https://ndes.example.com/certsrv/mscep/mscep.dll', challenge: 'ndes-secret' } } })).xml);
  t.deepEqual([outside.URL, outside.Challenge], ['https://ndes.example.com/certsrv/mscep/mscep.dll', 'ndes-secret']);
  t.is((await s.store.challenges.list()).length, minted, 'nothing minted for an outside server');
  t.is(scepOf((await generateProfile({ ...base, data: { exchange: { host: 'mail.example.com' } }, scepChallenge: false })).xml).Challenge, undefined, 'scepChallenge: false mints none');
});
