import test from 'ava';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keySigner, signProfile } from '../src/cms/sign.js';
import { toPem } from '../src/certs/pem.js';
import { generateProfile } from '../src/profile/generate.js';
import { lintProfile } from '../src/profile/lint.js';
import { listTemplates, loadTemplate } from '../src/profile/template.js';
import { counterRandom, fixture, fixtureStore, FIXTURE_NOW } from './helpers/fixture-store.js';
import { need, openssl, python, ROOT, tmp } from './helpers/tools.js';

const GOLDEN = join(ROOT, 'test', 'golden');
const update = process.env.UPDATE_GOLDEN === '1';

function compare(t: import('ava').ExecutionContext, file: string, actual: Buffer) {
  const path = join(GOLDEN, file);
  if (update || !existsSync(path)) {
    writeFileSync(path, actual);
    t.log(`wrote ${path}`);
  }
  t.deepEqual(actual, readFileSync(path), `${file} differs; review and run UPDATE_GOLDEN=1 npm test`);
}

const names = listTemplates().map((t) => t.name);
test('the built-in templates are the five documented ones', (t) => {
  t.deepEqual(names, ['exchange-smime', 'imap-smime', 'root-ca', 'scep-smime-signing', 'smime-identities']);
});

for (const name of names) {
  test(`golden: ${name} × its example data`, async (t) => {
    const template = loadTemplate(name);
    const store = await fixtureStore();
    const base = { store, template, data: template.meta.example ?? {}, sign: false, now: () => FIXTURE_NOW, random: counterRandom(name) };
    const withUser = template.meta.identities?.signing === 'none' && template.meta.identities?.encryption === 'none' ? {} : { user: 'alice@example.com' };
    const profile = await generateProfile({ ...base, ...withUser });
    compare(t, `${name}.mobileconfig`, Buffer.from(profile.xml));

    // Clean under --strict when the passwords are kept out; with them in, only that warning.
    const strict = await generateProfile({ ...base, ...withUser, embedPkcs12Passwords: false });
    t.deepEqual((await lintProfile(strict.bytes, { now: FIXTURE_NOW })).findings, []);
    const rules = new Set((await lintProfile(profile.bytes, { now: FIXTURE_NOW })).findings.map((f) => f.rule));
    t.true([...rules].every((r) => r === 'password-unencrypted'), [...rules].join());
    if (need(t, 'python3')) t.is(python('import plistlib,sys; plistlib.loads(sys.stdin.buffer.read())', Buffer.from(profile.xml)).status, 0);
  });
}

test('one byte-exact signed vector: RSA PKCS#1 v1.5 is deterministic', async (t) => {
  const template = loadTemplate('exchange-smime');
  const profile = await generateProfile({ store: await fixtureStore(), template, user: 'alice@example.com', data: template.meta.example ?? {}, sign: false, now: () => FIXTURE_NOW, random: counterRandom('exchange-smime') });
  const xml = Buffer.from(profile.xml);
  const signer = fixture('signer');
  const der = await signProfile(xml, keySigner({ key: signer.privateKey, certificate: signer.certificate, chain: [fixture('intermediate').certificate] }), { now: () => FIXTURE_NOW });
  compare(t, 'signed-vector.der', Buffer.from(der));
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'root.pem'), toPem(fixture('root').certificate));
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', join(dir, 'root.pem')], Buffer.from(der));
  t.is(v.status, 0, v.stderr.toString());
  t.deepEqual(v.stdout, xml);
});

test('profile-level options on any template: removal password, removal date, consent text, description, target device', async (t) => {
  const store = await fixtureStore();
  const data = {
    description: 'Mail signing for Alice',
    targetDeviceType: 0,
    consentText: 'I agree & accept',
    removal: { disallowed: true, password: 'un-install-me', date: '2027-06-01T12:00:00.250Z' },
  } as const;
  const p = await generateProfile({ store, template: 'smime-identities', user: 'alice@example.com', data, sign: false, now: () => FIXTURE_NOW, embedPkcs12Passwords: false });
  const top = p.plist as Record<string, any>;
  t.is(top.PayloadDescription, 'Mail signing for Alice');
  t.is(top.TargetDeviceType, 0);
  t.deepEqual(top.ConsentText, { default: 'I agree & accept' });
  t.true(top.PayloadRemovalDisallowed);
  t.true(top.HasRemovalPasscode);
  t.deepEqual(top.RemovalDate, new Date('2027-06-01T12:00:00Z'));
  t.regex(p.xml, /<date>2027-06-01T12:00:00Z<\/date>/, 'no fractional seconds');
  const removal = top.PayloadContent.find((x: any) => x.PayloadType === 'com.apple.profileRemovalPassword');
  t.is(removal.RemovalPassword, 'un-install-me');
  const rules = (await lintProfile(p.bytes, { now: FIXTURE_NOW })).findings.map((f) => f.rule);
  t.deepEqual(rules, ['password-unencrypted'], 'only the honest warning about the removal password');
  const after = await generateProfile({ store, template: 'root-ca', data: { removal: { after: 86400 } }, sign: false, now: () => FIXTURE_NOW });
  t.is((after.plist as any).DurationUntilRemoval, 86400);
  await t.throwsAsync(generateProfile({ store, template: 'root-ca', data: { targetDeviceType: 9 as never }, sign: false }), {
    code: 'ERR_TEMPLATE_DATA',
    message: 'Template "root-ca": variable "targetDeviceType" must be one of 0, 1, 2, 3, 4, 5, 6',
  });
});
