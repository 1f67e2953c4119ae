/**
 * Stores in the field: a file store and a PostgreSQL database written by the CLI of an earlier
 * commit (test/fixtures/compat, made by scripts/make-compat-fixtures.mjs, never regenerated)
 * open with today's code and do the daily work: list, generate, revoke, CRL, OCSP. On a copy
 * (the fixture is never written), on the clock of the day they were made (their certificates
 * expire; the test must not).
 */
import test, { type ExecutionContext } from 'ava';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, cpSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { generateProfile } from '../../src/profile/generate.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { openStore } from '../../src/store/open.js';
import { createPkiHandler } from '../../src/pki/handler.js';
import { toPem } from '../../src/certs/pem.js';
import { checkStore } from '../../src/store/check.js';
import type { LifecycleStore } from '../../src/store/store.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { need, openssl, ROOT, tmp } from '../helpers/tools.js';

const FIXTURES = join(ROOT, 'test', 'fixtures', 'compat');
const PASSPHRASE = 'compat fixture passphrase';
/** A day after the fixtures were made (2026-12-07): every certificate valid, the link alive. */
const NOW = new Date('2026-12-08T12:00:00Z');
const now = () => NOW;
const server = await postgres();

async function dailyWork(t: ExecutionContext, store: LifecycleStore, dir: string) {
  const records = await store.listCertificates();
  const of = (user: string) => records.filter((r) => r.user === user);
  t.is(of('alice@compat.test').length, 3, 'signing, issued encryption, imported encryption');
  t.is(of('alice@compat.test').filter((r) => r.source === 'imported').length, 1);
  t.true(of('bob@compat.test').some((r) => r.purpose === 'smime-encryption' && r.revoked?.reason === 'keyCompromise'));
  t.true(of('carol@compat.test').every((r) => r.revoked), 'carol was removed with --revoke');
  t.deepEqual((await checkStore(store as never)).filter((f) => f.severity === 'error'), [], 'store check finds nothing wrong');

  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@compat.test', data: { exchange: { host: 'mail.compat.test' } }, now });
  t.is(profile.encryptionSerials.length, 2, 'the whole encryption history, the imported one included');
  const chain = await store.trustChain();
  t.deepEqual((await verifyProfile(profile.bytes, { ca: chain.roots, now })).reasons, [], 'signed by the rotated signer, chaining to the root');

  const signing = of('alice@compat.test').find((r) => r.purpose === 'smime-signing')!;
  await store.revokeCertificate(signing.serial, 'superseded');
  if (!need(t, 'openssl')) return;
  const crl = openssl(['crl', '-inform', 'DER', '-noout', '-text'], await store.createCrl()).stdout.toString();
  t.regex(crl, new RegExp(signing.serial, 'i'));
  t.regex(crl, new RegExp(of('bob@compat.test').find((r) => r.revoked)!.serial, 'i'));
  t.true(Number(/X509v3 CRL Number: \s*(\d+)/.exec(crl)![1]) >= 2, 'numbered after the CRL the fixture published');

  // OCSP, asked by openssl's client of the PKI handler, verified at the fixture's time.
  const server = createServer(createPkiHandler({ store: store as never, now }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  writeFileSync(join(dir, 'root.pem'), chain.roots.map((c) => toPem(c)).join(''));
  writeFileSync(join(dir, 'issuing.pem'), toPem(chain.intermediates[0]!));
  // Asynchronously: the server answering it runs in this process.
  const ocsp = await promisify(execFile)('openssl', ['ocsp', '-issuer', join(dir, 'issuing.pem'), '-serial', `0x${signing.serial}`, '-url', `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp`, '-CAfile', join(dir, 'root.pem'), '-attime', String(Math.floor(NOW.getTime() / 1000)), '-validity_period', '31536000'], { encoding: 'utf8' });
  t.regex(ocsp.stdout, /: revoked/, ocsp.stdout + ocsp.stderr);
  t.regex(ocsp.stderr, /Response verify OK/);
}

/** The modes the CLI gave the store, which git does not keep: directories 0700, files 0600. */
function privateModes(path: string): void {
  chmodSync(path, 0o700);
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.isDirectory()) privateModes(join(path, e.name));
    else chmodSync(join(path, e.name), 0o600);
  }
}

test('a file store written by an earlier commit opens and does the daily work', async (t) => {
  const dir = tmp(t);
  cpSync(join(FIXTURES, 'file-store'), join(dir, 'store'), { recursive: true });
  privateModes(join(dir, 'store'));
  const store = await openStore(join(dir, 'store'), { passphrase: PASSPHRASE, now });
  await dailyWork(t, store, dir);
});

if (hasPostgres(server, 'the PostgreSQL compat tests')) {
  test('a PostgreSQL database written by an earlier commit (its pg_dump) opens and does the daily work', async (t) => {
    const dir = tmp(t);
    const url = await server.createDatabase();
    const restore = spawnSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', join(FIXTURES, 'postgres.sql')], { encoding: 'utf8' });
    t.is(restore.status, 0, restore.stderr);
    const store = await openStore(url, { passphrase: PASSPHRASE, now });
    t.teardown(() => (store as { close?: () => Promise<void> }).close?.());
    await dailyWork(t, store, dir);
  });
  test.after.always(() => server.stop());
}
