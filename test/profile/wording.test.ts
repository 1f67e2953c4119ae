/**
 * The profile as an admin reads it (issue 29): a PayloadDescription naming the organization,
 * the user and what is installed; an account name naming the organization; one identifier
 * scheme for the trust and the account profiles; generate, batch and serve name a profile's
 * file alike; each overridable by template data. Read back with python's plistlib, not ours.
 */
import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeProfile } from '../../src/profile/describe.js';
import { generateProfile } from '../../src/profile/generate.js';
import { profileIdentifier } from '../../src/profile/ids.js';
import { aliceStoreIn, PASSPHRASE } from '../helpers/fixture.js';
import { cli, need, python, snapshotDir } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

/** The top-level keys, the account's display name and every PayloadIdentifier, as plistlib reads them. */
function readWithPlistlib(xml: string) {
  const r = python(
    `import plistlib,sys,json
p=plistlib.loads(sys.stdin.buffer.read())
acc=[c for c in p['PayloadContent'] if c['PayloadType'] in ('com.apple.eas.account','com.apple.mail.managed')]
print(json.dumps({'identifier':p['PayloadIdentifier'],'description':p.get('PayloadDescription'),'organization':p['PayloadOrganization'],
 'account':(acc[0].get('PayloadDisplayName'),acc[0].get('EmailAccountDescription')) if acc else None,
 'payloads':[c['PayloadIdentifier'] for c in p['PayloadContent']]}))`,
    Buffer.from(xml),
  );
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { identifier: string; description?: string; organization: string; account: [string?, string?] | null; payloads: string[] };
}

test('the profile names the organization, the user and what it installs; the account is named for the organization; trust and account profiles share one identifier scheme', async (t) => {
  if (!need(t, 'python3')) return;
  const { store } = await aliceStoreIn(t);
  const exchange = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } }, sign: false });
  const e = readWithPlistlib(exchange.xml);
  t.is(e.identifier, 'profilesmith.example-corp.exchange-smime.alice.example.com');
  t.is(e.description, 'Example Corp S/MIME mail for Alice Example <alice@example.com>. Installs the Exchange account on mail.example.com with S/MIME signing and encryption, a signing identity, 2 encryption identities (the current one and 1 earlier one, so older encrypted mail stays readable) and the certificate authorities Example Corp Root CA and Example Corp S/MIME Issuing CA.');
  t.deepEqual(e.account, ['Example Corp Exchange', null]);
  t.true(e.payloads.every((id) => id.startsWith(`${e.identifier}.`)), 'every payload lives under the profile identifier');
  t.is(exchange.fileName, 'alice@example.com.mobileconfig');

  const imap = readWithPlistlib((await generateProfile({ store, template: 'imap-smime', user: 'alice@example.com', data: { imap: { host: 'imap.example.com' }, smtp: { host: 'smtp.example.com' } }, sign: false })).xml);
  t.is(imap.identifier, 'profilesmith.example-corp.imap-smime.alice.example.com');
  t.regex(imap.description ?? '', /^Example Corp S\/MIME mail for Alice Example <alice@example\.com>\. Installs the mail account on imap\.example\.com/);
  t.is(imap.account?.[1], 'Example Corp Mail');

  const trust = await generateProfile({ store, template: 'root-ca', sign: false });
  const r = readWithPlistlib(trust.xml);
  t.is(r.identifier, 'profilesmith.example-corp.root-ca', 'the same <prefix>.<template> scheme as the account profile');
  t.is(r.description, 'The certificate authorities of Example Corp: Example Corp Root CA and Example Corp S/MIME Issuing CA. Install this profile first: the S/MIME mail profiles of Example Corp rely on it.');
  t.is(trust.fileName, 'profilesmith.example-corp.root-ca.mobileconfig');
});

test('each wording is overridable by template data: identifierPrefix, identifier, description, the account name, the organization', async (t) => {
  if (!need(t, 'python3')) return;
  const { store } = await aliceStoreIn(t);
  const data = { identifierPrefix: 'com.acme.mail', organization: 'Acme', exchange: { host: 'mail.acme.test' } };
  const p = readWithPlistlib((await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data, sign: false })).xml);
  t.is(p.identifier, 'com.acme.mail.exchange-smime.alice.example.com');
  t.is(p.organization, 'Acme');
  t.regex(p.description ?? '', /^Acme S\/MIME mail for /, 'the description follows the organization given');
  t.deepEqual(p.account, ['Acme Exchange', null], 'the account name follows the organization given');
  t.is(readWithPlistlib((await generateProfile({ store, template: 'root-ca', data: { identifierPrefix: 'com.acme.mail' }, sign: false })).xml).identifier, 'com.acme.mail.root-ca');

  const own = readWithPlistlib(
    (await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { identifier: 'com.acme.alice', description: 'Your mail.', exchange: { host: 'h.acme.test', accountName: 'Work' } }, sign: false })).xml,
  );
  t.is(own.identifier, 'com.acme.alice');
  t.is(own.description, 'Your mail.');
  t.is(own.account?.[0], 'Work');
});

test('identifiers: a local part that had to change gets a hash, so two users never share one; the domain is kept', (t) => {
  t.regex(profileIdentifier('p.x', 'exchange-smime', 'Alice@Example.COM'), /^p\.x\.exchange-smime\.alice-[0-9a-f]{8}\.example\.com$/);
  t.regex(profileIdentifier('p.x', 'exchange-smime', 'a.b@example.com'), /^p\.x\.exchange-smime\.a-b-[0-9a-f]{8}\.example\.com$/);
  t.not(profileIdentifier('p.x', 'exchange-smime', 'a.b@example.com'), profileIdentifier('p.x', 'exchange-smime', 'a-b@example.com'));
  t.not(profileIdentifier('p.x', 't', 'alice@example.com'), profileIdentifier('p.x', 't', 'alice@example.org'));
  t.is(profileIdentifier('p.x', 't', 'alice@example.com'), 'p.x.t.alice.example.com');
});

test('describeProfile says only what the template carries', (t) => {
  const base = { organization: 'Org', user: { email: 'a@o.test' }, data: {}, authorities: ['Root'], signing: true, encryption: 1 };
  t.is(describeProfile({ ...base, payloadTypes: ['com.apple.security.pkcs12'] }), 'Org S/MIME mail for a@o.test. Installs a signing identity and an encryption identity.');
  t.is(describeProfile({ ...base, payloadTypes: [] }), undefined, 'a custom template without metadata gets none');
  t.is(describeProfile({ organization: 'Org', data: {}, signing: false, encryption: 0, authorities: ['R', 'I'], payloadTypes: ['com.apple.security.root'] }), 'The certificate authorities of Org: R and I. Install this profile first: the S/MIME mail profiles of Org rely on it.');
});

test('generate and batch name a profile file alike; a bad identifierPrefix is one line, exit 1, nothing written', async (t) => {
  const { dir, storeDir } = await aliceStoreIn(t);
  const set = ['--set', 'exchange.host=mail.example.com'];
  let r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', ...set], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.true(readdirSync(dir).includes('alice@example.com.mobileconfig'), readdirSync(dir).join(' '));
  writeFileSync(join(dir, 'users.csv'), 'email\nalice@example.com\n');
  r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', ...set], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(readdirSync(join(dir, 'out')).filter((f) => f.endsWith('.mobileconfig')), ['alice@example.com.mobileconfig']);
  t.deepEqual(readFileSync(join(dir, 'out', 'alice@example.com.mobileconfig')).subarray(0, 2), readFileSync(join(dir, 'alice@example.com.mobileconfig')).subarray(0, 2));

  const before = { store: snapshotDir(storeDir), files: readdirSync(dir).sort() };
  r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', ...set, '--set', 'identifierPrefix=com..acme', '-o', 'x.mobileconfig'], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: Template "exchange-smime": variable "identifierPrefix" must be dot-separated words of letters, digits and hyphens (com.example.mail)\n');
  t.deepEqual({ store: snapshotDir(storeDir), files: readdirSync(dir).sort() }, before);
});
