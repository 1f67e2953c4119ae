/**
 * A signer the device already trusts: an organization's certificate from an outside CA (made
 * here with openssl, standing in for a publicly trusted one) signs the profiles instead of the
 * store's own signer, and `verify` says the profile needs no trust profile.
 */
import test from 'ava';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { cli, need, openssl, tmp } from '../helpers/tools.js';
import { postgres } from '../helpers/postgres.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

function outsideCa(dir: string) {
  const run = (args: string[]) => {
    const r = openssl(args);
    if (r.status !== 0) throw new Error(r.stderr.toString());
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'pubroot.key'), '-out', join(dir, 'pubroot.pem'), '-subj', '/CN=Stand-in Public Root', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'org.key'), '-out', join(dir, 'org.csr'), '-subj', '/CN=Example Corp Profiles/O=Example Corp']);
  writeFileSync(join(dir, 'ext.cnf'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection,codeSigning\n');
  run(['x509', '-req', '-in', join(dir, 'org.csr'), '-CA', join(dir, 'pubroot.pem'), '-CAkey', join(dir, 'pubroot.key'), '-CAcreateserial', '-out', join(dir, 'org.pem'), '-days', '20', '-extfile', join(dir, 'ext.cnf')]);
  writeFileSync(join(dir, 'p12pass'), 'export-pass\n', { mode: 0o600 });
  run(['pkcs12', '-export', '-in', join(dir, 'org.pem'), '-inkey', join(dir, 'org.key'), '-certfile', join(dir, 'pubroot.pem'), '-out', join(dir, 'org.p12'), '-passout', 'pass:export-pass']);
}

test('ca import-signer: profiles are signed by the outside identity, openssl verifies them against that root, and verify says no trust profile is needed', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  outsideCa(dir);
  const imported = cli(['ca', 'import-signer', '--store', storeDir, '--cert', 'org.pem', '--key', 'org.key', '--json'], { cwd: dir, env });
  t.is(imported.status, 0, imported.stderr);
  t.is(JSON.parse(imported.stdout).trust.kind, 'private', 'the stand-in root is not one of the public roots Node ships');
  t.false(readFileSync(join(storeDir, 'signer', `${JSON.parse(imported.stdout).serial}.key.1`), 'utf8').includes('PRIVATE KEY'), 'the key is sealed');
  const gen = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'p.mobileconfig'], { cwd: dir, env });
  t.is(gen.status, 0, gen.stderr);
  const ok = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'p.mobileconfig'), '-CAfile', join(dir, 'pubroot.pem'), '-out', '/dev/null']);
  t.is(ok.status, 0, ok.stderr.toString());
  const v = cli(['verify', 'p.mobileconfig', '--ca', 'pubroot.pem'], { cwd: dir });
  t.is(v.status, 0, v.stdout);
  t.regex(v.stdout, /signed by "CN=Example Corp Profiles, O=Example Corp"/);
  t.regex(v.stdout, /to show as Verified it needs: nothing on the device: the signer chains to "CN=Stand-in Public Root", a root devices already trust/);
  const storeRoot = cli(['ca', 'export', '--store', storeDir], { cwd: dir }).stdout;
  writeFileSync(join(dir, 'storeroot.pem'), storeRoot);
  t.is(cli(['verify', 'p.mobileconfig', '--ca', 'storeroot.pem'], { cwd: dir }).status, 3, 'no longer signed by the store chain');
  // The store's own previous signer is out of use, and revoked: relying parties see it on the CRL.
  const crl = openssl(['crl', '-noout', '-text'], cli(['crl', '--store', storeDir, '--pem'], { cwd: dir, env }).stdout);
  t.regex(crl.stdout.toString(), /Superseded/);
  t.is(cli(['store', 'check', '--store', storeDir], { cwd: dir, env }).status, 0);

  // PKCS#12 form (with its chain inside), replacing the first import; then back to a store signer.
  const p12 = cli(['ca', 'import-signer', '--store', storeDir, '--cert', 'org.p12', '--password-file', 'p12pass'], { cwd: dir, env });
  t.is(p12.status, 1, 'the same certificate again');
  t.regex(p12.stderr, /is the profile signer already/);
  const back = cli(['ca', 'rotate-signer', '--store', storeDir], { cwd: dir, env });
  t.is(back.status, 0, back.stderr);
  const again = cli(['ca', 'import-signer', '--store', storeDir, '--cert', 'org.p12', '--password-file', 'p12pass'], { cwd: dir, env });
  t.is(again.status, 0, again.stderr);
  const sign = cli(['sign', 'p.mobileconfig', '--store', storeDir, '-o', 'resigned.mobileconfig'], { cwd: dir, env });
  t.is(sign.status, 0, sign.stderr);
  t.is(openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'resigned.mobileconfig'), '-CAfile', join(dir, 'pubroot.pem'), '-out', '/dev/null']).status, 0);
  const wrongKey = cli(['ca', 'import-signer', '--store', storeDir, '--cert', 'org.pem', '--key', 'pubroot.key'], { cwd: dir, env });
  t.is(wrongKey.status, 1);
  t.regex(wrongKey.stderr, /does not belong/);
});

test('a profile of the store signer needs its root installed first, and verify and inspect say so', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  t.is(cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'p.mobileconfig'], { cwd: dir, env }).status, 0);
  const v = cli(['verify', 'p.mobileconfig', '--store', storeDir, '--json'], { cwd: dir, env });
  t.like(JSON.parse(v.stdout).trustNeeded, { kind: 'private', rootInProfile: true, root: 'CN=Example Corp Root CA, O=Example Corp' });
  t.regex(cli(['inspect', 'p.mobileconfig'], { cwd: dir }).stdout, /To show as Verified it needs the root "CN=Example Corp Root CA, O=Example Corp" on the device first/);
});

test('ca import-signer on a PostgreSQL store: the outside identity signs, openssl verifies against its root; the own signer is revoked; rotate-signer and a PKCS#12 import after it work too', async (t) => {
  if (!need(t, 'openssl')) return;
  const server = await postgres();
  if ('missing' in server) {
    t.log(`skipped: ${server.missing}`);
    t.pass();
    return;
  }
  const dir = tmp(t);
  const url = await server.createDatabase();
  t.is(cli(['init', '--store', url, '--org', 'Example Corp'], { cwd: dir, env }).status, 0);
  for (const purpose of ['smime-signing', 'smime-encryption']) t.is(cli(['cert', 'issue', '--store', url, '--user', 'alice@example.com', '--name', 'Alice', '--purpose', purpose], { cwd: dir, env }).status, 0);
  outsideCa(dir);
  const imported = cli(['ca', 'import-signer', '--store', url, '--cert', 'org.pem', '--key', 'org.key', '--json'], { cwd: dir, env });
  t.is(imported.status, 0, imported.stderr);
  const gen = cli(['generate', 'exchange-smime', '--store', url, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'p.mobileconfig'], { cwd: dir, env });
  t.is(gen.status, 0, gen.stderr);
  const ok = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'p.mobileconfig'), '-CAfile', join(dir, 'pubroot.pem'), '-out', '/dev/null']);
  t.is(ok.status, 0, ok.stderr.toString());
  const crl = openssl(['crl', '-noout', '-text'], cli(['crl', '--store', url, '--pem'], { cwd: dir, env }).stdout);
  t.regex(crl.stdout.toString(), /Superseded/, 'the store\'s own previous signer is on the CRL');
  t.is(cli(['store', 'check', '--store', url], { cwd: dir, env }).status, 0);
  const p12 = cli(['ca', 'import-signer', '--store', url, '--cert', 'org.p12', '--password-file', 'p12pass'], { cwd: dir, env });
  t.is(p12.status, 1);
  t.regex(p12.stderr, /is the profile signer already/);
  const outsideSerial = (JSON.parse(imported.stdout) as { serial: string }).serial;
  t.is(cli(['ca', 'rotate-signer', '--store', url], { cwd: dir, env }).status, 0);
  const crl2 = openssl(['crl', '-noout', '-text'], cli(['crl', '--store', url, '--pem'], { cwd: dir, env }).stdout).stdout.toString();
  t.notRegex(crl2, new RegExp(outsideSerial, 'i'), 'the outside signer is not ours to revoke: not on our CRL');
  const back = cli(['generate', 'exchange-smime', '--store', url, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', 'q.mobileconfig'], { cwd: dir, env });
  t.is(back.status, 0, back.stderr);
  writeFileSync(join(dir, 'storeroot.pem'), cli(['ca', 'export', '--store', url], { cwd: dir }).stdout);
  t.is(openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'q.mobileconfig'), '-CAfile', join(dir, 'storeroot.pem'), '-purpose', 'any', '-out', '/dev/null']).status, 0, 'signed by the store again');
  const again = cli(['ca', 'import-signer', '--store', url, '--cert', 'org.p12', '--password-file', 'p12pass'], { cwd: dir, env });
  t.is(again.status, 0, again.stderr);
  t.is(cli(['store', 'check', '--store', url], { cwd: dir, env }).status, 0);
});
