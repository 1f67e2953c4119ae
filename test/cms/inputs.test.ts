/**
 * Certificates, chains and CAs are taken as Node's own APIs take them (`tls.connect({ ca })`):
 * PEM text, DER or PEM bytes, or arrays of those; a wrong shape is ERR_INPUT_INVALID naming the
 * option, never a TypeError from inside (issue "The library for MDM vendors").
 */
import test from 'ava';
import { createCertificateAuthority } from '../../src/certs/ca.js';
import { toPem } from '../../src/certs/pem.js';
import { keySigner, signProfile } from '../../src/cms/sign.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { createMemoryStore } from '../../src/store/memory-store.js';

const XML = '<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>\n';

test('verifyProfile takes ca as a PEM string, a Buffer, a DER Uint8Array, PEM bytes, or an array of any of them', async (t) => {
  const ca = await createCertificateAuthority({ organization: 'Inputs Corp' });
  // The chain as one PEM string with two blocks, as admins keep it.
  const signer = keySigner({ key: ca.signer.privateKey, certificate: toPem(ca.signer.certificate), chain: toPem(ca.intermediate.certificate) });
  const der = await signProfile(XML, signer);
  const root = ca.root.certificate;
  const other = (await createCertificateAuthority({ organization: 'Other' })).root.certificate;
  const forms: [string, unknown][] = [
    ['PEM string', toPem(root)],
    ['PEM string of two roots', toPem(other) + toPem(root)],
    ['Buffer (DER)', Buffer.from(root)],
    ['Uint8Array (DER)', new Uint8Array(root)],
    ['PEM bytes', Buffer.from(toPem(root))],
    ['array of mixed forms', [toPem(other), new Uint8Array(root)]],
  ];
  for (const [what, caInput] of forms) {
    const v = await verifyProfile(der, { ca: caInput as never });
    t.true(v.valid, `${what}: ${JSON.stringify(v.reasons)}`);
  }
  const untrusted = await verifyProfile(der, { ca: [] });
  t.deepEqual(untrusted.reasons.map((r) => r.code), ['untrusted'], 'an empty array trusts nothing');
  t.false((await verifyProfile(der, { ca: toPem(other) })).valid);
});

test('a wrong shape of ca, chain or certificate is ERR_INPUT_INVALID naming the option', async (t) => {
  const ca = await createCertificateAuthority({ organization: 'Inputs Corp' });
  const der = await signProfile(XML, keySigner({ key: ca.signer.privateKey, certificate: ca.signer.certificate }));
  const bad: [unknown, RegExp][] = [
    [42, /^ca must be PEM text, DER bytes \(Buffer or Uint8Array\) or an array of those, not number$/],
    [{ pem: 'x' }, /^ca must be PEM text/],
    [[toPem(ca.root.certificate), null], /^ca\[1\] must be PEM text.*not null$/],
    [[[ca.root.certificate]], /^ca\[0\] must be PEM text.*not a nested array$/],
    ['', /^ca holds no certificate/],
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', /^ca holds no certificate/],
    [new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), /^ca is not an X\.509 certificate$/],
  ];
  for (const [value, message] of bad) {
    const err = await t.throwsAsync(verifyProfile(der, { ca: value as never }));
    t.like(err, { code: 'ERR_INPUT_INVALID', field: 'ca' }, String(value));
    t.regex(err!.message, message);
  }
  t.throws(() => keySigner({ key: ca.signer.privateKey, certificate: ca.signer.certificate, chain: 7 as never }), { code: 'ERR_INPUT_INVALID', message: /^chain must be PEM text/ });

  const store = await createMemoryStore({ organization: 'Inputs Corp', ca });
  const issued = await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  const id = await store.getIdentity(issued.serial);
  const elsewhere = await createMemoryStore({ organization: 'Inputs Corp', ca });
  // A PEM string and a chain of PEM text are taken as they come.
  const record = await elsewhere.addIdentity({ certificate: toPem(id.certificate), privateKey: id.privateKey, user: 'alice@example.com', purpose: 'smime-signing', chain: toPem(ca.intermediate.certificate) + toPem(ca.root.certificate) });
  t.is(record.chain?.length, 2);
  await t.throwsAsync(elsewhere.addIdentity({ certificate: 'nope', privateKey: id.privateKey, user: 'alice@example.com', purpose: 'smime-signing' }), { code: 'ERR_INPUT_INVALID', message: /^certificate holds no certificate/ });
});
