/**
 * Signing with a key held by a cloud KMS: the Signer is an object with the certificate, its
 * chain and an async sign() that makes one API call. The key never enters this process.
 * profilesmith checks the signer once, by a probe signature, before it signs a profile.
 *
 *   node --import tsx examples/kms-signer.ts OUT_DIR
 *
 * FakeKms stands in for the KMS client (AWS KMS, Google Cloud KMS, Azure Key Vault all offer
 * "sign this message with RSASSA-PKCS1-v1_5 SHA-256" over the network).
 */
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCertificateAuthority, createMemoryStore, generateProfile, isProfilesmithError, toPem, verifyProfile, type Signer } from 'profilesmith';

/** A KMS: it holds the keys; callers send messages and get signatures back. */
class FakeKms {
  readonly #keys = new Map<string, KeyObject>();
  calls = 0;
  constructor(keys: Record<string, KeyObject>) {
    for (const [id, key] of Object.entries(keys)) this.#keys.set(id, key);
  }
  async sign(request: { keyId: string; message: Uint8Array; algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' | 'RSASSA_PKCS1_V1_5_SHA_1' }): Promise<{ signature: Uint8Array }> {
    this.calls++;
    await new Promise((r) => setTimeout(r, 5)); // the network round trip
    const key = this.#keys.get(request.keyId);
    if (!key) throw new Error(`KMS: no key ${request.keyId}`);
    return { signature: cryptoSign(request.algorithm.endsWith('256') ? 'sha256' : 'sha1', request.message, key) };
  }
}

const out = process.argv[2] ?? '.';
// The CA is made here for the demo; in production the KMS key's certificate comes from your CA.
const ca = await createCertificateAuthority({ organization: 'Example Corp' });
const kms = new FakeKms({ 'profile-signer': ca.signer.privateKey });
const store = await createMemoryStore({ organization: 'Example Corp', ca });
await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });

const kmsSigner = (algorithm: 'RSASSA_PKCS1_V1_5_SHA_256' | 'RSASSA_PKCS1_V1_5_SHA_1'): Signer => ({
  certificate: toPem(ca.signer.certificate),
  chain: toPem(ca.intermediate.certificate),
  keyType: 'rsa',
  // `data` is the DER of the CMS signed attributes: the KMS signs it as it is, with SHA-256.
  sign: async (data) => (await kms.sign({ keyId: 'profile-signer', message: data, algorithm })).signature,
});

const signer = kmsSigner('RSASSA_PKCS1_V1_5_SHA_256'); // one object, reused: it is probed once
for (const name of ['alice-1', 'alice-2']) {
  const profile = await generateProfile({ store, signer, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } });
  writeFileSync(join(out, `${name}.mobileconfig`), profile.bytes);
  const v = await verifyProfile(profile.bytes, { ca: toPem(ca.root.certificate) });
  console.log(`${name}.mobileconfig: ${v.valid ? 'verified' : `NOT valid: ${v.reasons.map((r) => r.code).join(', ')}`}`);
}
writeFileSync(join(out, 'root.pem'), toPem(ca.root.certificate));
console.log(`KMS calls: ${kms.calls} (one probe, then one per profile)`);

// A misconfigured KMS key (SHA-1) is caught by the probe, before any profile is made.
try {
  await generateProfile({ store, signer: kmsSigner('RSASSA_PKCS1_V1_5_SHA_1'), template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } });
  console.log('misconfigured: signed (this is a bug)');
} catch (err) {
  if (!isProfilesmithError(err) || err.code !== 'ERR_SIGNER_INVALID') throw err;
  console.log(`misconfigured: ${err.code} (${err.reason}): ${err.message}`);
}
