/**
 * The messages a new admin meets, one line each, with the right exit code and nothing written
 * (issue "The admin's CLI, polished"): bad choices, bad numbers, typos, `-` for stdin, missing
 * files, unknown links, unsigned profiles.
 */
import test from 'ava';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStoreIn, PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { cli, need, snapshotDir } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

async function store(t: import('ava').ExecutionContext) {
  const { dir, storeDir } = await aliceStoreIn(t);
  return { dir, storeDir, certs: () => readdirSync(join(storeDir, 'certs')).sort() };
}

test('usage errors are one line, exit 2, and change nothing: a bad choice, a bad number, a typo flag', async (t) => {
  const { dir, storeDir, certs } = await store(t);
  const before = certs();
  const cases: [string[], string][] = [
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'signing'], 'error: Invalid values: Argument: purpose, Given: "signing", Choices: "smime-signing", "smime-encryption"'],
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing', '--days', 'abc'], 'error: --days takes a number'],
    [['cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing', '--dry-runn'], 'error: Unknown argument: --dry-runn (did you mean --dry-run?); `profilesmith cert issue-batch --help` lists the options'],
    // An unknown command is named, with what there is (yargs listed every flag of the line as unknown).
    [['user', 'add', '--store', storeDir, 'b@example.com', '--name', 'B'], 'error: Unknown command "user add". The user commands are: list, remove'],
    [['cert', 'issu', '--store', storeDir], 'error: Unknown command "cert issu" (did you mean "cert issue" or "cert issue-batch"?). The cert commands are: issue, issue-batch, list, show, export, renew, revoke, import, import-batch'],
    [['generat', 'exchange-smime'], 'error: Unknown command "generat" (did you mean "generate"?). See profilesmith --help'],
    [['user'], 'error: "user" needs a command: list, remove'],
  ];
  for (const [args, line] of cases) {
    const r = cli(args, { cwd: dir, env });
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr, `${line}\n`);
  }
  t.deepEqual(certs(), before);
});

test('`--passphrase-file -` reads the passphrase from stdin; a missing passphrase file says "no such file"', async (t) => {
  const { dir, storeDir } = await store(t);
  const ok = cli(['cert', 'issue', '--store', storeDir, '--user', 'c@example.com', '--name', 'C', '--purpose', 'smime-signing', '--passphrase-file', '-'], { cwd: dir, input: `${PASSPHRASE}\n` });
  t.is(ok.status, 0, ok.stderr);
  const missing = cli(['cert', 'issue', '--store', storeDir, '--user', 'd@example.com', '--name', 'D', '--purpose', 'smime-signing', '--passphrase-file', 'nope.txt'], { cwd: dir });
  t.is(missing.status, 1);
  t.is(missing.stderr, 'error: Cannot read the passphrase file "nope.txt": no such file\n');
});

test('an unknown link points at link list; verify of an unsigned profile says it is not signed', async (t) => {
  const { dir, storeDir } = await store(t);
  const r = cli(['link', 'revoke', 'nope', '--store', storeDir], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: No link "nope"\nhint: See `profilesmith link list` for the links\n');
  writeFileSync(join(dir, 'u.mobileconfig'), '<?xml version="1.0"?><plist version="1.0"><dict/></plist>');
  const v = cli(['verify', 'u.mobileconfig'], { cwd: dir });
  t.is(v.status, 1);
  t.is(v.stderr, 'error: The profile is not signed: it is an unsigned XML property list\n');
});

test('a PFX without its password asks for one; a short new passphrase is refused; batch --out that is a file is one line', async (t) => {
  const { dir, storeDir } = await store(t);
  const { toPkcs12 } = await import('../../src/certs/pkcs12.js');
  const { fixture } = await import('../helpers/fixture-store.js');
  const alice = fixture('alice-signing');
  writeFileSync(join(dir, 'a.p12'), toPkcs12(alice.certificate, alice.privateKey, { password: 'secret' }));
  const nopw = cli(['cert', 'import', 'a.p12', '--store', storeDir, '--user', 'alice@example.com', '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(nopw.status, 1);
  t.regex(nopw.stderr, /^error: The PKCS#12 is protected by a password, and none was given \(--password-file\)\n/);
  const short = cli(['init', '--store', join(dir, 'new'), '--org', 'X'], { cwd: dir, env: { PROFILESMITH_PASSPHRASE: 'a' } });
  t.is(short.status, 1);
  t.regex(short.stderr, /^error: The passphrase must have at least 8 characters/);
  t.false(readdirSync(dir).includes('new'));
  writeFileSync(join(dir, 'users.csv'), 'email\nalice@example.com\n');
  writeFileSync(join(dir, 'taken'), 'a file');
  const out = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'taken', '--set', 'exchange.host=h.example.com'], { cwd: dir, env });
  t.is(out.status, 1);
  t.is(out.stderr.split('\n').filter(Boolean).length, 1, out.stderr);
  t.regex(out.stderr, /^error: Cannot use ".*\/taken" for the profiles: is a file, not a folder\n$/);
});

test('a secret in --set is refused (exit 2, nothing written); an unknown key in a --data file is warned about like one in --set', async (t) => {
  const { dir, storeDir } = await store(t);
  const secret = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=h.example.com', '--set', 'removal.password=hunter2', '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(secret.status, 2);
  t.is(secret.stderr, 'error: --set removal.password: a secret; put it in a --data file instead (a flag value shows in ps and shell history)\n');
  t.false(readdirSync(dir).includes('a.mobileconfig'));
  writeFileSync(join(dir, 'data.json'), JSON.stringify({ exchange: { host: 'h.example.com', hots: 'typo' }, removal: { password: 'from-a-file' } }));
  const typo = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--data', 'data.json', '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(typo.status, 0, typo.stderr);
  t.regex(typo.stderr, /warning: --data data\.json: "exchange\.hots" is not a variable of template "exchange-smime" \(did you mean exchange\.host\?\); it is ignored/);
  t.notRegex(typo.stderr, /removal\.password/, 'a secret in --data is fine');
});

test('user list shows each user with valid certificates by purpose, and who was removed', async (t) => {
  const { dir, storeDir } = await store(t);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'bob@example.com', '--name', 'Bob', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);
  t.is(cli(['user', 'remove', 'bob@example.com', '--store', storeDir, '--revoke'], { cwd: dir, env }).status, 0);
  const r = cli(['user', 'list', '--store', storeDir, '--json'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), [
    { user: 'alice@example.com', validSigning: 1, validEncryption: 2, certificates: 3, state: 'enrolled' },
    { user: 'bob@example.com', validSigning: 0, validEncryption: 0, certificates: 1, state: 'removed' },
  ]);
  t.regex(cli(['user', 'list', '--store', storeDir], { cwd: dir, env }).stdout, /^USER\s+VALID SIGNING\s+VALID ENCRYPTION\s+CERTIFICATES\s+STATE\n/);
});

test('cert show and cert revoke take a unique serial prefix, as git takes short hashes', async (t) => {
  const { dir, storeDir } = await store(t);
  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--json'], { cwd: dir, env }).stdout) as { serial: string }[];
  const target = list[0]!.serial;
  const prefix = [8, 10, 12, 16].map((n) => target.slice(0, n)).find((p) => list.filter((r) => r.serial.startsWith(p)).length === 1)!;
  const shown = cli(['cert', 'show', prefix, '--store', storeDir, '--json'], { cwd: dir, env });
  t.is(shown.status, 0, shown.stderr);
  t.is(JSON.parse(shown.stdout).serial, target);
  const revoked = cli(['cert', 'revoke', prefix, '--store', storeDir], { cwd: dir, env });
  t.is(revoked.status, 0, revoked.stderr);
  t.regex(revoked.stderr, new RegExp(`^Revoked ${target} `));
});

test('with --json an error is one JSON line on stderr; inspect shows the account settings with the S/MIME switches as iOS applies them', async (t) => {
  const { dir, storeDir } = await store(t);
  const r = cli(['cert', 'issue', '--store', storeDir, '--user', 'not-an-address', '--name', 'X', '--purpose', 'smime-signing', '--json'], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stdout, '');
  t.deepEqual(JSON.parse(r.stderr), { error: { code: 'ERR_INPUT_INVALID', message: '"not-an-address" is not an email address', exitCode: 1 } });
  const usage = cli(['cert', 'issue', '--store', storeDir, '--json', '--purpose', 'nope'], { cwd: dir, env });
  t.is(usage.status, 2);
  t.is(JSON.parse(usage.stderr).error.code, 'ERR_USAGE');
  t.is(cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'p.mobileconfig'], { cwd: dir, env }).status, 0);
  const text = cli(['inspect', 'p.mobileconfig'], { cwd: dir }).stdout;
  t.regex(text, /\n {4}Host: mail\.example\.com\n/);
  t.regex(text, /\n {4}SMIMESigningEnabled: true\n/);
  t.regex(text, /\n {4}SMIMEEncryptByDefault: (true|false)\n/);
  const json = JSON.parse(cli(['inspect', 'p.mobileconfig', '--json'], { cwd: dir }).stdout);
  const eas = json.payloads.find((p: { type: string }) => p.type === 'com.apple.eas.account');
  t.is(eas.settings.Host, 'mail.example.com');
  // A profile made elsewhere that leaves the switches out: inspect says what iOS will do.
  const U = '6E1F0C2A-5B3D-4C7E-9A8B-00000000000';
  writeFileSync(join(dir, 'other.mobileconfig'), `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>x</string><key>PayloadUUID</key><string>${U}1</string><key>PayloadContent</key><array><dict><key>PayloadType</key><string>com.apple.eas.account</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>x.eas</string><key>PayloadUUID</key><string>${U}2</string><key>Host</key><string>h.example.com</string><key>SMIMESigningCertificateUUID</key><string>${U}3</string></dict></array></dict></plist>`);
  const other = cli(['inspect', 'other.mobileconfig'], { cwd: dir }).stdout;
  t.regex(other, /SMIMESigningEnabled: true \(left out: iOS turns it on\)/);
  t.regex(other, /SMIMESigningUserOverrideable: false \(left out\)/);
});

test('invisible and text-direction characters (U+202E, U+200B...) in a name, an address, a users file, an organization or an imported certificate are refused, naming the field and the character; nothing is written (issue 28)', async (t) => {
  const { dir, storeDir } = await store(t);
  const before = snapshotDir(storeDir);
  const hidden = (what: string, char: string) => `error: The ${what} must not hold ${char}, an invisible or text-direction character\n`;
  const issue = (user: string, name: string) => ['cert', 'issue', '--store', storeDir, '--user', user, '--name', name, '--purpose', 'smime-signing'];
  const cases: [string[], string][] = [
    // Shows as "Aliceexe.png".
    [issue('b@example.com', 'Alice\u202Egnp.exe'), hidden('common name', 'U+202E')],
    [issue('b@example.com', '\u2066Eve\u2069'), hidden('common name', 'U+2066')],
    [issue('b@example.com', 'Ar\u061Cam'), hidden('common name', 'U+061C')],
    [issue('b@example.com', 'Soft\u00ADhyphen'), hidden('common name', 'U+00AD')],
    [issue('al\u200Bice@example.com', 'Alice'), hidden('email address', 'U+200B')],
    [issue('bob\u200F@example.com', 'Bob'), hidden('email address', 'U+200F')],
    [issue('tag\u{E0041}@example.com', 'Tag'), hidden('email address', 'U+E0041')],
    [['init', '--store', join(dir, 'new'), '--org', 'Evil\u202ECorp'], hidden('organization', 'U+202E')],
  ];
  for (const [args, line] of cases) {
    const r = cli(args, { cwd: dir, env });
    t.is(r.status, 1, args.join(' '));
    t.is(r.stderr, line);
  }
  t.false(readdirSync(dir).includes('new'));

  // A users file: each row names its line, the address is shown with the character as "?".
  writeFileSync(join(dir, 'users.csv'), 'email,name\nann@example.com,Ann\u202Dx\nb\u200Eob@example.com,Bob\n');
  const batch = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--json'], { cwd: dir, env });
  t.is(batch.status, 1);
  t.like(JSON.parse(batch.stdout), { generated: 0, failed: 2 });
  const lines = batch.stderr.split('\n');
  // Rows are issued a few at once, so their lines come in either order.
  t.deepEqual(lines.slice(0, 2).sort(), [
    'error: line 2: ann@example.com: The common name must not hold U+202D, an invisible or text-direction character',
    'error: line 3: b?ob@example.com: The email address must not hold U+200E, an invisible or text-direction character',
  ]);
  t.regex(lines[2]!, /^0 issued, 0 already held one, 2 failed in /);

  // An outside certificate whose common name holds one is not imported.
  if (need(t, 'openssl')) {
    mkdirSync(join(dir, 'outside'));
    const ca = outsideCa(join(dir, 'outside'), { email: 'dan@example.com', commonName: 'Dan\u202Egnp.exe' });
    const imported = cli(['cert', 'import', ca.pem, '--store', storeDir, '--user', 'dan@example.com', '--purpose', 'smime-signing'], { cwd: dir, env });
    t.is(imported.status, 1);
    t.is(imported.stderr, hidden("certificate's common name", 'U+202E'));
  }
  t.deepEqual(snapshotDir(storeDir), before, 'the store is unchanged');
});
