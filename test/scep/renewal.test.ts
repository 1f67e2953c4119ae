/**
 * SCEP renewal is for devices only, on the file store and on PostgreSQL: an identity shipped in
 * a profile (taken out of the profile as an attacker would: plistlib for the Password, openssl
 * pkcs12 for the key) cannot sign a RenewalReq; a device renewal supersedes the certificate it
 * renews; revoking the first of a renewal chain for keyCompromise makes `openssl ocsp` say
 * revoked for every later one; and a per-user limit on live device certificates.
 */
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesFrom, toPem } from '../../src/certs/pem.js';
import { createPkiHandler, type PkiSource } from '../../src/pki/handler.js';
import { generateProfile } from '../../src/profile/generate.js';
import { createScepService, type ScepServiceOptions } from '../../src/scep/service.js';
import { initStore } from '../../src/store/fs-store.js';
import { initPostgresStore } from '../../src/store/postgres/init.js';
import type { EnrollingStore } from '../../src/store/store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { opensslEnvelope, pkiMessage, readReply, requester, type Requester } from '../helpers/scep.js';
import { need, openssl, python, tmp } from '../helpers/tools.js';

const pg = await postgres();

type Backend = 'file' | 'postgres';

async function setup(t: ExecutionContext, backend: Backend, options: Partial<ScepServiceOptions> = {}) {
  const dir = tmp(t);
  const clock = Date.parse('2026-06-01T12:00:00Z');
  const now = () => new Date(clock);
  const init = { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14, now, pkiUrl: 'http://pki.example.com' };
  let store: EnrollingStore & PkiSource & { close?: () => Promise<void> };
  if (backend === 'file') store = await initStore(join(dir, 'store'), init);
  else {
    if (!('createDatabase' in pg)) throw new Error('no PostgreSQL');
    store = await initPostgresStore(await pg.createDatabase(), init);
    t.teardown(() => store.close?.());
  }
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
  const lines: string[] = [];
  const scep = createScepService({ store, now, log: (l) => lines.push(l), ...options });
  const raPem = toPem((await store.scepRa()).certificate);
  const post = (body: Buffer) => scep({ method: 'POST', operation: 'PKIOperation', body });
  const mint = async () => (await store.challenges.create('alice@example.com')).token;
  const send = async (who: Requester, csr: Buffer, signer: { key: Requester['key']; certificate: Buffer }, messageType = 19) => {
    const r = await post(pkiMessage(opensslEnvelope(dir, csr, raPem), signer, { messageType }));
    t.is(r.status, 200, r.body.toString());
    return readReply(dir, r.body, { ...who, certPem: toPem(signer.certificate) });
  };
  /** Enrols a new device with a minted challenge; returns its key and certificate. */
  const enroll = async (name: string) => {
    const who = requester(dir, name, { challenge: await mint() });
    const r = await send(who, who.csr, who);
    t.is(r.status, '0', JSON.stringify(r));
    return { who, cert: new X509Certificate(r.certificate!) };
  };
  /** Renews `device` with a fresh key (RenewalReq signed by the device's certificate). */
  const renew = async (device: { who: Requester; cert: X509Certificate }, name: string) => {
    const next = requester(dir, name);
    const r = await send(device.who, next.csr, { key: device.who.key, certificate: device.cert.raw }, 17);
    return { reply: r, device: r.certificate ? { who: next, cert: new X509Certificate(r.certificate) } : undefined };
  };
  return { dir, store, lines, enroll, renew, send, now };
}

/** openssl in a child process without blocking this one: the OCSP server it asks runs here. */
function opensslAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('openssl', args, { timeout: 60_000 }, (err, stdout, stderr) => resolve({ status: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** `openssl ocsp` against the store's PKI handler in a server of the test's own: good, revoked or unknown, with the reason. */
async function ocspStatus(t: ExecutionContext, dir: string, store: EnrollingStore & PkiSource, now: () => Date, certs: X509Certificate[]): Promise<string[]> {
  const handler = createPkiHandler({ store, now });
  const server = createServer((q, s) => void (handler(q, s) || s.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const chain = await store.trustChain();
  writeFileSync(join(dir, 'issuing.pem'), toPem(chain.intermediates[0]!));
  writeFileSync(join(dir, 'root.pem'), toPem(chain.roots[0]!));
  const out: string[] = [];
  for (const [i, c] of certs.entries()) {
    writeFileSync(join(dir, `leaf-${i}.pem`), c.toString());
    // The store's clock is not this machine's: the chain is verified at the store's time (-attime),
    // and the answer's thisUpdate/nextUpdate are allowed to be that far from now (-validity_period).
    const r = await opensslAsync(['ocsp', '-issuer', join(dir, 'issuing.pem'), '-cert', join(dir, `leaf-${i}.pem`), '-url', `http://127.0.0.1:${(server.address() as { port: number }).port}/ocsp`, '-CAfile', join(dir, 'root.pem'), '-attime', String(Math.floor(now().getTime() / 1000) + 60), '-validity_period', '315360000']);
    t.is(r.status, 0, r.stderr);
    const text = r.stdout;
    t.false(text.includes('WARNING'), text);
    const status = /leaf-\d+\.pem: (\w+)/.exec(text)?.[1] ?? '?';
    const reason = /Reason: (\w+)/.exec(text)?.[1];
    out.push(reason ? `${status} ${reason}` : status);
  }
  return out;
}

for (const backend of ['file', 'postgres'] as const) {
  const available = backend === 'file' || hasPostgres(pg, 'The SCEP renewal tests on PostgreSQL');
  if (!available) continue;

  test(`${backend}: a RenewalReq signed with the signing identity a profile ships is refused (badCertId) and logged; so is a PKCSReq signed with it and no challenge`, async (t) => {
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const s = await setup(t, backend);
    await s.store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-signing' });
    // The attacker's view: a leaked exchange-smime profile, its PKCS#12 and the Password beside it.
    const profile = await generateProfile({ store: s.store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } }, sign: false });
    const p12s = JSON.parse(python('import plistlib,sys,json,base64; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([[base64.b64encode(x["PayloadContent"]).decode(), x["Password"]] for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.pkcs12"]))', Buffer.from(profile.xml)).stdout) as [string, string][];
    t.true(p12s.length >= 2);
    let shipped: { key: ReturnType<typeof createPrivateKey>; certificate: Buffer } | undefined;
    for (const [b64, password] of p12s) {
      writeFileSync(join(s.dir, 'leaked.p12'), Buffer.from(b64, 'base64'));
      const pem = openssl(['pkcs12', '-in', join(s.dir, 'leaked.p12'), '-passin', `pass:${password}`, '-nodes']).stdout.toString();
      const cert = certificatesFrom(pem)[0]!;
      if (!/Digital Signature/.test(openssl(['x509', '-noout', '-ext', 'keyUsage'], toPem(cert)).stdout.toString()) || /Key Encipherment/.test(openssl(['x509', '-noout', '-ext', 'keyUsage'], toPem(cert)).stdout.toString())) continue;
      shipped = { key: createPrivateKey(/-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----/.exec(pem)![0]), certificate: cert };
    }
    t.truthy(shipped, 'the profile ships a signing identity');
    const attacker = requester(s.dir, 'attacker');
    const before = (await s.store.listCertificates({ user: 'alice@example.com' })).length;
    t.like(await s.send(attacker, attacker.csr, shipped!, 17), { status: '2', failInfo: '4' }, 'RenewalReq: badCertId');
    t.like(await s.send(attacker, attacker.csr, shipped!, 19), { status: '2', failInfo: '2' }, 'PKCSReq without a challenge: badRequest');
    t.is((await s.store.listCertificates({ user: 'alice@example.com' })).length, before, 'nothing issued');
    t.true(s.lines.some((l) => /RenewalReq .* FAILURE badCertId: certificate [0-9a-f]+ was not enrolled by a device over SCEP/.test(l)), s.lines.join('\n'));
  });

  test(`${backend}: a device renewal supersedes the certificate it renews; a chain revoked at its first for keyCompromise is revoked throughout (openssl ocsp)`, async (t) => {
    if (!need(t, 'openssl')) return;
    const s = await setup(t, backend);
    const a = await s.enroll('dev-a');
    const b = (await s.renew(a, 'dev-b')).device!;
    const c = (await s.renew(b, 'dev-c')).device!;
    t.truthy(c);
    const records = await s.store.listCertificates({ user: 'alice@example.com', purpose: 'smime-signing' });
    const bySerial = new Map(records.map((r) => [r.serial, r]));
    const serial = (x: X509Certificate) => x.serialNumber.toLowerCase();
    t.is(bySerial.get(serial(b.cert))?.renewedFrom, serial(a.cert));
    t.is(bySerial.get(serial(c.cert))?.renewedFrom, serial(b.cert));
    t.like(bySerial.get(serial(a.cert))?.revoked, { reason: 'superseded' });
    t.like(bySerial.get(serial(b.cert))?.revoked, { reason: 'superseded' });
    t.is(bySerial.get(serial(c.cert))?.revoked, undefined);
    t.deepEqual(await ocspStatus(t, s.dir, s.store, s.now, [a.cert, b.cert, c.cert]), ['revoked superseded', 'revoked superseded', 'good']);
    // A superseded certificate cannot renew again (a replayed or stolen old key).
    t.like((await s.renew(a, 'dev-a2')).reply, { status: '2', failInfo: '4' });
    const r = await s.store.revokeCertificate(serial(a.cert), 'keyCompromise');
    t.deepEqual([...(r.renewals ?? [])].sort(), [serial(b.cert), serial(c.cert)].sort());
    t.is(r.revoked.reason, 'keyCompromise');
    t.deepEqual(await ocspStatus(t, s.dir, s.store, s.now, [a.cert, b.cert, c.cert]), ['revoked keyCompromise', 'revoked keyCompromise', 'revoked keyCompromise']);
    t.like((await s.renew(c, 'dev-c2')).reply, { status: '2', failInfo: '4' }, 'the last of the chain cannot renew either');
  });

  test(`${backend}: a limit on live device certificates per user refuses enrolments past it; renewals replace, so they pass`, async (t) => {
    if (!need(t, 'openssl')) return;
    const s = await setup(t, backend, { maxDeviceCertificates: 1 });
    const a = await s.enroll('dev-a');
    const other = requester(s.dir, 'dev-b', { challenge: (await s.store.challenges.create('alice@example.com')).token });
    t.like(await s.send(other, other.csr, other), { status: '2', failInfo: '2' });
    t.true(s.lines.some((l) => l.includes('already holds 1 live device certificate(s), the most allowed; revoke one first')));
    const renewed = await s.renew(a, 'dev-a2');
    t.is(renewed.reply.status, '0', 'a renewal replaces the one it renews');
  });
}
