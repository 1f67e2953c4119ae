/**
 * Generates a signed profile from the SQLite store in ./sqlite-store.ts (profilesmith's CA,
 * `CaStore`, over a SQLite `StoragePort`); with `revoke`, first revokes Alice's encryption
 * certificate (key compromise), issues her a new one, and writes the CRL that lists the old one.
 *
 *   node --import tsx examples/bring-your-own-store/main.ts OUT_DIR [revoke]
 *
 * The passphrase comes from STORE_PASSPHRASE (a secret manager in real life), never from argv.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateProfile, isProfilesmithError, toPem, verifyProfile } from 'profilesmith';
import { SqliteStore } from './sqlite-store.js';

const out = process.argv[2] ?? '.';
const passphrase = process.env.STORE_PASSPHRASE;
if (!passphrase) {
  console.error('Set STORE_PASSPHRASE');
  process.exit(2);
}

const store = await SqliteStore.open(join(out, 'certificates.sqlite'), { passphrase, organization: 'Example Corp' }).catch((err: unknown) => {
  // Typed errors make a one-line message; anything else is a bug worth its stack.
  if (!isProfilesmithError(err)) throw err;
  console.error(`error: ${err.message} [${err.code}]`);
  process.exit(1);
});
try {
  if ((await store.listCertificates({ user: 'alice@example.com' })).length === 0) {
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-signing' });
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
  }
  if (process.argv[3] === 'revoke') {
    const current = (await store.listCertificates({ user: 'alice@example.com', purpose: 'smime-encryption' })).filter((r) => !r.revoked).at(-1)!;
    const r = await store.revokeCertificate(current.serial, 'keyCompromise');
    await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
    const chain = await store.trustChain();
    await writeFile(join(out, 'crl.der'), await store.createCrl());
    await writeFile(join(out, 'ca.pem'), [...chain.intermediates, ...chain.roots].map((c) => toPem(c)).join(''));
    console.log(`revoked ${r.serial} (${r.revoked.reason}); crl.der lists it`);
  }
  const profile = await generateProfile({
    store,
    template: 'exchange-smime',
    user: 'alice@example.com',
    data: { exchange: { host: 'mail.example.com' } },
  });
  await writeFile(join(out, 'alice.mobileconfig'), profile.bytes, { mode: 0o600 });
  const check = await verifyProfile(profile.bytes, { ca: (await store.trustChain()).roots });
  console.log(`alice.mobileconfig: ${check.valid ? 'signed and verified' : 'NOT VALID'}, ${profile.encryptionSerials.length} encryption ${profile.encryptionSerials.length === 1 ? 'identity' : 'identities'}`);
} finally {
  await store.close(); // closes the database
}
