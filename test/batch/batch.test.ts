import test from 'ava';
import { createHash, createPublicKey } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { profileFileName } from '../../src/profile/file-name.js';
import { readUsers } from '../../src/batch/users.js';
import { parseProfile } from '../../src/profile/parse.js';
import { checkStore } from '../../src/store/check.js';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { toPkcs12 } from '../../src/certs/pkcs12.js';
import { readPkcs12 } from '../../src/certs/pkcs12-read.js';
import { cli, need, openssl, python, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

async function setup(t: import('ava').ExecutionContext, users: string) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'users.csv'), users);
  for (const purpose of ['smime-signing', 'smime-encryption']) {
    const r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', purpose, '--json'], { cwd: dir, env });
    t.true(r.status === 0 || r.status === 1, r.stderr);
  }
  return { dir, storeDir };
}

const uuids = (file: string) => {
  const p = parseProfile(readFileSync(file)).plist as Record<string, any>;
  return [p.PayloadUUID, ...p.PayloadContent.map((x: any) => x.PayloadUUID)];
};

test('users CSV with a BOM, CRLF and quoted commas; a bad row is reported with its line and skipped; the rest completes; exit 1', async (t) => {
  const { dir, storeDir } = await setup(t, '\uFEFFemail,name\r\nann@example.com,"Ann, A."\r\nnot an address,X\r\nBen@Example.com,Ben\r\n');
  const r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=mail.example.com', '--json'], { cwd: dir, env });
  t.is(r.status, 1, r.stderr);
  const summary = JSON.parse(r.stdout);
  t.is(summary.generated, 2);
  t.is(summary.failed, 1);
  t.deepEqual(summary.failures, [{ line: 3, email: 'not an address', code: 'ERR_INPUT_INVALID', message: '"not an address" is not an email address' }]);
  t.regex(r.stderr, /line 3: not an address: "not an address" is not an email address/);
  const files = readdirSync(join(dir, 'out')).filter((f) => !f.startsWith('.')).sort();
  t.deepEqual(files, ['ann@example.com.mobileconfig', 'ben@example.com.mobileconfig']);
  for (const f of files) t.is(statSync(join(dir, 'out', f)).mode & 0o777, 0o600);
  const ben = parseProfile(readFileSync(join(dir, 'out', 'ben@example.com.mobileconfig'))).plist as any;
  t.is(ben.PayloadContent.at(-1).EmailAddress, 'Ben@Example.com', 'the address exactly as the certificate has it');
  if (!need(t, 'openssl')) return;
  writeFileSync(join(dir, 'root.pem'), cli(['ca', 'export', '--store', storeDir], { cwd: dir }).stdout);
  for (const f of files) t.is(openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'out', f), '-CAfile', join(dir, 'root.pem'), '-out', '/dev/null']).status, 0);
});

test('re-running gives the same UUIDs; --only-changed skips unchanged users and regenerates a changed one', async (t) => {
  const { dir, storeDir } = await setup(t, 'email,exchange.host\ncy@example.com,a.example.com\ndee@example.com,a.example.com\n');
  const run = (...extra: string[]) => cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--json', ...extra], { cwd: dir, env });
  t.is(run().status, 0);
  const dee = join(dir, 'out', 'dee@example.com.mobileconfig');
  const first = uuids(join(dir, 'out', 'cy@example.com.mobileconfig'));
  const firstIno = statSync(dee).ino;
  // A full run regenerates every profile. Whether the bytes differ depends on the signing
  // time's one-second resolution, so the test asks the file system instead: an atomic
  // rewrite is a new file renamed over the old one, hence a new inode.
  const full = JSON.parse(run().stdout);
  t.is(full.generated, 2);
  t.is(full.unchanged, 0);
  const secondIno = statSync(dee).ino;
  t.not(secondIno, firstIno, 'a second full run rewrote it');
  t.deepEqual(uuids(join(dir, 'out', 'cy@example.com.mobileconfig')), first);
  const skip = JSON.parse(run('--only-changed').stdout);
  t.is(skip.unchanged, 2);
  t.is(skip.generated, 0);
  t.is(statSync(dee).ino, secondIno, '--only-changed left an unchanged profile alone');
  const cyIno = statSync(join(dir, 'out', 'cy@example.com.mobileconfig')).ino;
  writeFileSync(join(dir, 'users.csv'), 'email,exchange.host\ncy@example.com,b.example.com\ndee@example.com,a.example.com\n');
  const changed = JSON.parse(run('--only-changed').stdout);
  t.is(changed.generated, 1);
  t.is(changed.unchanged, 1);
  t.is(statSync(dee).ino, secondIno, 'the unchanged user was skipped again');
  t.not(statSync(join(dir, 'out', 'cy@example.com.mobileconfig')).ino, cyIno, 'the changed user was regenerated');
});

test('--passwords-out writes a 0600 CSV of the PKCS#12 passwords kept out of the profiles; --strict stops at the first failure', async (t) => {
  const { dir, storeDir } = await setup(t, 'email\neve@example.com\nbad\nfay@example.com\n');
  const r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '--jobs', '1'], { cwd: dir, env });
  t.is(r.status, 1, r.stderr);
  t.is(statSync(join(dir, 'pw.csv')).mode & 0o777, 0o600);
  const rows = readFileSync(join(dir, 'pw.csv'), 'utf8').trim().split('\n');
  t.is(rows.length, 1 + 4, 'two users × (signing + encryption)');
  t.false(readFileSync(join(dir, 'out', 'eve@example.com.mobileconfig')).includes('<key>Password</key>'));
  const strict = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out2', '--set', 'exchange.host=h.example.com', '--strict', '--jobs', '1', '--json'], { cwd: dir, env });
  t.is(strict.status, 1);
  const s = JSON.parse(strict.stdout);
  t.true(s.stopped);
  t.false(existsSync(join(dir, 'out2', 'fay@example.com.mobileconfig')));
});

test('issue-batch issues only what is missing on a re-run', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'X', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'u.csv'), 'email,name\ng1@example.com,G One\ng2@example.com,G Two\n');
  const first = JSON.parse(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing', '--json'], { cwd: dir, env }).stdout);
  t.is(first.generated, 2);
  t.is(first.existing, 0);
  writeFileSync(join(dir, 'u.csv'), 'email,name\ng1@example.com,G One\ng2@example.com,G Two\ng3@example.com,G Three\n');
  const second = JSON.parse(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing', '--json'], { cwd: dir, env }).stdout);
  t.is(second.generated, 1);
  t.is(second.existing, 2);
});

test('users JSON arrays are read too; file names are safe on every OS', async (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'u.json'), JSON.stringify([{ email: 'a@example.com', 'exchange.ssl': false }, 'junk']));
  const rows = [];
  for await (const r of readUsers(join(dir, 'u.json'))) rows.push(r);
  t.deepEqual(rows, [{ line: 1, values: { email: 'a@example.com', 'exchange.ssl': false } }, { line: 2, values: { email: undefined } }]);
  t.is(profileFileName('Alice@Example.com'), 'alice@example.com.mobileconfig');
  t.regex(profileFileName('nul.x@example.com'), /^_nul\.x@example\.com-[0-9a-f]{8}\.mobileconfig$/);
  t.is(profileFileName('con@example.com'), 'con@example.com.mobileconfig');
  t.regex(profileFileName('a/../b"c@example.com'), /^a_\.\._b_c@example\.com-[0-9a-f]{8}\.mobileconfig$/);
  t.not(profileFileName('a+b@example.com'), profileFileName('a_b@example.com'));
});

test('a device_cert column encrypts that user\'s profile to their device', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await setup(t, 'email,device_cert\nhal@example.com,devices/hal.pem\nivy@example.com,\n');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(dir, 'devices'));
  t.is(openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'devices', 'hal.key'), '-out', join(dir, 'devices', 'hal.pem'), '-subj', '/CN=Hal iPhone', '-days', '30']).status, 0);
  const r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--json'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const hal = parseProfile(readFileSync(join(dir, 'out', 'hal@example.com.mobileconfig'))).plist as Record<string, unknown>;
  const ivy = parseProfile(readFileSync(join(dir, 'out', 'ivy@example.com.mobileconfig'))).plist as Record<string, unknown>;
  t.true(hal.IsEncrypted as boolean);
  t.true(hal.EncryptedPayloadContent instanceof Uint8Array);
  t.true(Array.isArray(ivy.PayloadContent));
  const d = cli(['decrypt', join('out', 'hal@example.com.mobileconfig'), '--key', join('devices', 'hal.key')], { cwd: dir });
  t.is(d.status, 0, d.stderr);
  t.regex(d.stdout, /hal@example\.com/);
});

test('the PKCS#12 cache lives in the store, sealed, built as identities enter it; a new passphrase or another user\'s file is never served from it', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const bob = await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-signing' });
  const alices = await store.listCertificates({ user: 'alice@example.com' });
  let builds = 0;
  const build = (serial: string) =>
    store.cachedPkcs12(serial, (identity) => {
      builds++;
      const password = `pw-${serial.slice(0, 6)}-${builds}`;
      return { password, pkcs12: toPkcs12(identity.certificate, identity.privateKey, { password }) };
    });
  // Issuing built each identity's profile PKCS#12 already (16 iterations, a random password).
  const first = await Promise.all(alices.map((r) => build(r.serial)));
  t.is(builds, 0, 'nothing to build: every identity was prebuilt at issuance');
  for (const [i, f] of first.entries()) t.is(readPkcs12(f.pkcs12, f.password).certificates[0]!.der.toString('hex'), (await store.getCertificate(alices[i]!.serial)).toString('hex'));
  const again = await Promise.all(alices.map((r) => build(r.serial)));
  t.is(builds, 0, 'then served from the cache');
  again.forEach((a, i) => {
    t.true(a.pkcs12.equals(first[i]!.pkcs12));
    t.is(a.password, first[i]!.password);
  });
  // A second store object (another process) reads the same file: nothing is rebuilt.
  const other = await openStore(storeDir, { passphrase: PASSPHRASE });
  await Promise.all(alices.map((r) => other.cachedPkcs12(r.serial, () => t.fail('rebuilt') as never)));

  const file = (user: string, gen: number) => join(storeDir, 'pkcs12-cache', `${createHash('sha256').update(user).digest('hex').slice(0, 32)}.${gen}`);
  t.is(statSync(file('alice@example.com', 1)).mode & 0o777, 0o600);
  const sealed = readFileSync(file('alice@example.com', 1));
  for (const f of first) {
    t.false(sealed.includes(f.pkcs12.subarray(0, 64)), 'no PKCS#12 is in the file in clear');
    t.false(sealed.includes(Buffer.from(f.password)), 'nor its password');
  }

  // Alice's file put in bob's place does not open there: bob gets his own identity.
  writeFileSync(file('bob@example.com', 1), sealed, { mode: 0o600 });
  const forBob = await build(bob.serial);
  t.is(builds, 1);
  const pem = openssl(['pkcs12', '-nokeys', '-clcerts', '-passin', `pass:${forBob.password}`], forBob.pkcs12);
  t.is(pem.status, 0, pem.stderr.toString());
  t.regex(openssl(['x509', '-noout', '-ext', 'subjectAltName'], pem.stdout).stdout.toString(), /email:bob@example\.com/);

  // A file of the earlier per-entry layout is reported, and goes with its generation.
  const legacy = join(storeDir, 'certs', alices[0]!.serial, 'p12.1');
  writeFileSync(legacy, '{}', { mode: 0o600 });
  t.true((await checkStore(store)).some((f) => f.severity === 'info' && f.path === legacy));

  // A new passphrase is a new key generation: the old files are deleted and not read again.
  await store.changePassphrase('another passphrase entirely', { kdfCost: 14 });
  t.false(existsSync(legacy));
  t.false(existsSync(file('alice@example.com', 1)));
  t.false(existsSync(file('bob@example.com', 1)));
  await build(alices[0]!.serial);
  t.is(builds, 2, 'rebuilt lazily under the new key generation');
  t.true(existsSync(file('alice@example.com', 2)));
});

test('users files from real offices: Windows-1252, UTF-16 with BOM, semicolons and tabs are read right; bytes that are no text are one line naming the line and the byte', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  const files: [string, Buffer][] = [
    // Excel's default CSV on Windows: Windows-1252, and a semicolon where the decimal point is a comma.
    ['latin.csv', Buffer.from('email;name\r\njuergen@example.com;J\xfcrgen M\xfcller\r\nzoe@example.com;Zo\xeb \x80uro\r\n', 'latin1')],
    ['utf16.csv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('email\tname\r\nsoeren@example.com\tSøren Ørsted\r\n', 'utf16le')])],
    ['utf8.csv', Buffer.from('\ufeffemail,name\nandre@example.com,"André, Jr."\n', 'utf8')],
  ];
  for (const [name, bytes] of files) writeFileSync(join(dir, name), bytes);
  for (const [name] of files) {
    const r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', name, '--purpose', 'smime-signing', '--json'], { cwd: dir, env });
    t.is(r.status, 0, `${name}: ${r.stderr}`);
  }
  const names = Object.fromEntries((await (await openStore(storeDir)).listCertificates()).map((r) => [r.user, r.name]));
  t.deepEqual(names, {
    'juergen@example.com': 'Jürgen Müller',
    'zoe@example.com': 'Zoë €uro',
    'soeren@example.com': 'Søren Ørsted',
    'andre@example.com': 'André, Jr.',
  });
  writeFileSync(join(dir, 'binary.csv'), Buffer.from('email,name\na@example.com,A\nb@example.com,B\x00\n'));
  const bad = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'binary.csv', '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /^error: Line 3: byte 0x00 at offset 42 is not text/m);
  t.is((await (await openStore(storeDir)).listCertificates()).length, 4, 'nothing was issued');
  writeFileSync(join(dir, 'nohead.csv'), 'mail;name\nx@example.com;X\n');
  t.regex(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'nohead.csv', '--purpose', 'smime-signing'], { cwd: dir, env }).stderr, /header row has no "email" column/);
});

test('the PKCS#12s a batch ships open in openssl pkcs12 with the password of the passwords file, 16 iterations, and hold the identity of the store, built on demand (first run) or from the cache (second run)', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const { dir, storeDir } = await setup(t, 'email\nivy@example.com\njay@example.com\n');
  // issue-batch prebuilt every PKCS#12: drop them, so that the first run builds on demand.
  rmSync(join(storeDir, 'pkcs12-cache'), { recursive: true, force: true });
  const store = await openStore(storeDir, { passphrase: PASSPHRASE });
  const opened: Record<string, { password: string; fingerprint: string }>[] = [];
  for (const [run, out] of [['first', 'out1'], ['second', 'out2']] as const) {
    const r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', out, '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', `${out}.csv`, '--jobs', '1'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    const rows = readFileSync(join(dir, `${out}.csv`), 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
    const seen: Record<string, { password: string; fingerprint: string }> = {};
    for (const user of ['ivy@example.com', 'jay@example.com']) {
      const signed = readFileSync(join(dir, out, `${user}.mobileconfig`));
      const v = openssl(['cms', '-verify', '-noverify', '-inform', 'DER'], signed);
      t.is(v.status, 0, v.stderr.toString());
      const py = python('import plistlib,sys,json,base64; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([[x["PayloadIdentifier"], base64.b64encode(x["PayloadContent"]).decode()] for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.pkcs12"]))', v.stdout);
      for (const [identifier, b64] of JSON.parse(py.stdout) as [string, string][]) {
        // email,fileName,payloadIdentifier,serial,purpose,password: the file name may hold a quoted comma.
        const row = rows.find((x) => x[0] === user && x.at(-4) === identifier)!;
        const [serial, password] = [row.at(-3)!, row.at(-1)!];
        writeFileSync(join(dir, 'pw'), password);
        const p12 = Buffer.from(b64, 'base64');
        const info = openssl(['pkcs12', '-info', '-nodes', '-passin', `file:${join(dir, 'pw')}`], p12);
        t.is(info.status, 0, `${run} ${identifier}: ${info.stderr}`);
        t.regex(info.stderr.toString(), /MAC: sha1, Iteration 16\n/);
        t.regex(info.stderr.toString(), /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 16\n/);
        const id = await store.getIdentity(serial);
        const cert = openssl(['x509', '-outform', 'DER'], info.stdout);
        t.deepEqual(cert.stdout, Buffer.from(id.certificate), `${run} ${identifier}: the store's certificate`);
        const key = openssl(['pkey', '-pubout', '-outform', 'DER'], info.stdout);
        t.deepEqual(key.stdout, createPublicKey(id.privateKey).export({ type: 'spki', format: 'der' }) as Buffer, `${run} ${identifier}: the store's key`);
        seen[identifier] = { password, fingerprint: createHash('sha256').update(p12).digest('hex') };
      }
    }
    opened.push(seen);
  }
  t.deepEqual(opened[1], opened[0], 'the second run ships the cached PKCS#12s, byte for byte, with the same passwords');
  t.is(Object.keys(opened[0]!).length, 4);
  // issue-batch prebuilds them: a new user's first batch ships the PKCS#12 made at issuance.
  writeFileSync(join(dir, 'kim.csv'), 'email\nkim@example.com\n');
  for (const purpose of ['smime-signing', 'smime-encryption']) t.is(cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'kim.csv', '--purpose', purpose], { cwd: dir, env }).status, 0);
  const kim = (await openStore(storeDir, { passphrase: PASSPHRASE })) as Awaited<ReturnType<typeof openStore>>;
  const prebuilt = await Promise.all((await kim.listCertificates({ user: 'kim@example.com' })).map((r) => kim.cachedPkcs12(r.serial, () => t.fail('not prebuilt') as never)));
  t.is(prebuilt.length, 2);
});

test('--passwords-out of batch and generate: a cell a spreadsheet would run as a formula (=, +, -, @) starts with \' (issue 28)', async (t) => {
  if (!need(t, 'python3')) return;
  const { dir, storeDir } = await setup(t, 'email,name\n"-2+3@example.com","=HYPERLINK(""evil.example"",""open me"")"\nkay@example.com,@SUM(1+1)\nlee@example.com,+cmd\n');
  const r = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '--jobs', '1'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const g = cli(['generate', 'exchange-smime', '--store', storeDir, '--user=-2+3@example.com', '--set', 'exchange.host=h.example.com', '--no-sign', '--no-pkcs12-password', '--passwords-out', 'one.csv', '-o', 'one.mobileconfig'], { cwd: dir, env });
  t.is(g.status, 0, g.stderr);
  // The oracle: Python's csv module, as a spreadsheet import reads the cells.
  const read = (file: string) => JSON.parse(python('import csv,io,json,sys; print(json.dumps(list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", newline="")))))', readFileSync(join(dir, file))).stdout) as string[][];
  const batch = read('pw.csv');
  t.deepEqual(batch[0], ['email', 'fileName', 'payloadIdentifier', 'serial', 'purpose', 'password']);
  t.is(batch.length, 1 + 6);
  const cells = batch.slice(1);
  t.deepEqual(cells.map((c) => c[0]).sort(), ["'-2+3@example.com", "'-2+3@example.com", 'kay@example.com', 'kay@example.com', 'lee@example.com', 'lee@example.com']);
  t.deepEqual(
    cells.map((c) => c[1]!.replace(/ \(.*$/, '')).sort(),
    ["'+cmd", "'+cmd", "'=HYPERLINK(\"evil.example\",\"open me\")", "'=HYPERLINK(\"evil.example\",\"open me\")", "'@SUM(1+1)", "'@SUM(1+1)"],
  );
  const one = read('one.csv');
  t.is(one.length, 1 + 2);
  for (const row of one.slice(1)) t.regex(row[0]!, /^'=HYPERLINK\("evil\.example","open me"\) \((signing|encryption)/);
  for (const row of [...cells, ...one.slice(1)]) for (const cell of row) t.notRegex(cell, /^[=+\-@\t\r]/, `a live formula: ${cell}`);
});
