import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateProfile } from '../../src/profile/generate.js';
import { inspectProfile, REDACTED } from '../../src/profile/inspect.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { cli, need, openssl, tmp } from '../helpers/tools.js';

const data = { exchange: { host: 'mail.example.com' } };

test('inspect: signer, payloads, the UUID graph, certificates; passwords redacted unless --show-secrets', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data });
  writeFileSync(join(dir, 'a.mobileconfig'), p.bytes);
  const r = await inspectProfile(p.bytes);
  t.true(r.signed);
  t.true(r.signatureIntact);
  t.regex(r.signer!.subject, /Profile Signing/);
  t.is(r.payloads.length, 6);
  t.is(r.references.length, 2);
  t.true(r.references.every((x) => x.target !== undefined));
  const p12 = r.payloads.filter((x) => x.type === 'com.apple.security.pkcs12');
  t.true(p12.every((x) => x.secrets.Password === REDACTED && x.pkcs12 === undefined));
  t.true(p12.every((x) => x.certificates.some((c) => c.hasPrivateKey && c.emails[0] === 'alice@example.com')));

  const plain = cli(['inspect', 'a.mobileconfig', '--json'], { cwd: dir });
  t.is(plain.status, 0, plain.stderr);
  for (const pw of p.passwords) t.false(plain.stdout.includes(pw.password), 'no password in the output');
  const secret = cli(['inspect', 'a.mobileconfig', '--json', '--show-secrets'], { cwd: dir });
  for (const pw of p.passwords) t.true(secret.stdout.includes(pw.password));
  const human = cli(['inspect', 'a.mobileconfig'], { cwd: dir });
  t.regex(human.stdout, /SMIMESigningCertificateUUID -> .*\.signing\./);
});

test('sign: an existing plist (XML or binary) is signed after validation; an invalid one is refused unless --allow-invalid', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const p = await generateProfile({ store, template: 'root-ca', sign: false });
  writeFileSync(join(dir, 'root.xml'), p.xml);
  const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
  const ok = cli(['sign', 'root.xml', '--store', storeDir, '-o', 'root.mobileconfig'], { cwd: dir, env });
  t.is(ok.status, 0, ok.stderr);
  t.is(cli(['verify', 'root.mobileconfig', '--store', storeDir], { cwd: dir }).status, 0);
  writeFileSync(join(dir, 'bad.xml'), p.xml.replace('<key>TargetDeviceType</key>\n\t<integer>1</integer>', '<key>TargetDeviceType</key><string>1</string>'));
  const bad = cli(['sign', 'bad.xml', '--store', storeDir, '-o', 'bad.mobileconfig'], { cwd: dir, env });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /error: Profile is invalid: TargetDeviceType: Must be an integer/);
  t.is(cli(['sign', 'bad.xml', '--store', storeDir, '-o', 'bad.mobileconfig', '--allow-invalid'], { cwd: dir, env }).status, 0);
  if (!need(t, 'python3') || !need(t, 'openssl')) return;
  const { spawnSync } = await import('node:child_process');
  const bin = spawnSync('python3', ['-c', 'import plistlib,sys; open(sys.argv[2],"wb").write(plistlib.dumps(plistlib.load(open(sys.argv[1],"rb")), fmt=plistlib.FMT_BINARY))', join(dir, 'root.xml'), join(dir, 'root.bplist')]);
  t.is(bin.status, 0);
  t.is(cli(['sign', 'root.bplist', '--store', storeDir, '-o', 'rootb.mobileconfig'], { cwd: dir, env }).status, 0);
  const chain = cli(['ca', 'export', '--store', storeDir], { cwd: dir }).stdout;
  writeFileSync(join(dir, 'ca.pem'), chain);
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'rootb.mobileconfig'), '-CAfile', join(dir, 'ca.pem')]);
  t.is(v.status, 0, v.stderr.toString());
  t.is(v.stdout.subarray(0, 8).toString(), 'bplist00');
});

test('templates list and show', (t) => {
  const list = cli(['templates', 'list', '--json']);
  t.deepEqual(JSON.parse(list.stdout).map((x: { name: string }) => x.name), ['exchange-smime', 'imap-smime', 'root-ca', 'scep-smime-signing', 'smime-identities']);
  const show = cli(['templates', 'show', 'imap-smime']);
  t.is(show.status, 0);
  t.regex(show.stdout, /imap\.host\s+string \(required\)/);
  t.regex(show.stdout, /removal\.password/);
  t.regex(show.stdout, /Example data/);
});
