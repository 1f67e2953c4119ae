/**
 * createProfileHandler as a library user mounts it: under a base path beside other routes
 * (returning false for paths it does not own), or as the whole server (404 elsewhere); and its
 * template data checked when it is made, the error naming the variable.
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyProfile } from '../../src/cms/verify.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { createProfileHandler } from '../../src/server/handler.js';
import { httpRequest } from '../helpers/tools.js';

const DATA = { exchange: { host: 'mail.example.com' } };

async function aliceStore() {
  const store = await createMemoryStore({ organization: 'Example Corp' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  return store;
}

async function serve(t: ExecutionContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('under a base path: the page, the trust profile and the install live under it, the page links there, and other paths are left to the caller (false)', async (t) => {
  const store = await aliceStore();
  const lines: string[] = [];
  const profiles = createProfileHandler({ store, links: store.links, template: 'exchange-smime', data: DATA, basePath: '/enroll', otherPaths: 'pass', log: (l) => lines.push(l) });
  const returned: boolean[] = [];
  const base = await serve(t, (req, res) => {
    const handled = profiles(req, res);
    returned.push(handled);
    if (!handled) res.writeHead(418).end('the caller answered');
  });
  const { token } = await store.links.create('alice@example.com');
  const page = await httpRequest(`${base}/enroll/p/${token}`);
  t.is(page.status, 200);
  t.true(page.text().includes(`action="/enroll/p/${token}/install"`), 'the form posts under the base path');
  t.true(page.text().includes(`href="/enroll/p/${token}/trust"`), 'the trust step links under the base path');
  const trust = await httpRequest(`${base}/enroll/p/${token}/trust`);
  t.is(trust.status, 200);
  t.is(trust.headers['content-type'], 'application/x-apple-aspen-config');
  const installed = await httpRequest(`${base}/enroll/p/${token}/install`, { method: 'POST' });
  t.is(installed.status, 200);
  t.deepEqual((await verifyProfile(installed.body, { ca: (await store.trustChain()).roots })).reasons, []);
  t.is((await httpRequest(`${base}/enroll/p/${token}`)).status, 410, 'the link is used up');
  t.is((await httpRequest(`${base}/enroll/p/AAAAAAAAAAAAAAAAAAAAAA`)).status, 404, 'an unknown link under the base path: the handler answers 404');
  // Outside the base path: the handler answers nothing, logs nothing, and returns false.
  const logged = lines.length;
  for (const path of ['/elsewhere', `/p/${token}`, '/enrollment/p/x', '/enroll']) {
    const r = await httpRequest(base + path);
    t.is(r.status, 418, path);
    t.is(r.text(), 'the caller answered');
  }
  t.is(lines.length, logged, 'paths of others are not logged');
  t.deepEqual(returned, [true, true, true, true, true, false, false, false, false]);
});

test('as the whole server (the default): every other path is its 404, and it returns true', async (t) => {
  const store = await aliceStore();
  const profiles = createProfileHandler({ store, links: store.links, template: 'exchange-smime', data: DATA });
  const returned: boolean[] = [];
  const base = await serve(t, (req, res) => void returned.push(profiles(req, res)));
  const { token } = await store.links.create('alice@example.com');
  t.is((await httpRequest(`${base}/p/${token}`)).status, 200);
  t.is((await httpRequest(`${base}/elsewhere`)).status, 404);
  t.deepEqual(returned, [true, true]);
});

test('template data is checked when the handler is made: a typo, a missing and a mistyped variable each throw ERR_TEMPLATE_DATA naming it', async (t) => {
  const store = await aliceStore();
  const make = (data: Record<string, unknown>) => () => createProfileHandler({ store, links: store.links, template: 'exchange-smime', data });
  const typo = t.throws(make({ exchange: { hots: 'mail.example.com' } }));
  t.like(typo, { code: 'ERR_TEMPLATE_DATA', variable: 'exchange.hots' });
  t.regex(typo!.message, /^Template "exchange-smime": variable "exchange\.hots" is not a variable of the template \(a typo\?\); it has: .*exchange\.host/);
  t.like(t.throws(make({})), { code: 'ERR_TEMPLATE_DATA', variable: 'exchange.host', message: 'Template "exchange-smime": variable "exchange.host" is required' });
  t.like(t.throws(make({ exchange: { host: 'h', ssl: 'yes' } })), { code: 'ERR_TEMPLATE_DATA', variable: 'exchange.ssl', message: 'Template "exchange-smime": variable "exchange.ssl" must be a boolean, got "yes"' });
  // Defaults that name the user or the store are filled from a sample, so good data passes.
  t.notThrows(make({ exchange: { host: 'mail.example.com', ssl: true }, displayName: 'Mail' }));
  // A SCEP template before the store knows its SCEP URL (serve --scep records it after listening).
  t.notThrows(() => createProfileHandler({ store, links: store.links, template: 'scep-smime-signing', data: { exchange: { host: 'mail.example.com' } } }));
});

test('a base path must start with / and not end with one; otherPaths is one of two words', async (t) => {
  const store = await aliceStore();
  for (const basePath of ['enroll', '/enroll/', '/', '/a b', '//x']) {
    t.like(t.throws(() => createProfileHandler({ store, links: store.links, template: 'exchange-smime', data: DATA, basePath })), { code: 'ERR_INPUT_INVALID', field: 'basePath' }, basePath);
  }
  t.like(t.throws(() => createProfileHandler({ store, links: store.links, template: 'exchange-smime', data: DATA, otherPaths: 'skip' as 'pass' })), { code: 'ERR_INPUT_INVALID', field: 'otherPaths' });
});

test('a request that fails is logged with what the admin should do next (advise); the CLI advises by error code', async (t) => {
  const store = await aliceStore();
  await store.issueCertificate({ user: 'bob@example.com', name: 'Bob', purpose: 'smime-signing' });
  const lines: string[] = [];
  const { adviceFor } = await import('../../src/cli/errors.js');
  const profiles = createProfileHandler({
    store, links: store.links, template: 'exchange-smime', data: DATA, log: (l) => lines.push(l),
    advise: adviceFor,
  });
  const base = await serve(t, profiles);
  const { token } = await store.links.create('bob@example.com');
  const r = await httpRequest(`${base}/p/${token}/install`, { method: 'POST' });
  t.is(r.status, 503);
  const line = lines.find((l) => l.includes('/install'));
  t.regex(line ?? '', / 503 \d+ms ERR_STORE_ENTRY_NOT_FOUND: User "bob@example\.com" has no valid smime-encryption certificate; next: Issue one \(`profilesmith cert issue --user bob@example\.com --purpose smime-encryption`\) or import one/);
  t.false(line?.includes(token), 'the token is not logged');
});
