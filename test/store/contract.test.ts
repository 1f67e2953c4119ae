/**
 * The CertificateStore contract, one suite run against every store: the file store, the memory
 * store, and the SQLite store in examples/ (a vendor's own persistence, written against the
 * public API only). Outputs are checked with openssl and plistlib.
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
import type { CertificateStore } from '../../src/store/store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { need, openssl, python, tmp } from '../helpers/tools.js';

interface Harness {
  store: CertificateStore;
  /** A second, independent instance over the same storage (another process, in production). */
  reopen?: () => Promise<CertificateStore>;
}

const stores: Record<string, (t: ExecutionContext) => Promise<Harness>> = {
  file: async (t) => {
    const dir = join(tmp(t), 'store');
    const store = await initStore(dir, { organization: 'Contract Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    return { store, reopen: () => openStore(dir, { passphrase: PASSPHRASE }) };
  },
  memory: async () => ({ store: await createMemoryStore({ organization: 'Contract Corp' }) }),
  sqlite: async (t) => {
    const path = join(tmp(t), 'certs.sqlite');
    const opened: SqliteStore[] = [];
    t.teardown(() => opened.forEach((s) => s.close()));
    const open = async (organization?: string) => {
      const s = await SqliteStore.open(path, { passphrase: PASSPHRASE, ...(organization ? { organization } : {}) });
      opened.push(s);
      return s;
    };
    return { store: await open('Contract Corp'), reopen: () => open() };
  },
};

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
}
