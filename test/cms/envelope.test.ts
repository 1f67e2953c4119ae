import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toPem } from '../../src/certs/pem.js';
import { createCertificate } from '../../src/certs/x509.js';
import { generateProfile } from '../../src/profile/generate.js';
import { decryptProfile } from '../../src/profile/decrypt.js';
import { inspectProfile } from '../../src/profile/inspect.js';
import { lintProfile } from '../../src/profile/lint.js';
import { parseProfile } from '../../src/profile/parse.js';
import { fixtureStore, FIXTURE_NOW } from '../helpers/fixture-store.js';
import { cli, need, openssl, pythonBytes, tmp } from '../helpers/tools.js';

const device = (async () => {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const certificate = await createCertificate({
    subject: [['CN', 'TEST Device 42']],
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2036-01-01T00:00:00Z'),
    publicKey: pair.publicKey,
    signingKey: pair.privateKey,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
  });
  return { certificate, key: pair.privateKey };
})();

for (const cipher of ['aes-256-cbc', 'des-ede3-cbc'] as const) {
  test(`encrypted profile (${cipher}): openssl cms -decrypt opens EncryptedPayloadContent with the device key into the payload array`, async (t) => {
    const dev = await device;
    const store = await fixtureStore();
    const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } }, encryptTo: toPem(dev.certificate), cipher, now: () => FIXTURE_NOW });
    t.true(p.encrypted);
    const outer = parseProfile(p.bytes).plist as Record<string, any>;
    t.true(outer.IsEncrypted);
    t.is(outer.PayloadContent, undefined);
    t.true(outer.EncryptedPayloadContent instanceof Uint8Array);
    const outerLint = await lintProfile(p.bytes, { now: FIXTURE_NOW });
    t.deepEqual(outerLint.findings.map((f) => `${f.severity} ${f.rule}`), ['info encrypted-not-checked'], 'the outer profile lints clean, and says its payloads were not checked');
    const info = await inspectProfile(p.bytes);
    t.true(info.encrypted);
    t.deepEqual(info.recipients.map((r) => r.issuer), ['CN=TEST Device 42']);

    const plain = decryptProfile(p.bytes, dev.key, dev.certificate);
    const back = parseProfile(Buffer.from(plain)).plist as Record<string, any>;
    t.deepEqual(back.PayloadContent.map((x: any) => x.PayloadType), (p.plist as any).PayloadContent.map((x: any) => x.PayloadType));
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    t.throws(() => decryptProfile(p.bytes, other), { code: 'ERR_INPUT_INVALID', message: 'The key does not decrypt this profile' });

    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const dir = tmp(t);
    writeFileSync(join(dir, 'enc.der'), Buffer.from(outer.EncryptedPayloadContent));
    writeFileSync(join(dir, 'dev.pem'), toPem(dev.certificate));
    writeFileSync(join(dir, 'dev.key'), dev.key.export({ type: 'pkcs8', format: 'pem' }));
    const d = openssl(['cms', '-decrypt', '-inform', 'DER', '-in', join(dir, 'enc.der'), '-inkey', join(dir, 'dev.key'), '-recip', join(dir, 'dev.pem')]);
    t.is(d.status, 0, d.stderr.toString());
    const py = pythonBytes('import plistlib,sys,json; a=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([p["PayloadType"] for p in a]))', d.stdout);
    t.is(py.status, 0, py.stderr.toString());
    t.deepEqual(JSON.parse(py.stdout.toString()), ['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pkcs12', 'com.apple.security.pkcs12', 'com.apple.security.pkcs12', 'com.apple.eas.account']);
    const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', join(dir, 'enc.der')]).stdout.toString();
    t.regex(printed, cipher === 'aes-256-cbc' ? /aes-256-cbc/ : /des-ede3-cbc/);
  });
}

test('CLI: generate --encrypt-to, verify and decrypt say so and give the payloads back', async (t) => {
  const dev = await device;
  const dir = tmp(t);
  writeFileSync(join(dir, 'dev.pem'), toPem(dev.certificate));
  writeFileSync(join(dir, 'dev.key'), dev.key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'device key pw' }));
  writeFileSync(join(dir, 'pw'), 'device key pw', { mode: 0o600 });
  const { initStore } = await import('../../src/store/fs-store.js');
  const store = await initStore(join(dir, 'store'), { organization: 'Example Corp', passphrase: 'pp-long-enough', kdfCost: 14 });
  await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-encryption' });
  const env = { PROFILESMITH_PASSPHRASE: 'pp-long-enough' };
  const g = cli(['generate', 'exchange-smime', '--store', 'store', '--user', 'a@example.com', '--set', 'exchange.host=h.example.com', '--encrypt-to', 'dev.pem', '--cipher', '3des', '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(g.status, 0, g.stderr);
  const v = cli(['verify', 'a.mobileconfig', '--store', 'store', '--json'], { cwd: dir });
  t.is(v.status, 0, v.stderr);
  t.deepEqual(JSON.parse(v.stdout).encryptedTo.map((r: { issuer: string }) => r.issuer), ['CN=TEST Device 42']);
  const d = cli(['decrypt', 'a.mobileconfig', '--key', 'dev.key', '--password-file', 'pw', '--cert', 'dev.pem'], { cwd: dir });
  t.is(d.status, 0, d.stderr);
  t.regex(d.stdout, /com\.apple\.eas\.account/);
  const wrong = cli(['decrypt', 'a.mobileconfig', '--key', 'dev.key'], { cwd: dir });
  t.is(wrong.status, 1);
  t.is(wrong.stderr.split('\n')[0], 'error: "dev.key" is not a private key, or its password is wrong or missing');
});
