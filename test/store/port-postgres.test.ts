/**
 * The PostgreSQL storage port (src/store/postgres/port/) over today's schema: a database made by
 * today's PostgreSQL store reads through the port, one written through the port opens with
 * today's `openPostgresStore`, and the port's own guarantees (a transaction excludes every other,
 * commits all or nothing; a duplicate refuses without aborting; a new passphrase reseals every
 * key). Then the port contract suite, when test/helpers/port-contract.ts exists. Against a
 * throwaway PostgreSQL cluster; skipped, saying why, where there is none.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { createCertificateAuthority } from '../../src/certs/ca.js';
import { issueCertificate, type Identity } from '../../src/certs/issue.js';
import { normalizeSerial } from '../../src/certs/pem.js';
import { certificateBasics } from '../../src/certs/x509.js';
import { newRecord } from '../../src/store/issuance.js';
import type { SealingBox, StoreSettings } from '../../src/store/port/port.js';
import { initPostgresStore, openPostgresStore } from '../../src/store/postgres/init.js';
import { openPostgresPort, type PostgresPort } from '../../src/store/postgres/port/postgres-port.js';
const exportKey = (k: import('node:crypto').KeyObject) => k.export({ format: 'der', type: 'pkcs8' });
import { deriveKey, newKdfParams, seal, sealBytes, unseal, unsealBytes } from '../../src/store/secret-box.js';
import { sealCheck } from '../../src/store/settings.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres, type PgServer } from '../helpers/postgres.js';

const server = await postgres();
/** The port contract suite, another worker's, when it is there; imported before any test is declared (ava wants them all declared at once). */
const contractPath = fileURLToPath(new URL('../helpers/port-contract.ts', import.meta.url));
const contract = existsSync(contractPath)
  ? ((await import(pathToFileURL(contractPath).href)) as {
      portContract: (name: string, factory: (t: ExecutionContext) => Promise<{ port: PostgresPort; reopen?: () => Promise<PostgresPort> }>) => void;
    })
  : undefined;
const code = (e: unknown) => (e as { code?: string } | undefined)?.code;
const serialOf = (der: Buffer) => normalizeSerial(certificateBasics(der).serial);

/** Opens a port on `url`, closed when the test ends. */
async function port(t: ExecutionContext, url: string, create = false): Promise<PostgresPort> {
  const p = await openPostgresPort(url, { create });
  t.teardown(() => p.close());
  return p;
}

/** Settings, root/issuing/signer and one user certificate, written through a port as the CA would. */
async function writeStore(p: PostgresPort): Promise<{ key: Buffer; settings: StoreSettings; serial: string; ca: { root: Identity; intermediate: Identity; signer: Identity } }> {
  const kdf = newKdfParams(14);
  const key = await deriveKey(PASSPHRASE, kdf);
  const settings: StoreSettings = { organization: 'Port Corp', created: new Date('2030-01-01T00:00:00Z').toISOString(), kdf, check: sealCheck(key), keyGeneration: 1 };
  const ca = await createCertificateAuthority({ organization: 'Port Corp' });
  const sealer = (id: Identity) => (aad: string) => seal(key, exportKey(id.privateKey), aad);
  const user = await issueCertificate(ca.intermediate, { purpose: 'smime-signing', email: 'alice@example.com', name: 'Alice' });
  const record = await newRecord(user.certificate, { user: 'alice@example.com', purpose: 'smime-signing', source: 'issued', chain: [], now: new Date() });
  await p.transaction(async (tx) => {
    await tx.putSettings(settings);
    await tx.putCredential({ serial: serialOf(ca.root.certificate), role: 'root', current: true, certificate: ca.root.certificate }, sealer(ca.root));
    await tx.putCredential({ serial: serialOf(ca.intermediate.certificate), role: 'issuing', ca: 'root', generation: 1, current: true, certificate: ca.intermediate.certificate }, sealer(ca.intermediate));
    await tx.putCredential({ serial: serialOf(ca.signer.certificate), role: 'signer', ca: 'issuing', current: true, certificate: ca.signer.certificate }, sealer(ca.signer));
    await tx.addCertificate(record, user.certificate, sealer(user));
  });
  return { key, settings, serial: record.serial, ca };
}

if (hasPostgres(server, 'PostgreSQL port tests')) {
  const pgServer: PgServer = server;

  test('a database made by today\'s store reads through the port: settings, credentials, records with revocations, CRL state', async (t) => {
    const url = await pgServer.createDatabase();
    const store = await initPostgresStore(url, { organization: 'Today Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    t.teardown(() => store.close());
    const issued = await store.issueCertificate({ user: 'Bob@example.com', name: 'Bob', purpose: 'smime-signing' });
    await store.revokeCertificate(issued.serial, 'keyCompromise');
    // The CRL a PKI server publishes (createCrl hands one out without keeping it, on every backend).
    const crl = await store.publishedCrl(1);
    const key = await deriveKey(PASSPHRASE, store.meta.kdf);

    const p = await port(t, url);
    t.deepEqual(await p.settings(), store.meta);
    const creds = await p.credentials();
    t.deepEqual(creds.map((c) => [c.role, c.ca, c.generation, c.current, c.key?.aad]), [
      ['root', undefined, undefined, true, 'ca/root.key'],
      ['issuing', 'root', 1, true, 'ca/intermediate.key'],
      ['signer', 'issuing', undefined, true, 'signer/key'],
    ]);
    for (const c of creds) t.truthy(unseal(key, c.key!.sealed, c.key!.aad), `the ${c.role} key opens with its stored associated data`);
    const [record] = await p.records();
    t.is(record?.serial, issued.serial);
    t.is(record?.revoked?.reason, 'keyCompromise');
    t.deepEqual((await p.records({ user: 'BOB@example.com' })).map((r) => r.serial), [issued.serial]);
    t.deepEqual((await p.records({ prefix: issued.fingerprint.slice(0, 8) })).map((r) => r.serial), [issued.serial]);
    const stored = await p.certificate(issued.serial);
    t.is(stored?.key?.aad, `certs/${issued.serial}/key`);
    t.truthy(unseal(key, stored!.key!.sealed, stored!.key!.aad));
    t.deepEqual((await p.revocations()).map((r) => [r.serial, r.kind, r.reason, r.ca]), [[issued.serial, 'revoked', 'keyCompromise', 'issuing']]);
    const state = await p.crlState('issuing');
    t.true((state?.number ?? 0) > 0);
    t.deepEqual(state?.published?.der, crl);
    t.is(await p.crlState('root'), undefined);
    // A key written again keeps the row's own associated data (init's `signer/key`), so today's store still opens it.
    const signer = creds.find((c) => c.role === 'signer')!;
    const aads: string[] = [];
    await p.transaction((tx) => tx.putCredential(signer, (aad) => (aads.push(aad), seal(key, unseal(key, signer.key!.sealed, signer.key!.aad)!, aad))));
    t.deepEqual(aads, ['signer/key']);
    t.truthy(await store.profileSigner());
  });

  test('a database written through the port opens with today\'s openPostgresStore: identities, listing, the signer, the PKCS#12 cache', async (t) => {
    const url = await pgServer.createDatabase();
    const p = await port(t, url, true);
    const { key, serial, ca } = await writeStore(p);
    const box: SealingBox = { generation: 1, seal: (b, aad) => sealBytes(key, b, aad), open: (b, aad) => unsealBytes(key, b, aad) };
    const [record] = await p.records({ serial });
    await p.cache.put(record!, { password: 'pw', pkcs12: Buffer.from('p12') }, box);
    t.deepEqual(await p.cache.get(record!, box), { password: 'pw', pkcs12: Buffer.from('p12') });
    t.is(await p.cache.get(record!, { ...box, generation: 2 }), undefined, 'another key generation misses');

    const store = await openPostgresStore(url, { passphrase: PASSPHRASE });
    t.teardown(() => store.close());
    t.deepEqual((await store.listCertificates()).map((r) => r.serial), [serial]);
    const identity = await store.getIdentity(serial);
    t.truthy(identity.privateKey);
    t.deepEqual((await store.issuerIdentity()).certificate, ca.intermediate.certificate);
    t.truthy(await store.profileSigner());
    t.deepEqual(await store.cachedPkcs12(serial, () => t.fail('built again') as never), { password: 'pw', pkcs12: Buffer.from('p12') });
    // And today's store writes on it: a certificate issued from the port's issuing CA.
    const next = await store.issueCertificate({ user: 'carol@example.com', name: 'Carol', purpose: 'smime-encryption' });
    t.deepEqual((await p.records()).map((r) => r.serial).sort(), [serial, next.serial].sort());
  });

  test('a transaction commits all or nothing; the caller\'s error comes out as thrown; a duplicate refuses without aborting it', async (t) => {
    const url = await pgServer.createDatabase();
    const p = await port(t, url, true);
    const { serial } = await writeStore(p);
    const [record] = await p.records({ serial });
    const boom = new Error('boom');
    const err = await t.throwsAsync(p.transaction(async (tx) => {
      await tx.putRevocation({ serial, date: new Date().toISOString(), reason: 'unspecified', kind: 'revoked' });
      throw boom;
    }));
    t.is(err, boom);
    t.deepEqual(await p.revocations(), []);
    const stored = await p.certificate(serial);
    await p.transaction(async (tx) => {
      const dup = await t.throwsAsync(tx.addCertificate(record!, stored!.der));
      t.is(code(dup), 'ERR_CERT_INVALID');
      t.is((dup as { reason?: string }).reason, 'duplicate');
      await tx.putRevocation({ serial, date: '2031-01-01T00:00:00.000Z', reason: 'retired', kind: 'retired' });
      await tx.amend({ serial, date: '2031-01-01T00:00:00.000Z', alsoPurpose: 'smime-encryption', chain: ['ab'.repeat(32)] });
      await tx.putCrlState('root', { number: 7 });
      await tx.putLinks('challenges', [{ id: 'abc', tokenHash: 'ff'.repeat(32), user: 'alice@example.com', created: '2031-01-01T00:00:00.000Z', expires: '2031-01-02T00:00:00.000Z', usesLeft: 1 }]);
    });
    const [after] = await p.records({ serial });
    t.deepEqual([after?.retired?.date, after?.alsoPurpose, after?.addedChain], ['2031-01-01T00:00:00.000Z', 'smime-encryption', ['ab'.repeat(32)]]);
    t.deepEqual(await p.revocations(), [{ serial, date: '2031-01-01T00:00:00.000Z', reason: 'retired', kind: 'retired' }]);
    t.deepEqual(await p.crlState('root'), { number: 7 });
    t.deepEqual((await p.links('challenges', 'ff'.repeat(32))).map((l) => l.id), ['abc']);
    t.deepEqual(await p.links('links'), []);
    await p.transaction((tx) => tx.putLinks('challenges', [], ['abc']));
    t.deepEqual(await p.links('challenges'), []);
  });

  test('two ports\' transactions exclude each other: the second waits on the lock until the first commits', async (t) => {
    const url = await pgServer.createDatabase();
    const a = await port(t, url, true);
    await writeStore(a);
    const b = await port(t, url);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const inA = new Promise<void>((resolve) => (entered = resolve));
    const first = a.transaction(async (tx) => {
      entered();
      await gate;
      await tx.putCrlState('issuing', { number: 1 });
    });
    await inA;
    const second = b.transaction(async (tx) => (await tx.crlState('issuing'))?.number);
    // Wait until the second one's session is blocked on the advisory lock (no clock: the server says so).
    const watch = new pg.Client({ connectionString: url });
    await watch.connect();
    try {
      while (Number((await watch.query(`SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)).rows[0].n) === 0);
    } finally {
      await watch.end();
    }
    release();
    await first;
    t.is(await second, 1, 'the second transaction ran after the first committed');
  });

  test('credentials: one current per role (and CA for responders), a key dropped, a serial held by another certificate refused', async (t) => {
    const url = await pgServer.createDatabase();
    const p = await port(t, url, true);
    const { key, ca } = await writeStore(p);
    const signer1 = serialOf(ca.signer.certificate);
    const other = await createCertificateAuthority({ organization: 'Port Corp' });
    const s2 = serialOf(other.signer.certificate);
    const sealer = (id: Identity) => (aad: string) => seal(key, exportKey(id.privateKey), aad);
    await p.transaction(async (tx) => {
      await tx.putCredential({ serial: s2, role: 'signer', ca: 'issuing', current: true, certificate: other.signer.certificate }, sealer(other.signer));
      await tx.putCredential({ serial: signer1, role: 'signer', ca: 'issuing', current: false, certificate: ca.signer.certificate }, null);
      await tx.putCredential({ serial: 'r1', role: 'responder', ca: 'issuing', current: true, certificate: other.root.certificate }, sealer(other.root));
      await tx.putCredential({ serial: 'r2', role: 'responder', ca: 'root', current: true, certificate: other.intermediate.certificate }, undefined);
    });
    const by = new Map((await p.credentials()).map((c) => [c.serial, c]));
    t.false(by.get(signer1)!.current);
    t.is(by.get(signer1)!.key, undefined);
    t.true(by.get(s2)!.current);
    t.is(by.get(s2)!.key?.aad, `signer/${s2}.key`);
    t.is(by.get('r1')!.key?.aad, 'ocsp/issuing-r1.key');
    t.true(by.get('r1')!.current && by.get('r2')!.current, 'responders of different CAs are both current');
    const dup = await t.throwsAsync(p.transaction((tx) => tx.putCredential({ serial: s2, role: 'signer', current: true, certificate: ca.root.certificate }, undefined)));
    t.is(code(dup), 'ERR_CERT_INVALID');
  });

  test('rekey reseals every key with its own associated data and empties the PKCS#12 cache; today\'s store opens with the new passphrase', async (t) => {
    const url = await pgServer.createDatabase();
    const p = await port(t, url, true);
    const { key, settings, serial } = await writeStore(p);
    const [record] = await p.records({ serial });
    const box: SealingBox = { generation: 1, seal: (b, aad) => sealBytes(key, b, aad), open: (b, aad) => unsealBytes(key, b, aad) };
    await p.cache.put(record!, { password: 'pw', pkcs12: Buffer.from('p12') }, box);
    const kdf = newKdfParams(14);
    const newKey = await deriveKey('a new passphrase for the port', kdf);
    const count = await p.transaction((tx) =>
      tx.rekey((k) => seal(newKey, unseal(key, k.sealed, k.aad)!, k.aad), { ...settings, kdf, check: sealCheck(newKey), keyGeneration: 2 }),
    );
    t.is(count, 4);
    t.is((await p.settings()).keyGeneration, 2);
    t.is(await p.cache.get(record!, box), undefined);
    const store = await openPostgresStore(url, { passphrase: 'a new passphrase for the port' });
    t.teardown(() => store.close());
    t.truthy((await store.getIdentity(serial)).privateKey);
    t.truthy(await store.profileSigner());
  });

  test('opening: an empty database is not initialized without create, and without settings after it; a newer schema is refused', async (t) => {
    const url = await pgServer.createDatabase();
    t.is(code(await t.throwsAsync(openPostgresPort(url))), 'ERR_STORE_NOT_INITIALIZED');
    const p = await port(t, url, true);
    t.is(code(await t.throwsAsync(p.settings())), 'ERR_STORE_NOT_INITIALIZED');
    t.deepEqual(await p.records(), []);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('UPDATE profilesmith_schema SET version = 99');
    await c.end();
    t.regex((await t.throwsAsync(openPostgresPort(url)))?.message ?? '', /schema version 99/);
  });

  // The port contract suite (test/helpers/port-contract.ts): a new database per test; `reopen`, a second port (another pool) on it.
  if (contract) {
    contract.portContract('postgres', async (t) => {
      const url = await pgServer.createDatabase();
      const p = await port(t, url, true);
      return { port: p, reopen: () => port(t, url) };
    });
  } else {
    test('postgres: the port contract suite is skipped (test/helpers/port-contract.ts is not there)', (t) => {
      t.log('skipped: test/helpers/port-contract.ts does not exist');
      t.pass();
    });
  }
}
