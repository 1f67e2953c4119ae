/**
 * Profiles made by tools nobody here wrote: signed by openssl (BER with indefinite lengths,
 * as Apple's tools write), and real-world payload shapes (Wi-Fi EAP-TLS, IKEv2 VPN, MDM
 * enrollment, restrictions, Apple's Profile Service) written by python's plistlib. Lint must
 * be clean where iOS is, name the precise rule where it is not, and say nothing about the
 * harmless habits of real tools.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { toPem } from '../../src/certs/pem.js';
import { toPkcs12 } from '../../src/certs/pkcs12.js';
import { lintProfile } from '../../src/profile/lint.js';
import { LINT_RULES } from '../../src/profile/rules.js';
import { fixture, FIXTURE_NOW } from '../helpers/fixture-store.js';
import { cli, need, openssl, pythonBytes, ROOT, tmp } from '../helpers/tools.js';

const U = (n: number) => `6E1F0C2A-5B3D-4C7E-9A8B-${String(n).padStart(12, '0')}`;
const alice = fixture('alice-signing');
const signer = fixture('signer');
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const data = (b: Uint8Array) => ({ $data: b64(b) });

/** A plist written by python's plistlib from a JSON description ({ $data: base64 } is <data>). */
function plistlib(value: unknown): Buffer {
  const code = `import plistlib,json,sys,base64
def conv(v):
    if isinstance(v, dict):
        if set(v) == {'$data'}: return base64.b64decode(v['$data'])
        return {k: conv(x) for k, x in v.items()}
    if isinstance(v, list): return [conv(x) for x in v]
    return v
sys.stdout.buffer.write(plistlib.dumps(conv(json.load(sys.stdin)), fmt=plistlib.FMT_XML))`;
  const r = pythonBytes(code, Buffer.from(JSON.stringify(value)));
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

const top = (payloads: unknown[], extra: Record<string, unknown> = {}) => ({
  PayloadType: 'Configuration',
  PayloadVersion: 1,
  PayloadIdentifier: 'com.example.profile',
  PayloadUUID: U(1),
  PayloadDisplayName: 'Example',
  PayloadContent: payloads,
  ...extra,
});
const base = (type: string, n: number, extra: Record<string, unknown> = {}) => ({
  PayloadType: type,
  PayloadVersion: 1,
  PayloadIdentifier: `com.example.${type}.${n}`,
  PayloadUUID: U(n),
  PayloadDisplayName: type,
  ...extra,
});
const root = (n: number, content: Uint8Array = alice.certificate) => base('com.apple.security.root', n, { PayloadContent: data(content), PayloadCertificateFileName: 'root.cer' });
const identity = (n: number) => base('com.apple.security.pkcs12', n, { Password: 'pw', PayloadContent: data(toPkcs12(alice.certificate, alice.privateKey, { password: 'pw' })), PayloadCertificateFileName: 'id.p12' });

const wifi = (anchor: string, id: string) =>
  base('com.apple.wifi.managed', 10, {
    SSID_STR: 'Corp',
    EncryptionType: 'WPA2',
    AutoJoin: true,
    PayloadCertificateUUID: id,
    EAPClientConfiguration: { AcceptEAPTypes: [13], PayloadCertificateAnchorUUID: [anchor], TLSTrustedServerNames: ['radius.example.com'] },
  });
const vpn = (cert: string) =>
  base('com.apple.vpn.managed', 11, {
    VPNType: 'IKEv2',
    UserDefinedName: 'Corp VPN',
    IKEv2: { RemoteAddress: 'vpn.example.com', LocalIdentifier: 'client.example.com', RemoteIdentifier: 'vpn.example.com', AuthenticationMethod: 'Certificate', PayloadCertificateUUID: cert },
  });
const mdm = (id: string) =>
  base('com.apple.mdm', 12, { IdentityCertificateUUID: id, Topic: 'com.apple.mgmt.External.1234', ServerURL: 'https://mdm.example.com/mdm', CheckInURL: 'https://mdm.example.com/checkin', AccessRights: 8191, SignMessage: true });
const restrictions = (extra: Record<string, unknown> = {}) => base('com.apple.applicationaccess', 13, { allowCamera: false, allowScreenShot: true, ...extra });

/** Lints bytes; returns `rule severity path` lines of the findings that are not `info`. */
async function lint(bytes: Buffer): Promise<string[]> {
  // The identities carry their Password, which lint rightly warns about in a profile that is not encrypted.
  const r = await lintProfile(bytes, { now: FIXTURE_NOW, ignore: ['password-unencrypted'] });
  return r.findings.filter((f) => f.severity !== 'info').map((f) => `${f.rule} ${f.severity} ${f.path}`).sort();
}

test('real-world shapes written by plistlib lint clean: Wi-Fi EAP-TLS, IKEv2 VPN, MDM, restrictions', async (t) => {
  if (!need(t, 'python3')) return;
  const good = plistlib(top([root(2), identity(3), wifi(U(2), U(3)), vpn(U(3)), mdm(U(3)), restrictions()]));
  t.deepEqual(await lint(good), []);
  t.deepEqual((await lintProfile(good, { now: FIXTURE_NOW })).findings.filter((f) => f.rule === 'unknown-payload-type'), [], 'every payload type is known');
});

test('the precise rule when a nested reference dangles or points at the wrong kind, or a key is wrong', async (t) => {
  if (!need(t, 'python3')) return;
  t.deepEqual(await lint(plistlib(top([root(2), identity(3), wifi(U(9), U(3))]))), [
    'uuid-reference error com.example.com.apple.wifi.managed.10 / EAPClientConfiguration.PayloadCertificateAnchorUUID[0]',
  ]);
  t.deepEqual(await lint(plistlib(top([root(2), identity(3), wifi(U(3), U(3))]))), [
    'uuid-reference-kind error com.example.com.apple.wifi.managed.10 / EAPClientConfiguration.PayloadCertificateAnchorUUID[0]',
  ], 'an anchor reference to an identity payload');
  t.deepEqual(await lint(plistlib(top([root(2), vpn(U(2))]))), ['uuid-reference-kind error com.example.com.apple.vpn.managed.11 / IKEv2.PayloadCertificateUUID']);
  t.deepEqual(await lint(plistlib(top([mdm(U(7))]))), ['uuid-reference error com.example.com.apple.mdm.12 / IdentityCertificateUUID']);
  t.deepEqual(await lint(plistlib(top([mdm(U(1))]))), ['uuid-reference error com.example.com.apple.mdm.12 / IdentityCertificateUUID'], "the profile's own UUID is not a payload");
  t.deepEqual(await lint(plistlib(top([restrictions({ allowCamera: 'no' })]))), ['wrong-type error com.example.com.apple.applicationaccess.13 / allowCamera']);
  t.deepEqual(await lint(plistlib(top([restrictions({ allowCamra: false })]))), ['unknown-key warning com.example.com.apple.applicationaccess.13 / allowCamra']);
  const ike = vpn(U(3)) as Record<string, any>;
  delete ike.IKEv2.RemoteAddress;
  t.deepEqual(await lint(plistlib(top([identity(3), ike]))), ['missing-key error com.example.com.apple.vpn.managed.11 / IKEv2.RemoteAddress'], 'a required key inside a nested dictionary');
  t.deepEqual(await lint(plistlib(top([{ ...restrictions(), PayloadVersion: 2 }]))), ['payload-version error com.example.com.apple.applicationaccess.13 / PayloadVersion']);
  // Booleans as integers are what iOS reads (NSNumber); a string is not.
  t.deepEqual(await lint(plistlib(top([restrictions({ allowCamera: 0 })]))), []);
});

test("real tools' harmless habits draw no error or warning: empty optional strings, PEM in a root payload, a payload reusing the profile identifier", async (t) => {
  if (!need(t, 'python3')) return;
  const pem = Buffer.from(toPem(alice.certificate));
  const cpanel = { ...base('com.apple.mail.managed', 5, { EmailAccountType: 'EmailTypeIMAP', IncomingMailServerHostName: 'mail.example.com', IncomingMailServerAuthentication: 'EmailAuthPassword', OutgoingMailServerHostName: 'mail.example.com', OutgoingMailServerAuthentication: 'EmailAuthPassword', IncomingMailServerUsername: 'a', OutgoingMailServerUsername: 'a', EmailAddress: 'a@example.com' }), PayloadIdentifier: 'com.example.profile' };
  const bytes = plistlib(top([root(2, pem), cpanel], { PayloadOrganization: '', PayloadDescription: '' }));
  t.deepEqual(await lint(bytes), []);
  const all = (await lintProfile(bytes, { now: FIXTURE_NOW })).findings.map((f) => `${f.rule} ${f.severity}`).sort();
  t.deepEqual(all, ['empty-string info', 'empty-string info', 'pem-in-der-payload info']);
});

test("Apple's Profile Service (over-the-air enrollment) profile lints clean; without its URL it says so", async (t) => {
  if (!need(t, 'python3')) return;
  const service = (content: Record<string, unknown>) => ({ PayloadType: 'Profile Service', PayloadVersion: 1, PayloadIdentifier: 'com.example.enroll', PayloadUUID: U(1), PayloadDisplayName: 'Enrollment', PayloadContent: content });
  t.deepEqual(await lint(plistlib(service({ URL: 'https://mdm.example.com/enroll', DeviceAttributes: ['UDID', 'IMEI', 'VERSION', 'PRODUCT'], Challenge: 'abc' }))), []);
  t.deepEqual(await lint(plistlib(service({ DeviceAttributes: ['UDID'] }))), ['profile-service error PayloadContent.URL']);
});

test('a duplicate dictionary key is a finding, not a refusal of the file', async (t) => {
  if (!need(t, 'python3')) return;
  const xml = Buffer.from(plistlib(top([restrictions()])).toString('utf8').replace('<key>allowCamera</key>', '<key>allowScreenShot</key><false/><key>allowCamera</key>'));
  const r = await lintProfile(xml, { now: FIXTURE_NOW });
  t.true(r.findings.some((f) => f.rule === 'duplicate-key' && f.severity === 'warning' && /"allowScreenShot"/.test(f.message)), JSON.stringify(r.findings));
});

/** Our generated exchange profile, unsigned, as the content openssl signs. */
function unsignedProfile(dir: string): string {
  const xml = join(dir, 'p.xml');
  writeFileSync(xml, plistlib(top([root(2), identity(3), restrictions()])));
  return xml;
}

test('profiles signed by openssl smime -stream and cms -stream (BER) verify and lint exactly like their DER twin; tampered BER is exit 3; trailing CRLF is a warning', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const xml = unsignedProfile(dir);
  writeFileSync(join(dir, 'signer.pem'), toPem(signer.certificate));
  writeFileSync(join(dir, 'signer.key'), signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const sign = (out: string, args: string[]) => {
    const r = openssl([...args, '-signer', join(dir, 'signer.pem'), '-inkey', join(dir, 'signer.key'), '-nodetach', '-binary', '-outform', 'DER', '-in', xml, '-out', join(dir, out), '-certfile', join(dir, 'chain.pem')]);
    t.is(r.status, 0, r.stderr.toString());
    return readFileSync(join(dir, out));
  };
  writeFileSync(join(dir, 'chain.pem'), toPem(fixture('intermediate').certificate));
  writeFileSync(join(dir, 'root.pem'), toPem(fixture('root').certificate));
  const der = sign('der.p7m', ['cms', '-sign']);
  const smime = sign('smime.p7m', ['smime', '-sign', '-stream']);
  const cms = sign('cms.p7m', ['cms', '-sign', '-stream']);
  t.is(der[1], 0x82, 'openssl cms -sign without -stream writes definite lengths');
  for (const ber of [smime, cms]) t.is(ber[1], 0x80, 'indefinite length: BER');
  const verify = (file: string) => cli(['verify', join(dir, file), '--ca', join(dir, 'root.pem')]);
  for (const f of ['der.p7m', 'smime.p7m', 'cms.p7m']) {
    const r = verify(f);
    t.is(r.status, 0, `${f}: ${r.stdout}${r.stderr}`);
  }
  t.regex(verify('cms.p7m').stdout, /encoding: BER/);
  const twin = await lint(der);
  t.deepEqual(await lint(smime), twin);
  t.deepEqual(await lint(cms), twin);
  t.is((await lintProfile(cms, { now: FIXTURE_NOW })).encoding, 'ber');
  t.is(cli(['inspect', join(dir, 'cms.p7m')]).status, 0);

  // Tampered: a byte of the content changed inside the BER.
  const at = cms.indexOf(Buffer.from('allowCamera'));
  t.true(at > 0);
  const tampered = Buffer.from(cms);
  tampered[at] = 'A'.charCodeAt(0) ^ tampered[at]! ^ 'a'.charCodeAt(0);
  writeFileSync(join(dir, 'tampered.p7m'), tampered);
  const bad = verify('tampered.p7m');
  t.is(bad.status, 3);
  t.regex(bad.stdout, /digest-mismatch/);
  t.true((await lintProfile(tampered, { now: FIXTURE_NOW })).findings.some((f) => f.rule === 'signature' && f.severity === 'error'));

  writeFileSync(join(dir, 'crlf.p7m'), Buffer.concat([smime, Buffer.from('\r\n')]));
  const crlf = verify('crlf.p7m');
  t.is(crlf.status, 0, crlf.stdout + crlf.stderr);
  t.regex(crlf.stdout, /warning: 2 byte\(s\) follow the signature/);
  t.deepEqual(await lint(readFileSync(join(dir, 'crlf.p7m'))), [...twin, 'trailing-bytes warning (signature)'].sort());
});

test('lint --format sarif validates against the SARIF 2.1.0 schema; --ignore drops a rule; an unknown rule is a usage error', async (t) => {
  if (!need(t, 'python3')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'bad.mobileconfig'), plistlib(top([restrictions({ allowCamera: 'no' }), mdm(U(7))])));
  writeFileSync(join(dir, 'good.mobileconfig'), plistlib(top([restrictions()])));
  writeFileSync(join(dir, 'junk.bin'), 'not a profile');
  const r = cli(['lint', 'bad.mobileconfig', 'good.mobileconfig', 'junk.bin', '--format', 'sarif'], { cwd: dir });
  t.is(r.status, 1, 'a file that is not a profile');
  const log = JSON.parse(r.stdout);
  const require = createRequire(import.meta.url);
  const Ajv = require('ajv-draft-04');
  const addFormats = require('ajv-formats');
  // The schema's patterns predate JavaScript's unicode-mode rules.
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats(ajv);
  const schema = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'sarif', 'sarif-2.1.0-rtm.5.json'), 'utf8'));
  const valid = ajv.validate(schema, log);
  t.true(valid, JSON.stringify(ajv.errors?.slice(0, 5)));
  const results = log.runs[0].results as { ruleId: string; level: string; locations: { physicalLocation: { artifactLocation: { uri: string } } }[] }[];
  t.deepEqual(results.map((x) => `${x.ruleId} ${x.level} ${x.locations[0]!.physicalLocation.artifactLocation.uri}`).sort(), ['uuid-reference error bad.mobileconfig', 'wrong-type error bad.mobileconfig']);
  t.false(log.runs[0].invocations[0].executionSuccessful);
  t.regex(log.runs[0].invocations[0].toolExecutionNotifications[0].message.text, /^junk\.bin: /);
  // The schema check is not vacuous: a broken log fails it.
  t.false(ajv.validate(schema, { ...log, version: '9.9' }));

  const ignored = cli(['lint', 'bad.mobileconfig', '--ignore', 'wrong-type', '--ignore', 'uuid-reference'], { cwd: dir });
  t.is(ignored.status, 0, ignored.stdout);
  const unknown = cli(['lint', 'bad.mobileconfig', '--ignore', 'no-such-rule'], { cwd: dir });
  t.is(unknown.status, 2);
  t.regex(unknown.stderr, /there is no rule "no-such-rule"/);
});

test('an encrypted profile says its payloads were not checked; --decrypt-key decrypts an openssl-encrypted one and lints them', async (t) => {
  if (!need(t, 'python3') || !need(t, 'openssl')) return;
  const dir = tmp(t);
  t.is(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'device.key'), '-out', join(dir, 'device.pem'), '-subj', '/CN=device', '-days', '30']).status, 0);
  // The payload array, encrypted by openssl to the device, inside a plist written by plistlib.
  const inner = plistlib([restrictions({ allowCamera: 'no' })]);
  writeFileSync(join(dir, 'inner.plist'), inner);
  const env = openssl(['cms', '-encrypt', '-binary', '-outform', 'DER', '-aes-256-cbc', '-in', join(dir, 'inner.plist'), join(dir, 'device.pem')]);
  t.is(env.status, 0, env.stderr.toString());
  const { PayloadContent: _none, ...outer } = top([]);
  writeFileSync(join(dir, 'enc.mobileconfig'), plistlib({ ...outer, EncryptedPayloadContent: data(env.stdout) }));
  const plain = cli(['lint', 'enc.mobileconfig'], { cwd: dir });
  t.is(plain.status, 0);
  t.regex(plain.stdout, /info: EncryptedPayloadContent: The payloads are encrypted, so they were not checked/);
  t.regex(plain.stdout, /payloads encrypted and not checked/);
  const opened = cli(['lint', 'enc.mobileconfig', '--decrypt-key', 'device.key', '--decrypt-cert', 'device.pem'], { cwd: dir });
  t.is(opened.status, 3, opened.stdout + opened.stderr);
  t.regex(opened.stdout, /error: com\.example\.com\.apple\.applicationaccess\.13 \/ allowCamera: Must be a boolean, not a string \[wrong-type\]/);
  t.notRegex(opened.stdout, /encrypted-not-checked/);
});

test('the README documents every lint rule with the severity it is reported with', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const [id, rule] of Object.entries(LINT_RULES)) {
    t.regex(readme, new RegExp(`^\\| \`${id}\` \\| ${rule.severity} \\| .+ \\|$`, 'm'), id);
  }
});

test('a blank S/MIME certificate UUID means "no identity": an info about the empty string, no reference finding', async (t) => {
  if (!need(t, 'python3')) return;
  const eas = base('com.apple.eas.account', 4, { Host: 'mail.example.com', SMIMESigningCertificateUUID: '', SMIMESigningEnabled: false });
  const r = await lintProfile(plistlib(top([eas])), { now: FIXTURE_NOW });
  t.deepEqual(r.findings.map((f) => `${f.rule} ${f.severity} ${f.path}`), ['empty-string info com.example.com.apple.eas.account.4 / SMIMESigningCertificateUUID']);
});

test('decrypt and inspect read an encrypted profile that openssl signed in BER', async (t) => {
  if (!need(t, 'python3') || !need(t, 'openssl')) return;
  const dir = tmp(t);
  t.is(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'device.key'), '-out', join(dir, 'device.pem'), '-subj', '/CN=device', '-days', '30']).status, 0);
  writeFileSync(join(dir, 'inner.plist'), plistlib([restrictions()]));
  const env = openssl(['cms', '-encrypt', '-binary', '-outform', 'DER', '-aes-256-cbc', '-stream', '-in', join(dir, 'inner.plist'), join(dir, 'device.pem')]);
  t.is(env.stdout[1], 0x80, 'the EnvelopedData is BER too');
  const { PayloadContent: _none, ...outer } = top([]);
  writeFileSync(join(dir, 'enc.xml'), plistlib({ ...outer, EncryptedPayloadContent: data(env.stdout) }));
  writeFileSync(join(dir, 'signer.pem'), toPem(signer.certificate));
  writeFileSync(join(dir, 'signer.key'), signer.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  t.is(openssl(['cms', '-sign', '-stream', '-nodetach', '-binary', '-outform', 'DER', '-in', join(dir, 'enc.xml'), '-signer', join(dir, 'signer.pem'), '-inkey', join(dir, 'signer.key'), '-out', join(dir, 'enc.p7m')]).status, 0);
  const plain = cli(['decrypt', 'enc.p7m', '--key', 'device.key', '--cert', 'device.pem'], { cwd: dir });
  t.is(plain.status, 0, plain.stderr);
  t.regex(plain.stdout, /<key>allowCamera<\/key>\s*<false\/>/);
  const inspected = cli(['inspect', 'enc.p7m', '--json'], { cwd: dir });
  t.is(inspected.status, 0, inspected.stderr);
});
