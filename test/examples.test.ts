/**
 * Every program in examples/ runs as a vendor would run it (importing "profilesmith", the built
 * package), and its output is checked with openssl. tsc type-checks them with the rest.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createCertificateAuthority } from '../src/certs/ca.js';
import { toPem } from '../src/certs/pem.js';
import { verifyProfile } from '../src/cms/verify.js';
import { softhsm } from './helpers/softhsm.js';
import { ROOT, need, openssl, startServer, tmp } from './helpers/tools.js';

function run(file: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'examples', file), ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    encoding: 'utf8',
    timeout: 90_000,
  });
}

test('kms-signer: an async KMS-style signer, probed once; a misconfigured one (SHA-1) refused with ERR_SIGNER_INVALID; openssl verifies', async (t) => {
  const out = tmp(t);
  const r = run('kms-signer.ts', [out]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /alice-1\.mobileconfig: verified\nalice-2\.mobileconfig: verified/);
  t.regex(r.stdout, /KMS calls: 3 \(one probe, then one per profile\)/);
  t.regex(r.stdout, /misconfigured: ERR_SIGNER_INVALID \(algorithm\): .*over SHA-1, not SHA-256/);
  if (!need(t, 'openssl')) return;
  for (const f of ['alice-1.mobileconfig', 'alice-2.mobileconfig']) {
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(out, f), '-CAfile', join(out, 'root.pem'), '-purpose', 'any', '-out', join(out, `${f}.xml`)]);
    t.is(v.status, 0, `${f}: ${v.stderr}`);
  }
});

test('generate-and-sign: a memory store, a generated and a signed profile, a tampered one refused', async (t) => {
  const out = tmp(t);
  const r = run('generate-and-sign.ts', [out]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /alice\.mobileconfig: verified/);
  t.regex(r.stdout, /elsewhere\.mobileconfig: verified; lint findings: 0/);
  t.regex(r.stdout, /tampered: valid=false/);
  t.regex(r.stdout, /nobody@example\.com: ERR_STORE_ENTRY_NOT_FOUND/);
  if (!need(t, 'openssl')) return;
  // Self-signed store CA we do not hold: openssl checks the signature and content, not the chain.
  for (const f of ['alice.mobileconfig', 'elsewhere.mobileconfig']) {
    const v = openssl(['cms', '-verify', '-noverify', '-inform', 'DER', '-in', join(out, f)]);
    t.is(v.status, 0, `${f}: ${v.stderr}`);
  }
});

test('bring-your-own-store: the SQLite store is created, reused, revokes (openssl crl verifies its CRL), and refuses a wrong passphrase in one line', (t) => {
  const out = tmp(t);
  const first = run('bring-your-own-store/main.ts', [out], { STORE_PASSPHRASE: 'example-passphrase' });
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /signed and verified, 1 encryption identity/);
  const again = run('bring-your-own-store/main.ts', [out], { STORE_PASSPHRASE: 'example-passphrase' });
  t.is(again.status, 0, again.stderr);
  t.regex(again.stdout, /1 encryption identity/, 'reused: no new certificates');
  // Revocation: the old encryption certificate leaves the profile and is on a CRL openssl verifies.
  const revoke = run('bring-your-own-store/main.ts', [out, 'revoke'], { STORE_PASSPHRASE: 'example-passphrase' });
  t.is(revoke.status, 0, revoke.stderr);
  const serial = /revoked ([0-9a-f]+) \(keyCompromise\); crl\.der lists it/.exec(revoke.stdout)?.[1];
  t.truthy(serial, revoke.stdout);
  t.regex(revoke.stdout, /signed and verified, 1 encryption identity/, 'the revoked one is left out, the new one in');
  if (need(t, 'openssl')) {
    const crl = openssl(['crl', '-inform', 'DER', '-in', join(out, 'crl.der'), '-CAfile', join(out, 'ca.pem'), '-noout', '-text']);
    t.is(crl.status, 0, crl.stderr.toString());
    t.regex(crl.stderr.toString(), /verify OK/);
    t.regex(crl.stdout.toString().replace(/\s+/g, ' '), new RegExp(`Serial Number: 0*${serial!.toUpperCase()} Revocation Date: .* CRL Reason Code: Key Compromise`, 'i'));
  }
  const wrong = run('bring-your-own-store/main.ts', [out], { STORE_PASSPHRASE: 'wrong' });
  t.is(wrong.status, 1);
  t.is(wrong.stderr.trim(), 'error: The passphrase is wrong [ERR_KEY_PASSPHRASE]');
  // The SQLite file holds no private key in clear.
  t.false(readFileSync(join(out, 'certificates.sqlite')).includes('BEGIN PRIVATE KEY'));
});

test('pkcs11-signer: a profile signed in a SoftHSM token verifies in openssl', async (t) => {
  const hsm = softhsm();
  if ('missing' in hsm) {
    t.log(`SKIPPED: ${hsm.missing}`);
    t.pass();
    return;
  }
  const dir = tmp(t);
  const ca = await createCertificateAuthority({ organization: 'Example HSM' });
  hsm.initToken('example', '2468-example');
  hsm.importKey('example', '2468-example', ca.signer.privateKey, 'profile-signer', '07');
  writeFileSync(join(dir, 'signer.pem'), toPem(ca.signer.certificate));
  writeFileSync(join(dir, 'chain.pem'), toPem(ca.intermediate.certificate));
  writeFileSync(join(dir, 'root.pem'), toPem(ca.root.certificate));
  const r = run('pkcs11-signer.ts', [join(dir, 'signer.pem'), join(dir, 'chain.pem'), dir], {
    SOFTHSM2_CONF: hsm.conf,
    PKCS11_URI: `pkcs11:token=example;object=profile-signer?module-path=${hsm.module}`,
    PKCS11_PIN: '2468-example',
  });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /signed in the token \(rsa\)/);
  const profile = readFileSync(join(dir, 'alice@example.com.mobileconfig'));
  t.true((await verifyProfile(profile, { ca: [ca.root.certificate] })).valid);
  if (!need(t, 'openssl')) return;
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'alice@example.com.mobileconfig'), '-CAfile', join(dir, 'root.pem'), '-purpose', 'any']);
  t.is(v.status, 0, v.stderr.toString());
});

test('http-handler: a plain node:http server serves a signed profile per user, 404 for others', async (t) => {
  const { base } = await startServer(t, ['--import', 'tsx', join(ROOT, 'examples', 'http-handler.ts'), '0'], {});
  const get = (path: string) =>
    new Promise<{ status: number; type: string; body: Buffer }>((resolve, reject) => {
      request(base + path, { agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    });
  const ok = await get('/profiles/alice%40example.com');
  t.is(ok.status, 200);
  t.is(ok.type, 'application/x-apple-aspen-config');
  const r = await verifyProfile(ok.body);
  t.deepEqual(r.reasons.map((x) => x.code), ['untrusted']); // signature intact; its CA lives in that process
  t.is((await get('/profiles/nobody%40example.com')).status, 404);
  t.is((await get('/elsewhere')).status, 404);
});

test('generate-and-sign: a missing OUT_DIR is made; one that cannot be is one line on stderr, not a stack trace', (t) => {
  const dir = tmp(t);
  const nested = join(dir, 'new', 'profiles');
  const made = run('generate-and-sign.ts', [nested]);
  t.is(made.status, 0, made.stderr);
  t.true(existsSync(join(nested, 'alice.mobileconfig')));
  writeFileSync(join(dir, 'a-file'), '');
  const blocked = run('generate-and-sign.ts', [join(dir, 'a-file')]);
  t.is(blocked.status, 1);
  t.is(blocked.stderr, `error: cannot write to OUT_DIR "${join(dir, 'a-file')}": it is a file, not a folder\n`);
  t.is(blocked.stdout, '');
});
