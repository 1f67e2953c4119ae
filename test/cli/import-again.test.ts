/**
 * Importing a certificate that is already in the store (issue "The admin's CLI, polished"):
 * for its other purpose (a dual-use certificate), or with the chain it lacked. Certificates
 * made by openssl; the profile checked with python's plistlib and openssl pkcs12.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { cli, need, openssl, python, snapshotDir, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

test('a dual-use certificate imported for its other purpose serves both; a chain given on re-import is added; one PKCS#12 payload carries it', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const ca = outsideCa(dir); // bob's certificate: keyUsage digitalSignature + keyEncipherment
  const imp = (file: string, purpose: string, more: string[] = []) =>
    cli(['cert', 'import', file, '--store', storeDir, '--user', 'bob@example.com', '--purpose', purpose, ...more], { cwd: dir, env });

  let r = imp(ca.pem, 'smime-signing');
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /^Imported smime-signing certificate [0-9a-f]+ for bob@example\.com, valid until \d{4}-\d\d-\d\d\n$/);
  const serial = /certificate ([0-9a-f]+)/.exec(r.stderr)![1]!;
  const opensslSerial = execFileSync('openssl', ['x509', '-in', ca.userPem, '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '').toLowerCase();
  t.is(BigInt(`0x${serial}`), BigInt(`0x${opensslSerial}`));
  r = imp(ca.pem, 'smime-signing', ['--chain', ca.chain]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, `Already in the store: ${serial} (bob@example.com, smime-signing); 2 issuer certificate(s) added\n`);
  r = imp(ca.modern, 'smime-encryption', ['--password-file', ca.pwFile]);
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, `Already in the store: ${serial} (bob@example.com, smime-signing); now also smime-encryption (a dual-use certificate)\n`);
  const before = snapshotDir(storeDir);
  r = imp(ca.modern, 'smime-encryption', ['--password-file', ca.pwFile, '--chain', ca.chain]);
  t.is(r.stderr, `Already in the store: ${serial} (bob@example.com, smime-signing and smime-encryption); nothing changed\n`);
  t.deepEqual(snapshotDir(storeDir), before);
  t.is(readdirSync(join(storeDir, 'certs')).filter((d) => d === serial).length, 1, 'one entry, not two');

  const list = JSON.parse(cli(['cert', 'list', '--store', storeDir, '--user', 'bob@example.com', '--json'], { cwd: dir }).stdout) as { purpose: string; alsoPurpose?: string; addedChain?: string[] }[];
  t.is(list.length, 1);
  t.like(list[0], { purpose: 'smime-signing', alsoPurpose: 'smime-encryption' });
  t.is(list[0]!.addedChain?.length, 2);

  r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'bob@example.com', '--set', 'exchange.host=h.example.com', '--no-sign', '--no-pkcs12-password', '--passwords-out', 'pw.csv', '-o', 'bob.xml'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  const py = python(
    'import plistlib,sys,json\np=plistlib.loads(sys.stdin.buffer.read())\n' +
      'c=p["PayloadContent"]\nacc=[x for x in c if x["PayloadType"]=="com.apple.eas.account"][0]\n' +
      'print(json.dumps({"p12":[x["PayloadUUID"] for x in c if x["PayloadType"]=="com.apple.security.pkcs12"],"sign":acc["SMIMESigningCertificateUUID"],"enc":acc["SMIMEEncryptionCertificateUUID"],' +
      '"der":[__import__("base64").b64encode(x["PayloadContent"]).decode() for x in c if x["PayloadType"]=="com.apple.security.pkcs12"],"cas":sorted(x["PayloadDisplayName"] for x in c if x["PayloadType"] in ("com.apple.security.root","com.apple.security.pkcs1"))}))',
    readFileSync(join(dir, 'bob.xml')),
  );
  t.is(py.status, 0, py.stderr);
  const shape = JSON.parse(py.stdout) as { p12: string[]; der: string[]; sign: string; enc: string; cas: string[] };
  t.is(shape.p12.length, 1, 'the dual-use identity is shipped once');
  t.is(shape.sign, shape.p12[0]!);
  t.is(shape.enc, shape.p12[0]!);
  t.true(shape.cas.some((n) => n.includes('Outside Root CA')), `the added chain is shipped: ${shape.cas.join(', ')}`);
  t.true(shape.cas.some((n) => n.includes('Outside Issuing CA')));
  // The one PKCS#12 opens with its password (3DES, SHA-1 MAC) and holds bob's certificate.
  const b64 = shape.der[0]!;
  const password = readFileSync(join(dir, 'pw.csv'), 'utf8').trim().split('\n')[1]!.split(',').at(-1)!;
  writeFileSync(join(dir, 'pw'), password);
  const p12 = openssl(['pkcs12', '-nokeys', '-passin', `file:${join(dir, 'pw')}`], Buffer.from(b64, 'base64'));
  t.is(p12.status, 0, p12.stderr.toString());
  t.is(openssl(['x509', '-noout', '-fingerprint', '-sha256'], p12.stdout).stdout.toString(), openssl(['x509', '-noout', '-fingerprint', '-sha256', '-in', ca.userPem]).stdout.toString());
});

test('a certificate made for signing only is refused for encryption on re-import, in one line, with the store unchanged', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(join(dir, 'ext.cnf'), '[u]\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\nsubjectAltName=email:carol@example.com\n');
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=Other CA', '-days', '3650']);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'c.key', '-out', 'c.csr', '-subj', '/CN=Carol']);
  o(['x509', '-req', '-in', 'c.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'c.pem', '-days', '365', '-extfile', 'ext.cnf', '-extensions', 'u']);
  writeFileSync(join(dir, 'c-all.pem'), Buffer.concat([readFileSync(join(dir, 'c.pem')), readFileSync(join(dir, 'c.key'))]));
  const imp = (purpose: string) => cli(['cert', 'import', 'c-all.pem', '--store', storeDir, '--user', 'carol@example.com', '--purpose', purpose], { cwd: dir, env });
  t.is(imp('smime-signing').status, 0);
  const before = snapshotDir(storeDir);
  const r = imp('smime-encryption');
  t.is(r.status, 1);
  // checkImport refuses it before the store's own dual-use check is reached.
  t.is(r.stderr, "error: The certificate's key usage (digitalSignature) lacks keyEncipherment, which smime-encryption needs; import it as smime-signing\n");
  t.deepEqual(snapshotDir(storeDir), before);
});
