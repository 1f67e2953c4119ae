import test from 'ava';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, need, openssl, snapshotDir, tmp } from '../helpers/tools.js';

const PASS = 'cli test passphrase';

/** One store made through the CLI, shared by the tests of this file. */
async function journey(t: import('ava').ExecutionContext) {
  const dir = tmp(t);
  const env = { PROFILESMITH_PASSPHRASE: PASS };
  const store = join(dir, 'store');
  const run = (args: string[], extra: Record<string, string> = {}) => cli(args, { cwd: dir, env: { ...env, ...extra } });
  const init = run(['init', '--store', store, '--org', 'Example Corp']);
  t.is(init.status, 0, init.stderr);
  for (const purpose of ['smime-signing', 'smime-encryption', 'smime-encryption']) {
    const r = run(['cert', 'issue', '--store', store, '--user', 'alice@example.com', '--name', 'Alice Example', '--purpose', purpose]);
    t.is(r.status, 0, r.stderr);
  }
  return { dir, store, run };
}

test('init, issue, list, export, generate, verify from the command line', async (t) => {
  const { dir, store, run } = await journey(t);
  t.is(statSync(store).mode & 0o777, 0o700);
  t.is(statSync(join(store, 'signer', 'key.1')).mode & 0o777, 0o600);
  t.notRegex(readFileSync(join(store, 'signer', 'key.1'), 'utf8'), /PRIVATE KEY/);

  const list = run(['cert', 'list', '--store', store, '--json']);
  t.is(list.status, 0, list.stderr);
  const rows = JSON.parse(list.stdout) as Record<string, string>[];
  t.is(rows.length, 3);
  for (const r of rows) {
    for (const k of ['serial', 'user', 'purpose', 'issuer', 'subject', 'notBefore', 'notAfter', 'status', 'fingerprint']) t.truthy(r[k], k);
    t.regex(r.serial!, /^[0-9a-f]+$/);
    t.regex(r.fingerprint!, /^[0-9a-f]{64}$/);
    t.is(r.status, 'valid');
    t.is(new Date(r.notAfter!).toISOString(), r.notAfter!);
  }
  t.is(JSON.parse(run(['cert', 'list', '--store', store, '--user', 'nobody@example.com', '--json']).stdout).length, 0);

  const ca = run(['ca', 'export', '--store', store, '--chain']);
  t.is((ca.stdout.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
  writeFileSync(join(dir, 'root.pem'), run(['ca', 'export', '--store', store]).stdout);

  const gen = run(['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '--set', 'smime.encryptByDefault=true', '-o', 'alice.mobileconfig']);
  t.is(gen.status, 0, gen.stderr);
  t.is(gen.stdout, '', 'nothing but data on stdout');
  const profile = join(dir, 'alice.mobileconfig');
  t.is(statSync(profile).mode & 0o777, 0o600);

  const ok = run(['verify', 'alice.mobileconfig', '--ca', 'root.pem', '--json']);
  t.is(ok.status, 0, ok.stderr);
  const report = JSON.parse(ok.stdout);
  t.true(report.valid);
  t.regex(report.signer.subject, /Profile Signing/);
  t.is(run(['verify', 'alice.mobileconfig', '--store', store]).status, 0);

  if (need(t, 'openssl')) {
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', profile, '-CAfile', join(dir, 'root.pem')]);
    t.is(v.status, 0, v.stderr.toString());
    t.regex(v.stdout.toString(), /<key>SMIMEEncryptByDefault<\/key>\s*<true\/>/);
  }

  // Tampered: one byte of the content changed.
  const bytes = readFileSync(profile);
  const i = bytes.indexOf('mail.example.com');
  bytes[i] = 'M'.charCodeAt(0);
  writeFileSync(join(dir, 'tampered.mobileconfig'), bytes);
  const bad = run(['verify', 'tampered.mobileconfig', '--ca', 'root.pem']);
  t.is(bad.status, 3);
  t.regex(bad.stdout, /digest-mismatch/);
  // Not trusted: a root from elsewhere.
  const other = run(['verify', 'alice.mobileconfig']);
  t.is(other.status, 3);
  t.regex(other.stdout, /untrusted/);
});

test('a wrong passphrase exits 1 and leaves the store byte-identical; so does an unknown user', async (t) => {
  const { dir, store, run } = await journey(t);
  const before = snapshotDir(store);
  const wrong = run(['cert', 'issue', '--store', store, '--user', 'bob@example.com', '--name', 'Bob', '--purpose', 'smime-signing'], { PROFILESMITH_PASSPHRASE: 'wrong' });
  t.is(wrong.status, 1);
  t.is(wrong.stderr, `error: The passphrase for the store at "${store}" is wrong: it came from PROFILESMITH_PASSPHRASE; set that to the store's passphrase (or unset it to be asked)\n`);
  t.notRegex(wrong.stderr, /at .*\.js:\d+/, 'no stack trace');
  const gen = run(['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--set', 'exchange.host=h', '-o', 'w.mobileconfig'], { PROFILESMITH_PASSPHRASE: 'wrong' });
  t.is(gen.status, 1);
  t.false(existsSync(join(dir, 'w.mobileconfig')));
  const unknown = run(['generate', 'exchange-smime', '--store', store, '--user', 'bob@example.com', '--set', 'exchange.host=h', '-o', 'bob.mobileconfig']);
  t.is(unknown.status, 1);
  t.is(unknown.stderr.split('\n')[0], 'error: No certificates for user "bob@example.com" in the store');
  t.false(existsSync(join(dir, 'bob.mobileconfig')));
  const badAddress = run(['cert', 'issue', '--store', store, '--user', '../../etc', '--name', 'X', '--purpose', 'smime-signing']);
  t.is(badAddress.status, 1);
  t.deepEqual(snapshotDir(store), before);
});

test('usage errors exit 2 with one line; init refuses an existing store; secrets stay out of argv', async (t) => {
  const { dir, store, run } = await journey(t);
  const unknown = run(['frobnicate']);
  t.is(unknown.status, 2);
  t.is(unknown.stderr.trim().split('\n').length, 1);
  t.is(run(['generate', 'exchange-smime', '--store', store]).status, 2, 'missing --user');
  t.is(run(['init', '--store', store, '--org', 'X']).status, 1);
  t.is(run(['cert', 'list', '--store', store, '--passphrase', 'x']).status, 2, 'no passphrase flag exists');
  const noPass = cli(['cert', 'issue', '--store', store, '--user', 'a@example.com', '--name', 'A', '--purpose', 'smime-signing'], { cwd: dir });
  t.is(noPass.status, 2);
  t.regex(noPass.stderr, /PROFILESMITH_PASSPHRASE/);
  writeFileSync(join(dir, 'pass.txt'), PASS + '\n', { mode: 0o600 });
  const viaFile = cli(['cert', 'list', '--store', store, '--passphrase-file', 'pass.txt'], { cwd: dir });
  t.is(viaFile.status, 0, viaFile.stderr);
  const noPw = run(['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--set', 'exchange.host=h', '--no-pkcs12-password']);
  t.is(noPw.status, 2);
});

test('--no-pkcs12-password writes the passwords to a 0600 file and leaves them out of the profile', async (t) => {
  const { dir, store, run } = await journey(t);
  const r = run(['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--set', 'exchange.host=h', '--no-sign', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '-o', 'a.mobileconfig']);
  t.is(r.status, 0, r.stderr);
  t.is(statSync(join(dir, 'pw.csv')).mode & 0o777, 0o600);
  const csv = readFileSync(join(dir, 'pw.csv'), 'utf8').trim().split('\n');
  t.is(csv.length, 4);
  const xml = readFileSync(join(dir, 'a.mobileconfig'), 'utf8');
  t.notRegex(xml, /<key>Password<\/key>/);
  t.is(csv[0], 'fileName,payloadIdentifier,serial,purpose,password');
  for (const line of csv.slice(1)) {
    t.false(xml.includes(line.split(',').at(-1)!), 'the password is not in the profile');
    // The name iOS shows when it asks for this password, as the profile has it.
    const fileName = /^"((?:[^"]|"")*)"|^([^,]*)/.exec(line)!.slice(1).find((x) => x !== undefined)!.replace(/""/g, '"');
    t.true(xml.includes(`<key>PayloadCertificateFileName</key>\n\t\t\t<string>${fileName}</string>`), fileName);
  }
  t.regex(csv.slice(1).join("\n"), /^"Alice Example \(encryption, \d{4}-\d{2}, [0-9a-f]{8,}\)\.p12",/m, "two of one month are told apart by a fingerprint prefix");
  t.regex(csv.slice(1).join('\n'), /^Alice Example \(signing\)\.p12,/m);
});

test('npm start: the demo makes a store, a profile that verifies, and can run again', async (t) => {
  const dir = tmp(t);
  for (let i = 0; i < 2; i++) {
    const r = cli(['demo', '--dir', 'demo'], { cwd: dir });
    t.is(r.status, 0, r.stderr);
    t.regex(r.stderr, /Verified: signed by "CN=Example Corp Profile Signing/);
  }
  const profile = join(dir, 'demo', 'alice.mobileconfig');
  t.true(existsSync(profile));
  if (need(t, 'openssl')) {
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', profile, '-CAfile', join(dir, 'demo', 'root.pem')]);
    t.is(v.status, 0, v.stderr.toString());
    t.is((v.stdout.toString().match(/com\.apple\.security\.pkcs12/g) ?? []).length, 3);
  }
});
