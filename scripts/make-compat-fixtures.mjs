// Makes test/fixtures/compat/: a file store and a PostgreSQL database (a plain pg_dump) written
// by the CLI of the commit checked out, with the same history in both. They are committed, and
// test/store/compat.test.ts opens them with the code of every later commit, so a change to a
// store's layout that old stores cannot open fails the suite. Run it only to add the fixtures of
// a new release beside these (OUT=test/fixtures/compat-<version>), never to replace them.
//
//   npm run build && node scripts/make-compat-fixtures.mjs     (needs openssl and Debian's postgresql)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startCluster } from './pg-cluster.mjs';

const ROOT = resolve(import.meta.dirname, '..');
const OUT = resolve(ROOT, process.env.OUT ?? 'test/fixtures/compat');
export const PASSPHRASE = 'compat fixture passphrase';
const env = { ...process.env, PROFILESMITH_PASSPHRASE: PASSPHRASE };
const work = mkdtempSync(join(tmpdir(), 'profilesmith-compat-'));
const sh = (cmd, args) => execFileSync(cmd, args, { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
const cli = (...args) => sh(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args]);

try {
  // An outside CA and an old encryption identity from it, in openssl's PKCS#12, as an admin imports one.
  sh('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'oca.key', '-out', 'oca.pem', '-days', '3650', '-subj', '/CN=Outside Compat CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  sh('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'old.key', '-out', 'old.csr', '-subj', '/CN=Alice Compat']);
  writeFileSync(join(work, 'ext'), 'subjectAltName=email:alice@compat.test\nkeyUsage=critical,keyEncipherment\nextendedKeyUsage=emailProtection\n');
  sh('openssl', ['x509', '-req', '-in', 'old.csr', '-CA', 'oca.pem', '-CAkey', 'oca.key', '-CAcreateserial', '-days', '3650', '-extfile', 'ext', '-out', 'old.pem']);
  writeFileSync(join(work, 'pfx-pw'), 'old pfx password\n', { mode: 0o600 });
  sh('openssl', ['pkcs12', '-export', '-in', 'old.pem', '-inkey', 'old.key', '-certfile', 'oca.pem', '-passout', 'file:pfx-pw', '-out', 'old.p12']);

  // The same history on either store: issue, import, revoke, remove a user, rotate the signer, a link, a CRL.
  const history = (store) => {
    cli('init', '--store', store, '--org', 'Compat Corp', '--pki-url', 'http://pki.compat.test');
    cli('cert', 'issue', '--store', store, '--user', 'alice@compat.test', '--name', 'Alice Compat', '--purpose', 'smime-signing');
    cli('cert', 'issue', '--store', store, '--user', 'alice@compat.test', '--name', 'Alice Compat', '--purpose', 'smime-encryption');
    cli('cert', 'import', 'old.p12', '--store', store, '--user', 'alice@compat.test', '--purpose', 'smime-encryption', '--password-file', 'pfx-pw');
    cli('cert', 'issue', '--store', store, '--user', 'bob@compat.test', '--name', 'Bob Compat', '--purpose', 'smime-signing');
    const bob = JSON.parse(cli('cert', 'issue', '--store', store, '--user', 'bob@compat.test', '--name', 'Bob Compat', '--purpose', 'smime-encryption', '--json')).serial;
    cli('cert', 'revoke', bob, '--store', store, '--reason', 'keyCompromise');
    cli('cert', 'issue', '--store', store, '--user', 'carol@compat.test', '--name', 'Carol Compat', '--purpose', 'smime-signing');
    cli('user', 'remove', 'carol@compat.test', '--store', store, '--revoke');
    cli('ca', 'rotate-signer', '--store', store);
    cli('link', 'create', '--store', store, '--user', 'alice@compat.test', '--ttl', '90d', '--uses', '5', '--base-url', 'https://profiles.compat.test', '--template', 'exchange-smime', '--set', 'exchange.host=mail.compat.test');
    cli('crl', '--store', store, '-o', join(work, `${Math.random()}.crl`));
  };

  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  history(join(OUT, 'file-store'));
  const cluster = await startCluster();
  if (cluster.missing) throw new Error(cluster.missing);
  try {
    cluster.run('createdb', ['-h', '127.0.0.1', '-p', new URL(cluster.url('x')).port, '-U', 'profilesmith', 'compat']);
    history(cluster.url('compat'));
    const dump = execFileSync(join(cluster.bin, 'pg_dump'), ['--no-owner', '--no-privileges', '--no-comments', cluster.url('compat')], { encoding: 'utf8' });
    // Only what a restore needs: no server-version banner lines.
    writeFileSync(join(OUT, 'postgres.sql'), dump.split('\n').filter((l) => !/^-- Dumped (from|by) /.test(l)).join('\n'));
  } finally {
    cluster.stop();
  }
  const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
  writeFileSync(join(OUT, 'README.md'), `Stores written by the CLI of commit ${commit} (scripts/make-compat-fixtures.mjs); passphrase "${PASSPHRASE}". Opened by test/store/compat.test.ts. Never regenerate them: they stand for stores in the field.\n`);
  console.error(`wrote ${OUT}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
