/**
 * A plain node:http handler that serves a freshly generated, signed profile per user:
 * GET /profiles/<address>. Your own authentication goes where the comment says.
 *
 *   node --import tsx examples/http-handler.ts [PORT]
 *
 * It prints its URL on stdout. Serve it behind TLS: profiles carry identities.
 */
import { createServer } from 'node:http';
import { createMemoryStore, generateProfile, isProfilesmithError, loadTemplate } from 'profilesmith';

const store = await createMemoryStore({ organization: 'Example Corp' });
for (const user of ['alice@example.com', 'bob@example.com']) {
  await store.issueCertificate({ user, name: user.split('@')[0]!, purpose: 'smime-signing' });
  await store.issueCertificate({ user, name: user.split('@')[0]!, purpose: 'smime-encryption' });
}
const template = loadTemplate('exchange-smime'); // parsed once, not per request
const signer = await store.profileSigner(); // the key is parsed once

const server = createServer(async (req, res) => {
  const match = /^\/profiles\/([^/]+)$/.exec(req.url ?? '');
  if (req.method !== 'GET' || !match) {
    res.writeHead(404).end();
    return;
  }
  // Authenticate the request here, and check that it may fetch this user's profile.
  try {
    const user = decodeURIComponent(match[1]!);
    const profile = await generateProfile({ store, template, user, data: { exchange: { host: 'mail.example.com' } }, signer });
    res.writeHead(200, {
      'content-type': 'application/x-apple-aspen-config',
      'content-disposition': 'attachment; filename="profile.mobileconfig"',
      'cache-control': 'no-store',
    });
    res.end(profile.bytes);
  } catch (err) {
    // Typed errors: an unknown user is a 404, anything else a 500 without details.
    const status = isProfilesmithError(err) && (err.code === 'ERR_STORE_ENTRY_NOT_FOUND' || err.code === 'ERR_INPUT_INVALID') ? 404 : 500;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 404 ? 'no such user\n' : 'error\n');
  }
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const address = server.address();
  console.log(`http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
});
process.on('SIGTERM', () => server.close());
