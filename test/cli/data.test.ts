/**
 * Data and certificates (issue "Data and certificates"): each finding through the CLI as a
 * process, asserting the exit code, the exact stderr line, and that nothing was written or lost
 * (the store and the output snapshotted before and after).
 */
import test from 'ava';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { cli, need, openssl, python, snapshotDir, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

async function usersStore(t: import('ava').ExecutionContext, emails: string[]) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'users.csv'), ['email', ...emails].join('\n') + '\n');
  for (const purpose of ['smime-signing', 'smime-encryption']) {
    const r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', purpose], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
  }
  return { dir, storeDir };
}

test('batch --passwords-out: an existing file is refused without --force, changing nothing; --only-changed merges, never losing a row; --force replaces', async (t) => {
  const { dir, storeDir } = await usersStore(t, ['ann@example.com', 'ben@example.com', 'cy@example.com']);
  // The interrupted run: it did ann and ben.
  writeFileSync(join(dir, 'first.csv'), 'email\nann@example.com\nben@example.com\n');
  const batch = (users: string, ...extra: string[]) =>
    cli(['batch', 'exchange-smime', '--store', storeDir, '--users', users, '--out', 'out', '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '--jobs', '1', ...extra], { cwd: dir, env });
  t.is(batch('first.csv').status, 0);
  const first = readFileSync(join(dir, 'pw.csv'), 'utf8');
  t.is(first.trim().split('\n').length, 1 + 4, 'two users × (signing + encryption)');

  const before = snapshotDir(dir);
  const again = batch('users.csv');
  t.is(again.status, 1);
  t.is(again.stderr, `error: "pw.csv" exists; pass --only-changed to add this run's passwords to it, or --force to replace it (or choose another --passwords-out)\n`);
  t.deepEqual(snapshotDir(dir), before, 'nothing written, nothing lost: the store, the profiles, the passwords');
  const dry = batch('users.csv', '--dry-run');
  t.is(dry.status, 1, 'a dry run says what the real run would refuse');
  t.deepEqual(snapshotDir(dir), before);

  // The README's advice after an interruption: --only-changed completes it and keeps every row.
  const rest = batch('users.csv', '--only-changed', '--json');
  t.is(rest.status, 0, rest.stderr);
  t.like(JSON.parse(rest.stdout), { generated: 1, unchanged: 2 });
  const merged = readFileSync(join(dir, 'pw.csv'), 'utf8');
  t.true(merged.startsWith(first), 'every row of the first run is kept, first');
  const added = merged.slice(first.length).trim().split('\n');
  t.is(added.length, 2);
  t.true(added.every((l) => l.startsWith('cy@example.com,')));
  // Once more: nothing new, nothing lost, no row twice.
  t.is(batch('users.csv', '--only-changed').status, 0);
  t.is(readFileSync(join(dir, 'pw.csv'), 'utf8'), merged);

  // A file that is not ours is never merged into.
  writeFileSync(join(dir, 'notes.csv'), 'my,own\nnotes,here\n');
  const foreign = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', 'notes.csv', '--only-changed'], { cwd: dir, env });
  t.is(foreign.status, 1);
  t.is(foreign.stderr, `error: "notes.csv" is not a passwords file of profilesmith (its first line is not "email,fileName,payloadIdentifier,serial,purpose,password"); it is left as it was; choose another --passwords-out\n`);
  t.is(readFileSync(join(dir, 'notes.csv'), 'utf8'), 'my,own\nnotes,here\n');

  const forced = batch('users.csv', '--force');
  t.is(forced.status, 0, forced.stderr);
  t.is(readFileSync(join(dir, 'pw.csv'), 'utf8').trim().split('\n').length, 1 + 6, '--force replaced it with this run\'s rows');
});

test('a non-ASCII address never enters a certificate: cert issue and issue-batch refuse it with one line (a Unicode domain is shown its A-label), writing nothing', async (t) => {
  const { dir, storeDir } = await usersStore(t, ['ann@example.com']);
  const before = snapshotDir(storeDir);
  const issue = (user: string) => cli(['cert', 'issue', '--store', storeDir, '--user', user, '--name', 'Jürgen', '--purpose', 'smime-signing'], { cwd: dir, env });
  const local = issue('jürgen@acme.test');
  t.is(local.status, 1);
  t.is(local.stderr, 'error: "jürgen@acme.test" has characters outside ASCII, and a certificate\'s address is ASCII (internationalised addresses, RFC 8398, are not supported): use an ASCII address of this mailbox\n');
  const domain = issue('jurgen@bücher.test');
  t.is(domain.status, 1);
  t.is(domain.stderr, 'error: "jurgen@bücher.test" has a domain in Unicode, and a certificate\'s address is ASCII: give the domain as its A-label, "jurgen@xn--bcher-kva.test"\n');
  writeFileSync(join(dir, 'intl.csv'), 'email,name\njürgen@acme.test,Jürgen\n');
  const batch = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'intl.csv', '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(batch.status, 1);
  t.is(batch.stderr.split('\n')[0], 'error: line 2: jürgen@acme.test: "jürgen@acme.test" has characters outside ASCII, and a certificate\'s address is ASCII (internationalised addresses, RFC 8398, are not supported): use an ASCII address of this mailbox');
  t.deepEqual(snapshotDir(storeDir), before, 'no certificate, key or record was written');
  // The A-label form is an ordinary ASCII address: issued.
  t.is(issue('jurgen@xn--bcher-kva.test').status, 0);
});

test('SCEP issuance refuses a non-ASCII address as cert issue does (certifyPublicKey, which the SCEP service calls)', async (t) => {
  const { createCertificateAuthority } = await import('../../src/certs/ca.js');
  const { certifyPublicKey } = await import('../../src/certs/issue.js');
  const { generateKeyPairSync } = await import('node:crypto');
  const ca = await createCertificateAuthority({ organization: 'Example Corp' });
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  await t.throwsAsync(certifyPublicKey(ca.intermediate, { purpose: 'smime-signing', email: 'jürgen@acme.test', name: 'J', publicKey }), {
    code: 'ERR_INPUT_INVALID',
    message: '"jürgen@acme.test" has characters outside ASCII, and a certificate\'s address is ASCII (internationalised addresses, RFC 8398, are not supported): use an ASCII address of this mailbox',
  });
});

test('identities whose serials share a prefix get distinct PKCS#12 file names and display names (a fingerprint prefix tells them apart)', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Acme', passphrase: PASSPHRASE, kdfCost: 14 });
  // An outside CA that numbers its certificates one after another, as the issue's did.
  const o = (args: string[]) => t.is(openssl(args).status, 0, args.join(' '));
  writeFileSync(join(dir, 'ext.cnf'), '[user]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\nsubjectAltName=email:zed@acme.test\n');
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'oca.key'), '-out', join(dir, 'oca.pem'), '-subj', '/CN=Outside CA', '-days', '3650', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  for (const i of [1, 2]) {
    const f = (ext: string) => join(dir, `e${i}.${ext}`);
    o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('key'), '-out', f('csr'), '-subj', '/CN=Zed Acme']);
    o(['x509', '-req', '-in', f('csr'), '-CA', join(dir, 'oca.pem'), '-CAkey', join(dir, 'oca.key'), '-set_serial', `0x2d7ca2000${i}`, '-out', f('pem'), '-days', '365', '-extfile', join(dir, 'ext.cnf'), '-extensions', 'user']);
    const r = cli(['cert', 'import', f('pem'), '--key', f('key'), '--chain', 'oca.pem', '--store', storeDir, '--user', 'zed@acme.test', '--purpose', 'smime-encryption'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
  }
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'zed@acme.test', '--name', 'Zed Acme', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);
  const before = snapshotDir(storeDir);
  const r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'zed@acme.test', '--set', 'exchange.host=h.example.com', '--no-sign', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '-o', 'z.mobileconfig'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /^Wrote .*z\.mobileconfig \(unsigned; signing identity [0-9a-f]+, 2 encryption identities\)\n$/);
  // plistlib, not our parser, reads the names the phone shows.
  const names = python(
    'import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); ids=[x for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.pkcs12"]; print(json.dumps([[x["PayloadCertificateFileName"], x["PayloadDisplayName"]] for x in ids]))',
    readFileSync(join(dir, 'z.mobileconfig')),
  );
  t.is(names.status, 0, names.stderr);
  const ids = JSON.parse(names.stdout) as [string, string][];
  t.is(ids.length, 3);
  t.is(new Set(ids.map((x) => x[0])).size, 3, `file names: ${ids.map((x) => x[0]).join(' | ')}`);
  t.is(new Set(ids.map((x) => x[1])).size, 3, `display names: ${ids.map((x) => x[1]).join(' | ')}`);
  const encryption = ids.filter((x) => x[0].includes('(encryption'));
  for (const [fileName, displayName] of encryption) {
    t.regex(fileName, /^Zed Acme \(encryption, \d{4}-\d{2}, [0-9a-f]{8}\)\.p12$/);
    t.regex(displayName, /^S\/MIME encryption zed@acme\.test \(until \d{4}-\d{2}-\d{2}, [0-9a-f]{8}\)$/);
    t.false(fileName.includes('2d7ca2'), 'not the shared serial prefix');
  }
  // The passwords file names each identity as the profile does.
  const rows = readFileSync(join(dir, 'pw.csv'), 'utf8').trim().split('\n').slice(1);
  for (const [fileName] of ids) t.true(rows.some((l) => l.startsWith(`"${fileName}",`) || l.startsWith(`${fileName},`)), fileName);
  t.deepEqual(snapshotDir(storeDir), before, 'generate wrote nothing into the store');
});

test('a damaged entry.json stops only what needs it: cert list lists the rest and names it; store check names it once with what to do; --quarantine moves it aside, recoverably', async (t) => {
  const { dir, storeDir } = await usersStore(t, ['ann@example.com', 'ben@example.com']);
  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--json'], { cwd: dir }).stdout) as { serial: string; user: string }[];
  const ann = list.filter((r) => r.user === 'ann@example.com').map((r) => r.serial).sort();
  const damaged = ann[0]!;
  const entryDir = join(storeDir, 'certs', damaged);
  writeFileSync(join(entryDir, 'entry.json'), '{"serial": "trunc');
  const before = snapshotDir(storeDir);

  const all = cli(['cert', 'list', '--store', storeDir, '--json'], { cwd: dir });
  t.is(all.status, 1);
  t.is(all.stderr, `error: Certificate ${damaged} of ann@example.com is not listed: its store entry "${join(entryDir, 'entry.json')}" is damaged; run \`profilesmith store check --quarantine\` to move it aside\n`);
  t.deepEqual((JSON.parse(all.stdout) as { serial: string }[]).map((r) => r.serial).sort(), list.map((r) => r.serial).filter((s) => s !== damaged).sort(), 'the rest is listed');
  const ben = cli(['cert', 'list', '--store', storeDir, '--user', 'ben@example.com'], { cwd: dir });
  t.is(ben.status, 0, 'someone else is not affected');
  t.is(ben.stderr, '');
  t.is(ben.stdout.trim().split('\n').length, 1 + 2);
  // What needs ann's whole history still stops, with the store's line.
  const gen = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'ann@example.com', '--set', 'exchange.host=h.example.com', '--no-sign', '-o', 'ann.mobileconfig'], { cwd: dir, env });
  t.is(gen.status, 1);
  t.is(gen.stderr.split('\n')[0], `error: The store entry "${join(entryDir, 'entry.json')}" is damaged`);
  t.is(cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'ben@example.com', '--set', 'exchange.host=h.example.com', '--no-sign', '-o', 'ben.mobileconfig'], { cwd: dir, env }).status, 0);

  const check = cli(['store', 'check', '--store', storeDir], { cwd: dir });
  t.is(check.status, 3);
  t.is(
    check.stdout,
    `error: ${join(entryDir, 'entry.json')}: is missing, truncated or corrupted: certificate ${damaged} of ann@example.com is left out of listings, and ann@example.com's profiles fail until it is repaired or moved aside; \`profilesmith store check --quarantine\` moves the entry aside\n`,
  );
  t.is(check.stderr, `Keys were not decrypted: give the passphrase to check them too\n1 error found in ${storeDir}\n`);
  t.deepEqual(snapshotDir(storeDir), before, 'listing, generating and checking changed nothing in the store');

  const q = cli(['store', 'check', '--store', storeDir, '--quarantine'], { cwd: dir });
  t.is(q.status, 0, q.stderr);
  t.is(q.stdout, '');
  t.is(q.stderr.split('\n')[0], `Moved certs/${damaged} to quarantine/${damaged} in ${storeDir}: its certificate is no longer listed or put in profiles; to restore it, repair it and move it back to certs/${damaged}`);
  // Nothing lost: the folder is there, byte for byte.
  const moved = snapshotDir(join(storeDir, 'quarantine', damaged));
  const was = Object.fromEntries(Object.entries(before).filter(([k]) => k.startsWith(entryDir + '/') && k !== entryDir + '/').map(([k, v]) => [k.replace(entryDir, join(storeDir, 'quarantine', damaged)), v]));
  t.deepEqual(moved, was);
  const after = cli(['cert', 'list', '--store', storeDir], { cwd: dir });
  t.is(after.status, 0);
  t.is(after.stderr, '');

  // A missing entry.json is named as missing, not as a raw ENOENT.
  const other = ann[1]!;
  rmSync(join(storeDir, 'certs', other, 'entry.json'));
  const missing = cli(['cert', 'list', '--store', storeDir, '--user', 'ann@example.com'], { cwd: dir });
  t.is(missing.status, 1);
  t.is(missing.stderr, `error: Certificate ${other} of ann@example.com is not listed: its store entry "${join(storeDir, 'certs', other, 'entry.json')}" is missing; run \`profilesmith store check --quarantine\` to move it aside\n`);
});

test('users files: an unquoted comma, a duplicate address, an empty file and a directory are each one line naming the row, exit 1, before any work', async (t) => {
  const { dir, storeDir } = await usersStore(t, ['ann@example.com', 'ben@example.com']);
  writeFileSync(join(dir, 'comma.csv'), 'email,name\nann@example.com,"Ann, A."\nben@example.com,Example, Ben\n');
  writeFileSync(join(dir, 'twice.csv'), 'email,name\nann@example.com,Ann\nben@example.com,Ben\nAnn@Example.com,Ann again\n');
  writeFileSync(join(dir, 'twice.json'), JSON.stringify([{ email: 'ann@example.com' }, { email: 'ANN@example.com' }]));
  writeFileSync(join(dir, 'empty.csv'), '');
  writeFileSync(join(dir, 'padded.csv'), 'email,name\nann@example.com,Ann,,\n');
  mkdirSync(join(dir, 'folder.csv'));
  const cases: [string, string][] = [
    ['comma.csv', 'error: Line 3 of the users file has 3 fields, its header 2: a value holding the separator (an unquoted comma) goes in double quotes, "Example, Ann"'],
    ['twice.csv', 'error: The users file has Ann@Example.com twice, on lines 2 and 4; a user goes in once (merge the rows)'],
    ['twice.json', 'error: The users file has ANN@example.com twice, on entries 1 and 2; a user goes in once (merge the rows)'],
    ['empty.csv', `error: The users file "${join(dir, 'empty.csv')}" is empty: it needs a header row (email[,name]...) and a row per user`],
    ['folder.csv', `error: The users file "${join(dir, 'folder.csv')}" is a directory; name a CSV or JSON file`],
  ];
  const before = snapshotDir(dir);
  for (const [file, line] of cases) {
    for (const args of [
      ['batch', 'exchange-smime', '--store', storeDir, '--users', file, '--out', 'out', '--set', 'exchange.host=h.example.com', '--no-pkcs12-password', '--passwords-out', 'pw.csv'],
      ['cert', 'issue-batch', '--store', storeDir, '--users', file, '--purpose', 'smime-encryption'],
    ]) {
      const r = cli(args, { cwd: dir, env });
      t.is(r.status, 1, `${args[0]} ${file}`);
      t.is(r.stderr, `${line}\n`, `${args[0]} ${file}`);
    }
  }
  t.deepEqual(snapshotDir(dir), before, 'no profile, passwords file, run record or certificate was written');
  // Empty fields past the header (a spreadsheet's padding) lose nothing: read as before.
  const padded = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'padded.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--json'], { cwd: dir, env });
  t.is(padded.status, 0, padded.stderr);
  t.like(JSON.parse(padded.stdout), { generated: 1, failed: 0 });
});

test('a signing-only certificate is refused for the encryption history; a second signing certificate needs --force; imap.port=99999 is refused: one line each, nothing written', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await usersStore(t, ['ann@example.com']);
  const o = (args: string[]) => t.is(openssl(args).status, 0, args.join(' '));
  writeFileSync(join(dir, 'ext.cnf'), '[u]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:carol@example.com\n');
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.pem'), '-subj', '/CN=Other CA', '-days', '3650']);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'c.key'), '-out', join(dir, 'c.csr'), '-subj', '/CN=Carol']);
  o(['x509', '-req', '-in', join(dir, 'c.csr'), '-CA', join(dir, 'ca.pem'), '-CAkey', join(dir, 'ca.key'), '-set_serial', '7', '-out', join(dir, 'c.pem'), '-days', '365', '-extfile', join(dir, 'ext.cnf'), '-extensions', 'u']);
  const before = snapshotDir(dir);

  const imp = cli(['cert', 'import', 'c.pem', '--key', 'c.key', '--store', storeDir, '--user', 'carol@example.com', '--purpose', 'smime-encryption'], { cwd: dir, env });
  t.is(imp.status, 1);
  t.is(imp.stderr, "error: The certificate's key usage (digitalSignature) lacks keyEncipherment, which smime-encryption needs; import it as smime-signing\n");

  const held = (JSON.parse(cli(['cert', 'list', '--store', storeDir, '--user', 'ann@example.com', '--json'], { cwd: dir }).stdout) as { serial: string; purpose: string; notAfter: string }[]).find((r) => r.purpose === 'smime-signing')!;
  const again = cli(['cert', 'issue', '--store', storeDir, '--user', 'ann@example.com', '--name', 'Ann', '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(again.status, 1);
  t.is(again.stderr, `error: ann@example.com already holds a valid signing certificate, ${held.serial} (until ${held.notAfter.slice(0, 10)}); to replace it, \`profilesmith cert renew --user ann@example.com --purpose smime-signing\`; to add another, --force\n`);

  const port = cli(['generate', 'imap-smime', '--store', storeDir, '--user', 'ann@example.com', '--set', 'imap.host=imap.example.com', '--set', 'smtp.host=smtp.example.com', '--set', 'imap.port=99999', '-o', 'ann.mobileconfig'], { cwd: dir, env });
  t.is(port.status, 1);
  t.is(port.stderr, 'error: Template "imap-smime": variable "imap.port" must be from 1 to 65535, got 99999\n');
  t.deepEqual(snapshotDir(dir), before, 'no certificate, key, record or profile was written');

  // What is meant still works: the right purpose, --force, a real port.
  t.is(cli(['cert', 'import', 'c.pem', '--key', 'c.key', '--store', storeDir, '--user', 'carol@example.com', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'ann@example.com', '--name', 'Ann', '--purpose', 'smime-signing', '--force'], { cwd: dir, env }).status, 0);
  t.is(cli(['generate', 'imap-smime', '--store', storeDir, '--user', 'ann@example.com', '--set', 'imap.host=imap.example.com', '--set', 'smtp.host=smtp.example.com', '--set', 'imap.port=143', '-o', 'ann.mobileconfig'], { cwd: dir, env }).status, 0);
});
