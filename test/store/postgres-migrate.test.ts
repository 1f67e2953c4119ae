/**
 * `store migrate --from ./store --to postgres://…` against a real PostgreSQL server: the file
 * store is copied whole (CA, signer, every record and sealed key, an openssl-made identity
 * with its chain, revocations, retirements, links, CRL numbers), `store check` agrees on both
 * ends with every key decrypted, the PostgreSQL store then generates a profile openssl
 * verifies, and a second migration into the same database is refused.
 */
import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readIdentity } from '../../src/certs/import.js';
import { initStore } from '../../src/store/fs-store.js';
import { openPostgresStore } from '../../src/store/postgres/init.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { cli, openssl, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres();

if (hasPostgres(server, 'PostgreSQL migration tests')) {
  test('store migrate copies a file store whole; store check agrees on both ends; the copy generates, revokes and numbers CRLs on; a non-empty target is refused', async (t) => {
    const dir = tmp(t);
    const storeDir = join(dir, 'store');
    const file = await initStore(storeDir, { organization: 'Migrate Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    await file.issueCertificate({ user: 'carol@example.com', name: 'Carol', purpose: 'smime-signing' });
    await file.issueCertificate({ user: 'carol@example.com', name: 'Carol', purpose: 'smime-encryption' });
    const ann = await file.issueCertificate({ user: 'ann@example.com', name: 'Ann', purpose: 'smime-signing' });
    await file.revokeCertificate(ann.serial, 'keyCompromise');
    const outside = outsideCa(dir, { email: 'bob@example.com' });
    const bundle = await readIdentity(readFileSync(outside.modern), { password: outside.password });
    await file.importIdentity(bundle, { user: 'bob@example.com', purpose: 'smime-encryption' });
    await file.issueCertificate({ user: 'dan@example.com', name: 'Dan', purpose: 'smime-signing' });
    await file.removeUser('dan@example.com');
    const { token } = await file.links.create('carol@example.com');
    // What SCEP leaves in a store: its URL, and a device's certificate with no key here.
    await file.setScepUrl('https://profiles.example.com/scep');
    const device = await file.issueDeviceCertificate({ user: 'carol@example.com', name: 'Carol', publicKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey });
    const fileCrl = await file.createCrl();
    const crlNumber = (der: Buffer) => Number(/CRL Number:\s*\n\s*(\d+)/.exec(openssl(['crl', '-inform', 'DER', '-noout', '-text'], der).stdout.toString())?.[1]);
    const before = crlNumber(fileCrl);

    const url = await server.createDatabase();
    const r = cli(['store', 'migrate', '--from', storeDir, '--to', url, '--json'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { copied: Record<string, number>; keysChecked: boolean; errors: { from: number; to: number } };
    t.like(out, { keysChecked: true, errors: { from: 0, to: 0 }, copied: { certificates: 6, keys: 8, revocations: 2, links: 1, chains: 2 } });

    // The same records on both ends, as `cert list` shows them.
    const list = (store: string) => JSON.parse(cli(['cert', 'list', '--store', store, '--json'], { cwd: dir, env }).stdout) as unknown[];
    t.deepEqual(list(url), list(storeDir));

    const pg = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => pg.close());
    t.is((await pg.links.peek(token))?.state, 'valid', 'the link came along (as its hash)');
    t.is(pg.scepUrl, 'https://profiles.example.com/scep', 'every setting came along');
    t.true((await pg.findCertificate(device.serial)).keyOnDevice, 'the device certificate came along, keyless');
    t.is((await pg.findCertificate(ann.serial)).revoked?.reason, 'keyCompromise');
    t.truthy((await pg.listCertificates({ user: 'dan@example.com' }))[0]?.retired);
    // CRL numbers go on from where the file store left them.
    t.true(crlNumber(await pg.createCrl()) > before);

    // The copy generates: a profile with the imported identity and its chain, openssl-verified.
    const root = join(dir, 'root.pem');
    writeFileSync(root, cli(['ca', 'export', '--store', url], { cwd: dir, env }).stdout);
    const profile = join(dir, 'carol.mobileconfig');
    const g = cli(['generate', 'exchange-smime', '--store', url, '--user', 'carol@example.com', '--set', 'exchange.host=mail.example.com', '-o', profile], { cwd: dir, env });
    t.is(g.status, 0, g.stderr);
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', root, '-purpose', 'any', '-in', profile, '-out', '/dev/null']);
    t.is(v.status, 0, v.stderr.toString());
    // The sealed keys open under the same passphrase, and the file store is as it was.
    t.is(cli(['store', 'check', '--store', url], { cwd: dir, env }).status, 0);
    t.is(cli(['store', 'check', '--store', storeDir], { cwd: dir, env }).status, 0);

    const again = cli(['store', 'migrate', '--from', storeDir, '--to', url], { cwd: dir, env });
    t.is(again.status, 1);
    t.regex(again.stderr, /^error: A store or other files already exist at "postgres:\/\/.*"; it is left as it was\n/);
    t.deepEqual(list(url), list(storeDir), 'nothing changed by the refused run');
  });
}

if (!('missing' in server)) {
  test('store migrate carries a rotated store: every issuing CA generation, the current and earlier signers, revocations on each CA\'s CRL; store check agrees and each CRL lists the same serials on both ends', async (t) => {
    const dir = tmp(t);
    const storeDir = join(dir, 'store');
    const file = await initStore(storeDir, { organization: 'Rotated Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    const old = await file.issueCertificate({ user: 'old@example.com', name: 'Old', purpose: 'smime-encryption' });
    await file.rotateSigner();
    await file.rotateIssuing();
    await file.issueCertificate({ user: 'old@example.com', name: 'Old', purpose: 'smime-signing' });
    const gone = await file.issueCertificate({ user: 'gone@example.com', name: 'Gone', purpose: 'smime-signing' });
    await file.revokeCertificate(gone.serial, 'keyCompromise');
    await file.revokeCertificate(old.serial, 'superseded');

    const url = await server.createDatabase();
    const r = cli(['store', 'migrate', '--from', storeDir, '--to', url, '--json'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    t.like(JSON.parse(r.stdout), { errors: { from: 0, to: 0 }, keysChecked: true });
    const list = (store: string) => JSON.parse(cli(['cert', 'list', '--store', store, '--json'], { cwd: dir, env }).stdout) as unknown[];
    t.deepEqual(list(url), list(storeDir));
    const pg = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => pg.close());
    t.deepEqual((await pg.caCertificates()).map((c) => c.slug), ['root', 'issuing', 'issuing-2']);
    const serials = (der: Buffer) => [...openssl(['crl', '-inform', 'DER', '-noout', '-text'], der).stdout.toString().matchAll(/Serial Number: (\w+)/g)].map((m) => m[1]!.toLowerCase()).sort();
    for (const ca of ['root', 1, 2] as const) {
      const a = serials(await file.createCrl({ ca }));
      const b = serials(await pg.createCrl({ ca }));
      t.deepEqual(b, a, `the ${ca} CRL`);
    }
    t.true(serials(await pg.createCrl({ ca: 1 })).length >= 2, 'the issuing CRL lists the revoked user certificate and the first signer');
    // The copy issues from issuing CA 2 and signs with the current signer under it; openssl verifies.
    const fresh = await pg.issueCertificate({ user: 'old@example.com', name: 'Old', purpose: 'smime-encryption' });
    t.is(fresh.issuer, (await pg.caCertificates()).find((c) => c.ca === 2)!.subject);
    const root = join(dir, 'root.pem');
    writeFileSync(root, cli(['ca', 'export', '--store', url], { cwd: dir, env }).stdout);
    const profile = join(dir, 'old.mobileconfig');
    const g = cli(['generate', 'exchange-smime', '--store', url, '--user', 'old@example.com', '--set', 'exchange.host=mail.example.com', '-o', profile], { cwd: dir, env });
    t.is(g.status, 0, g.stderr);
    t.is(openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', root, '-purpose', 'any', '-in', profile, '-out', '/dev/null']).status, 0);
  });
}

if (!('missing' in server)) {
  test('store migrate carries an imported signer with its chain: the copy signs with it, and openssl verifies the profile against the outside root', async (t) => {
    const dir = tmp(t);
    const storeDir = join(dir, 'store');
    const file = await initStore(storeDir, { organization: 'Signer Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    await file.issueCertificate({ user: 'sam@example.com', name: 'Sam', purpose: 'smime-signing' });
    await file.issueCertificate({ user: 'sam@example.com', name: 'Sam', purpose: 'smime-encryption' });
    const outside = outsideCa(dir, { email: 'profiles@example.com' });
    await file.importSigner(await readIdentity(readFileSync(outside.modern), { password: outside.password }));
    const url = await server.createDatabase();
    const r = cli(['store', 'migrate', '--from', storeDir, '--to', url, '--json'], { cwd: dir, env });
    t.is(r.status, 0, r.stderr);
    t.like(JSON.parse(r.stdout), { errors: { from: 0, to: 0 } });
    const profile = join(dir, 'sam.mobileconfig');
    const g = cli(['generate', 'exchange-smime', '--store', url, '--user', 'sam@example.com', '--set', 'exchange.host=mail.example.com', '-o', profile], { cwd: dir, env });
    t.is(g.status, 0, g.stderr);
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', join(dir, 'oroot.pem'), '-purpose', 'any', '-in', profile, '-out', '/dev/null']);
    t.is(v.status, 0, v.stderr.toString());
  });
}
