/**
 * The library without the file store or the CLI: a store in memory, a profile generated from a
 * built-in template, a profile made elsewhere signed, and both checked.
 *
 *   node --import tsx examples/generate-and-sign.ts OUT_DIR
 *
 * OUT_DIR is made when missing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createMemoryStore, generateProfile, inspectProfile, lintProfile, signProfile, verifyProfile, isProfilesmithError } from 'profilesmith';

const out = process.argv[2] ?? '.';
try {
  await mkdir(out, { recursive: true });
} catch (err) {
  // One line, not a stack trace: a file in the way (EEXIST, ENOTDIR), no permission (EACCES).
  console.error(`error: cannot write to OUT_DIR "${out}": ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'it is a file, not a folder' : (err as NodeJS.ErrnoException).code ?? String(err)}`);
  process.exit(1);
}
const store = await createMemoryStore({ organization: 'Example Corp' });
await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-signing' });
await store.issueCertificate({ user: 'alice@example.com', name: 'Alice Example', purpose: 'smime-encryption' });
const ca = (await store.trustChain()).roots;

// 1. A profile from a template.
const profile = await generateProfile({
  store,
  template: 'exchange-smime',
  user: 'alice@example.com',
  data: { exchange: { host: 'mail.example.com' } },
});
await writeFile(join(out, 'alice.mobileconfig'), profile.bytes, { mode: 0o600 });
const verified = await verifyProfile(profile.bytes, { ca });
console.log(`alice.mobileconfig: ${verified.valid ? 'verified' : 'NOT VALID'}, signed by ${verified.signer?.subject}`);
console.log(`payloads: ${(await inspectProfile(profile.bytes)).payloads.map((p) => p.type).join(', ')}`);

// 2. Signing a profile made elsewhere.
const xml = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadContent</key><array/>
<key>PayloadDisplayName</key><string>Made elsewhere</string>
<key>PayloadIdentifier</key><string>com.example.elsewhere</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>0F1E2D3C-4B5A-4968-8776-A5B4C3D2E1F0</string>
<key>PayloadVersion</key><integer>1</integer>
</dict></plist>
`;
const signed = await signProfile(xml, await store.profileSigner());
await writeFile(join(out, 'elsewhere.mobileconfig'), signed);
console.log(`elsewhere.mobileconfig: ${(await verifyProfile(signed, { ca })).valid ? 'verified' : 'NOT VALID'}; lint findings: ${(await lintProfile(signed)).findings.length}`);

// 3. Errors are typed: branch on the code.
const tampered = Buffer.from(signed);
tampered[tampered.indexOf('Made elsewhere')]! ^= 1;
console.log(`tampered: valid=${(await verifyProfile(tampered, { ca })).valid}`);
try {
  await generateProfile({ store, template: 'exchange-smime', user: 'nobody@example.com', data: { exchange: { host: 'mail.example.com' } } });
} catch (err) {
  if (!isProfilesmithError(err)) throw err;
  console.log(`nobody@example.com: ${err.code}`);
}
