/**
 * Messages that say what is wrong and what to do next, in one line (issue "Messages that do not
 * say what to do next"): one test per bullet, through the CLI as a process, each asserting the
 * exit code, the exact line, and that nothing was written or lost (a snapshot before and after).
 */
import test from 'ava';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, aliceStoreIn, PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { createServer, type Server } from 'node:net';
import { BIN, cli, need, openssl, snapshotDir, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

const store = aliceStoreIn;

/** A profile carrying `oroot.pem` in a pkcs1 payload, signed by openssl with user.pem (its chain in the signature). */
function outsideProfile(dir: string): string {
  const der = openssl(['x509', '-in', join(dir, 'oroot.pem'), '-outform', 'DER']).stdout;
  const xml = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict>
<key>PayloadContent</key><array><dict>
<key>PayloadContent</key><data>${der.toString('base64')}</data>
<key>PayloadIdentifier</key><string>com.example.root</string>
<key>PayloadType</key><string>com.apple.security.pkcs1</string>
<key>PayloadUUID</key><string>0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0</string>
<key>PayloadVersion</key><integer>1</integer>
</dict></array>
<key>PayloadDisplayName</key><string>Outside</string>
<key>PayloadIdentifier</key><string>com.example.outside</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>1F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0</string>
<key>PayloadVersion</key><integer>1</integer>
</dict></plist>
`;
  writeFileSync(join(dir, 'plain.plist'), xml);
  const signed = openssl(['cms', '-sign', '-nodetach', '-binary', '-outform', 'DER', '-in', join(dir, 'plain.plist'), '-signer', join(dir, 'user.pem'), '-inkey', join(dir, 'user.key'), '-certfile', join(dir, 'chain.pem'), '-out', join(dir, 'p.mobileconfig')]);
  if (signed.status !== 0) throw new Error(signed.stderr.toString());
  return join(dir, 'p.mobileconfig');
}

const prediction = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith('to show as Verified it needs:'));

test('verify: a root the profile carries never makes the prediction "Verified", even when given as --ca', (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  outsideCa(dir);
  outsideProfile(dir);
  const before = snapshotDir(dir);
  const r = cli(['verify', 'p.mobileconfig', '--ca', 'oroot.pem'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  t.deepEqual(prediction(r.stdout), [
    'to show as Verified it needs: the root "CN=Outside Root CA, O=Outside" on the device first (the profile carries it, but iOS does not trust a root by the profile it comes in: install the trust profile first): until then iOS shows it as Not Verified',
  ]);
  t.deepEqual(snapshotDir(dir), before);
});

test('verify: a signer that expired is never predicted "Verified", whatever trusts its root', (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  outsideCa(dir, { startDate: '20200101000000Z', endDate: '20210101000000Z' });
  outsideProfile(dir);
  // The device is told to trust the issuing CA (--ca), which the profile does not carry.
  const before = snapshotDir(dir);
  const r = cli(['verify', 'p.mobileconfig', '--ca', 'oint.pem'], { cwd: dir });
  t.is(r.status, 3);
  t.is(r.stderr, '');
  t.deepEqual(prediction(r.stdout), [
    'to show as Verified it needs: nothing on the device will do: the signer certificate "CN=Outside User" expired on 2021-01-01T00:00:00.000Z, so iOS shows it as Not Verified; sign it again with a valid signer (profilesmith sign)',
  ]);
  t.deepEqual(snapshotDir(dir), before);
});

test('verify --store: a profile of the store carries its root, so the prediction asks for the trust profile first', async (t) => {
  const { dir, storeDir } = await store(t);
  t.is(cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'p.mobileconfig'], { cwd: dir, env }).status, 0);
  const before = snapshotDir(dir);
  const r = cli(['verify', 'p.mobileconfig', '--store', storeDir], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(prediction(r.stdout), [
    'to show as Verified it needs: the root "CN=Example Corp Root CA, O=Example Corp" on the device first (the profile carries it, but iOS does not trust a root by the profile it comes in: install the trust profile first): until then iOS shows it as Not Verified',
  ]);
  t.deepEqual(snapshotDir(dir), before);
});

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const scep = (inner: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>top</string><key>PayloadUUID</key><string>${U(99)}</string><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.security.scep</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>p1</string><key>PayloadUUID</key><string>${U(1)}</string><key>PayloadContent</key><dict><key>URL</key><string>https://scep.example.com/scep</string><key>Keysize</key><integer>2048</integer>${inner}</dict></dict></array></dict></plist>`;

test('lint: GetCACaps, which iOS reads, is known with its type: an array passes, a string is the error iOS makes of it', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'ok.xml'), scep('<key>GetCACaps</key><array><string>POSTPKIOperation</string><string>SHA-256</string></array>'));
  writeFileSync(join(dir, 'bad.xml'), scep('<key>GetCACaps</key><string>POSTPKIOperation</string>'));
  const before = snapshotDir(dir);
  const ok = cli(['lint', 'ok.xml', '--strict'], { cwd: dir });
  t.is(ok.status, 0, ok.stdout + ok.stderr);
  t.notRegex(ok.stdout, /unknown-key/);
  const bad = cli(['lint', 'bad.xml'], { cwd: dir });
  t.is(bad.status, 3);
  t.is(bad.stdout, 'bad.xml: error: p1 / PayloadContent.GetCACaps: Must be an array, not a string [wrong-type]\n');
  t.deepEqual(snapshotDir(dir), before);
});

test('lint: <true/> where the schema says integer is a warning (iOS reads it as 1), not an error', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'p.xml'), scep('<key>Retries</key><true/>'));
  const before = snapshotDir(dir);
  const r = cli(['lint', 'p.xml'], { cwd: dir });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.stdout, 'p.xml: warning: p1 / PayloadContent.Retries: A boolean where an integer is expected: iOS reads it as 1; write <integer>1</integer> if that is meant [wrong-type]\n');
  t.is(cli(['lint', 'p.xml', '--strict'], { cwd: dir }).status, 3);
  t.deepEqual(snapshotDir(dir), before);
});

test('a wrong passphrase names where it came from and what to fix there, one line, store untouched', async (t) => {
  const { dir, storeDir } = await store(t);
  writeFileSync(join(dir, 'pw'), 'not the passphrase\n', { mode: 0o600 });
  const issue = ['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing'];
  const wrong = `error: The passphrase for the store at "${storeDir}" is wrong`;
  const cases: [string[], { env?: Record<string, string>; input?: string }, string][] = [
    [[], { env: { PROFILESMITH_PASSPHRASE: 'not the passphrase' } }, "it came from PROFILESMITH_PASSPHRASE; set that to the store's passphrase (or unset it to be asked)"],
    [['--passphrase-file', 'pw'], { env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } }, `it was read from --passphrase-file "pw"; put the store's passphrase in that file`],
    [['--passphrase-file', '-'], { input: 'not the passphrase\n' }, "it was read from stdin (--passphrase-file -); send the store's passphrase there"],
    [[], { env: { PROFILESMITH_PASSPHRASE_FILE: join(dir, 'pw') } }, `it was read from PROFILESMITH_PASSPHRASE_FILE ("${join(dir, 'pw')}"); put the store's passphrase in that file`],
  ];
  const before = snapshotDir(storeDir);
  for (const [extra, options, advice] of cases) {
    const r = cli([...issue, ...extra], { cwd: dir, ...options });
    t.is(r.status, 1, extra.join(' '));
    t.is(r.stderr, `${wrong}: ${advice}\n`);
  }
  t.deepEqual(snapshotDir(storeDir), before);
});

test('link create without --base-url or --template is refused (exit 2) with what to add; no link is made', async (t) => {
  const { dir, storeDir } = await store(t);
  const base = ['link', 'create', '--store', storeDir, '--user', 'alice@example.com'];
  const url = 'https://profiles.example.com';
  const template = ['--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'];
  const needsUrl = '--base-url URL (the address devices reach profilesmith serve at; serve prints it when it starts)';
  const needsTemplate = "--template NAME (serve's template, with serve's --set/--data, so that the user's profile is made and checked before the link goes out)";
  const before = snapshotDir(storeDir);
  const cases: [string[], string][] = [
    [[], `error: link create needs ${needsUrl} and ${needsTemplate}\n`],
    [template, `error: link create needs ${needsUrl}\n`],
    [['--base-url', url], `error: link create needs ${needsTemplate}\n`],
  ];
  for (const [extra, line] of cases) {
    const r = cli([...base, ...extra], { cwd: dir, env });
    t.is(r.status, 2, extra.join(' '));
    t.is(r.stderr, line);
    t.is(r.stdout, '');
  }
  t.deepEqual(snapshotDir(storeDir), before);
  // bob holds only a signing certificate: exchange-smime needs an encryption one too, so no link for him.
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'bob@example.com', '--name', 'Bob', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);
  const withBob = snapshotDir(storeDir);
  const bob = cli(['link', 'create', '--store', storeDir, '--user', 'bob@example.com', '--base-url', url, ...template], { cwd: dir, env });
  t.is(bob.status, 1);
  t.is(bob.stderr, 'error: User "bob@example.com" has no valid smime-encryption certificate\nhint: Issue one (`profilesmith cert issue --user bob@example.com --purpose smime-encryption`) or import one (`profilesmith cert import`); `profilesmith cert list --user bob@example.com` shows what the user has\n');
  t.deepEqual(snapshotDir(storeDir), withBob);
  const ok = cli([...base, '--base-url', url, ...template], { cwd: dir, env });
  t.is(ok.status, 0, ok.stderr);
  t.regex(ok.stdout, /^https:\/\/profiles\.example\.com\/p\/\S+\n$/);
});

test('a Handlebars error says which tag, on which line, and what to write; nothing is written', async (t) => {
  const { dir, storeDir } = await store(t);
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<plist version="1.0">', '<dict>', ...Array.from({ length: 20 }, (_, i) => `<!-- line ${i + 4} -->`), '{{#if organization}}', '<key>PayloadOrganization</key><string>{{organization}}</string>', '</dict>', '</plist>', ''];
  writeFileSync(join(dir, 'unclosed.mobileconfig.hbs'), lines.join('\n'));
  writeFileSync(join(dir, 'stray.mobileconfig.hbs'), '<plist>\n{{/if}}\n</plist>\n');
  writeFileSync(join(dir, 'open.mobileconfig.hbs'), '<plist>\n<string>{{organization</string>\n</plist>\n');
  const before = snapshotDir(dir);
  const cases: [string, string][] = [
    ['unclosed', 'line 24: {{#if}} is never closed; add {{/if}} where its block ends'],
    ['stray', 'line 2: {{/if}} closes no block; remove it, or open the block with {{#if}}'],
    ['open', 'line 2: "{{organization</string" is not closed; end the expression with }}'],
  ];
  for (const [name, detail] of cases) {
    const r = cli(['generate', `./${name}.mobileconfig.hbs`, '--store', storeDir, '--user', 'alice@example.com', '-o', 'out.mobileconfig'], { cwd: dir, env });
    t.is(r.status, 1, name);
    t.is(r.stderr, `error: Template "${name}" has a syntax error: ${detail}\n`);
  }
  t.deepEqual(snapshotDir(dir), before);
});

/** Holds a port of 127.0.0.1 for the test (the kernel keeps it bound while spawnSync blocks this process). */
async function takenPort(t: import('ava').ExecutionContext): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return (server.address() as { port: number }).port;
}

test('serve: users who cannot have a profile are one warning line, not one each; the server still starts', async (t) => {
  const { storeDir } = await store(t);
  for (const n of [1, 2, 3, 4]) {
    t.is(cli(['cert', 'issue', '--store', storeDir, '--user', `a${n}@example.com`, '--name', `A${n}`, '--purpose', 'smime-signing'], { env }).status, 0);
  }
  const before = snapshotDir(storeDir);
  const server = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0'], env);
  const log = await server.logged(/Serving exchange-smime/);
  t.deepEqual(log.split('\n').filter((l) => l.startsWith('warning:')), [
    'warning: 4 users cannot have a "exchange-smime" profile now (first: User "a1@example.com" has no valid smime-encryption certificate); their links fail until they hold what the template needs: see `profilesmith user list`',
    'warning: serving plain HTTP: put a TLS reverse proxy in front; profiles carry identities',
  ]);
  t.deepEqual(snapshotDir(storeDir), before);
});

test('serve: a missing --tls-cert is the one line, found before the store is opened or any profile tried', async (t) => {
  const { dir, storeDir } = await store(t);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'a1@example.com', '--name', 'A1', '--purpose', 'smime-signing'], { env }).status, 0);
  const before = snapshotDir(storeDir);
  const r = cli(['serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-cert', 'nope.pem', '--tls-key', 'nope.key', '--listen', '127.0.0.1:0'], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: --tls-cert: Cannot read "nope.pem": no such file; give the PEM file of the server\'s TLS certificate (or serve with --tls-from-store)\n');
  t.deepEqual(snapshotDir(storeDir), before);
});

test('pki serve and serve --scep: a port in use is found before anything is written to the store', async (t) => {
  const { dir, storeDir } = await store(t);
  const port = await takenPort(t);
  const before = snapshotDir(storeDir);
  const line = `error: Cannot listen on 127.0.0.1:${port}: the port is in use; stop what listens there, or pick another port with --listen HOST:PORT\n`;
  const pki = cli(['pki', 'serve', '--store', storeDir, '--listen', `127.0.0.1:${port}`], { cwd: dir, env });
  t.is(pki.status, 1);
  t.is(pki.stderr, line);
  const serve = cli(['serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--scep', '--listen', `127.0.0.1:${port}`], { cwd: dir, env });
  t.is(serve.status, 1);
  t.is(serve.stderr, line);
  t.deepEqual(snapshotDir(storeDir), before);
});

test('a bad duration is a usage error (exit 2) naming the flag and the form, before anything is written', async (t) => {
  const { dir, storeDir } = await store(t);
  const before = snapshotDir(storeDir);
  const form = 'write a whole number and a unit: s, m, h, d or w (90m, 24h, 30d, 2w)';
  const cases: [string[], string][] = [
    [['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', 'https://p.example.com', '--template', 'exchange-smime', '--set', 'exchange.host=m.example.com', '--ttl', '3 days'], `error: --ttl: "3 days" is not a duration like 30d, 24h or 90m; ${form}`],
    [['crl', '--store', storeDir, '-o', 'crl.der', '--next-update', '1y'], `error: --next-update: "1y" is not a duration like 30d, 24h or 90m; ${form}`],
    [['cert', 'list', '--store', storeDir, '--expiring', 'soon'], `error: --expiring: "soon" is not a duration like 30d, 24h or 90m; ${form}`],
    [['pki', 'serve', '--store', storeDir, '--listen', '127.0.0.1:0', '--crl-validity', '0d'], `error: --crl-validity: "0d" must be longer than zero; ${form}`],
  ];
  for (const [args, line] of cases) {
    const r = cli(args, { cwd: dir, env });
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr, `${line}\n`);
  }
  t.deepEqual(snapshotDir(storeDir), before);
  t.false(readdirSync(dir).includes('crl.der'));
});

test('one encryption identity is "1 encryption identity"', async (t) => {
  const { dir, storeDir } = await store(t);
  // Alice holds two encryption certificates, one of them short-lived: revoke the other, so one is left.
  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--user', 'alice@example.com', '--json'], { cwd: dir, env }).stdout) as { serial: string; purpose: string }[];
  const enc = list.filter((r) => r.purpose === 'smime-encryption');
  t.is(cli(['cert', 'revoke', enc[0]!.serial, '--store', storeDir], { cwd: dir, env }).status, 0);
  const before = snapshotDir(storeDir);
  const r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /^Wrote .*a\.mobileconfig \(signed; signing identity [0-9a-f]+, 1 encryption identity\)\n$/);
  t.deepEqual(snapshotDir(storeDir), before);
});

test('the CRL hint after a revocation runs as printed, and publishes the CRL', async (t) => {
  const { dir } = await store(t);
  const list = JSON.parse(cli(['cert', 'list', '--store', 'store', '--json'], { cwd: dir, env }).stdout) as { serial: string }[];
  const r = cli(['cert', 'revoke', list[0]!.serial, '--store', 'store'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const hint = r.stderr.split('\n')[1]!;
  t.is(hint, 'Publish the CRL: profilesmith crl --store store --ca issuing -o issuing.crl');
  const command = hint.slice('Publish the CRL: profilesmith '.length).split(' ');
  const crl = cli(command, { cwd: dir, env });
  t.is(crl.status, 0, crl.stderr);
  t.true(readdirSync(dir).includes('issuing.crl'));
  if (need(t, 'openssl')) t.regex(openssl(['crl', '-inform', 'DER', '-in', join(dir, 'issuing.crl'), '-noout', '-text']).stdout.toString(), new RegExp(list[0]!.serial.toUpperCase().slice(0, 8)));
});

test('did you mean: a mistyped flag (exit 2) and a mistyped --set key name the one meant; nothing is written', async (t) => {
  const { dir, storeDir } = await store(t);
  const before = snapshotDir(dir);
  const flag = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '--outt', 'a.mobileconfig'], { cwd: dir, env });
  t.is(flag.status, 2);
  t.is(flag.stderr, 'error: Unknown argument: --outt (did you mean --out?); `profilesmith generate exchange-smime --help` lists the options\n');
  const two = cli(['cert', 'list', '--store', storeDir, '--jsn', '--usr', 'alice@example.com'], { cwd: dir, env });
  t.is(two.status, 2);
  t.is(two.stderr, 'error: Unknown arguments: --jsn, --usr (did you mean --json for --jsn, --user for --usr?); `profilesmith cert list --help` lists the options\n');
  const set = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.hots=mail.example.com', '-o', 'a.mobileconfig'], { cwd: dir, env });
  // A typo of a required variable is the whole story: one line, a usage error (it was a warning and then "exchange.host is required").
  t.is(set.status, 2);
  t.is(set.stderr, 'error: --set exchange.hots: template "exchange-smime" has no such variable; did you mean exchange.host? (it is required: --set exchange.host=…)\n');
  // A typo of an optional one is warned about, and the profile is made without it.
  const optional = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '--set', 'exchange.sl=false', '-o', '-'], { cwd: dir, env });
  t.is(optional.status, 0, optional.stderr);
  t.is(optional.stderr.split('\n')[0], 'warning: --set exchange.sl: template "exchange-smime" has no such variable (did you mean exchange.ssl?); it is ignored (`profilesmith templates show exchange-smime` lists them)');
  t.deepEqual(snapshotDir(dir), before);
});

test('--help examples are one line each, so they paste; quoted arguments are never split', (t) => {
  const dir = tmp(t);
  const before = snapshotDir(dir);
  const examples = (args: string[]) => {
    const r = cli(args, { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.is(r.stderr, '');
    const lines = r.stdout.split('\n');
    const start = lines.indexOf('Examples:');
    t.true(start >= 0, args.join(' '));
    const section = lines.slice(start + 1, lines.findIndex((l, i) => i > start && l.trim() === '') >>> 0);
    const commands = section.filter((l) => l.startsWith('  profilesmith '));
    t.true(commands.length > 0);
    for (const c of commands) t.is((c.match(/"/g) ?? []).length % 2, 0, c);
    t.true(section.every((l) => l.startsWith('  profilesmith ') || l.startsWith('      ')), section.join('\n'));
    return commands.map((c) => c.trim());
  };
  t.true(examples(['--help']).includes('profilesmith init --store ./store --org "Example Corp"'));
  t.true(examples(['cert', 'issue', '--help']).length > 0);
  t.deepEqual(examples(['link', 'create', '--help']), ['profilesmith link create --store ./store --user alice@example.com --base-url https://profiles.example.com --template exchange-smime --set exchange.host=mail.example.com']);
  t.true(examples(['serve', '--help'])[0]!.endsWith('--public-url https://profiles.example.com:8443'));
  t.deepEqual(snapshotDir(dir), before);
});

test('batch onto a disk that fills up: one error line saying what to do, no row started after it, the store untouched', async (t) => {
  const { smallDisk, fill, SKIP_NO_DISK } = await import('../helpers/small-disk.js');
  const disk = smallDisk(t);
  if (!disk) {
    t.log(SKIP_NO_DISK);
    return t.pass();
  }
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const s = await aliceStore(storeDir);
  const emails = Array.from({ length: 12 }, (_, i) => `user${i + 1}@example.com`);
  for (const user of emails) {
    for (const purpose of ['smime-signing', 'smime-encryption'] as const) await s.issueCertificate({ user, name: user, purpose });
  }
  writeFileSync(join(dir, 'users.csv'), ['email', ...emails].join('\n') + '\n');
  const args = ['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--set', 'exchange.host=mail.example.com', '--jobs', '1'];
  // A first run elsewhere fills the store's PKCS#12 cache, so that the run below has nothing to record there.
  t.is(cli([...args, '--out', join(dir, 'warm')], { cwd: dir, env }).status, 0);
  const before = snapshotDir(storeDir);
  const out = join(disk, 'out');
  fill(disk, 'filler', 64 * 1024);
  const r = cli([...args, '--out', out], { cwd: dir, env });
  t.is(r.status, 1, r.stderr);
  t.deepEqual(r.stderr.split('\n').filter((l) => !/^batch: /.test(l)), [
    `error: Cannot write the profiles to "${out}": no space left on the disk (ENOSPC); free space there (or choose another --out), then run the batch again with --only-changed: the profiles written so far stay`,
    '',
  ]);
  t.deepEqual(snapshotDir(storeDir), before, 'the store: nothing written, nothing lost');
  const written = readdirSync(out).filter((f) => f.endsWith('.mobileconfig'));
  t.true(written.length < emails.length + 1, `written before the disk was full: ${written.length}`);
});
