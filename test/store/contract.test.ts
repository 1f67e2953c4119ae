/**
 * The store contract (CertificateStore for generation, LifecycleStore for the rest: import,
 * lookup, revocation, unenrollment, CRLs, one-time links), one suite run against every store:
 * the file store, the memory store, and the SQLite store in examples/ (a vendor's own
 * persistence, written against the public API only). Outputs are checked with openssl and
 * plistlib; imported identities are made by openssl.
 */
import test, { type ExecutionContext } from 'ava';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../examples/bring-your-own-store/sqlite-store.js';
import { keysMatch } from '../../src/certs/keys.js';
import { toPem } from '../../src/certs/pem.js';
import { certificatePublicKey } from '../../src/cms/certificate.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { generateProfile } from '../../src/profile/generate.js';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { initPostgresStore, openPostgresStore } from '../../src/store/postgres/init.js';
import type { PostgresStore } from '../../src/store/postgres/pg-store.js';
import { postgres } from '../helpers/postgres.js';
import type { LifecycleStore } from '../../src/store/store.js';
import { readIdentity } from '../../src/certs/import.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { readFileSync } from 'node:fs';
import { PASSPHRASE } from '../helpers/fixture.js';
import { need, openssl, python, tmp } from '../helpers/tools.js';

interface Harness {
  store: LifecycleStore;
  /** A second, independent instance over the same storage (another process, in production). */
  reopen?: () => Promise<LifecycleStore>;
}

const pgServer = await postgres();
const stores: Record<string, (t: ExecutionContext) => Promise<Harness>> = {
  file: async (t) => {
    const dir = join(tmp(t), 'store');
    const store = await initStore(dir, { organization: 'Contract Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    return { store, reopen: () => openStore(dir, { passphrase: PASSPHRASE }) };
  },
  memory: async () => ({ store: await createMemoryStore({ organization: 'Contract Corp' }) }),
  sqlite: async (t) => {
    const path = join(tmp(t), 'certs.sqlite');
    const opened: Awaited<ReturnType<typeof SqliteStore.open>>[] = [];
    t.teardown(() => Promise.all(opened.map((s) => s.close())));
    const open = async (organization?: string) => {
      const s = await SqliteStore.open(path, { passphrase: PASSPHRASE, kdfCost: 14, ...(organization ? { organization } : {}) });
      opened.push(s);
      return s;
    };
    return { store: await open('Contract Corp'), reopen: () => open() };
  },
  // A real PostgreSQL server (a throwaway cluster for this file); skipped, saying why, where there is none.
  postgres: async (t) => {
    if ('missing' in pgServer) throw new Error(pgServer.missing);
    const url = await pgServer.createDatabase();
    const opened: PostgresStore[] = [];
    t.teardown(() => Promise.all(opened.map((s) => s.close())));
    const track = (s: PostgresStore) => (opened.push(s), s);
    const store = track(await initPostgresStore(url, { organization: 'Contract Corp', passphrase: PASSPHRASE, kdfCost: 14 }));
    return { store, reopen: async () => track(await openPostgresStore(url, { passphrase: PASSPHRASE })) };
  },
};

if ('missing' in pgServer) {
  delete stores.postgres;
  test('postgres: the contract suite against PostgreSQL is skipped', (t) => {
    t.log(`skipped: ${pgServer.missing}`);
    t.pass();
  });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const code = (e: unknown) => (e as { code?: string } | undefined)?.code;

for (const [kind, make] of Object.entries(stores)) {
  test(`${kind}: issue, list, get: records describe the certificates, keys match, openssl verifies the chain`, async (t) => {
    const { store } = await make(t);
    t.is(store.organization, 'Contract Corp');
    const sig = await store.issueCertificate({ user: 'Alice@Example.com', name: 'Alice', purpose: 'smime-signing' });
    const enc = await store.issueCertificate({ user: 'Alice@Example.com', name: 'Alice', purpose: 'smime-encryption', days: 30 });
    for (const [record, purpose] of [[sig, 'smime-signing'], [enc, 'smime-encryption']] as const) {
      t.regex(record.serial, /^[0-9a-f]+$/);
      t.is(record.user, 'Alice@Example.com', 'the address as given, not lower-cased');
      t.is(record.purpose, purpose);
      t.is(record.source, 'issued');
      t.true(Date.parse(record.notBefore) < Date.parse(record.notAfter));
      t.false(Number.isNaN(Date.parse(record.created)));
      const der = await store.getCertificate(record.serial);
      t.is(record.fingerprint, sha256(der));
      const identity = await store.getIdentity(record.serial);
      t.deepEqual(Buffer.from(identity.certificate), Buffer.from(der));
      t.true(keysMatch(identity.privateKey, certificatePublicKey(der)));
    }
    t.is(Math.round((Date.parse(enc.notAfter) - Date.parse(enc.notBefore)) / 86_400_000), 30);
    // Lookups by serial ignore case.
    t.is(sha256(await store.getCertificate(sig.serial.toUpperCase())), sig.fingerprint);

    const chain = await store.trustChain();
    t.true(chain.roots.length >= 1);
    const issuers = await store.issuerChain(sig.serial);
    t.true(issuers.length >= 1);
    if (!need(t, 'openssl')) return;
    const dir = tmp(t);
    writeFileSync(join(dir, 'roots.pem'), chain.roots.map((c) => toPem(c)).join(''));
    writeFileSync(join(dir, 'issuers.pem'), issuers.map((c) => toPem(c)).join(''));
    writeFileSync(join(dir, 'leaf.pem'), toPem(await store.getCertificate(sig.serial)));
    const v = openssl(['verify', '-purpose', 'smimesign', '-CAfile', join(dir, 'roots.pem'), '-untrusted', join(dir, 'issuers.pem'), join(dir, 'leaf.pem')]);
    t.is(v.status, 0, v.stderr.toString() + v.stdout.toString());
    const text = openssl(['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-ext', 'subjectAltName,extendedKeyUsage']).stdout.toString();
    t.regex(text, /email:Alice@Example\.com/);
    t.regex(text, /E-mail Protection/);
  });

  test(`${kind}: after an issuing-CA rotation, the issuer identity is the new generation's (what serve --tls-from-store signs with) and new certificates chain to it`, async (t) => {
    const { store } = await make(t);
    const rotating = store as LifecycleStore & { rotateIssuing?: () => Promise<{ generation: number }>; issuerIdentity?: (generation?: number) => Promise<{ certificate: Uint8Array }> };
    if (!rotating.rotateIssuing || !rotating.issuerIdentity) {
      t.log(`${kind}: this store has no issuing-CA rotation`);
      t.pass();
      return;
    }
    const first = Buffer.from((await rotating.issuerIdentity()).certificate);
    const { generation } = await rotating.rotateIssuing();
    t.is(generation, 2);
    const current = Buffer.from((await rotating.issuerIdentity()).certificate);
    t.notDeepEqual(current, first, 'the default is the current generation, not the first');
    t.deepEqual(Buffer.from((await rotating.issuerIdentity(1)).certificate), first, 'an older generation by number');
    const leaf = await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-signing' });
    t.deepEqual((await store.issuerChain(leaf.serial))[0], current);
  });

  test(`${kind}: a profile signer imported from an outside CA is that CA's to revoke: revoking it is refused (outside-ca) and no CRL of ours lists it`, async (t) => {
    const { store } = await make(t);
    const importing = store as LifecycleStore & { importSigner?: (bundle: ReturnType<typeof readIdentity>, options?: { chain?: Buffer }) => Promise<{ serial: string; previous: string }> };
    if (!importing.importSigner || !need(t, 'openssl')) {
      t.pass();
      return;
    }
    const ca = outsideCa(tmp(t), { email: 'signing@example.com', commonName: 'Example Corp Profiles' });
    const { serial, previous } = await importing.importSigner(readIdentity(readFileSync(ca.modern), { password: ca.password }), { chain: readFileSync(ca.chain) });
    const refused = await t.throwsAsync(store.revokeCertificate(serial, 'keyCompromise'));
    t.is(code(refused), 'ERR_CERT_INVALID');
    t.regex(refused?.message ?? '', /outside CA/);
    const crl = openssl(['crl', '-inform', 'DER', '-noout', '-text'], await store.createCrl()).stdout.toString();
    t.notRegex(crl, new RegExp(serial, 'i'), 'the outside signer is not on our CRL');
    t.regex(crl, new RegExp(previous, 'i'), 'our own previous signer is (superseded)');
  });

  test(`${kind}: the same PFX imported twice at once${kind === 'memory' ? '' : ' from two instances'}: one import takes it in, the other is a duplicate, one record`, async (t) => {
    const { store, reopen } = await make(t);
    if (!need(t, 'openssl')) return;
    const ca = outsideCa(tmp(t));
    const bundle = () => readIdentity(readFileSync(ca.modern), { password: ca.password });
    const other = reopen ? await reopen() : store;
    const results = await Promise.all([store, other].map((s) => s.importIdentity({ ...bundle(), chain: [] }, { user: 'bob@example.com', purpose: 'smime-encryption' })));
    t.deepEqual(results.map((r) => r.duplicate).sort(), [false, true]);
    t.is(results[0]!.record.serial, results[1]!.record.serial);
    t.is((await store.listCertificates({ user: 'bob@example.com' })).length, 1);
  });

  test(`${kind}: listing filters by user (any case) and purpose, oldest first, and hands out copies`, async (t) => {
    const { store } = await make(t);
    await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-encryption' });
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
    t.is((await store.listCertificates()).length, 4);
    const alice = await store.listCertificates({ user: 'ALICE@example.COM' });
    t.is(alice.length, 3);
    const enc = await store.listCertificates({ user: 'alice@example.com', purpose: 'smime-encryption' });
    t.is(enc.length, 2);
    t.true(enc.every((r) => r.purpose === 'smime-encryption'));
    for (let i = 1; i < alice.length; i++) t.true(alice[i - 1]!.notBefore <= alice[i]!.notBefore);
    t.deepEqual(await store.listCertificates({ user: 'nobody@example.com' }), []);
    enc[0]!.user = 'mallory@example.com';
    t.is((await store.listCertificates({ user: 'alice@example.com', purpose: 'smime-encryption' }))[0]!.user, 'alice@example.com');
  });

  test(`${kind}: unknown serials and bad input are typed errors, and leave nothing behind`, async (t) => {
    const { store } = await make(t);
    for (const get of [() => store.getCertificate('0badc0de'), () => store.getIdentity('0badc0de'), () => store.issuerChain('0badc0de')]) {
      t.is(code(await t.throwsAsync(get())), 'ERR_STORE_ENTRY_NOT_FOUND');
    }
    t.is(code(await t.throwsAsync(store.issueCertificate({ user: 'not an address', name: 'X', purpose: 'smime-signing' }))), 'ERR_INPUT_INVALID');
    t.is(code(await t.throwsAsync(store.issueCertificate({ user: 'x@example.com', name: 'X', purpose: 'smime-signing', days: 0 }))), 'ERR_INPUT_INVALID');
    t.deepEqual(await store.listCertificates(), []);
  });

  test(`${kind}: a given key is certified instead of a new one`, async (t) => {
    const { store } = await make(t);
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const r = await store.issueCertificate({ user: 'carol@example.com', name: 'Carol', purpose: 'smime-encryption', privateKey });
    t.true(keysMatch(privateKey, certificatePublicKey(await store.getCertificate(r.serial))));
    t.deepEqual(certificatePublicKey(await store.getCertificate(r.serial)).export({ type: 'spki', format: 'der' }), publicKey.export({ type: 'spki', format: 'der' }));
  });

  test(`${kind}: generateProfile from this store: openssl cms -verify, plistlib, every identity shipped`, async (t) => {
    const { store } = await make(t);
    await store.issueCertificate({ user: 'dave@example.com', name: 'Dave', purpose: 'smime-signing' });
    await store.issueCertificate({ user: 'dave@example.com', name: 'Dave', purpose: 'smime-encryption', days: 10 });
    await store.issueCertificate({ user: 'dave@example.com', name: 'Dave', purpose: 'smime-encryption' });
    const profile = await generateProfile({ store, template: 'exchange-smime', user: 'dave@example.com', data: { exchange: { host: 'mail.example.com' } } });
    t.is(profile.encryptionSerials.length, 2);
    const chain = await store.trustChain();
    t.true((await verifyProfile(profile.bytes, { ca: chain.roots })).valid);
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const dir = tmp(t);
    writeFileSync(join(dir, 'p.der'), profile.bytes);
    writeFileSync(join(dir, 'roots.pem'), chain.roots.map((c) => toPem(c)).join(''));
    const v = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'p.der'), '-CAfile', join(dir, 'roots.pem'), '-purpose', 'any']);
    t.is(v.status, 0, v.stderr.toString());
    const py = python('import plistlib,sys; p=plistlib.loads(sys.stdin.buffer.read()); print(sum(1 for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.pkcs12"))', v.stdout);
    t.is(py.stdout.trim(), '3', py.stderr);
  });

  test(`${kind}: concurrent issuing loses nothing${kind === 'memory' ? '' : ', across two instances of the same storage'}`, async (t) => {
    const { store, reopen } = await make(t);
    const other = reopen ? await reopen() : store;
    const issued = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? other : store).issueCertificate({ user: `u${i}@example.com`, name: `U${i}`, purpose: 'smime-signing' })),
    );
    t.is(new Set(issued.map((r) => r.serial)).size, 8);
    const fresh = reopen ? await reopen() : store;
    const listed = await fresh.listCertificates();
    t.deepEqual(listed.map((r) => r.serial).sort(), issued.map((r) => r.serial).sort());
  });

  test(`${kind}: revocation with a reason: the record says so, again is a no-op, the profile leaves it out, the CRL lists it (openssl crl)`, async (t) => {
    const { store, reopen } = await make(t);
    await store.issueCertificate({ user: 'erin@example.com', name: 'Erin', purpose: 'smime-signing' });
    const old = await store.issueCertificate({ user: 'erin@example.com', name: 'Erin', purpose: 'smime-encryption' });
    await store.issueCertificate({ user: 'erin@example.com', name: 'Erin', purpose: 'smime-encryption' });
    const r = await store.revokeCertificate(old.serial.toUpperCase(), 'keyCompromise');
    t.like(r, { serial: old.serial, already: false, revoked: { reason: 'keyCompromise' } });
    t.like(await store.revokeCertificate(old.serial, 'superseded'), { already: true, revoked: { reason: 'keyCompromise' } }, 'the first reason stays');
    const other = reopen ? await reopen() : store;
    t.like((await other.listCertificates({ user: 'erin@example.com' })).find((x) => x.serial === old.serial), { revoked: { reason: 'keyCompromise' } }, 'seen by another instance');
    t.is(code(await t.throwsAsync(store.revokeCertificate('0badc0de'))), 'ERR_STORE_ENTRY_NOT_FOUND');
    const profile = await generateProfile({ store: other, template: 'exchange-smime', user: 'erin@example.com', data: { exchange: { host: 'mail.example.com' } } });
    t.false(profile.encryptionSerials.includes(old.serial));
    t.is(profile.encryptionSerials.length, 1);
    const first = await store.createCrl();
    const second = await other.createCrl();
    if (!need(t, 'openssl')) return;
    const dir = tmp(t);
    const chain = await store.trustChain();
    writeFileSync(join(dir, 'ca.pem'), [...chain.intermediates, ...chain.roots].map((c) => toPem(c)).join(''));
    const numbers: bigint[] = [];
    for (const [i, der] of [first, second].entries()) {
      writeFileSync(join(dir, `crl${i}.der`), der);
      const o = openssl(['crl', '-inform', 'DER', '-in', join(dir, `crl${i}.der`), '-CAfile', join(dir, 'ca.pem'), '-noout', '-text']);
      t.is(o.status, 0, o.stderr.toString());
      const text = o.stdout.toString();
      t.regex(o.stderr.toString(), /verify OK/);
      t.regex(text.replace(/\s+/g, ' '), new RegExp(`Serial Number: 0*${old.serial.toUpperCase()} Revocation Date: .* CRL Reason Code: Key Compromise`, 'i'));
      numbers.push(BigInt(`0x${/X509v3 CRL Number:\s*(?:0x)?([0-9A-Fa-f]+)/.exec(text)![1]}`));
    }
    t.true(numbers[1]! > numbers[0]!, `CRL numbers grow: ${numbers.join(' then ')}`);
  });

  test(`${kind}: removeUser: with revoke our certificates are revoked (cessationOfOperation), outside ones retired; an unknown user is a typed error`, async (t) => {
    const { store } = await make(t);
    const dir = tmp(t);
    const ca = outsideCa(dir);
    const own = await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-signing' });
    const outside = await store.importIdentity(readIdentity(readFileSync(ca.modern), { password: ca.password }), { user: 'bob@example.com', purpose: 'smime-encryption' });
    const r = await store.removeUser('BOB@example.com', { revoke: true });
    t.deepEqual(r.revoked.map((x) => x.serial), [own.serial]);
    t.deepEqual(r.retired.map((x) => x.serial), [outside.record.serial]);
    const after = await store.listCertificates({ user: 'bob@example.com' });
    t.like(after.find((x) => x.serial === own.serial), { revoked: { reason: 'cessationOfOperation' } });
    t.truthy(after.find((x) => x.serial === outside.record.serial)?.retired);
    t.deepEqual(await store.removeUser('bob@example.com', { revoke: true }), { revoked: [], retired: [] }, 'again changes nothing');
    t.is(code(await t.throwsAsync(store.removeUser('nobody@example.com'))), 'ERR_STORE_ENTRY_NOT_FOUND');
    t.is(code(await t.throwsAsync(store.revokeCertificate(outside.record.serial))), 'ERR_CERT_INVALID', 'only the outside CA can revoke its certificate');
  });

  test(`${kind}: import of an openssl PFX: found by serial, fingerprint and prefix; again a no-op; for the other purpose dual-use; its chain goes into profiles`, async (t) => {
    const { store } = await make(t);
    const dir = tmp(t);
    const ca = outsideCa(dir);
    const bundle = readIdentity(readFileSync(ca.modern), { password: ca.password });
    const first = await store.importIdentity({ ...bundle, chain: [] }, { user: 'bob@example.com', purpose: 'smime-signing' });
    t.like(first, { duplicate: false, record: { source: 'imported', purpose: 'smime-signing', user: 'bob@example.com' } });
    for (const q of [first.record.serial, first.record.fingerprint, first.record.fingerprint.slice(0, 10).toUpperCase(), first.record.serial.slice(0, 8)]) {
      t.is((await store.findCertificate(q)).serial, first.record.serial, q);
    }
    t.is(code(await t.throwsAsync(store.findCertificate('0badc0de0badc0de'))), 'ERR_STORE_ENTRY_NOT_FOUND');
    t.like(await store.importIdentity({ ...bundle, chain: [] }, { user: 'bob@example.com', purpose: 'smime-signing' }), { duplicate: true, added: { chain: 0 } });
    const more = await store.importIdentity(bundle, { user: 'bob@example.com', purpose: 'smime-encryption', chain: readFileSync(ca.chain, 'utf8') });
    t.like(more, { duplicate: true, added: { purpose: 'smime-encryption', chain: 2 }, record: { purpose: 'smime-signing', alsoPurpose: 'smime-encryption' } });
    t.is((await store.listCertificates({ user: 'bob@example.com', purpose: 'smime-encryption' })).length, 1, 'listed for both purposes');
    t.is((await store.issuerChain(first.record.serial)).length, 2);
    const profile = await generateProfile({ store, template: 'exchange-smime', user: 'bob@example.com', data: { exchange: { host: 'mail.example.com' } }, sign: false });
    const payloads = ((profile.plist as { PayloadContent: { PayloadType: string }[] }).PayloadContent).map((p) => p.PayloadType);
    t.is(payloads.filter((p) => p === 'com.apple.security.pkcs12').length, 1, 'the dual-use identity once');
    t.true(payloads.includes('com.apple.security.root') && payloads.includes('com.apple.security.pkcs1'), payloads.join(', '));
  });

  test(`${kind}: one-time links: created, peeked without use, consumed exactly once under concurrency${kind === 'memory' ? '' : ' from two instances'}, revoked, listed without tokens`, async (t) => {
    const { store, reopen } = await make(t);
    const other = reopen ? await reopen() : store;
    const { token, link } = await store.links.create('alice@example.com', { ttlMs: 3_600_000, uses: 1 });
    t.regex(token, /^[A-Za-z0-9_-]{22}$/);
    t.like(await other.links.peek(token), { state: 'valid', link: { id: link.id, user: 'alice@example.com' } });
    t.like(await other.links.peek(token), { state: 'valid' }, 'peeking uses nothing');
    const attempts = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? other : store).links.consume(token)));
    t.is(attempts.filter((a) => 'user' in a).length, 1, JSON.stringify(attempts));
    t.true(attempts.every((a) => 'user' in a || a.state === 'used'));
    t.deepEqual(await store.links.consume('A'.repeat(22)), { state: 'unknown' });
    const second = await store.links.create('bob@example.com', { uses: 3 });
    t.like(await other.links.revoke(second.link.id), { id: second.link.id });
    t.deepEqual(await store.links.consume(second.token), { state: 'revoked' });
    t.is(code(await t.throwsAsync(store.links.revoke('nope'))), 'ERR_STORE_ENTRY_NOT_FOUND');
    const listed = await (reopen ? await reopen() : store).links.list();
    t.deepEqual(listed.map((l) => l.id).sort(), [link.id, second.link.id].sort());
    t.false(JSON.stringify(listed).includes(token), 'tokens are never stored');
    t.is(code(await t.throwsAsync(store.links.create('not an address'))), 'ERR_INPUT_INVALID');
  });
}
