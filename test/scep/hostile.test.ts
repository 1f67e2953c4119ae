/**
 * SCEP under malformed input: what a client sent wrong is its fault (a 400 or a CertRep
 * FAILURE, counted toward the client's failure limit), never a 5xx; and what it sent is escaped
 * before it reaches the log, so a forged line cannot be injected through a transactionID.
 */
import test from 'ava';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { toPem } from '../../src/certs/pem.js';
import { createScepHandler } from '../../src/scep/handler.js';
import { createScepService } from '../../src/scep/service.js';
import { initStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { opensslEnvelope, pkiMessage, readReply, requester } from '../helpers/scep.js';
import { httpRequest, need, tmp } from '../helpers/tools.js';

async function setup(t: import('ava').ExecutionContext) {
  const dir = tmp(t);
  const now = () => new Date('2026-06-01T12:00:00Z');
  const store = await initStore(join(dir, 'store'), { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14, now });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  return { dir, store, now, raPem: toPem((await store.scepRa()).certificate) };
}

test('malformed requests are 400s that count toward the failure limit (then 429), never a 5xx', async (t) => {
  const s = await setup(t);
  const handler = createScepHandler({ store: s.store, now: s.now, failureLimit: 3 });
  const server = createServer((q, r) => void (handler(q, r) || r.writeHead(404).end()));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/scep?operation=PKIOperation`;
  const codes = [];
  for (const body of [Buffer.from('junk'), Buffer.from([0x30, 0x80, 0x00, 0x00]), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]), Buffer.from('more junk')]) {
    codes.push((await httpRequest(url, { method: 'POST', body })).status);
  }
  t.deepEqual(codes, [400, 400, 400, 429]);
});

test('a well-signed message around junk is a FAILURE (badRequest), not a server error; its transactionID is escaped in the log', async (t) => {
  if (!need(t, 'openssl')) return;
  const s = await setup(t);
  const lines: string[] = [];
  const scep = createScepService({ store: s.store, now: s.now, log: (l) => lines.push(l) });
  const who = requester(s.dir, 'dev');
  const forged = 'x\r\n127.0.0.1 SCEP PKCSReq 1 SUCCESS mallory@example.com 01\x1b[0m';
  for (const content of [Buffer.from('not a CSR'), Buffer.from([0x30, 0x82, 0xff, 0xff]), Buffer.alloc(0)]) {
    const r = await scep({ method: 'POST', operation: 'PKIOperation', body: pkiMessage(opensslEnvelope(s.dir, content, s.raPem), who, { transactionID: forged }) });
    t.is(r.status, 200, r.body.toString());
    t.is(r.failInfo, 'badRequest');
    t.like(readReply(s.dir, r.body, who), { status: '2', failInfo: '2' });
  }
  t.is(lines.length, 3, lines.join('\n'));
  for (const l of lines) {
    t.false(/[\r\n\x1b]/.test(l), JSON.stringify(l));
    t.true(l.includes('x\\x0d\\x0a127.0.0.1'), l);
    t.regex(l, /FAILURE badRequest: the certification request cannot be read|FAILURE badRequest: .+/);
  }
});
