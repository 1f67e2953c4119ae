/**
 * Signing with a key that never leaves an HSM (any PKCS#11 module: a network HSM, a cloud KMS's
 * PKCS#11 library, SoftHSM). Needs the optional dependency pkcs11js.
 *
 *   PKCS11_URI='pkcs11:token=HSM;object=profile-signer?module-path=/usr/lib/softhsm/libsofthsm2.so' \
 *   PKCS11_PIN=... node --import tsx examples/pkcs11-signer.ts SIGNER_CERT.pem CHAIN.pem OUT_DIR
 *
 * The PIN comes from the environment (or a secret manager), never from argv.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createMemoryStore, generateProfile, pkcs11Signer } from 'profilesmith';

const [certPath, chainPath, out = '.'] = process.argv.slice(2);
const uri = process.env.PKCS11_URI;
if (!uri || !certPath || !chainPath) {
  console.error('usage: PKCS11_URI=… PKCS11_PIN=… pkcs11-signer.ts SIGNER_CERT CHAIN OUT_DIR');
  process.exit(2);
}

const signer = await pkcs11Signer({
  uri,
  ...(process.env.PKCS11_PIN ? { pin: process.env.PKCS11_PIN } : {}),
  certificate: await readFile(certPath),
  chain: [await readFile(chainPath)],
});
try {
  const store = await createMemoryStore({ organization: 'Example Corp' });
  const users = ['alice@example.com', 'bob@example.com', 'carol@example.com'];
  for (const user of users) {
    await store.issueCertificate({ user, name: user.split('@')[0]!, purpose: 'smime-signing' });
    await store.issueCertificate({ user, name: user.split('@')[0]!, purpose: 'smime-encryption' });
  }
  // Profiles in parallel: the signer spreads the signatures over its token sessions.
  await Promise.all(
    users.map(async (user) => {
      const profile = await generateProfile({ store, template: 'exchange-smime', user, data: { exchange: { host: 'mail.example.com' } }, signer });
      await writeFile(join(out, `${user}.mobileconfig`), profile.bytes, { mode: 0o600 });
      console.log(`${user}.mobileconfig signed in the token (${signer.keyType})`);
    }),
  );
} finally {
  await signer.close();
}
