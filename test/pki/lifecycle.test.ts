/**
 * The CA's lifecycle as an admin runs it: names carried exactly, retired certificates still
 * revocable, issuance decided under the lock, signer and issuing-CA rotation, name constraints.
 */
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { postgres } from '../helpers/postgres.js';
import { BIN, cli, need, openssl, python, tmp } from '../helpers/tools.js';
import { env, fetchBytes, fetchCrls, issue, pkiStore, run, urlsIn } from './helpers.js';

const HOSTILE = ['Jane "JD" Doe', '"x", O=Evil', '#0403414243', 'a+b=c\\d; <e> \'f\'', 'Jürgen Müller 日本', ' =#,+ '.trim() + 'x'];

const subjectOf = (pem: string) => openssl(['x509', '-in', pem, '-noout', '-subject', '-nameopt', 'utf8,sep_multiline']).stdout.toString('utf8');

/** The PKCS#12 payloads of a signed profile, with their passwords, read by openssl and plistlib. */
function pkcs12sOf(dir: string, profile: string): { data: Buffer; password: string }[] {
  const xml = join(dir, 'content.xml');
  const r = openssl(['cms', '-verify', '-noverify', '-inform', 'DER', '-in', profile, '-out', xml]);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  const out = python(
    `import plistlib,json,base64\np=plistlib.load(open(${JSON.stringify(xml)},'rb'))\nprint(json.dumps([{'data':base64.b64encode(x['PayloadContent']).decode(),'password':x.get('Password')} for x in p['PayloadContent'] if x['PayloadType']=='com.apple.security.pkcs12']))`,
  );
  return (JSON.parse(out.stdout) as { data: string; password: string }[]).map((x) => ({ data: Buffer.from(x.data, 'base64'), password: x.password }));
}

// Serial: these tests run the CLI with spawnSync, which blocks this whole process; a test of the
// same file with an HTTP request or a database connection in flight would then see its peer time
// out (408 from a server that got no request headers, a pool that got no session in 10 s).
test.serial('hostile names come back byte-identical from openssl; the profile\'s PKCS#12 opens in openssl pkcs12; a CN over 64 characters writes nothing', async (t) => {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example "Corp", O=Evil #1', passphrase: PASSPHRASE, kdfCost: 14 });
  for (const [i, name] of HOSTILE.entries()) {
    const user = `n${i}@example.com`;
    const r = run(t, dir, ['cert', 'issue', '--store', storeDir, '--user', user, '--name', name, '--purpose', 'smime-signing', '--json']);
    const { serial } = JSON.parse(r.stdout) as { serial: string };
    run(t, dir, ['cert', 'issue', '--store', storeDir, '--user', user, '--name', name, '--purpose', 'smime-encryption']);
    const pem = join(storeDir, 'certs', serial, 'cert.pem');
    t.is(subjectOf(pem), `subject=\n    CN=${name}\n`, name);
    t.is(openssl(['x509', '-in', pem, '-noout']).status, 0);
    const profile = join(dir, `${i}.mobileconfig`);
    run(t, dir, ['generate', 'exchange-smime', '--store', storeDir, '--user', user, '--set', 'exchange.host=mail.example.com', '-o', profile]);
    const p12s = pkcs12sOf(dir, profile);
    t.is(p12s.length, 2, 'signing and encryption');
    for (const p12 of p12s) {
      writeFileSync(join(dir, 'x.p12'), p12.data);
      const opened = openssl(['pkcs12', '-in', join(dir, 'x.p12'), '-nokeys', '-clcerts', '-passin', `pass:${p12.password}`]);
      t.is(opened.status, 0, opened.stderr.toString());
      writeFileSync(join(dir, 'x.pem'), opened.stdout);
      t.is(subjectOf(join(dir, 'x.pem')), `subject=\n    CN=${name}\n`);
    }
  }
  // The CA names carry the organization as given, too.
  t.regex(subjectOf(join(storeDir, 'ca', 'root.pem')), /CN=Example "Corp", O=Evil #1 Root CA\n {4}O=Example "Corp", O=Evil #1\n/);
  const before = readdirSync(join(storeDir, 'certs')).sort();
  const long = cli(['cert', 'issue', '--store', storeDir, '--user', 'long@example.com', '--name', 'é'.repeat(65), '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(long.status, 1);
  t.regex(long.stderr, /^error: The common name "é+" has 65 characters; X\.509 allows at most 64 \(ub-common-name\)\n/);
  t.deepEqual(readdirSync(join(storeDir, 'certs')).sort(), before);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'ok@example.com', '--name', 'é'.repeat(64), '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0, '64 characters (128 bytes of UTF-8) fit');
  const org = cli(['init', '--store', join(dir, 'long'), '--org', 'O'.repeat(50)], { cwd: dir, env });
  t.is(org.status, 1);
  t.regex(org.stderr, /The organization has 50 characters; at most 43 fit/);
  t.false(existsSync(join(dir, 'long')));
});

test.serial('names from a users CSV reach the certificate exactly as written', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'u.csv'), 'email,name\nhr1@example.com,"Jane ""JD"" Doe"\nhr2@example.com,"""x"", O=Evil"\nhr3@example.com,#0403414243\n');
  run(t, dir, ['cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing']);
  const list = await (await openStore(storeDir)).listCertificates();
  const want: Record<string, string> = { 'hr1@example.com': 'Jane "JD" Doe', 'hr2@example.com': '"x", O=Evil', 'hr3@example.com': '#0403414243' };
  t.is(list.length, 3);
  for (const r of list) {
    t.is(r.name, want[r.user]);
    t.is(subjectOf(join(storeDir, 'certs', r.serial, 'cert.pem')), `subject=\n    CN=${want[r.user]}\n`);
  }
});

test.serial('retired certificates can still be revoked, by user remove --revoke or cert revoke, and then the CRL lists them; nothing says Revoked twice', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await pkiStore(t);
  const bob = [issue(t, dir, storeDir, 'bob@example.com'), issue(t, dir, storeDir, 'bob@example.com', 'smime-encryption')];
  const carol = issue(t, dir, storeDir, 'carol@example.com');
  const first = run(t, dir, ['user', 'remove', 'bob@example.com', '--store', storeDir, '--json']);
  t.deepEqual(JSON.parse(first.stdout), { revoked: [], retired: bob.map((b) => b.serial) });
  const second = run(t, dir, ['user', 'remove', 'bob@example.com', '--store', storeDir, '--revoke', '--json']);
  t.deepEqual(JSON.parse(second.stdout).revoked.sort(), bob.map((b) => b.serial).sort());
  const third = run(t, dir, ['user', 'remove', 'bob@example.com', '--store', storeDir, '--revoke']);
  t.regex(third.stderr, /0 revoked, 0 retired/);

  run(t, dir, ['user', 'remove', 'carol@example.com', '--store', storeDir]);
  const r = run(t, dir, ['cert', 'revoke', carol.serial, '--store', storeDir, '--reason', 'keyCompromise']);
  t.regex(r.stderr, /^Revoked /);
  const again = run(t, dir, ['cert', 'revoke', carol.serial, '--store', storeDir]);
  t.notRegex(again.stderr, /^Revoked/m);
  t.regex(again.stderr, /was already revoked on \d{4}-\d{2}-\d{2} \(keyCompromise\)/);

  const [crl] = await fetchCrls(dir, [carol.pem]);
  const text = openssl(['crl', '-in', crl!, '-noout', '-text']).stdout.toString();
  for (const s of [...bob.map((b) => b.serial), carol.serial]) t.regex(text, new RegExp(`Serial Number: ${s}`, 'i'));
  const listed = JSON.parse(run(t, dir, ['cert', 'list', '--store', storeDir, '--json']).stdout) as { serial: string; status: string }[];
  t.true(listed.every((x) => x.status === 'revoked'));
});

test.serial('concurrent issue-batch runs over the same users leave exactly one new certificate per user and purpose', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'u.csv'), 'email\n' + Array.from({ length: 30 }, (_, i) => `u${i}@example.com`).join('\n') + '\n');
  const runOne = () =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [BIN, 'cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing', '--json'], { cwd: dir, env: { PATH: process.env.PATH ?? '', ...env } });
      let out = '';
      p.stdout.on('data', (c) => (out += c));
      p.on('close', (code) => resolve({ code, out }));
    });
  const results = await Promise.all([runOne(), runOne(), runOne()]);
  for (const r of results) t.is(r.code, 0);
  const summaries = results.map((r) => JSON.parse(r.out) as { generated: number; existing: number });
  t.is(summaries.reduce((n, s) => n + s.generated, 0), 30, 'the runs between them issued 30');
  for (const s of summaries) t.is(s.generated + s.existing, 30);
  const list = JSON.parse(run(t, dir, ['cert', 'list', '--store', storeDir, '--json']).stdout) as { user: string }[];
  t.is(list.length, 30);
  t.is(new Set(list.map((r) => r.user)).size, 30);
});

test.serial('rotate-signer revokes the old signer and profiles verify with the new one; a revoked signer stops generate until rotated', async (t) => {
  if (!need(t, 'openssl')) return;
  const { dir, storeDir } = await pkiStore(t);
  writeFileSync(join(dir, 'root.pem'), run(t, dir, ['ca', 'export', '--store', storeDir]).stdout);
  issue(t, dir, storeDir, 'alice@example.com');
  issue(t, dir, storeDir, 'alice@example.com', 'smime-encryption');
  const gen = (name: string) => cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', join(dir, name)], { cwd: dir, env });
  const signerOf = (name: string) => {
    const r = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, name), '-CAfile', join(dir, 'root.pem'), '-purpose', 'any', '-out', '/dev/null', '-signer', join(dir, `${name}.signer.pem`)]);
    t.is(r.status, 0, r.stderr.toString());
    return openssl(['x509', '-in', join(dir, `${name}.signer.pem`), '-noout', '-serial']).stdout.toString().trim().split('=')[1]!.toLowerCase();
  };
  t.is(gen('a.mobileconfig').status, 0);
  const old = signerOf('a.mobileconfig');
  const rotated = JSON.parse(run(t, dir, ['ca', 'rotate-signer', '--store', storeDir, '--json']).stdout) as { previous: string; serial: string };
  t.is(rotated.previous, old);
  t.is(gen('b.mobileconfig').status, 0);
  t.is(signerOf('b.mobileconfig'), rotated.serial);
  writeFileSync(join(dir, 'signer.pem'), readFileSync(join(dir, 'b.mobileconfig.signer.pem')));
  const [crl] = await fetchCrls(dir, [join(dir, 'signer.pem')]);
  t.regex(openssl(['crl', '-in', crl!, '-noout', '-text']).stdout.toString(), new RegExp(`Serial Number: ${old}[\\s\\S]*?Superseded`, 'i'));

  run(t, dir, ['cert', 'revoke', rotated.serial, '--store', storeDir, '--reason', 'keyCompromise']);
  const stopped = gen('c.mobileconfig');
  t.is(stopped.status, 1);
  t.regex(stopped.stderr, /revoked; issue a new one with `profilesmith ca rotate-signer`/);
  t.false(existsSync(join(dir, 'c.mobileconfig')));
  run(t, dir, ['ca', 'rotate-signer', '--store', storeDir]);
  t.is(gen('c.mobileconfig').status, 0);
  t.is(run(t, dir, ['store', 'check', '--store', storeDir]).status, 0);
});

async function rotateIssuing(t: ExecutionContext, onPostgres: boolean) {
  if (!need(t, 'openssl') || !need(t, 'python3')) return;
  let server: Awaited<ReturnType<typeof postgres>> | undefined;
  if (onPostgres) {
    server = await postgres();
    if ('missing' in server) {
      t.log(`skipped: ${server.missing}`);
      t.pass();
      return;
    }
  }
  const { dir, storeDir, pkiUrl } = await pkiStore(t, {}, server && !('missing' in server) ? server : undefined);
  writeFileSync(join(dir, 'root.pem'), run(t, dir, ['ca', 'export', '--store', storeDir]).stdout);
  const old = issue(t, dir, storeDir, 'alice@example.com', 'smime-encryption');
  const r = JSON.parse(run(t, dir, ['ca', 'rotate-issuing', '--store', storeDir, '--json']).stdout) as { generation: number; serial: string };
  t.is(r.generation, 2);
  const fresh = issue(t, dir, storeDir, 'alice@example.com', 'smime-signing');
  t.regex(openssl(['x509', '-in', fresh.pem, '-noout', '-issuer', '-nameopt', 'utf8,sep_multiline']).stdout.toString(), /CN=Example Corp S\/MIME Issuing CA 2\n/);
  t.deepEqual(urlsIn(fresh.pem), { crl: [`${pkiUrl}/crl/issuing-2.crl`], caIssuers: [`${pkiUrl}/ca/issuing-2.cer`], ocsp: [`${pkiUrl}/ocsp`] });

  const chain = run(t, dir, ['ca', 'export', '--store', storeDir, '--chain']).stdout.split(/(?<=-----END CERTIFICATE-----\n)/).filter(Boolean);
  t.is(chain.length, 3, 'the root and both issuing CAs: the old one still has a live certificate');
  writeFileSync(join(dir, 'issuing.pem'), chain.slice(1).join(''));
  const fetchIssuers = async () => {
    for (const leaf of [old.pem, fresh.pem]) {
      const cer = await fetchBytes(urlsIn(leaf).caIssuers[0]!);
      writeFileSync(`${leaf}.issuer.pem`, openssl(['x509', '-inform', 'DER'], cer.body).stdout);
    }
  };
  await fetchIssuers();
  const verify = async (leaf: string) => {
    const crls = await fetchCrls(dir, [leaf, `${leaf}.issuer.pem`]);
    return openssl(['verify', '-crl_check_all', '-CAfile', join(dir, 'root.pem'), '-untrusted', `${leaf}.issuer.pem`, ...crls.flatMap((c) => ['-CRLfile', c]), leaf]);
  };
  for (const leaf of [old.pem, fresh.pem]) t.is((await verify(leaf)).status, 0, leaf);

  // The profile ships both issuing CAs.
  run(t, dir, ['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', join(dir, 'p.mobileconfig')]);
  openssl(['cms', '-verify', '-noverify', '-inform', 'DER', '-in', join(dir, 'p.mobileconfig'), '-out', join(dir, 'p.xml')]);
  const types = python(`import plistlib\np=plistlib.load(open(${JSON.stringify(join(dir, 'p.xml'))},'rb'))\nprint(sum(1 for x in p['PayloadContent'] if x['PayloadType']=='com.apple.security.pkcs1'))`);
  t.is(types.stdout.trim(), '2', types.stderr);

  const oldCa = openssl(['x509', '-in', `${old.pem}.issuer.pem`, '-noout', '-serial']).stdout.toString().trim().split('=')[1]!.toLowerCase();
  const busy = cli(['cert', 'revoke', oldCa, '--store', storeDir], { cwd: dir, env });
  t.is(busy.status, 1);
  t.regex(busy.stderr, /Issuing CA issuing still has 1 live user certificate/);
  const current = cli(['cert', 'revoke', r.serial, '--store', storeDir], { cwd: dir, env });
  t.is(current.status, 1);
  t.regex(current.stderr, /is the current one; run `profilesmith ca rotate-issuing` first/);

  run(t, dir, ['cert', 'revoke', old.serial, '--store', storeDir, '--reason', 'superseded']);
  const done = run(t, dir, ['cert', 'revoke', oldCa, '--store', storeDir, '--reason', 'cessationOfOperation']);
  t.regex(done.stderr, /Revoked .* \(an issuing CA\).*the root CRL lists it/);
  const rootCrl = (await fetchCrls(dir, [`${old.pem}.issuer.pem`]))[0]!;
  t.regex(openssl(['crl', '-in', rootCrl, '-noout', '-text']).stdout.toString(), new RegExp(`Serial Number: ${oldCa}`, 'i'));
  const ocsp = openssl(['ocsp', '-issuer', join(dir, 'root.pem'), '-cert', `${old.pem}.issuer.pem`, '-url', `${pkiUrl}/ocsp`, '-CAfile', join(dir, 'root.pem')]);
  t.regex(ocsp.stdout.toString(), /: revoked/);
  t.regex((await verify(old.pem)).stdout.toString() + (await verify(old.pem)).stderr.toString(), /revoked/);
  t.is((await verify(fresh.pem)).status, 0);
  t.is(run(t, dir, ['ca', 'export', '--store', storeDir, '--chain']).stdout.split('-----END CERTIFICATE-----').length - 1, 2, 'profiles no longer carry the revoked CA');
  t.is(run(t, dir, ['store', 'check', '--store', storeDir]).status, 0);
}

test.serial('rotate-issuing: new certificates come from the new CA, old ones stay valid, profiles carry both; the old CA is revoked on the root CRL once empty', (t) => rotateIssuing(t, false));

test.serial('rotate-issuing on a PostgreSQL store: the same, with pki serve reading the database', (t) => rotateIssuing(t, true));

test.serial('--permit-email-domain puts a critical nameConstraints on the issuing CA, and cert issue refuses other domains without writing anything', async (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const init = cli(['init', '--store', storeDir, '--org', 'Example Corp', '--permit-email-domain', 'example.com', '--permit-email-domain', '.corp.example.net'], { cwd: dir, env });
  t.is(init.status, 0, init.stderr);
  const text = openssl(['x509', '-in', join(storeDir, 'ca', 'intermediate.pem'), '-noout', '-text']).stdout.toString();
  t.regex(text, /X509v3 Name Constraints: critical\s+Permitted:\s+email:example\.com\s+email:\.corp\.example\.net/);
  writeFileSync(join(dir, 'chain.pem'), run(t, dir, ['ca', 'export', '--store', storeDir, '--chain']).stdout);
  for (const user of ['a@example.com', 'b@eu.corp.example.net']) {
    const leaf = issue(t, dir, storeDir, user);
    t.is(openssl(['verify', '-CAfile', join(dir, 'chain.pem'), leaf.pem]).status, 0, user);
  }
  const before = readdirSync(join(storeDir, 'certs')).length;
  for (const user of ['c@other.com', 'd@sub.example.com', 'e@corp.example.net']) {
    const r = cli(['cert', 'issue', '--store', storeDir, '--user', user, '--name', 'X', '--purpose', 'smime-signing'], { cwd: dir, env });
    t.is(r.status, 1, user);
    t.regex(r.stderr, new RegExp(`^error: "${user}" is outside the email domains this CA may issue for \\(example\\.com, \\.corp\\.example\\.net\\)\\n`));
  }
  t.is(readdirSync(join(storeDir, 'certs')).length, before);
});
