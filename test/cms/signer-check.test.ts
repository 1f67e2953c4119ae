/**
 * Custom signers (a cloud KMS, an HSM behind an API) are checked once, by a probe signature,
 * before they sign a profile (issue "The library for MDM vendors"): a broken one fails with a
 * typed error naming what is wrong, and no profile is made.
 */
import test from 'ava';
import { generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority } from '../../src/certs/ca.js';
import { toPem } from '../../src/certs/pem.js';
import { signProfile, type Signer } from '../../src/cms/sign.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { generateProfile } from '../../src/profile/generate.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { need, openssl, tmp } from '../helpers/tools.js';

const XML = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>\n';

async function setup() {
  const ca = await createCertificateAuthority({ organization: 'Signer Corp' });
  const store = await createMemoryStore({ organization: 'Signer Corp', ca });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  return { ca, store };
}

/** A KMS-style signer: PEM strings, an async sign, a counter of calls. */
function kms(ca: Awaited<ReturnType<typeof createCertificateAuthority>>, sign: (data: Uint8Array, key: KeyObject) => unknown, overrides: Partial<Signer> = {}) {
  const calls = { n: 0 };
  const signer: Signer = {
    certificate: toPem(ca.signer.certificate),
    chain: toPem(ca.intermediate.certificate),
    keyType: 'rsa',
    sign: async (data) => {
      calls.n++;
      await new Promise((r) => setImmediate(r)); // a network round trip
      return sign(data, ca.signer.privateKey) as Uint8Array;
    },
    ...overrides,
  };
  return { signer, calls };
}

const generate = (store: Awaited<ReturnType<typeof setup>>['store'], signer: Signer) =>
  generateProfile({ store, signer, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } });

test('a KMS-style async signer with PEM strings works; it is probed once, then signs each profile with one call; openssl verifies', async (t) => {
  const { ca, store } = await setup();
  const { signer, calls } = kms(ca, (data, key) => cryptoSign('sha256', data, key));
  const a = await generate(store, signer);
  const b = await generate(store, signer);
  t.is(calls.n, 3, 'one probe, then one signature per profile');
  const v = await verifyProfile(a.bytes, { ca: toPem(ca.root.certificate) });
  t.true(v.valid, JSON.stringify(v.reasons));
  t.true((await verifyProfile(b.bytes, { ca: ca.root.certificate })).valid);
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'root.pem'), toPem(ca.root.certificate));
  writeFileSync(join(dir, 'a.der'), a.bytes);
  const o = openssl(['cms', '-verify', '-inform', 'DER', '-in', join(dir, 'a.der'), '-CAfile', join(dir, 'root.pem'), '-purpose', 'any', '-out', join(dir, 'a.xml')]);
  t.is(o.status, 0, o.stderr.toString());
});

test('a broken signer is refused with ERR_SIGNER_INVALID and a reason, and no profile is made', async (t) => {
  const { ca, store } = await setup();
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const cases: [string, Signer, string, RegExp][] = [
    ['garbage of the right length', kms(ca, () => randomBytes(256)).signer, 'key-mismatch', /does not verify with the certificate's public key/],
    ["another key's signature", kms(ca, (data) => cryptoSign('sha256', data, other)).signer, 'key-mismatch', /not the certificate's/],
    ['the wrong length', kms(ca, () => randomBytes(100)).signer, 'bad-output', /returned 100 bytes; an RSA-2048 signature has 256/],
    ['not bytes', kms(ca, () => 'c2lnbmF0dXJl').signer, 'bad-output', /returned string, not the signature bytes/],
    ['SHA-1 instead of SHA-256', kms(ca, (data, key) => cryptoSign('sha1', data, key)).signer, 'algorithm', /over SHA-1, not SHA-256/],
    ['a pre-hashed input hashed again', kms(ca, (data, key) => cryptoSign('sha256', Buffer.from(data).subarray(1), key)).signer, 'algorithm', /over other bytes than those given \(hashed twice\?\)/],
    ['keyType ec for an RSA certificate', kms(ca, (data, key) => cryptoSign('sha256', data, key), { keyType: 'ec' }).signer, 'algorithm', /keyType is "ec" but the certificate holds an RSA key/],
  ];
  for (const [what, signer, reason, message] of cases) {
    const err = await t.throwsAsync(generate(store, signer), undefined, what);
    t.like(err, { code: 'ERR_SIGNER_INVALID', reason }, what);
    t.regex(err!.message, message, what);
  }
});

test('an ECDSA signer that returns r||s (as Web Crypto does) is told to return DER; a signer certificate of the wrong shape is ERR_INPUT_INVALID', async (t) => {
  const ca = await createCertificateAuthority({ organization: 'EC Corp', keyAlgorithm: 'ec-p256' });
  const signer: Signer = {
    certificate: ca.signer.certificate,
    chain: [ca.intermediate.certificate],
    keyType: 'ec',
    sign: (data) => cryptoSign('sha256', data, { key: ca.signer.privateKey, dsaEncoding: 'ieee-p1363' }),
  };
  const err = await t.throwsAsync(signProfile(XML, signer));
  t.like(err, { code: 'ERR_SIGNER_INVALID', reason: 'bad-output' });
  t.regex(err!.message, /r\|\|s \(IEEE P1363/);
  const good = await signProfile(XML, { ...signer, sign: (data) => cryptoSign('sha256', data, ca.signer.privateKey) });
  t.true((await verifyProfile(good, { ca: [toPem(ca.root.certificate)] })).valid);

  for (const certificate of [42, 'not a certificate', new Uint8Array([1, 2, 3]), toPem(ca.signer.certificate) + toPem(ca.intermediate.certificate)] as unknown[]) {
    const bad = await t.throwsAsync(signProfile(XML, { ...signer, certificate } as Signer));
    t.like(bad, { code: 'ERR_INPUT_INVALID', field: 'signer.certificate' }, String(certificate));
  }
});
