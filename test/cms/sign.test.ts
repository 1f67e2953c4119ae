import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority } from '../../src/certs/ca.js';
import { toPem } from '../../src/certs/pem.js';
import { createCertificate, EKU } from '../../src/certs/x509.js';
import { keySigner, signProfile } from '../../src/cms/sign.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { need, openssl, tmp } from '../helpers/tools.js';

const XML = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>A</key><string>é</string></dict></plist>\n';
const ca = createCertificateAuthority({ organization: 'CMS Test' });

async function ecSigner() {
  const { root, intermediate } = await ca;
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const certificate = await createCertificate({
    subject: [['CN', 'EC profile signer']],
    issuerCertificate: intermediate.certificate,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    publicKey: pair.publicKey,
    signingKey: intermediate.privateKey,
    keyUsage: ['digitalSignature'],
    extendedKeyUsage: [EKU.emailProtection],
  });
  return { root, signer: keySigner({ key: pair.privateKey, certificate, chain: [intermediate.certificate] }) };
}

test('RSA: round trip through verifyProfile, and openssl cms returns the exact bytes', async (t) => {
  const { root, intermediate, signer } = await ca;
  const s = keySigner({ key: signer.privateKey, certificate: toPem(signer.certificate), chain: toPem(intermediate.certificate) });
  const der = await signProfile(XML, s);
  const r = await verifyProfile(der, { ca: [root.certificate] });
  t.true(r.valid, JSON.stringify(r.reasons));
  t.is(r.content.toString('utf8'), XML);
  t.is(r.chain.length, 3);
  t.truthy(r.signingTime);
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'root.pem'), toPem(root.certificate));
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', join(dir, 'root.pem')], Buffer.from(der));
  t.is(v.status, 0, v.stderr.toString());
  t.deepEqual(v.stdout, Buffer.from(XML));
  const printed = openssl(['cms', '-cmsout', '-print', '-inform', 'DER'], Buffer.from(der)).stdout.toString();
  t.regex(printed, /sha256/);
  t.regex(printed, /signingTime/);
  t.regex(printed, /messageDigest/);
  t.regex(printed, /contentType/);
});

test('ECDSA P-256 signer: verifies with us and with openssl', async (t) => {
  const { root, signer } = await ecSigner();
  const der = await signProfile(XML, signer);
  const r = await verifyProfile(der, { ca: [root.certificate] });
  t.true(r.valid, JSON.stringify(r.reasons));
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'root.pem'), toPem(root.certificate));
  const v = openssl(['cms', '-verify', '-inform', 'DER', '-CAfile', join(dir, 'root.pem')], Buffer.from(der));
  t.is(v.status, 0, v.stderr.toString());
});

test('tampered, untrusted and expired profiles are results with reasons, not exceptions', async (t) => {
  const { root, intermediate, signer } = await ca;
  const s = keySigner({ key: signer.privateKey, certificate: signer.certificate, chain: [intermediate.certificate] });
  const der = Buffer.from(await signProfile(XML, s));
  const tampered = Buffer.from(der);
  tampered[tampered.indexOf('<dict>') + 1] = 'D'.charCodeAt(0);
  t.deepEqual((await verifyProfile(tampered, { ca: [root.certificate] })).reasons.map((r) => r.code), ['digest-mismatch']);
  const other = await createCertificateAuthority({ organization: 'Other' });
  t.deepEqual((await verifyProfile(der, { ca: [other.root.certificate] })).reasons.map((r) => r.code), ['untrusted']);
  const later = await verifyProfile(der, { ca: [root.certificate], now: () => new Date(Date.now() + 5 * 365 * 86_400_000) });
  t.false(later.valid);
  t.true(later.reasons.some((r) => r.code === 'signer-expired'));
  const sigBroken = Buffer.from(der);
  sigBroken[sigBroken.length - 5] = (sigBroken[sigBroken.length - 5]! ^ 0xff) & 0xff;
  t.deepEqual((await verifyProfile(sigBroken, { ca: [root.certificate] })).reasons.map((r) => r.code), ['signature-invalid']);
  await t.throwsAsync(verifyProfile(Buffer.from('not cms at all')), { code: 'ERR_PROFILE_PARSE' });
});

test('keySigner refuses a key that does not match the certificate', async (t) => {
  const { signer, root } = await ca;
  t.throws(() => keySigner({ key: root.privateKey, certificate: signer.certificate }), {
    code: 'ERR_CERT_INVALID',
    message: 'The signing key does not belong to the signer certificate',
  });
});
