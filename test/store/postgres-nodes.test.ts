/**
 * Several nodes on one PostgreSQL store (issue "When one machine is not enough"): two `serve`
 * processes and two `cert issue-batch` processes per purpose on one database at once, against a
 * real PostgreSQL server (a throwaway cluster, see helpers/postgres.ts). Every link is used
 * exactly once across the two servers, no serial repeats, each user ends with exactly one
 * certificate per purpose, and every profile served verifies with openssl cms -verify.
 * Then the CLI's other commands on the same database, as an admin runs them.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import pg from 'pg';
import { initPostgresStore, openPostgresStore } from '../../src/store/postgres/init.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { BIN, cli, httpRequest, openssl, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres();

/** One statement on a database, as an operator's psql would run it. */
async function runSql(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

function run(args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

if (hasPostgres(server, 'PostgreSQL multi-node tests')) {
  // Serial: these tests run the CLI with spawnSync, which blocks this whole process; a test of the
  // same file with an HTTP request or a database connection in flight would then see its peer time
  // out (408 from a server that got no request headers, a pool that got no session in 10 s).
  test.serial('two servers and two issue-batch runs per purpose on one database: one certificate per user and purpose, no repeated serial, 100 links each used once across both servers, every profile verifies', async (t) => {
    const dir = tmp(t);
    const url = await server.createDatabase();
    const init = cli(['init', '--store', url, '--org', 'Nodes Corp'], { cwd: dir, env });
    t.is(init.status, 0, init.stderr);
    const emails = Array.from({ length: 10 }, (_, i) => `user${i}@example.com`);
    writeFileSync(join(dir, 'users.csv'), ['email,name', ...emails.map((e, i) => `${e},User ${i}`)].join('\n') + '\n');

    // Both servers start while the four issue-batch runs go.
    const serveArgs = [BIN, 'serve', '--store', url, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--sample', '0', '--rate-limit', '100000'];
    const [a, b, ...issued] = await Promise.all([
      startServer(t, serveArgs, env),
      startServer(t, serveArgs, env),
      run(['cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', 'smime-signing', '--jobs', '2', '--json'], dir),
      run(['cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', 'smime-signing', '--jobs', '2', '--json'], dir),
      run(['cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', 'smime-encryption', '--jobs', '2', '--json'], dir),
      run(['cert', 'issue-batch', '--store', url, '--users', 'users.csv', '--purpose', 'smime-encryption', '--jobs', '2', '--json'], dir),
    ]);
    for (const r of issued) t.is(r.status, 0, r.stderr);
    const summaries = issued.map((r) => JSON.parse(r.stdout) as { generated: number });
    t.is(summaries[0]!.generated + summaries[1]!.generated, 10, 'the two signing runs issued 10 between them');
    t.is(summaries[2]!.generated + summaries[3]!.generated, 10, 'the two encryption runs issued 10 between them');

    const listed = JSON.parse(cli(['cert', 'list', '--store', url, '--json'], { cwd: dir, env }).stdout) as { serial: string; user: string; purpose: string }[];
    t.is(listed.length, 20);
    t.is(new Set(listed.map((r) => r.serial)).size, 20, 'no serial repeats');
    for (const e of emails) for (const p of ['smime-signing', 'smime-encryption']) t.is(listed.filter((r) => r.user === e && r.purpose === p).length, 1, `${e} ${p}`);

    // 100 links; each is installed from both servers at the same moment (200 requests).
    const store = await openPostgresStore(url);
    t.teardown(() => store.close());
    const tokens: { token: string; user: string }[] = [];
    for (let i = 0; i < 100; i++) {
      const user = emails[i % emails.length]!;
      tokens.push({ token: (await store.links.create(user)).token, user });
    }
    const install = (base: string, token: string) => httpRequest(`${base}/p/${token}/install`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
    // Which server is asked first alternates, so that each wins some of the races.
    const order = tokens.flatMap((_, i) => (i % 2 ? [b, a] : [a, b]));
    const answers = await Promise.all(tokens.flatMap(({ token }, i) => [install(order[2 * i]!.base, token), install(order[2 * i + 1]!.base, token)]));
    const okCount = answers.filter((r) => r.status === 200).length;
    t.is(okCount, 100, `statuses: ${JSON.stringify(answers.map((r) => r.status).reduce<Record<number, number>>((m, s) => ((m[s] = (m[s] ?? 0) + 1), m), {}))}`);
    t.is(answers.filter((r) => r.status === 410).length, 100, 'the other server refuses each link: used');
    for (let i = 0; i < 100; i++) t.is([answers[2 * i]!.status, answers[2 * i + 1]!.status].sort().join(','), '200,410', `link ${i}`);
    const byServer = [a, b].map((s) => answers.filter((r, i) => order[i] === s && r.status === 200).length);
    t.log(`installs served: ${byServer[0]} by one server, ${byServer[1]} by the other`);
    t.is(byServer[0]! + byServer[1]!, 100);

    // Every profile served verifies under the store's root (openssl, not our verifier).
    const root = join(dir, 'root.pem');
    writeFileSync(root, cli(['ca', 'export', '--store', url], { cwd: dir, env }).stdout);
    for (const [i, r] of answers.entries()) {
      if (r.status !== 200) continue;
      const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', root, '-purpose', 'any', '-out', '/dev/null'], r.body);
      t.is(v.status, 0, `answer ${i}: ${v.stderr}`);
    }
  });

  test.serial('a database at schema version 1 is migrated forward on open (versions 2, 3 and 4, one transaction), and its store works as before', async (t) => {
    const url = await server.createDatabase();
    const { MIGRATIONS } = await import('../../src/store/postgres/schema.js');
    const store = await initPostgresStore(url, { organization: 'Old Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    const rec = await store.issueCertificate({ user: 'old@example.com', name: 'Old', purpose: 'smime-signing' });
    await store.close();
    // Back to version 1, as an earlier profilesmith left it.
    await runSql(url, `DROP TABLE scep_challenges; DROP INDEX ca_certs_issuing_generation; ALTER TABLE ca_certs DROP COLUMN generation; ALTER TABLE ca_certs ALTER COLUMN sealed_key SET NOT NULL; UPDATE profilesmith_schema SET version = 1`);
    t.is(MIGRATIONS.length, 4);
    const reopened = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => reopened.close());
    const version = await reopened.database.query<{ version: number; nullable: string; generation: number; challenges: string }>(
      `SELECT (SELECT version FROM profilesmith_schema) AS version,
              (SELECT is_nullable FROM information_schema.columns WHERE table_name = 'ca_certs' AND column_name = 'sealed_key') AS nullable,
              (SELECT generation FROM ca_certs WHERE role = 'issuing') AS generation,
              to_regclass('scep_challenges')::text AS challenges`,
    );
    t.deepEqual(version.rows[0], { version: 4, nullable: 'YES', generation: 1, challenges: 'scep_challenges' });
    t.is((await reopened.findCertificate(rec.serial)).user, 'old@example.com');
    t.truthy(await reopened.profileSigner());
  });

  test.serial('a node that opened the store before another changed the passphrase cannot seal under the old key: its write is refused with one line, and nothing is written', async (t) => {
    const url = await server.createDatabase();
    const a = await initPostgresStore(url, { organization: 'Keys Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    const b = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => Promise.all([a.close(), b.close()]));
    // a has issued once: its issuing CA key is decrypted and kept, as in a long-running server.
    await a.issueCertificate({ user: 'first@example.com', name: 'First', purpose: 'smime-signing' });
    const c = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => c.close());
    await b.changePassphrase('another long passphrase', { kdfCost: 14 });
    // a's write would seal under the old key: refused by the generation check in its transaction.
    const err = await t.throwsAsync(a.issueCertificate({ user: 'k@example.com', name: 'K', purpose: 'smime-signing' }));
    t.is((err as { code?: string }).code, 'ERR_STORE_IO');
    t.regex(err!.message, /^The store passphrase was changed \(on another node\) since this one opened the store/);
    // c has decrypted nothing yet: its key no longer opens the CA key, and it says why.
    const err2 = await t.throwsAsync(c.issueCertificate({ user: 'k@example.com', name: 'K', purpose: 'smime-signing' }));
    t.regex(err2!.message, /^The store passphrase was changed \(on another node\) since this one opened the store/);
    t.deepEqual((await b.listCertificates()).map((r) => r.user), ['first@example.com'], 'nothing more was written');
    t.truthy(await b.issueCertificate({ user: 'k@example.com', name: 'K', purpose: 'smime-signing' }), 'the node with the new key writes');
  });

  test.serial('the derived store key shows nowhere in util.inspect of an unlocked store (logging a store object leaks no secret)', async (t) => {
    const url = await server.createDatabase();
    const store = await initPostgresStore(url, { organization: 'Log Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    t.teardown(() => store.close());
    const key = store.derivedKey();
    const text = inspect(store, { depth: 10, showHidden: true, getters: false });
    const spaced = [...key.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    t.false(text.includes(spaced), 'no <Buffer …> of the key');
    t.false(text.includes(key.toString('hex')));
    t.false(text.includes(key.toString('base64')));
  });

  test.serial('the CLI on PostgreSQL: revoke on one node is on the next CRL and OCSP answer of the other, passphrase change, store check, and one clear line for faults', async (t) => {
    const dir = tmp(t);
    const url = await server.createDatabase();
    t.is(cli(['init', '--store', url, '--org', 'Nodes Corp', '--pki-url', 'http://pki.example.com'], { cwd: dir, env }).status, 0);
    const issued = cli(['cert', 'issue', '--store', url, '--user', 'ann@example.com', '--name', 'Ann', '--purpose', 'smime-signing', '--json'], { cwd: dir, env });
    t.is(issued.status, 0, issued.stderr);
    const serial = (JSON.parse(issued.stdout) as { serial: string }).serial;

    // Two PKI servers on the one database.
    const pkiArgs = [BIN, 'pki', 'serve', '--store', url, '--listen', '127.0.0.1:0'];
    const [p1, p2] = await Promise.all([startServer(t, pkiArgs, env), startServer(t, pkiArgs, env)]);
    const crlOf = async (base: string) => {
      const r = await httpRequest(`${base}/crl/issuing.crl`);
      t.is(r.status, 200);
      return openssl(['crl', '-inform', 'DER', '-noout', '-text'], r.body).stdout.toString();
    };
    t.notRegex(await crlOf(p2.base), new RegExp(serial, 'i'));
    // Revoked through the first node's CLI; the second server's very next CRL lists it.
    t.is(cli(['cert', 'revoke', '--store', url, serial, '--reason', 'keyCompromise'], { cwd: dir, env }).status, 0);
    const after = await crlOf(p2.base);
    t.regex(after, new RegExp(serial, 'i'));
    t.regex(after, /Key Compromise/);
    const n1 = Number(/CRL Number:\s*\n\s*(\d+)/.exec(await crlOf(p1.base))?.[1]);
    t.true(n1 > 0);

    // OCSP from the other server: openssl ocsp as the client.
    const certPem = join(dir, 'ann.pem');
    writeFileSync(certPem, cli(['cert', 'export', '--store', url, serial], { cwd: dir, env }).stdout);
    const issuerPem = join(dir, 'issuing.pem');
    writeFileSync(issuerPem, openssl(["x509", "-inform", "DER", "-outform", "PEM"], (await httpRequest(`${p2.base}/ca/issuing.cer`)).body).stdout);
    const ocsp = openssl(['ocsp', '-issuer', issuerPem, '-cert', certPem, '-url', `${p1.base}/ocsp`, '-noverify']);
    t.regex(ocsp.stdout.toString(), /: revoked/, ocsp.stderr.toString());

    // store check, then a passphrase change (one transaction), then check again with the new one.
    t.is(cli(['store', 'check', '--store', url], { cwd: dir, env }).status, 0);
    writeFileSync(join(dir, 'new.txt'), 'a brand new passphrase\n', { mode: 0o600 });
    const changed = cli(['store', 'passphrase', '--store', url, '--new-passphrase-file', 'new.txt'], { cwd: dir, env });
    t.is(changed.status, 0, changed.stderr);
    t.is(cli(['store', 'check', '--store', url], { cwd: dir, env: { PROFILESMITH_PASSPHRASE: 'a brand new passphrase' } }).status, 0);
    const wrong = cli(['cert', 'issue', '--store', url, '--user', 'x@example.com', '--name', 'X', '--purpose', 'smime-signing'], { cwd: dir, env });
    t.is(wrong.status, 1);
    t.regex(wrong.stderr, /passphrase .* is wrong/);

    // Faults: one line, exit 1, no stack.
    const refused = cli(['cert', 'list', '--store', `postgres://${server.user}@127.0.0.1:1/x`], { cwd: dir, env });
    t.is(refused.status, 1);
    t.regex(refused.stderr, /^error: Cannot reach the PostgreSQL server of postgres:\/\/.*127\.0\.0\.1:1\/x \(connection refused\); is it running\?\n$/);
    const login = cli(['cert', 'list', '--store', `postgres://nobody@${server.host}:${server.port}/postgres`], { cwd: dir, env });
    t.is(login.status, 1);
    t.regex(login.stderr, /^error: The PostgreSQL server of .* refused the login/);
    t.notRegex(login.stderr, /\n\s+at /);
    const pw = cli(['cert', 'list', '--store', `postgres://u:hunter2@${server.host}:${server.port}/postgres`], { cwd: dir, env });
    t.is(pw.status, 2);
    t.notRegex(pw.stderr, /hunter2/);
    const renewed = { PROFILESMITH_PASSPHRASE: 'a brand new passphrase' };
    // ca pki-url and ca rotate-signer on PostgreSQL: the new URL goes into what is issued next;
    // the new signer signs the next profile, and the old one is on the CRL (superseded).
    t.is(cli(['ca', 'pki-url', 'http://pki2.example.com', '--store', url], { cwd: dir, env: renewed }).status, 0);
    const next = JSON.parse(cli(['cert', 'issue', '--store', url, '--user', 'ann@example.com', '--name', 'Ann', '--purpose', 'smime-signing', '--json'], { cwd: dir, env: renewed }).stdout) as { serial: string };
    t.is(cli(['cert', 'issue', '--store', url, '--user', 'ann@example.com', '--name', 'Ann', '--purpose', 'smime-encryption'], { cwd: dir, env: renewed }).status, 0);
    const nextPem = cli(['cert', 'export', '--store', url, next.serial], { cwd: dir, env: renewed }).stdout;
    t.regex(openssl(['x509', '-noout', '-ext', 'crlDistributionPoints'], nextPem).stdout.toString(), /http:\/\/pki2\.example\.com\/crl\/issuing\.crl/);
    const rotated = cli(['ca', 'rotate-signer', '--store', url, '--json'], { cwd: dir, env: renewed });
    t.is(rotated.status, 0, rotated.stderr);
    const { previous, serial: newSigner } = JSON.parse(rotated.stdout) as { previous: string; serial: string };
    t.regex(await crlOf(p1.base), new RegExp(previous, 'i'), 'the old signer is on the CRL');
    const profile = join(dir, 'ann.mobileconfig');
    t.is(cli(['generate', 'exchange-smime', '--store', url, '--user', 'ann@example.com', '--set', 'exchange.host=m.example.com', '-o', profile], { cwd: dir, env: renewed }).status, 0);
    const signerPem = join(dir, 'signer.pem');
    t.is(openssl(['cms', '-verify', '-inform', 'DER', '-in', profile, '-noverify', '-out', '/dev/null', '-signer', signerPem]).status, 0);
    const signedBy = openssl(['x509', '-in', signerPem, '-noout', '-serial']).stdout.toString();
    t.regex(signedBy, new RegExp(`serial=0*${newSigner}`, 'i'), 'signed by the new signer');
    t.is(cli(['store', 'check', '--store', url], { cwd: dir, env: renewed }).status, 0, 'the retired signer has no key left, and check knows it');

    // A database whose schema a newer profilesmith wrote: refused with one line, not touched.
    await runSql(url, 'UPDATE profilesmith_schema SET version = version + 1');
    const newer = cli(['cert', 'list', '--store', url], { cwd: dir, env });
    t.is(newer.status, 1);
    t.regex(newer.stderr, /^error: The database at postgres:\/\/.* has schema version 5, newer than this profilesmith reads \(4\); upgrade profilesmith\n$/);
    await runSql(url, 'UPDATE profilesmith_schema SET version = version - 1');
    t.is(cli(['cert', 'list', '--store', url], { cwd: dir, env }).status, 0);
    const empty = await server.createDatabase();
    const none = cli(['cert', 'list', '--store', empty], { cwd: dir, env });
    t.is(none.status, 1);
    t.regex(none.stderr, /No certificate store at "postgres:/);
  });
}
