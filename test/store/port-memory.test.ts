/**
 * The memory port: the port contract (one instance, and two instances over the same memory),
 * and what is its own: copies in and out, one transaction at a time, a transaction object dead
 * once its transaction has ended.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { StoreNotInitialized } from '../../src/errors.js';
import { newLink } from '../../src/server/links.js';
import { MemoryPort } from '../../src/store/memory/port.js';
import type { PortTransaction, SealingBox } from '../../src/store/port/port.js';
import { seal, sealBytes, unsealBytes } from '../../src/store/secret-box.js';
import type { CertificateRecord } from '../../src/store/store.js';
import { portContract } from '../helpers/port-contract.js';

portContract('memory', async () => ({ port: new MemoryPort() }));
portContract('memory, two instances', async () => {
  const port = new MemoryPort();
  return { port, reopen: async () => port.reopen() };
});

const NOW = new Date('2026-12-08T12:00:00Z');
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A record for the memory port, which does not parse certificates. */
const record = (serial: string): CertificateRecord => ({
  serial,
  user: 'alice@example.com',
  purpose: 'smime-signing',
  source: 'issued',
  subject: 'CN=Alice',
  issuer: 'CN=Example Corp Issuing CA',
  notBefore: NOW.toISOString(),
  notAfter: new Date(NOW.getTime() + 365 * 86_400_000).toISOString(),
  fingerprint: serial.padEnd(64, '0'),
  created: NOW.toISOString(),
});

test('memory port: settings() before putSettings throws StoreNotInitialized naming the location', async (t) => {
  const port = new MemoryPort();
  t.is(port.location, 'memory');
  const err = await t.throwsAsync(port.settings(), { instanceOf: StoreNotInitialized });
  t.is(err?.code, 'ERR_STORE_NOT_INITIALIZED');
  t.regex(err?.message ?? '', /memory/);
});

test('memory port: values handed in and out are copies', async (t) => {
  const port = new MemoryPort();
  const key = randomBytes(32);
  const rec = record('0abc01');
  const der = Buffer.from('certificate bytes');
  const certificate = Buffer.from('credential bytes');
  const crlDer = Buffer.from('crl bytes');
  const { link } = newLink('alice@example.com', {}, NOW);
  await port.transaction(async (tx) => {
    await tx.addCertificate(rec, der, (aad) => seal(key, Buffer.from('k'), aad));
    await tx.putCredential({ serial: '0c01', role: 'signer', ca: 'issuing', current: true, certificate }, (aad) => seal(key, Buffer.from('c'), aad));
    await tx.putCrlState('issuing', { number: 1, published: { thisUpdate: 'a', nextUpdate: 'b', digest: 'd', der: crlDer } });
    await tx.putLinks('links', [link]);
    await tx.putRevocation({ serial: rec.serial, date: NOW.toISOString(), reason: 'superseded', kind: 'revoked' });
  });
  // What was handed in, changed afterwards.
  rec.user = 'mallory@example.com';
  der.fill(0);
  certificate.fill(0);
  crlDer.fill(0);
  link.usesLeft = 99;
  // What was handed out, changed.
  const [r] = await port.records();
  r!.user = 'eve@example.com';
  r!.revoked!.reason = 'unspecified';
  (await port.certificate(rec.serial))!.der.fill(1);
  (await port.certificate(rec.serial))!.key!.sealed.data = '';
  const [c] = await port.credentials();
  c!.certificate.fill(1);
  c!.current = false;
  (await port.crlState('issuing'))!.published!.der.fill(1);
  (await port.links('links'))[0]!.usesLeft = 42;
  (await port.revocations())[0]!.kind = 'retired';

  t.is((await port.records())[0]?.user, 'alice@example.com');
  t.is((await port.records())[0]?.revoked?.reason, 'superseded');
  t.deepEqual((await port.certificate(rec.serial))?.der, Buffer.from('certificate bytes'));
  t.not((await port.certificate(rec.serial))?.key?.sealed.data, '');
  t.deepEqual((await port.credentials())[0]?.certificate, Buffer.from('credential bytes'));
  t.true((await port.credentials())[0]?.current);
  t.deepEqual((await port.crlState('issuing'))?.published?.der, Buffer.from('crl bytes'));
  t.is((await port.links('links'))[0]?.usesLeft, 1);
  t.is((await port.revocations())[0]?.kind, 'revoked');
});

test('memory port: transactions run one at a time, in the order begun', async (t) => {
  const port = new MemoryPort();
  const events: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const first = port.transaction(async (tx) => {
    events.push('first begins');
    await held;
    await tx.putCrlState('issuing', { number: 1 });
    events.push('first ends');
  });
  const second = port.transaction(async (tx) => {
    events.push('second begins');
    t.deepEqual(await tx.crlState('issuing'), { number: 1 }, 'it sees what the first committed');
  });
  const third = port.reopen().transaction(async () => void events.push('third begins'));
  for (let i = 0; i < 10; i++) await turn();
  t.deepEqual(events, ['first begins']);
  release();
  await Promise.all([first, second, third]);
  t.deepEqual(events, ['first begins', 'first ends', 'second begins', 'third begins']);
});

test('memory port: a transaction that failed does not hold up the next', async (t) => {
  const port = new MemoryPort();
  await t.throwsAsync(port.transaction(() => Promise.reject(new Error('no'))), { message: 'no' });
  await port.transaction((tx) => tx.putCrlState('root', { number: 1 }));
  t.is((await port.crlState('root'))?.number, 1);
});

test('memory port: a transaction object used after its transaction ended writes nothing', async (t) => {
  const port = new MemoryPort();
  let kept: PortTransaction | undefined;
  await port.transaction(async (tx) => {
    kept = tx;
  });
  await t.throwsAsync(kept!.putCrlState('issuing', { number: 1 }), { message: /ended/ });
  t.is(await port.crlState('issuing'), undefined);
});

test('memory port: a Sealer that throws fails the call, and the transaction writes nothing', async (t) => {
  const port = new MemoryPort();
  await t.throwsAsync(
    port.transaction(async (tx) => {
      await tx.putCrlState('issuing', { number: 1 });
      await tx.addCertificate(record('0abc02'), Buffer.from('x'), () => {
        throw new Error('sealing failed');
      });
    }),
    { message: 'sealing failed' },
  );
  t.deepEqual(await port.records(), []);
  t.is(await port.crlState('issuing'), undefined);
});

test('memory port: the cache is dropped by a rekey that commits, not by one that throws', async (t) => {
  const port = new MemoryPort();
  const key = randomBytes(32);
  const box: SealingBox = { generation: 1, seal: (p, aad) => sealBytes(key, p, aad), open: (b, aad) => unsealBytes(key, b, aad) };
  const rec = record('0abc03');
  const built = { password: 'pw', pkcs12: Buffer.from('p12') };
  await port.cache.put(rec, built, box);
  const settings = { organization: 'Example Corp', created: NOW.toISOString(), kdf: { alg: 'scrypt' as const, N: 1024, r: 8, p: 1, salt: '' }, check: seal(key, Buffer.from('c'), 'c'), keyGeneration: 2 };
  await t.throwsAsync(
    port.transaction(async (tx) => {
      await tx.rekey((k) => k.sealed, settings);
      throw new Error('abandoned');
    }),
  );
  t.deepEqual(await port.cache.get(rec, box), built);
  t.deepEqual(await port.reopen().cache.get(rec, box), built, 'instances over the same memory share the cache');
  t.is(await port.transaction((tx) => tx.rekey((k) => k.sealed, settings)), 0);
  t.is(await port.cache.get(rec, box), undefined);
});

test('memory port: records keep no revocation or amendment of their own', async (t) => {
  const port = new MemoryPort();
  const rec = { ...record('0abc04'), revoked: { date: NOW.toISOString(), reason: 'keyCompromise' }, alsoPurpose: 'smime-encryption' as const };
  await port.transaction((tx) => tx.addCertificate(rec, Buffer.from('x')));
  t.deepEqual(await port.records(), [record('0abc04')]);
});
