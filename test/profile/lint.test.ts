import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toPem } from '../../src/certs/pem.js';
import { toPkcs12 } from '../../src/certs/pkcs12.js';
import { lintProfile } from '../../src/profile/lint.js';
import { fixture, FIXTURE_NOW } from '../helpers/fixture-store.js';
import { cli, need, openssl, pythonBytes, ROOT, tmp } from '../helpers/tools.js';

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const payload = (type: string, n: number, extra = '') =>
  `<dict><key>PayloadType</key><string>${type}</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>p${n}</string><key>PayloadUUID</key><string>${U(n)}</string>${extra}</dict>`;
const profile = (payloads: string[], top = '') =>
  `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>top</string><key>PayloadUUID</key><string>${U(99)}</string>${top}<key>PayloadContent</key><array>${payloads.join('')}</array></dict></plist>`;
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const alice = fixture('alice-signing');
const p12 = (password: string) => b64(toPkcs12(alice.certificate, alice.privateKey, { password }));
const eas = (extra: string) => payload('com.apple.eas.account', 1, `<key>Host</key><string>h</string>${extra}`);
const allBools =
  '<key>SMIMESigningEnabled</key><true/><key>SMIMESigningUserOverrideable</key><false/><key>SMIMESigningCertificateUUIDUserOverrideable</key><false/>';

// One small bad profile per rule: [rule, severity, path, xml]
const table: [string, 'error' | 'warning' | 'info', string, string][] = [
  ['wrong-type', 'error', 'p1 / SSL', profile([eas('<key>SSL</key><string>true</string>')])],
  ['empty-string', 'info', 'p1 / UserName', profile([eas('<key>UserName</key><string></string>')])],
  ['empty-required', 'error', 'com.apple.security.root / PayloadIdentifier', profile([payload('com.apple.security.root', 2, `<key>PayloadContent</key><data>${b64(alice.certificate)}</data>`).replace('<string>p2</string>', '<string></string>')])],
  ['missing-key', 'error', 'p1 / PayloadContent', profile([payload('com.apple.security.root', 1)])],
  ['eas-host', 'error', 'p1 / Host', profile([payload('com.apple.eas.account', 1)])],
  ['date-format', 'error', 'date', profile([eas('')], '<key>RemovalDate</key><date>2027-01-01T00:00:00.000Z</date>')],
  ['duplicate-uuid', 'error', 'p2 / PayloadUUID', profile([eas(''), payload('com.apple.security.root', 1, `<key>PayloadContent</key><data>${b64(alice.certificate)}</data>`).replace('p1', 'p2')])],
  ['duplicate-identifier', 'error', 'p1 / PayloadIdentifier', profile([eas(''), payload('com.apple.security.root', 2, `<key>PayloadContent</key><data>${b64(alice.certificate)}</data>`).replace('p2', 'p1')])],
  ['uuid-reference', 'warning', 'p1 / SMIMESigningCertificateUUID', profile([eas(`<key>SMIMESigningCertificateUUID</key><string>${U(5)}</string>${allBools}`)])],
  ['uuid-reference', 'error', 'p1 / SMIMESigningCertificateUUID', profile([payload('com.apple.mail.managed', 1, `<key>EmailAccountType</key><string>EmailTypeIMAP</string><key>SMIMESigningCertificateUUID</key><string>${U(5)}</string>`)])],
  ['uuid-reference-kind', 'error', 'p1 / PayloadCertificateUUID', profile([eas(`<key>PayloadCertificateUUID</key><string>${U(2)}</string>`), payload('com.apple.security.root', 2, `<key>PayloadContent</key><data>${b64(alice.certificate)}</data>`)])],
  ['pkcs12-password', 'error', 'p2 / PayloadContent', profile([payload('com.apple.security.pkcs12', 2, `<key>Password</key><string>not-it</string><key>PayloadContent</key><data>${p12('right')}</data>`)])],
  ['value-not-allowed', 'warning', 'p1 / MailNumberOfPastDaysToSync', profile([eas('<key>MailNumberOfPastDaysToSync</key><integer>5</integer>')])],
  ['unknown-key', 'warning', 'p1 / SMIMESigningEnable', profile([eas('<key>SMIMESigningEnable</key><true/>')])],
  ['deprecated-key', 'warning', 'p1 / SMIMEEnablePerMessageSwitch', profile([eas('<key>SMIMEEnablePerMessageSwitch</key><true/>')])],
  ['smime-implicit', 'warning', 'p1 / SMIMEEncryptByDefault', profile([eas(`<key>SMIMEEncryptionCertificateUUID</key><string>${U(2)}</string>`), payload('com.apple.security.pkcs12', 2, `<key>Password</key><string>pw</string><key>PayloadContent</key><data>${p12('pw')}</data>`)])],
  ['password-unencrypted', 'warning', 'p1 / Password', profile([eas('<key>Password</key><string>hunter2</string>')])],
  ['not-on-ios', 'info', 'p2 / KeyIsExtractable', profile([payload('com.apple.security.pkcs12', 2, `<key>KeyIsExtractable</key><false/><key>PayloadContent</key><data>AAAA</data>`)])],
  ['not-on-ios', 'warning', 'p2 / KeyIsExtractable', profile([payload('com.apple.security.pkcs12', 2, `<key>KeyIsExtractable</key><false/><key>PayloadContent</key><data>AAAA</data>`)], '<key>TargetDeviceType</key><integer>1</integer>')],
  ['payload-version', 'error', 'p1 / PayloadVersion', profile([payload('com.example.custom', 1).replace('<integer>1</integer>', '<integer>2</integer>')])],
  ['payload-version', 'error', 'PayloadVersion', profile([payload('com.example.custom', 1).replace('<integer>1</integer>', '<real>1</real>')])],
  ['missing-key', 'error', 'p1 / PayloadVersion', profile([payload('com.example.custom', 1).replace('<key>PayloadVersion</key><integer>1</integer>', '')])],
  ['eas-nothing-enabled', 'error', 'p1 / EnableMail', profile([eas('<key>EnableMail</key><false/><key>EnableContacts</key><false/><key>EnableCalendars</key><false/><key>EnableReminders</key><false/><key>EnableNotes</key><false/>')])],
  ['scep-keysize', 'error', 'p1 / PayloadContent.Keysize', profile([payload('com.apple.security.scep', 1, '<key>PayloadContent</key><dict><key>URL</key><string>https://scep.example.com/scep</string></dict>')])],
  ['wrong-type', 'error', 'p1 / SSL', profile([eas('<key>SSL</key><data>AAAA</data>')])],
  ['certificate-invalid', 'error', 'p2 / PayloadContent', profile([payload('com.apple.security.root', 2, '<key>PayloadContent</key><data>AAAA</data>')])],
  ['malformed', 'error', '(document)', '<plist><dict><key>a</dict>'],
];

for (const [rule, severity, path, xml] of table) {
  test(`rule ${rule} (${severity}) at ${path}${xml.includes("mail.managed") ? " (IMAP)" : xml.includes("TargetDeviceType") ? " (targets iOS)" : xml.includes("<real>") ? " (real)" : xml.includes("<data>AAAA</data></dict></array>") && rule === "wrong-type" ? " (data)" : ""}`, async (t) => {
    if (rule === 'malformed') {
      await t.throwsAsync(lintProfile(Buffer.from(xml)), { code: 'ERR_PROFILE_PARSE' });
      return;
    }
    const { findings } = await lintProfile(Buffer.from(xml), { now: FIXTURE_NOW });
    t.true(findings.some((f) => f.rule === rule && f.severity === severity && f.path === path), JSON.stringify(findings, null, 1));
  });
}

test('rule pkcs12-cipher: an OpenSSL 3 default (AES/PBES2) PKCS#12 draws a warning; pkcs12-identities counts identities', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'c.pem'), toPem(alice.certificate));
  writeFileSync(join(dir, 'k.pem'), alice.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const aes = openssl(['pkcs12', '-export', '-in', join(dir, 'c.pem'), '-inkey', join(dir, 'k.pem'), '-passout', 'pass:pw']).stdout;
  const certOnly = openssl(['pkcs12', '-export', '-nokeys', '-in', join(dir, 'c.pem'), '-passout', 'pass:pw']).stdout;
  const xml = profile([
    payload('com.apple.security.pkcs12', 2, `<key>Password</key><string>pw</string><key>PayloadContent</key><data>${b64(aes)}</data>`),
    payload('com.apple.security.pkcs12', 3, `<key>Password</key><string>pw</string><key>PayloadContent</key><data>${b64(certOnly)}</data>`),
  ]);
  const { findings } = await lintProfile(Buffer.from(xml), { now: FIXTURE_NOW });
  t.true(findings.some((f) => f.rule === 'pkcs12-cipher' && f.path === 'p2 / PayloadContent' && f.severity === 'warning'));
  t.true(findings.some((f) => f.rule === 'pkcs12-identities' && f.path === 'p3 / PayloadContent' && f.severity === 'error'));
});

test('rule cert-expiring: a certificate inside 30 days of its end', async (t) => {
  const xml = profile([payload('com.apple.security.root', 2, `<key>PayloadContent</key><data>${b64(alice.certificate)}</data>`)]);
  const { findings } = await lintProfile(Buffer.from(xml), { now: new Date('2055-12-20T00:00:00Z') });
  t.true(findings.some((f) => f.rule === 'cert-expiring'));
  const later = await lintProfile(Buffer.from(xml), { now: new Date('2057-01-01T00:00:00Z') });
  t.true(later.findings.some((f) => f.rule === 'cert-expired'));
});

test('an Apple Configurator-style export reads the same as XML, binary and signed', async (t) => {
  if (!need(t, 'python3') || !need(t, 'openssl')) return;
  const dir = tmp(t);
  const xml = readFileSync(join(ROOT, 'test', 'fixtures', 'profiles', 'configurator-eas.mobileconfig'));
  const bin = pythonBytes('import plistlib,sys; sys.stdout.buffer.write(plistlib.dumps(plistlib.loads(sys.stdin.buffer.read()), fmt=plistlib.FMT_BINARY))', xml);
  const binary = bin.stdout;
  const signer = fixture('signer');
  writeFileSync(join(dir, 's.pem'), toPem(signer.certificate));
  writeFileSync(join(dir, 'k.pem'), signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'p.xml'), xml);
  const signed = openssl(['smime', '-sign', '-signer', join(dir, 's.pem'), '-inkey', join(dir, 'k.pem'), '-nodetach', '-binary', '-outform', 'der', '-md', 'sha256', '-in', join(dir, 'p.xml')]).stdout;
  const key = (r: Awaited<ReturnType<typeof lintProfile>>) => r.findings.map((f) => `${f.rule} ${f.path}`).sort();
  const a = await lintProfile(xml, { now: FIXTURE_NOW });
  t.is(a.format, 'xml');
  t.deepEqual(key(a), [
    'certificate-invalid com.apple.security.root.7F2E4C1A-0B9D-4E36-8A51-C2D3E4F50617 / PayloadContent',
    'deprecated-key com.apple.eas.account.1C3D7A2E-57F0-4B4B-9D5C-3A8E1F2B6C01 / SMIMEEnablePerMessageSwitch',
    'deprecated-key com.apple.eas.account.1C3D7A2E-57F0-4B4B-9D5C-3A8E1F2B6C01 / SMIMEEnabled',
    'uuid-reference-kind com.apple.eas.account.1C3D7A2E-57F0-4B4B-9D5C-3A8E1F2B6C01 / SMIMESigningCertificateUUID',
  ]);
  const b = await lintProfile(binary, { now: FIXTURE_NOW });
  t.is(b.format, 'binary');
  t.deepEqual(key(b), key(a).filter((k) => !k.startsWith('date-format')));
  const s = await lintProfile(signed, { now: FIXTURE_NOW });
  t.true(s.signed);
  t.deepEqual(key(s), key(a));
});

test('lint CLI: exit 0 clean, 3 with errors (or warnings under --strict), 1 for a file that is not a profile; --json is only JSON', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'bad.xml'), table[0]![3]);
  writeFileSync(join(dir, 'warn.xml'), table.find((r) => r[0] === 'unknown-key')![3]);
  writeFileSync(join(dir, 'junk.bin'), 'hello');
  t.is(cli(['lint', 'warn.xml'], { cwd: dir }).status, 0);
  t.is(cli(['lint', 'warn.xml', '--strict'], { cwd: dir }).status, 3);
  const bad = cli(['lint', 'bad.xml', '--json'], { cwd: dir });
  t.is(bad.status, 3);
  t.is(JSON.parse(bad.stdout)[0].findings[0].rule, 'wrong-type');
  t.is(cli(['lint', 'junk.bin'], { cwd: dir }).status, 1);
});
