/**
 * `migratePort`: a store copied between any two ports (file, PostgreSQL, memory), generic over
 * the port. The ends are checked by the code as it was before the port (today's FileStore and
 * PostgresStore open what the ports wrote, and `store check` finds nothing wrong), and by
 * openssl (the copied CA still signs CRLs whose numbers go on increasing).
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkStore } from '../../src/store/check.js';
import { CaStore } from '../../src/store/ca/ca-store.js';
import { initializeCa } from '../../src/store/ca/init.js';
import { migratePort } from '../../src/store/ca/migrate.js';
import { openFilePort } from '../../src/store/file/port/file-port.js';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { MemoryPort } from '../../src/store/memory/port.js';
import { openPostgresStore } from '../../src/store/postgres/init.js';
import { openPostgresPort } from '../../src/store/postgres/port/postgres-port.js';
import type { StoragePort } from '../../src/store/port/port.js';
import type { LifecycleStore } from '../../src/store/store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { postgres } from '../helpers/postgres.js';
import { need, tmp } from '../helpers/tools.js';

const NOW = new Date('2026-12-08T12:00:00Z');
const now = () => NOW;
const pgServer = await postgres();

/** A store with some of everything: two users, a revocation, a retirement, a CRL, a link and a challenge. */
async function populate(store: LifecycleStore & { createCrl(o?: object): Promise<Buffer>; challenges?: { create(u: string): Promise<unknown> } }) {
  for (const user of ['alice@example.com', 'bob@example.com']) {
    for (const purpose of ['smime-signing', 'smime-encryption'] as const) await store.issueCertificate({ user, name: user.split('@')[0]!, purpose });
  }
  const bob = await store.listCertificates({ user: 'bob@example.com', purpose: 'smime-encryption' });
  await store.revokeCertificate(bob[0]!.serial, 'keyCompromise');
  await store.createCrl();
  await store.links.create('alice@example.com');
  await store.challenges?.create('bob@example.com');
}

/** What two stores should agree on after a migration. */
async function facts(store: LifecycleStore & { challenges?: { list(): Promise<unknown[]> } }) {
  const records = await store.listCertificates();
  return {
    records,
    chain: await store.trustChain(),
    links: (await store.links.list()).map((l) => l.id),
    challenges: ((await store.challenges?.list()) ?? []).length,
  };
}

/** The CRL number openssl reads from a CRL. */
function crlNumber(t: ExecutionContext, der: Buffer): number {
  const path = join(tmp(t), 'x.crl');
  writeFileSync(path, der);
  const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-in', path, '-noout', '-crlnumber'], { encoding: 'utf8' });
  return parseInt(/crlNumber=(?:0x)?([0-9A-Fa-f]+)/.exec(text)![1]!, 16);
}

test('file store (made by today\'s initStore) → PostgreSQL port → file port: today\'s stores open both ends, store check is clean, the CRL number goes on', async (t) => {
  if ('missing' in pgServer) return t.log(`skipped: ${pgServer.missing}`), t.pass();
  if (!need(t, 'openssl')) return;
  const dir = join(tmp(t), 'from');
  const from = await initStore(dir, { organization: 'Migrate Corp', passphrase: PASSPHRASE, kdfCost: 14, now });
  await populate(from);
  const before = await facts(from);
  const lastCrl = crlNumber(t, await from.createCrl());

  const url = await pgServer.createDatabase();
  const pgPort = await openPostgresPort(url, { create: true });
  t.teardown(() => pgPort.close());
  const moved = await migratePort(await openFilePort(dir), pgPort, { passphrase: PASSPHRASE });
  t.is(moved.certificates, 4);
  t.true(moved.keys >= 4 + 3, 'every key travelled');

  const pg = await openPostgresStore(url, { passphrase: PASSPHRASE, now });
  t.teardown(() => pg.close());
  t.deepEqual(await facts(pg), before);
  t.deepEqual((await checkStore(pg)).filter((f) => f.severity === 'error'), []);
  t.true(crlNumber(t, await pg.createCrl()) > lastCrl, 'CRL numbers go on increasing after the move');
  const alice = (await pg.listCertificates({ user: 'alice@example.com' }))[0]!;
  t.truthy((await pg.getIdentity(alice.serial)).privateKey, 'keys open with the same passphrase');

  const back = join(tmp(t), 'back');
  await migratePort(pgPort, await openFilePort(back, { create: true }), { passphrase: PASSPHRASE });
  const file = await openStore(back, { passphrase: PASSPHRASE, now });
  t.deepEqual(await facts(file), before);
  t.deepEqual((await checkStore(file)).filter((f) => f.severity === 'error'), []);
});

test('file port → file port, and a target that holds a store is refused and left as it was', async (t) => {
  const dir = join(tmp(t), 'a');
  const from = await initStore(dir, { organization: 'Migrate Corp', passphrase: PASSPHRASE, kdfCost: 14, now });
  await populate(from);
  const target = join(tmp(t), 'b');
  await migratePort(await openFilePort(dir), await openFilePort(target, { create: true }), { passphrase: PASSPHRASE });
  const copy = await openStore(target, { passphrase: PASSPHRASE, now });
  t.deepEqual(await facts(copy), await facts(from));
  t.deepEqual((await checkStore(copy)).filter((f) => f.severity === 'error'), []);
  const again = await t.throwsAsync(migratePort(await openFilePort(dir), await openFilePort(target), { passphrase: PASSPHRASE }));
  t.is((again as { code?: string }).code, 'ERR_STORE_EXISTS');
  t.deepEqual(await facts(await openStore(target, { passphrase: PASSPHRASE, now })), await facts(from));
});

test('memory port → file port: keys are sealed again under the file layout\'s associated data, which needs the passphrase; without it nothing is written', async (t) => {
  const mem = new MemoryPort();
  await initializeCa(mem, { organization: 'Migrate Corp', passphrase: PASSPHRASE, kdfCost: 14, now });
  const source = await CaStore.open(mem, { passphrase: PASSPHRASE, now });
  await populate(source);
  const target = join(tmp(t), 'to');
  const port: StoragePort = await openFilePort(target, { create: true });
  const refused = await t.throwsAsync(migratePort(mem, port));
  t.is((refused as { code?: string }).code, 'ERR_KEY_PASSPHRASE');
  await t.throwsAsync(port.settings(), { code: 'ERR_STORE_NOT_INITIALIZED' }, 'the target is still empty');
  await migratePort(mem, port, { passphrase: PASSPHRASE });
  const file = await openStore(target, { passphrase: PASSPHRASE, now });
  t.deepEqual(await facts(file), await facts(source));
  t.deepEqual((await checkStore(file)).filter((f) => f.severity === 'error'), []);
  const alice = (await file.listCertificates({ user: 'alice@example.com' }))[0]!;
  t.truthy((await file.getIdentity(alice.serial)).privateKey);
});
