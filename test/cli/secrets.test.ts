/**
 * Secrets never leak: a full CLI journey (every secret given by file or environment, never in
 * argv), then every stdout, stderr, --json output, error message and --debug trace, and every
 * file in the store, is searched for each secret in several encodings.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toPkcs12 } from '../../src/certs/pkcs12.js';
import { pkcs11Signer } from '../../src/cms/pkcs11.js';
import { openStore } from '../../src/store/fs-store.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { cli, ROOT, snapshotDir, tmp } from '../helpers/tools.js';

const PASS = 'store-pässphrase-7f3e9a';
const NEW_PASS = 'new-store-passphrase-c41d2b';
const IMPORT_PW = 'import-pässword-51be0c';
const EXPORT_PW = 'export-password-9d8a7c';
const REMOVAL_PW = 'removal-password-2e6f1a';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

function forms(secret: string | Buffer): string[] {
  const b = Buffer.isBuffer(secret) ? secret : Buffer.from(secret, 'utf8');
  const out = [b.toString('hex'), b.toString('base64').replace(/=+$/, ''), b.toString('base64url')];
  if (!Buffer.isBuffer(secret)) out.push(secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret));
  return out.filter((s) => s.length >= 12);
}

test('a full CLI journey: no passphrase, password or private key in any output, message, argv or store file', async (t) => {
  const dir = tmp(t);
  const store = join(dir, 'store');
  const f = (name: string, text: string) => {
    writeFileSync(join(dir, name), text, { mode: 0o600 });
    return join(dir, name);
  };
  const passFile = f('pass', PASS);
  const newPassFile = f('newpass', NEW_PASS);
  const importPwFile = f('import-pw', IMPORT_PW);
  const exportPwFile = f('export-pw', EXPORT_PW);
  const data = f('data.json', JSON.stringify({ exchange: { host: 'mail.example.com' }, removal: { password: REMOVAL_PW } }));
  writeFileSync(join(dir, 'users.csv'), 'email,name\nalice@example.com,Alice\nbob@example.com,Bob\nnot-an-address,X\n');

  // An outside identity to import, protected by a password.
  const outside = await (await import('../../src/store/memory-store.js')).createMemoryStore({ organization: 'Outside' });
  const rec = await outside.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  const id = await outside.getIdentity(rec.serial);
  writeFileSync(join(dir, 'outside.p12'), toPkcs12(id.certificate, id.privateKey, { password: IMPORT_PW }));

  const env = { PROFILESMITH_PASSPHRASE: PASS };
  const steps: [string[], Record<string, string>?][] = [
    [['init', '--store', store, '--org', 'Leak Test Corp', '--passphrase-file', passFile]],
    [['cert', 'issue', '--store', store, '--user', 'alice@example.com', '--name', 'Alice', '--purpose', 'smime-signing', '--json'], env],
    [['cert', 'issue', '--store', store, '--user', 'alice@example.com', '--name', 'Alice', '--purpose', 'smime-encryption', '--json'], env],
    [['cert', 'import', join(dir, 'outside.p12'), '--store', store, '--user', 'alice@example.com', '--purpose', 'smime-encryption', '--password-file', importPwFile, '--json'], env],
    [['cert', 'import', join(dir, 'outside.p12'), '--store', store, '--user', 'alice@example.com', '--purpose', 'smime-encryption', '--password-file', passFile], env], // wrong password
    [['cert', 'issue-batch', '--store', store, '--users', join(dir, 'users.csv'), '--purpose', 'smime-signing', '--json'], env],
    [['cert', 'issue-batch', '--store', store, '--users', join(dir, 'users.csv'), '--purpose', 'smime-encryption'], env],
    [['cert', 'list', '--store', store, '--json'], env],
    [['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--data', data, '--no-pkcs12-password', '--passwords-out', join(dir, 'alice-pw.csv'), '-o', join(dir, 'alice.mobileconfig'), '--json'], env],
    [['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--data', data, '-o', join(dir, 'alice-embedded.mobileconfig')], env],
    [['batch', 'exchange-smime', '--store', store, '--users', join(dir, 'users.csv'), '--out', join(dir, 'out'), '--data', data, '--no-pkcs12-password', '--passwords-out', join(dir, 'batch-pw.csv'), '--json', '--jobs', '2'], env],
    [['inspect', join(dir, 'alice-embedded.mobileconfig'), '--json']],
    [['inspect', join(dir, 'alice-embedded.mobileconfig')]],
    [['lint', join(dir, 'alice-embedded.mobileconfig'), '--json']],
    [['verify', join(dir, 'alice.mobileconfig'), '--store', store, '--json']],
    [['cert', 'export', 'alice@example.com', '--store', store, '--format', 'p12', '--password-file', exportPwFile, '-o', join(dir, 'export.p12')], env],
    [['link', 'create', '--store', store, '--user', 'alice@example.com', '--base-url', 'https://p.example.com', '--template', 'exchange-smime', '--data', data, '--json'], env],
    [['crl', '--store', store, '-o', join(dir, 'crl.der')], env],
    [['store', 'check', '--store', store, '--json'], env],
    [['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--data', data, '-o', '-'], { PROFILESMITH_PASSPHRASE: 'wrong-' + PASS }],
    [['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--data', data, '-o', '-', '--debug'], { PROFILESMITH_PASSPHRASE: 'wrong-' + PASS }],
    [['store', 'passphrase', '--store', store, '--new-passphrase-file', newPassFile], env],
    [['cert', 'list', '--store', store, '--json'], { PROFILESMITH_PASSPHRASE: NEW_PASS }],
    [['generate', 'exchange-smime', '--store', store, '--user', 'alice@example.com', '--data', data, '-o', '-', '--debug'], env], // old passphrase, --debug
  ];
  let outputs = '';
  const statuses: (number | null)[] = [];
  const argv: string[] = [];
  let exportSerial = '';
  for (const [args, e] of steps) {
    const a = args.map((x) => (x === 'alice@example.com' && args[1] === 'export' && exportSerial ? exportSerial : x));
    const r = cli(a, { env: e ?? {} });
    statuses.push(r.status);
    argv.push(...a);
    // stdout of `-o -` is the profile itself (binary, with PKCS#12 inside): search its text parts only.
    outputs += `\n$ ${a.join(' ')} → ${r.status}\n${a.includes('-') ? '' : r.stdout}${r.stderr}`;
    if (a[0] === 'cert' && a[1] === 'list' && r.status === 0 && !exportSerial) {
      exportSerial = (JSON.parse(r.stdout) as { serial: string; purpose: string }[]).find((x) => x.purpose === 'smime-encryption')!.serial;
    }
  }
  // Every step did what it should: the wrong password and passphrases fail, and the users file's
  // bad row makes issue-batch and batch exit 1 after doing the good rows.
  t.deepEqual(statuses, [0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1], outputs);
  t.is(readdirSync(join(dir, 'out')).filter((x) => x.endsWith('.mobileconfig')).length, 2);

  // The secrets: passphrases and passwords given, the PKCS#12 passwords made, and key material.
  const p12Passwords = [join(dir, 'alice-pw.csv'), join(dir, 'batch-pw.csv')].flatMap((file) =>
    readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').at(-1)!),
  );
  t.true(p12Passwords.length >= 6, 'passwords were written to the 0600 files');
  t.is(statSync(join(dir, 'batch-pw.csv')).mode & 0o777, 0o600);
  const opened = await openStore(store, { passphrase: NEW_PASS });
  const keyMaterial: Buffer[] = [];
  for (const r of await opened.listCertificates()) {
    const jwk = (await opened.getIdentity(r.serial)).privateKey.export({ format: 'jwk' });
    for (const part of [jwk.d, jwk.p, jwk.q]) if (part) keyMaterial.push(Buffer.from(part, 'base64url'));
  }
  t.true(keyMaterial.length >= 9);
  const secrets: [string, string[]][] = [
    ...[PASS, NEW_PASS, IMPORT_PW, EXPORT_PW, REMOVAL_PW].map((s) => [s, forms(s)] as [string, string[]]),
    ...p12Passwords.map((s) => [`PKCS#12 password ${s.slice(0, 3)}…`, forms(s)] as [string, string[]]),
    ...keyMaterial.map((k, i) => [`private key part ${i}`, forms(k.subarray(0, 32))] as [string, string[]]),
  ];

  const storeFiles = filesUnder(store).map((p) => [p, readFileSync(p).toString('latin1')] as const);
  const profiles = ['alice.mobileconfig', ...readdirSync(join(dir, 'out')).filter((x) => x.endsWith('.mobileconfig')).map((x) => join('out', x))].map((p) => [p, readFileSync(join(dir, p)).toString('latin1')] as const);
  for (const [name, encodings] of secrets) {
    for (const s of encodings) {
      t.false(outputs.includes(s), `${name} in the CLI output`);
      t.false(argv.some((a) => a.includes(s)), `${name} in argv`);
      for (const [p, text] of storeFiles) t.false(text.includes(s), `${name} in ${p}`);
      // Profiles made with --no-pkcs12-password carry no PKCS#12 password and no key in clear.
      if (!name.startsWith('removal') && name !== REMOVAL_PW) for (const [p, text] of profiles) t.false(text.includes(s), `${name} in ${p}`);
    }
  }
  t.false(outputs.includes('PRIVATE KEY'), 'no PEM private key printed');
  for (const [p, text] of storeFiles) t.false(text.includes('PRIVATE KEY'), `no PEM private key in ${p}`);
  // The --debug trace is there (so the check above looked at one) and holds none of it.
  t.regex(outputs, /--debug → 1\n[\s\S]*?\n\s+at /);
  // And openssl, an outside reader, agrees the exported PKCS#12 needs its password.
  try {
    execFileSync('openssl', ['pkcs12', '-in', join(dir, 'export.p12'), '-noout', '-passin', 'pass:wrong'], { stdio: 'pipe' });
    t.fail('openssl opened the export with a wrong password');
  } catch {
    t.pass();
  }
});

test('a secret file that other users can read or change is refused, as ssh refuses such a key: one line naming it and chmod 600, exit 1, nothing written (issue 28)', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const store = await aliceStore(storeDir);
  const serial = (await store.listCertificates({ user: 'alice@example.com', purpose: 'smime-signing' }))[0]!.serial;
  const alice = await store.getIdentity(serial);
  writeFileSync(join(dir, 'a.p12'), toPkcs12(alice.certificate, alice.privateKey, { password: IMPORT_PW }));
  copyFileSync(join(ROOT, 'test', 'golden', 'root-ca.mobileconfig'), join(dir, 'profile.xml'));
  const secret = (name: string, text: string, mode: number) => {
    writeFileSync(join(dir, name), text, { mode });
    chmodSync(join(dir, name), mode); // whatever the umask
    return name;
  };
  const refused = (name: string, what: string, mode: string, access = 'readable') => `error: The ${what} file "${name}" is ${access} by other users (mode ${mode}); run chmod 600 "${name}"\n`;
  const before = snapshotDir(storeDir);
  const cases: [string[], Record<string, string>, string][] = [
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing', '--passphrase-file', secret('world.txt', PASSPHRASE, 0o644)], {}, refused('world.txt', 'passphrase', '644')],
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing'], { PROFILESMITH_PASSPHRASE_FILE: secret('group.txt', PASSPHRASE, 0o640) }, refused('group.txt', 'passphrase', '640')],
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing', '--passphrase-file', secret('writable.txt', PASSPHRASE, 0o620)], {}, refused('writable.txt', 'passphrase', '620', 'writable')],
    [['cert', 'import', 'a.p12', '--store', storeDir, '--user', 'alice@example.com', '--purpose', 'smime-encryption', '--password-file', secret('p12.txt', IMPORT_PW, 0o644)], { PROFILESMITH_PASSPHRASE: PASSPHRASE }, refused(join(dir, 'p12.txt'), 'password', '644')],
    [['cert', 'export', serial, '--store', storeDir, '--format', 'p12', '--password-file', 'p12.txt', '-o', 'out.p12'], { PROFILESMITH_PASSPHRASE: PASSPHRASE }, refused('p12.txt', 'password', '644')],
    [['store', 'passphrase', '--store', storeDir, '--new-passphrase-file', secret('new.txt', NEW_PASS, 0o604)], { PROFILESMITH_PASSPHRASE: PASSPHRASE }, refused('new.txt', 'new passphrase', '604')],
    [['sign', 'profile.xml', '--signer', 'pkcs11:token=t;object=k?module-path=/nonexistent/libpkcs11.so', '--pin-file', secret('pin.txt', '1234', 0o644), '-o', 'signed.mobileconfig'], {}, refused('pin.txt', 'PIN', '644')],
  ];
  for (const [args, env, line] of cases) {
    const r = cli(args, { cwd: dir, env });
    t.is(r.status, 1, args.join(' '));
    t.is(r.stderr, line);
  }
  t.deepEqual(snapshotDir(storeDir), before, 'the store is unchanged');
  t.false(existsSync(join(dir, 'out.p12')));
  t.false(existsSync(join(dir, 'signed.mobileconfig')));
  // A PIN file named in the PKCS#11 URI (pin-source) is held to the same rule, in the library.
  await t.throwsAsync(pkcs11Signer({ uri: `pkcs11:token=t;object=k?module-path=/nonexistent/libpkcs11.so&pin-source=file:${join(dir, 'pin.txt')}` }), {
    code: 'ERR_INPUT_INVALID',
    message: `The PIN file "${join(dir, 'pin.txt')}" is readable by other users (mode 644); run chmod 600 "${join(dir, 'pin.txt')}"`,
  });
  // Made private, the same files serve.
  for (const f of ['world.txt', 'p12.txt']) chmodSync(join(dir, f), 0o600);
  const ok = cli(['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing', '--passphrase-file', 'world.txt'], { cwd: dir });
  t.is(ok.status, 0, ok.stderr);
  const exported = cli(['cert', 'export', serial, '--store', storeDir, '--format', 'p12', '--password-file', 'p12.txt', '-o', 'out.p12'], { cwd: dir, env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } });
  t.is(exported.status, 0, exported.stderr);
});
