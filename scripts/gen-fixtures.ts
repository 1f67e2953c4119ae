/**
 * Regenerates the test fixtures in test/fixtures/certs: a root, an intermediate, a profile
 * signer and Alice's three S/MIME certificates, with fixed serials, names that say TEST and
 * 30-year validity. Keys are encrypted PKCS#8 PEM under FIXTURE_PASSPHRASE (not a secret:
 * these are test keys, encrypted only so that no private key lies on disk in clear).
 *
 *   npx tsx scripts/gen-fixtures.ts
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { toPem } from '../src/certs/pem.js';
import { createCertificate, EKU, type CertificateSpec } from '../src/certs/x509.js';

export const FIXTURE_PASSPHRASE = 'profilesmith-test-fixture';
const DIR = resolve(import.meta.dirname, '..', 'test', 'fixtures', 'certs');
const FROM = new Date('2026-01-01T00:00:00Z');
const TO = new Date('2056-01-01T00:00:00Z');

mkdirSync(DIR, { recursive: true });
const key = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const save = (name: string, cert: Buffer, k: KeyObject) => {
  writeFileSync(join(DIR, `${name}.pem`), toPem(cert));
  writeFileSync(join(DIR, `${name}.key.pem`), k.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: FIXTURE_PASSPHRASE }));
};
const make = async (name: string, serial: string, spec: Omit<CertificateSpec, 'serialNumber' | 'notBefore' | 'notAfter' | 'publicKey'>, pair = key(), from = FROM) => {
  const cert = await createCertificate({ ...spec, serialNumber: serial, notBefore: from, notAfter: TO, publicKey: pair.publicKey });
  save(name, cert, pair.privateKey);
  return { cert, key: pair.privateKey };
};

const rootPair = key();
const root = await make('root', '10000000000000000000000000000001', { subject: [['CN', 'TEST profilesmith Root CA'], ['O', 'TEST Example Corp']], signingKey: rootPair.privateKey, ca: {}, keyUsage: ['keyCertSign', 'cRLSign'] }, rootPair);
const intPair = key();
const int = await make('intermediate', '10000000000000000000000000000002', { subject: [['CN', 'TEST profilesmith Issuing CA'], ['O', 'TEST Example Corp']], issuerCertificate: root.cert, signingKey: root.key, ca: { pathLength: 0 }, keyUsage: ['keyCertSign', 'cRLSign'] }, intPair);
await make('signer', '10000000000000000000000000000003', { subject: [['CN', 'TEST profilesmith Profile Signing'], ['O', 'TEST Example Corp']], issuerCertificate: int.cert, signingKey: int.key, keyUsage: ['digitalSignature'], extendedKeyUsage: [EKU.emailProtection, EKU.codeSigning] });
const user = (purpose: 'digitalSignature' | 'keyEncipherment') => ({ subject: [['CN', 'TEST Alice Example']] as CertificateSpec['subject'], issuerCertificate: int.cert, signingKey: int.key, keyUsage: [purpose], extendedKeyUsage: [EKU.emailProtection], email: 'alice@example.com' });
await make('alice-signing', '10000000000000000000000000000011', user('digitalSignature'));
await make('alice-encryption-1', '10000000000000000000000000000012', user('keyEncipherment'));
await make('alice-encryption-2', '10000000000000000000000000000013', user('keyEncipherment'), key(), new Date('2026-06-01T00:00:00Z'));
console.error(`wrote fixtures to ${DIR}`);
