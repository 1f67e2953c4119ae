import test from 'ava';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { readIdentity } from '../../src/certs/import.js';
import { toPem } from '../../src/certs/pem.js';
import { generateProfile } from '../../src/profile/generate.js';
import { openStore } from '../../src/store/fs-store.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { cli, need, openssl, snapshotDir, tmp } from '../helpers/tools.js';

const data = { exchange: { host: 'mail.example.com' } };
const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

async function setup(t: import('ava').ExecutionContext) {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const o = join(dir, 'outside');
  mkdirSync(o);
  return { dir, store, storeDir: join(dir, 'store'), ca: outsideCa(o) };
}

test('imports openssl PFX files in the default (AES/PBES2) and -legacy forms with a non-ASCII password; chains go into profiles once', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, store, storeDir, ca } = await setup(t);
  for (const file of [ca.modern, ca.legacy]) {
    const r = cli(['cert', 'import', file, '--store', storeDir, '--user', 'Bob@Example.com', '--purpose', 'smime-encryption', '--password-file', ca.pwFile], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    if (file === ca.modern) t.regex(r.stderr, /Imported smime-encryption certificate [0-9a-f]+ for bob@example.com.*2 issuer/);
    else t.regex(r.stderr, /Already in the store/, 'the same certificate again is a no-op');
  }
  await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-signing' });
  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'bob@example.com', data, sign: false });
  const payloads = (profile.plist as any).PayloadContent as any[];
  const names = (type: string) => payloads.filter((p) => p.PayloadType === type).map((p) => p.PayloadDisplayName).sort();
  t.deepEqual(names('com.apple.security.root'), ['Example Corp Root CA', 'Outside Root CA']);
  t.deepEqual(names('com.apple.security.pkcs1'), ['Example Corp S/MIME Issuing CA', 'Outside Issuing CA']);
  t.is(payloads.filter((p) => p.PayloadType === 'com.apple.security.pkcs12').length, 2);
  const eas = payloads.at(-1);
  t.is(eas.EmailAddress, 'bob@example.com');
});

test('PEM certificate with its key imports too; the key stays encrypted at rest', async (t) => {
  if (!need(t, 'openssl')) return;
  const { store, ca, storeDir } = await setup(t);
  const r = await store.importIdentity(readIdentity(readFileSync(ca.pem)), { user: ca.email, purpose: 'smime-signing', chain: [] });
  t.false(r.duplicate);
  t.deepEqual(r.warnings, []);
  const keyFile = readFileSync(join(storeDir, 'certs', r.record.serial, 'key.1'), 'utf8');
  t.notRegex(keyFile, /PRIVATE KEY/);
  t.false(keyFile.includes(readFileSync(join(ca.dir, 'user.key'), 'utf8').split('\n')[1]!));
});

test('bad input ends in one clear line, exit 1, and a byte-identical store', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir, ca } = await setup(t);
  writeFileSync(join(dir, 'random.p12'), Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)));
  writeFileSync(join(dir, 'truncated.p12'), readFileSync(ca.modern).subarray(0, 900));
  writeFileSync(join(dir, 'nokey.pem'), readFileSync(ca.userPem));
  writeFileSync(join(dir, 'wrong.txt'), 'not the password', { mode: 0o600 });
  writeFileSync(join(dir, 'big.p12'), Buffer.alloc(50 * 1024 * 1024, 1));
  const before = snapshotDir(storeDir);
  const cases: [string[], RegExp][] = [
    [[ca.modern, '--password-file', 'wrong.txt'], /^error: The PKCS#12 password is wrong, or the file is damaged$/],
    [['random.p12', '--password-file', ca.pwFile], /^error: The file is not a PKCS#12, a PEM file or a DER certificate$/],
    [['truncated.p12', '--password-file', ca.pwFile], /^error: The file is not a readable PKCS#12: truncated DER$/],
    [['nokey.pem'], /^error: The file holds no private key/],
    [['big.p12', '--password-file', ca.pwFile], /^error: ".*big.p12" is larger than 10 MiB; refusing to read it$/],
  ];
  for (const [args, message] of cases) {
    const r = cli(['cert', 'import', ...args, '--store', storeDir, '--user', ca.email, '--purpose', 'smime-encryption'], { cwd: dir, env });
    t.is(r.status, 1, `${args[0]}: ${r.stderr}`);
    t.regex(r.stderr.split('\n')[0]!, message);
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const notAnAddress = cli(['cert', 'import', ca.modern, '--store', storeDir, '--user', 'bob at example', '--purpose', 'smime-encryption', '--password-file', ca.pwFile], { cwd: dir, env });
  t.is(notAnAddress.status, 1);
  t.is(notAnAddress.stderr.split('\n')[0], 'error: "bob at example" is not an email address');
  const other = cli(['cert', 'import', ca.modern, '--store', storeDir, '--user', 'carol@example.com', '--purpose', 'smime-encryption', '--password-file', ca.pwFile], { cwd: dir, env });
  t.is(other.stderr.split('\n')[0], 'error: The certificate is for "bob@example.com", not "carol@example.com"');
  t.deepEqual(snapshotDir(storeDir), before);
});

test('import policy: RSA-1024 refused; no emailProtection warns and --strict refuses; an expired certificate joins only the encryption history', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const mk = (name: string, opts: Parameters<typeof outsideCa>[1]) => {
    mkdirSync(join(dir, name));
    return outsideCa(join(dir, name), opts);
  };
  const weak = mk('weak', { bits: 1024 });
  await t.throwsAsync(store.importIdentity(readIdentity(readFileSync(weak.pem)), { user: weak.email, purpose: 'smime-encryption' }), {
    code: 'ERR_KEY_UNSUPPORTED',
    message: 'S/MIME on iOS needs RSA of 2048 bits or more; this key is rsa-1024',
  });
  const noEku = mk('noeku', { eku: false });
  await t.throwsAsync(store.importIdentity(readIdentity(readFileSync(noEku.pem)), { user: noEku.email, purpose: 'smime-encryption', strict: true }), {
    code: 'ERR_CERT_INVALID',
    message: 'Refused (--strict): the certificate has no emailProtection extended key usage',
  });
  const soft = await store.importIdentity(readIdentity(readFileSync(noEku.pem)), { user: noEku.email, purpose: 'smime-encryption' });
  t.deepEqual(soft.warnings, ['the certificate has no emailProtection extended key usage']);
  const old = mk('old', { startDate: '20200101000000Z', endDate: '20210101000000Z' });
  await t.throwsAsync(store.importIdentity(readIdentity(readFileSync(old.pem)), { user: old.email, purpose: 'smime-signing' }), { code: 'ERR_CERT_INVALID' });
  const expired = await store.importIdentity(readIdentity(readFileSync(old.pem)), { user: old.email, purpose: 'smime-encryption' });
  t.regex(expired.warnings.join(), /expired on 2021-01-01: kept in the encryption history/);
  const list = await store.listCertificates({ user: 'bob@example.com' });
  t.deepEqual(list.map((r) => r.purpose), ['smime-encryption', 'smime-encryption']);
});

test('revocation: CRL verifies with openssl crl and lists the serial with its reason; revoked certificates leave the profile', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const enc = await store.listCertificates({ purpose: 'smime-encryption' });
  await store.revokeCertificate(enc[0]!.serial, 'keyCompromise');
  const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false });
  t.deepEqual(p.encryptionSerials, [enc[1]!.serial]);
  const withRevoked = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false, includeRevoked: true });
  t.is(withRevoked.encryptionSerials.length, 2);
  const crl = cli(['crl', '--store', storeDir, '-o', 'crl.der'], { cwd: dir, env });
  t.is(crl.status, 0, crl.stderr);
  if (!need(t, 'openssl')) return;
  const chain = await store.trustChain();
  writeFileSync(join(dir, 'chain.pem'), [...chain.intermediates, ...chain.roots].map((c) => toPem(c)).join(''));
  const v = openssl(['crl', '-inform', 'DER', '-in', join(dir, 'crl.der'), '-CAfile', join(dir, 'chain.pem'), '-noout', '-text']);
  t.is(v.status, 0, v.stderr.toString());
  t.regex(v.stderr.toString(), /verify OK/);
  const text = v.stdout.toString();
  t.regex(text, new RegExp(`Serial Number: ${enc[0]!.serial.toUpperCase()}`));
  t.regex(text, /Key Compromise/);
  t.regex(text, /CRL Number/);
  t.regex(text, /Authority Key Identifier/);
});

test('verify reports a profile whose signer certificate was revoked', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data });
  writeFileSync(join(dir, 'a.mobileconfig'), p.bytes);
  t.is(cli(['verify', 'a.mobileconfig', '--store', storeDir], { cwd: dir }).status, 0);
  const signerSerial = readFileSync(join(storeDir, 'signer', 'cert.pem'), 'utf8');
  const serial = openssl(['x509', '-noout', '-serial'], signerSerial).stdout.toString().trim().split('=')[1]!;
  const r = cli(['cert', 'revoke', serial, '--store', storeDir, '--reason', 'keyCompromise'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const v = cli(['verify', 'a.mobileconfig', '--store', storeDir], { cwd: dir });
  t.is(v.status, 3);
  t.regex(v.stdout, /signer-revoked/);
  await t.throwsAsync(generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data }), { code: 'ERR_CERT_INVALID' });
});

test('user remove --revoke revokes what our CA issued, retires outside certificates and says so; the user gets no more profiles', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, store, storeDir, ca } = await setup(t);
  await store.importIdentity(readIdentity(readFileSync(ca.modern), { password: ca.password }), { user: 'alice@example.com'.replace('alice', 'bob'), purpose: 'smime-encryption' });
  await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-signing' });
  const r = cli(['user', 'remove', 'bob@example.com', '--store', storeDir, '--revoke'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /1 revoked, 1 retired/);
  t.regex(r.stderr, /cannot be revoked here/);
  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--user', 'bob@example.com', '--json'], { cwd: dir }).stdout);
  t.deepEqual(list.map((x: any) => x.status).sort(), ['retired', 'revoked']);
  const fresh = await openStore(storeDir, { passphrase: PASSPHRASE });
  await t.throwsAsync(generateProfile({ store: fresh, template: 'exchange-smime', user: 'bob@example.com', data }), {
    code: 'ERR_STORE_ENTRY_NOT_FOUND',
    message: 'User "bob@example.com" was removed: every certificate is revoked or retired',
  });
  t.is((await generateProfile({ store: fresh, template: 'exchange-smime', user: 'alice@example.com', data, sign: false })).encryptionSerials.length, 2);
});

test('renew adds a certificate and keeps the old one in the history; export gives PEM, DER and an iOS-form PKCS#12', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const r = cli(['cert', 'renew', '--store', storeDir, '--user', 'alice@example.com', '--purpose', 'smime-encryption', '--json'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const renewed = JSON.parse(r.stdout);
  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--json'], { cwd: dir }).stdout);
  t.is(list.filter((x: any) => x.purpose === 'smime-encryption').length, 3);
  const show = JSON.parse(cli(['cert', 'show', renewed.fingerprint, '--store', storeDir, '--json'], { cwd: dir }).stdout);
  t.is(show.serial, renewed.serial);
  t.deepEqual(show.emails, ['alice@example.com']);
  writeFileSync(join(dir, 'pw'), 'export-pass', { mode: 0o600 });
  const p12 = cli(['cert', 'export', renewed.serial, '--store', storeDir, '--format', 'p12', '--password-file', 'pw', '-o', 'x.p12'], { cwd: dir, env });
  t.is(p12.status, 0, p12.stderr);
  if (!need(t, 'openssl')) return;
  const info = openssl(['pkcs12', '-in', join(dir, 'x.p12'), '-info', '-noout', '-passin', 'pass:export-pass']);
  t.is(info.status, 0, info.stderr.toString());
  t.regex(info.stderr.toString(), /pbeWithSHA1And3-KeyTripleDES-CBC/);
  const pem = cli(['cert', 'export', renewed.serial, '--store', storeDir], { cwd: dir });
  t.regex(openssl(['x509', '-noout', '-fingerprint', '-sha256'], pem.stdout).stdout.toString().replace(/:/g, '').toLowerCase(), new RegExp(renewed.fingerprint));
});

test('store passphrase re-encrypts every key: the old passphrase stops working, the new one opens everything', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  writeFileSync(join(dir, 'new'), 'a new passphrase', { mode: 0o600 });
  const r = cli(['store', 'passphrase', '--store', storeDir, '--new-passphrase-file', 'new'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /Re-encrypted 6 keys/);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'a@example.com', '--name', 'A', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 1);
  const check = cli(['store', 'check', '--store', storeDir, '--passphrase-file', 'new'], { cwd: dir });
  t.is(check.status, 0, check.stdout + check.stderr);
  t.regex(check.stderr, /No errors/);
  t.false(existsSync(join(storeDir, 'signer', 'key.1')));
  t.true(existsSync(join(storeDir, 'signer', 'key.2')));
});

test('import-batch: every good row is imported, a bad row is reported with its line number, exit 1', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir, ca } = await setup(t);
  writeFileSync(
    join(ca.dir, 'manifest.csv'),
    '\uFEFFuser,file,purpose,password_file\r\nbob@example.com,modern.p12,smime-encryption,pw.txt\r\ncarol@example.com,legacy.p12,smime-encryption,pw.txt\r\nbob@example.com,legacy.p12,smime-encryption,pw.txt\r\n',
  );
  const r = cli(['cert', 'import-batch', join(ca.dir, 'manifest.csv'), '--store', storeDir, '--json'], { cwd: dir, env });
  t.is(r.status, 1, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.imported, 1);
  t.is(summary.unchanged, 1);
  t.is(summary.failed, 1);
  t.deepEqual(summary.failures, [{ line: 3, message: 'The certificate is for "bob@example.com", not "carol@example.com"' }]);
});
