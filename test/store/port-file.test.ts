/**
 * The file port (src/store/file/port/): the storage port contract over a directory, and the
 * two ways of compatibility with today's file store: a store written through the port opens
 * with openStore (and store check finds nothing wrong), and a store made by initStore and worked
 * by today's code reads through the port as it is.
 */
import test from 'ava';
import { X509Certificate, type KeyObject } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/certs/ca.js';
import { issueCertificate } from '../../src/certs/issue.js';
import { normalizeSerial } from '../../src/certs/pem.js';
import { checkStore } from '../../src/store/check.js';
import { openFilePort } from '../../src/store/file/port/file-port.js';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { newRecord } from '../../src/store/issuance.js';
import type { SealedKey, Sealer, SealingBox, StoreSettings } from '../../src/store/port/port.js';
import { deriveKey, newKdfParams, seal, sealBytes, unseal, unsealBytes } from '../../src/store/secret-box.js';
import { sealCheck } from '../../src/store/settings.js';
import { portContract } from '../helpers/port-contract.js';
import { tmp } from '../helpers/tools.js';

const ORG = 'Port File Corp';
const PASSPHRASE = 'a passphrase for the file port';
const NOW = new Date('2026-12-08T12:00:00Z');

portContract('file', async (t) => {
  const dir = tmp(t);
  return { port: await openFilePort(dir, { create: true }), reopen: () => openFilePort(dir, { create: true }) };
});

const serialOf = (der: Buffer) => normalizeSerial(new X509Certificate(der).serialNumber);
const sealerOf = (key: Buffer, privateKey: KeyObject): Sealer => (aad) => seal(key, privateKey.export({ type: 'pkcs8', format: 'der' }), aad);
const opens = (key: Buffer, k: SealedKey | undefined) => (k ? unseal(key, k.sealed, k.aad) : undefined);
const boxOf = (key: Buffer, generation: number): SealingBox => ({ generation, seal: (p, aad) => sealBytes(key, p, aad), open: (s, aad) => unsealBytes(key, s, aad) });
/** Every file below `dir`, relative. */
const filesOf = (dir: string, sub = ''): string[] =>
  readdirSync(join(dir, sub)).flatMap((n) => (statSync(join(dir, sub, n)).isDirectory() ? filesOf(dir, join(sub, n)) : [join(sub, n)]));

let caPromise: Promise<CertificateAuthority> | undefined;
const ca = () => (caPromise ??= createCertificateAuthority({ organization: ORG, now: () => NOW }));

test('openFilePort: a missing directory or store.json is not initialized; with create, the directory is made (0700)', async (t) => {
  const dir = join(tmp(t), 'store');
  await t.throwsAsync(openFilePort(dir), { code: 'ERR_STORE_NOT_INITIALIZED' });
  const port = await openFilePort(dir, { create: true });
  t.is(statSync(dir).mode & 0o777, 0o700);
  t.is(port.location, dir);
  await t.throwsAsync(port.settings(), { code: 'ERR_STORE_NOT_INITIALIZED' });
  await t.throwsAsync(openFilePort(dir), { code: 'ERR_STORE_NOT_INITIALIZED' });
  t.deepEqual(await port.records(), []);
  t.deepEqual(await port.credentials(), []);
});

test('a store written through the port opens with openStore: list, identity, signer, issuing, store check', async (t) => {
  const dir = join(tmp(t), 'store');
  const port = await openFilePort(dir, { create: true });
  const kdf = newKdfParams(14);
  const key = await deriveKey(PASSPHRASE, kdf);
  const settings: StoreSettings = { organization: ORG, created: NOW.toISOString(), kdf, check: sealCheck(key), keyGeneration: 1 };
  const { root, intermediate, signer } = await ca();
  const alice = await issueCertificate(intermediate, { purpose: 'smime-signing', email: 'alice@example.com', name: 'Alice', now: () => NOW });
  const record = await newRecord(alice.certificate, { user: 'alice@example.com', purpose: 'smime-signing', source: 'issued', chain: [], now: NOW });
  await port.transaction(async (tx) => {
    await tx.putSettings(settings);
    await tx.putCredential({ serial: serialOf(root.certificate), role: 'root', current: true, certificate: root.certificate }, sealerOf(key, root.privateKey));
    await tx.putCredential({ serial: serialOf(intermediate.certificate), role: 'issuing', ca: 'root', generation: 1, current: true, certificate: intermediate.certificate }, sealerOf(key, intermediate.privateKey));
    await tx.putCredential({ serial: serialOf(signer.certificate), role: 'signer', ca: 'issuing', current: true, certificate: signer.certificate }, sealerOf(key, signer.privateKey));
    await tx.addCertificate(record, alice.certificate, sealerOf(key, alice.privateKey));
  });
  t.deepEqual(await port.settings(), settings);

  const store = await openStore(dir, { passphrase: PASSPHRASE, now: () => NOW });
  t.deepEqual(await store.listCertificates(), [record]);
  const identity = await store.getIdentity(record.serial);
  t.true(identity.certificate.equals(alice.certificate));
  t.true(identity.privateKey.equals(alice.privateKey));
  t.true((await store.issuerIdentity()).certificate.equals(intermediate.certificate));
  t.true((await store.trustChain()).roots[0]!.equals(root.certificate));
  const profileSigner = await store.profileSigner();
  t.true(Buffer.from(profileSigner.certificate as Uint8Array).equals(signer.certificate));
  t.true((await profileSigner.sign(Buffer.from('data'))).length > 0);
  t.deepEqual((await checkStore(store)).filter((f) => f.severity === 'error'), [], 'store check finds nothing wrong');

  // Today's code writes on: an issued certificate (and its PKCS#12, in the cache the port reads).
  const bob = await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-encryption' });
  t.deepEqual((await port.records()).map((r) => r.serial).sort(), [record.serial, bob.serial].sort());
  t.truthy(await port.cache.get(bob, boxOf(key, 1)), 'the PKCS#12 today\'s store cached opens through the port');
  t.true(opens(key, (await port.certificate(bob.serial))?.key)?.length! > 0);
});

test('a store made by initStore reads through the port: settings, credentials, records, revocations, CRL state; then rekey', async (t) => {
  const dir = join(tmp(t), 'store');
  const store = await initStore(dir, { organization: ORG, passphrase: PASSPHRASE, kdfCost: 14 });
  const alice = await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  const bob = await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-encryption' });
  await store.revokeCertificate(alice.serial, 'keyCompromise');
  await store.createCrl();
  await store.ocspResponder(1);
  const port = await openFilePort(dir);

  const settings = await port.settings();
  t.is(settings.organization, ORG);
  t.is(settings.keyGeneration, 1);
  t.false('format' in settings);
  const key = await deriveKey(PASSPHRASE, settings.kdf);

  const creds = await port.credentials();
  const role = (r: string) => creds.filter((c) => c.role === r);
  t.deepEqual(creds.map((c) => [c.role, c.ca, c.generation, c.current]), [
    ['root', undefined, undefined, true],
    ['issuing', 'root', 1, true],
    ['signer', 'issuing', undefined, true],
    ['responder', 'issuing', undefined, true],
  ]);
  t.true(role('root')[0]!.certificate.equals((await store.caCertificates())[0]!.certificate));
  for (const c of creds) t.truthy(opens(key, c.key), `${c.role}'s key opens with its AAD (${c.key?.aad})`);
  t.is(role('issuing')[0]!.key?.aad, 'ca/intermediate.key');
  t.is(role('signer')[0]!.key?.aad, 'signer/key');

  t.deepEqual(await port.records(), await store.listCertificates());
  t.deepEqual(await port.records({ user: 'ALICE@example.com' }), [{ ...alice, revoked: (await port.records({ serial: alice.serial }))[0]!.revoked! }]);
  t.is((await port.records({ serial: alice.serial }))[0]?.revoked?.reason, 'keyCompromise');
  t.deepEqual((await port.revocations()).map((r) => [r.serial, r.kind, r.reason, r.ca]), [[alice.serial, 'revoked', 'keyCompromise', 'issuing']]);
  const stored = await port.certificate(bob.serial);
  t.true(stored?.der.equals(await store.getCertificate(bob.serial)));
  t.is(stored?.key?.aad, `certs/${bob.serial}/key`);
  t.truthy(opens(key, stored?.key));

  const crl = await port.crlState('issuing');
  t.true(Number.isSafeInteger(crl?.number) && crl!.number > 0);
  t.is(crl?.published, undefined, 'createCrl publishes nothing');
  const published = await store.publishedCrl(1);
  const state = await port.crlState('issuing');
  t.true(state?.published?.der.equals(published));
  t.true(state!.number > crl!.number);

  // Rotations by today's code: the pointers move, the old signer is found to be issuing 1's.
  await store.rotateIssuing();
  const after = await port.credentials();
  t.deepEqual(after.filter((c) => c.role === 'issuing').map((c) => [c.generation, c.current]), [[1, false], [2, true]]);
  t.deepEqual(after.filter((c) => c.role === 'signer').map((c) => [c.ca, c.current, !!c.key]), [['issuing', false, false], ['issuing-2', true, true]]);

  // A new passphrase through the port: today's store opens with it, the old generation is gone.
  const kdf = newKdfParams(14);
  const newKey = await deriveKey('another passphrase for the port', kdf);
  const count = await port.transaction((tx) => tx.rekey((k) => seal(newKey, unseal(key, k.sealed, k.aad)!, k.aad), { ...settings, kdf, check: sealCheck(newKey), keyGeneration: 2 }));
  // root, issuing 1 and 2, the new signer, the responder, two user keys
  t.is(count, 7);
  t.deepEqual(filesOf(dir).filter((f) => f.endsWith('.1')), []);
  const reopened = await openStore(dir, { passphrase: 'another passphrase for the port' });
  t.true((await reopened.getIdentity(bob.serial)).certificate.equals(stored!.der));
  await reopened.profileSigner();
  t.deepEqual((await checkStore(reopened)).filter((f) => f.severity === 'error'), []);
  t.deepEqual(await port.settings(), { ...settings, kdf, check: (await port.settings()).check, keyGeneration: 2 });
});
