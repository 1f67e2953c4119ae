import test from 'ava';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateProfile } from '../../src/profile/generate.js';
import { toPem } from '../../src/certs/pem.js';
import { aliceStore } from '../helpers/fixture.js';
import { need, openssl, python, tmp } from '../helpers/tools.js';

const data = { exchange: { host: 'mail.example.com' } };

/** Every payload of the signed profile, parsed by python's plistlib (an oracle we did not write). */
function plistlibPayloads(xml: Buffer) {
  const r = python(
    `import plistlib,sys,json,base64
d=plistlib.loads(sys.stdin.buffer.read())
def enc(o):
  if isinstance(o,bytes): return {'$data': base64.b64encode(o).decode()}
  raise TypeError(type(o))
print(json.dumps(d, default=enc))`,
    xml,
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as Record<string, any>;
}

test('a generated profile verifies with openssl cms, returns exactly the signed plist, and parses with plistlib', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'), '</string>&<key>"Q"');
  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data });
  const root = join(dir, 'root.pem');
  writeFileSync(root, toPem((await store.trustChain()).roots[0]!));
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', root], Buffer.from(profile.bytes));
  t.is(v.status, 0, v.stderr.toString());
  t.deepEqual(v.stdout, Buffer.from(profile.xml, 'utf8'));

  const d = plistlibPayloads(v.stdout);
  t.is(d.PayloadOrganization, '</string>&<key>"Q"');
  const types = (d.PayloadContent as any[]).map((p) => p.PayloadType);
  t.deepEqual(types, [
    'com.apple.security.root',
    'com.apple.security.pkcs1',
    'com.apple.security.pkcs12',
    'com.apple.security.pkcs12',
    'com.apple.security.pkcs12',
    'com.apple.eas.account',
  ]);
  const eas = d.PayloadContent.at(-1);
  const byUuid = new Map((d.PayloadContent as any[]).map((p) => [p.PayloadUUID, p]));
  t.is(byUuid.get(eas.SMIMESigningCertificateUUID).PayloadType, 'com.apple.security.pkcs12');
  t.is(byUuid.get(eas.SMIMEEncryptionCertificateUUID).PayloadType, 'com.apple.security.pkcs12');
  t.is(eas.EmailAddress, 'alice@example.com');
  t.is(eas.Host, 'mail.example.com');
  t.is(eas.SSL, true);
  for (const key of [
    'SMIMESigningEnabled',
    'SMIMESigningUserOverrideable',
    'SMIMESigningCertificateUUIDUserOverrideable',
    'SMIMEEncryptByDefault',
    'SMIMEEncryptByDefaultUserOverrideable',
    'SMIMEEncryptionCertificateUUIDUserOverrideable',
    'SMIMEEnableEncryptionPerMessageSwitch',
  ]) {
    t.is(typeof eas[key], 'boolean', `${key} is written explicitly`);
  }
  // Every UUID and identifier is unique and upper-case canonical.
  const all = [d, ...d.PayloadContent];
  t.is(new Set(all.map((p: any) => p.PayloadUUID)).size, all.length);
  t.is(new Set(all.map((p: any) => p.PayloadIdentifier)).size, all.length);
  for (const p of all) t.regex(p.PayloadUUID, /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/);
  // Dates, if any, have no fractional seconds; no empty strings.
  t.notRegex(profile.xml, /<date>[^<]*\.\d+Z<\/date>/);
  t.notRegex(profile.xml, /<string><\/string>/);
});

test('each pkcs12 payload opens with openssl using its Password, holds one key matching its certificate, with emailProtection and one rfc822Name', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false });
  const d = plistlibPayloads(Buffer.from(profile.xml));
  const p12s = (d.PayloadContent as any[]).filter((p) => p.PayloadType === 'com.apple.security.pkcs12');
  t.is(p12s.length, 3);
  const purposes: string[] = [];
  for (const p of p12s) {
    const file = join(dir, 'x.p12');
    writeFileSync(file, Buffer.from(p.PayloadContent.$data, 'base64'));
    const info = openssl(['pkcs12', '-in', file, '-info', '-noout', '-passin', `pass:${p.Password}`]);
    t.is(info.status, 0, info.stderr.toString());
    const infoText = info.stderr.toString();
    t.regex(infoText, /MAC: sha1/);
    t.regex(infoText, /pbeWithSHA1And3-KeyTripleDES-CBC/);
    const certPem = openssl(['pkcs12', '-in', file, '-nokeys', '-clcerts', '-passin', `pass:${p.Password}`]).stdout.toString();
    const keyPem = openssl(['pkcs12', '-in', file, '-nocerts', '-nodes', '-passin', `pass:${p.Password}`]).stdout.toString();
    t.is((keyPem.match(/BEGIN PRIVATE KEY/g) ?? []).length, 1, 'exactly one key');
    t.is((certPem.match(/BEGIN CERTIFICATE/g) ?? []).length, 1, 'exactly one certificate');
    const certMod = openssl(['x509', '-noout', '-modulus'], certPem).stdout.toString();
    const keyMod = openssl(['rsa', '-noout', '-modulus'], keyPem).stdout.toString();
    t.is(certMod, keyMod, 'key matches certificate');
    const ext = openssl(['x509', '-noout', '-ext', 'subjectAltName,extendedKeyUsage,keyUsage'], certPem).stdout.toString();
    t.regex(ext, /E-mail Protection/);
    t.deepEqual(ext.match(/email:[^\s,]+/g), ['email:alice@example.com']);
    purposes.push(/Digital Signature/.test(ext) ? 'signing' : /Key Encipherment/.test(ext) ? 'encryption' : 'other');
    t.true(new X509Certificate(certPem).checkEmail('alice@example.com') !== undefined);
  }
  t.deepEqual(purposes.sort(), ['encryption', 'encryption', 'signing']);
});

test('the encryption UUID points to the newest valid encryption identity; the history is all there', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const enc = (await store.listCertificates({ purpose: 'smime-encryption' })).sort((a, b) => b.notAfter.localeCompare(a.notAfter));
  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false });
  t.deepEqual([...profile.encryptionSerials].sort(), enc.map((r) => r.serial).sort());
  const payloads = (profile.plist as any).PayloadContent as any[];
  const eas = payloads.find((p) => p.PayloadType === 'com.apple.eas.account');
  const target = payloads.find((p) => p.PayloadUUID === eas.SMIMEEncryptionCertificateUUID);
  t.true(target.PayloadIdentifier.endsWith(enc[0]!.serial));
});

test('UUIDs are stable: the same user, template and certificates give the same UUIDs', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const a = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false });
  const b = await generateProfile({ store, template: 'exchange-smime', user: 'ALICE@example.com', data, sign: false });
  const uuids = (x: typeof a) => [x.uuid, ...((x.plist as any).PayloadContent as any[]).map((p) => p.PayloadUUID)];
  t.deepEqual(uuids(a), uuids(b));
  t.not(a.xml, b.xml, 'fresh PKCS#12 passwords each time');
});

test('--no-pkcs12-password: the payloads have no Password and the passwords come back', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false, embedPkcs12Passwords: false });
  t.notRegex(p.xml, /<key>Password<\/key>/);
  t.is(p.passwords.length, 3);
  for (const pw of p.passwords) t.true(pw.password.length >= 20);
});

test('an unknown user and a missing variable are typed errors', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  await t.throwsAsync(generateProfile({ store, template: 'exchange-smime', user: 'bob@example.com', data }), {
    code: 'ERR_STORE_ENTRY_NOT_FOUND',
    message: 'No certificates for user "bob@example.com" in the store',
  });
  await t.throwsAsync(generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com' }), {
    code: 'ERR_TEMPLATE_DATA',
    message: 'Template "exchange-smime": variable "exchange.host" is required',
  });
});

test('a value that is markup comes back as the same text and cannot add a key', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const host = 'h</string><key>SSL</key><false/><string>&amp;';
  const p = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host } }, sign: false });
  const eas = ((p.plist as any).PayloadContent as any[]).at(-1);
  t.is(eas.Host, host);
  t.is(eas.SSL, true);
});

test('a control character in a value is refused, naming the variable', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  await t.throwsAsync(
    generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'a\u0001b' } } }),
    { code: 'ERR_TEMPLATE_DATA', message: 'Template "exchange-smime": variable "exchange.host" holds a character that a property list cannot carry (a control character, a lone surrogate or U+FFFE/U+FFFF)' },
  );
});

test('an admin template given by path renders in strict mode: a missing variable is named', async (t) => {
  const dir = tmp(t);
  const store = await aliceStore(join(dir, 'store'));
  const path = join(dir, 'mine.mobileconfig.hbs');
  const head = `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>{{profile.identifier}}</string><key>PayloadUUID</key><string>{{profile.uuid}}</string><key>PayloadContent</key><array>{{#each identities.all}}<dict><key>PayloadType</key><string>com.apple.security.pkcs12</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>{{identifier}}</string><key>PayloadUUID</key><string>{{uuid}}</string><key>Password</key><string>{{password}}</string><key>PayloadContent</key><data>{{data content}}</data></dict>{{/each}}</array>`;
  writeFileSync(path, `${head}<key>X</key><string>{{site.name}}</string></dict></plist>`);
  await t.throwsAsync(generateProfile({ store, template: { path }, user: 'alice@example.com', sign: false }), {
    code: 'ERR_TEMPLATE_DATA',
    message: 'Template "mine": variable "site.name" is not defined (line 1)',
  });
  const p = await generateProfile({ store, template: { path }, user: 'alice@example.com', data: { site: { name: 'HQ' } } });
  t.is(((p.plist as any).PayloadContent as any[]).length, 3);
  t.true(p.signed);
});
