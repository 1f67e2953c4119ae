/**
 * gpgsm and dirmngr (GnuPG's S/MIME tools, written by nobody here) as the relying party:
 * dirmngr fetches the CRLs from the distribution points our certificates carry, from a real
 * `pki serve`, and gpgsm refuses to encrypt to a revoked certificate.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HAS_OPENSSL, openssl } from '../helpers/tools.js';
import { issue, pkiStore, run } from './helpers.js';

const HAS_GPGSM = spawnSync('gpgsm', ['--version']).status === 0 && spawnSync('dirmngr', ['--version']).status === 0;

/** A fresh GnuPG home that trusts `root` (and so fetches CRLs anew), with the certificates imported. */
function gnupgHome(t: import('ava').ExecutionContext, root: string, certs: string[]) {
  // Short: GnuPG puts its sockets here when /run/user is missing, and a socket path has 108 bytes.
  const home = mkdtempSync(join(tmpdir(), 'gh-'));
  chmodSync(home, 0o700);
  const env = { ...process.env, GNUPGHOME: home };
  t.teardown(() => {
    spawnSync('gpgconf', ['--kill', 'all'], { env });
    rmSync(home, { recursive: true, force: true });
  });
  const imported = spawnSync('gpgsm', ['--batch', '--import', root, ...certs], { env, encoding: 'utf8' });
  t.is(imported.status, 0, imported.stderr);
  const fp = openssl(['x509', '-in', root, '-noout', '-fingerprint', '-sha1']).stdout.toString().trim().split('=')[1];
  writeFileSync(join(home, 'trustlist.txt'), `${fp} S relax\n`);
  return (args: string[]) => spawnSync('gpgsm', ['--batch', '--yes', ...args], { env, encoding: 'utf8' });
}

/** Resolves once the log matches, or after the pipe has had ample chance to deliver (then the test's assertion says what is missing). */
async function logged(log: () => string, re: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !re.test(log()); i++) await new Promise((r) => setTimeout(r, 50));
}

test('gpgsm encrypts to a live certificate after dirmngr fetched both CRLs, and refuses once it is revoked', async (t) => {
  if (!HAS_GPGSM || !HAS_OPENSSL) {
    t.log('SKIPPED: gpgsm, dirmngr or openssl is not installed (Debian packages gpgsm and dirmngr), so this relying party cannot run');
    t.pass();
    return;
  }
  const { dir, storeDir, server } = await pkiStore(t);
  const pems = run(t, dir, ['ca', 'export', '--store', storeDir, '--chain']).stdout.split(/(?<=-----END CERTIFICATE-----\n)/);
  writeFileSync(join(dir, 'root.pem'), pems[0]!);
  writeFileSync(join(dir, 'issuing.pem'), pems[1]!);
  writeFileSync(join(dir, 'msg.txt'), 'hello\n');
  const leaf = issue(t, dir, storeDir, 'enc@example.com', 'smime-encryption');

  const before = gnupgHome(t, join(dir, 'root.pem'), [join(dir, 'issuing.pem'), leaf.pem]);
  const ok = before(['-r', 'enc@example.com', '-o', join(dir, 'ok.p7m'), '--encrypt', join(dir, 'msg.txt')]);
  t.is(ok.status, 0, ok.stderr);
  // spawnSync held the event loop: let the server's log lines, already in the pipe, be read.
  await logged(server.log, /GET \/crl\/root\.crl 200/);
  t.regex(server.log(), /GET \/crl\/issuing\.crl 200/, 'dirmngr fetched the issuing CA CRL from the distribution point');
  t.regex(server.log(), /GET \/crl\/root\.crl 200/, 'and the root CRL for the issuing CA');

  run(t, dir, ['cert', 'revoke', leaf.serial, '--store', storeDir, '--reason', 'keyCompromise']);
  // dirmngr keeps a CRL until its nextUpdate, as relying parties do: a new home fetches now.
  const after = gnupgHome(t, join(dir, 'root.pem'), [join(dir, 'issuing.pem'), leaf.pem]);
  const refused = after(['-r', 'enc@example.com', '-o', join(dir, 'no.p7m'), '--encrypt', join(dir, 'msg.txt')]);
  t.not(refused.status, 0);
  t.regex(refused.stderr, /revoked/i);
});
