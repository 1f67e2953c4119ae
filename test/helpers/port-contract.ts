/**
 * The storage port contract: what src/store/port/port.ts promises, tested through the
 * interface only, so that every backend (memory, file, PostgreSQL, SQLite, a vendor's) runs the
 * same suite from its own test file:
 *
 *     portContract('file', async (t) => { const dir = tmp(t); return { port: await openFilePort(dir), reopen: () => openFilePort(dir) } })
 *
 * The factory gives a new, empty store for each test (and registers its own teardown); `reopen`,
 * when given, opens a second instance of that same store (another process, another node), which
 * the concurrency tests race against the first. Real certificates (one EC CA per test file, RSA
 * user certificates), a random store key, and a fixed clock: no wall-clock time, no timing.
 */
import test, { type ExecutionContext } from 'ava';
import { randomBytes, X509Certificate } from 'node:crypto';
import { createCertificateAuthority, createIssuingCa, createOcspResponder, createProfileSigner, createScepRa, type CertificateAuthority } from '../../src/certs/ca.js';
import { issueCertificate, type CertificatePurpose, type Identity } from '../../src/certs/issue.js';
import { generateKeyPair } from '../../src/certs/keys.js';
import { fingerprint, normalizeSerial } from '../../src/certs/pem.js';
import { StoreIOError } from '../../src/errors.js';
import { newLink, type LinkRecord } from '../../src/server/links.js';
import { newRecord } from '../../src/store/issuance.js';
import type { Credential, CredentialRole, PortReads, PortTransaction, Revocation, SealedKey, Sealer, SealingBox, StoragePort, StoreSettings } from '../../src/store/port/port.js';
import { seal, sealBytes, unseal, unsealBytes } from '../../src/store/secret-box.js';
import { sealCheck } from '../../src/store/settings.js';
import type { CertificateRecord } from '../../src/store/store.js';

/** What a backend's test file gives {@link portContract} for each test: a new, empty store, and optionally a second instance of it. */
export type PortFactory = (t: ExecutionContext) => Promise<{ port: StoragePort; reopen?: () => Promise<StoragePort> }>;

/** The fixed clock of the suite. */
const NOW = new Date('2026-12-08T12:00:00Z');
const at = (days: number) => new Date(NOW.getTime() + days * 86_400_000);
const ORG = 'Port Contract Corp';
const CAS = ['root', 'issuing', 'issuing-2'] as const;

/** A user certificate of the fixture: its record, DER and the key bytes sealed for it. */
interface User {
  record: CertificateRecord;
  der: Buffer;
  key: Buffer;
}

/** A credential of the fixture: what putCredential takes, and the key bytes sealed for it. */
interface Cred {
  credential: Omit<Credential, 'key'>;
  key: Buffer;
}

/** One CA and its certificates per test file, made once. */
interface Fixture {
  storeKey: Buffer;
  ca: CertificateAuthority;
  /** alice (2, address in mixed case), bob, carol, dave, erin (imported, with a chain): oldest first. */
  users: User[];
  creds: {
    root: Cred;
    issuing1: Cred;
    issuing2: Cred;
    signer1: Cred;
    signer2: Cred;
    responder1: Cred;
    responder2: Cred;
    responderB: Cred;
    ra1: Cred;
    ra2: Cred;
    raB: Cred;
  };
}

const pkcs8 = (id: Identity) => id.privateKey.export({ type: 'pkcs8', format: 'der' });
const serialOf = (der: Buffer) => normalizeSerial(new X509Certificate(der).serialNumber);

async function makeFixture(): Promise<Fixture> {
  const now = () => NOW;
  const ca = await createCertificateAuthority({ organization: ORG, keyAlgorithm: 'ec-p256', now });
  const opts = { organization: ORG, keyAlgorithm: 'ec-p256' as const, now };
  const issuing2 = await createIssuingCa(ca.root, 2, opts);
  const ec = () => generateKeyPair('ec-p256');
  const [signer2, responder1, responder2, responderB, ra1, ra2, raB] = await Promise.all([
    createProfileSigner(ca.intermediate, 1, opts),
    createOcspResponder(ca.intermediate, 1, opts),
    createOcspResponder(ca.intermediate, 1, opts),
    createOcspResponder(issuing2, 2, opts),
    ec().then((key) => createScepRa(ca.intermediate, 1, { ...opts, key })),
    ec().then((key) => createScepRa(ca.intermediate, 1, { ...opts, key })),
    ec().then((key) => createScepRa(issuing2, 2, { ...opts, key })),
  ]);
  const cred = (id: Identity, role: CredentialRole, more: { ca?: string; generation?: number }): Cred => ({
    credential: { serial: serialOf(id.certificate), role, ...more, current: false, certificate: id.certificate },
    key: pkcs8(id),
  });
  const people: [string, CertificatePurpose, number][] = [
    ['Alice@Example.com', 'smime-signing', -40],
    ['Alice@Example.com', 'smime-encryption', -30],
    ['bob@example.com', 'smime-signing', -20],
    ['carol@example.com', 'smime-encryption', -10],
    ['dave@example.com', 'smime-signing', -5],
    ['erin@example.com', 'smime-encryption', -1],
  ];
  const users = await Promise.all(
    people.map(async ([email, purpose, days], i) => {
      const { privateKey } = await generateKeyPair('rsa-2048');
      const id = await issueCertificate(ca.intermediate, { purpose, email, name: email.split('@')[0]!, privateKey, now: () => at(days) });
      const imported = i === people.length - 1;
      const chain = imported ? [ca.intermediate.certificate, ca.root.certificate] : [];
      const record = await newRecord(id.certificate, { user: email, purpose, source: imported ? 'imported' : 'issued', chain, now: at(days) });
      return { record, der: id.certificate, key: pkcs8(id) };
    }),
  );
  return {
    storeKey: randomBytes(32),
    ca,
    users,
    creds: {
      root: cred(ca.root, 'root', {}),
      issuing1: cred(ca.intermediate, 'issuing', { ca: 'root', generation: 1 }),
      issuing2: cred(issuing2, 'issuing', { ca: 'root', generation: 2 }),
      signer1: cred(ca.signer, 'signer', { ca: 'issuing' }),
      signer2: cred(signer2, 'signer', { ca: 'issuing' }),
      responder1: cred(responder1, 'responder', { ca: 'issuing' }),
      responder2: cred(responder2, 'responder', { ca: 'issuing' }),
      responderB: cred(responderB, 'responder', { ca: 'issuing-2' }),
      ra1: cred(ra1, 'scep-ra', { ca: 'issuing' }),
      ra2: cred(ra2, 'scep-ra', { ca: 'issuing' }),
      raB: cred(raB, 'scep-ra', { ca: 'issuing-2' }),
    },
  };
}

let fixturePromise: Promise<Fixture> | undefined;
/** The fixture of this test file, made on first use. */
const fixture = () => (fixturePromise ??= makeFixture());

/** Settings sealed under `key`, with every optional setting that round-trips. */
function settingsFor(key: Buffer, keyGeneration = 1): StoreSettings {
  return {
    organization: ORG,
    created: NOW.toISOString(),
    kdf: { alg: 'scrypt', N: 2 ** 14, r: 8, p: 1, salt: 'cG9ydC1jb250cmFjdC1zYWx0' },
    check: sealCheck(key),
    keyGeneration,
    keyAlgorithm: 'ec-p256',
    pkiUrl: 'https://pki.example.com',
    scepUrl: 'https://pki.example.com/scep',
    permittedEmailDomains: ['example.com'],
  };
}

/** A Sealer of `plain` under `key`, noting each AAD it was called with in `seen`. */
const sealerOf = (key: Buffer, plain: Buffer, seen: string[] = []): Sealer => (aad) => (seen.push(aad), seal(key, plain, aad));

/** The SealingBox a CA would give a cache. */
const boxOf = (key: Buffer, generation: number): SealingBox => ({
  generation,
  seal: (plain, aad) => sealBytes(key, plain, aad),
  open: (sealed, aad) => unsealBytes(key, sealed, aad),
});

const opens = (key: Buffer, sealed: SealedKey | undefined) => (sealed ? unseal(key, sealed.sealed, sealed.aad) : undefined);

/** Every thing a port holds that the suite writes, as a plain value to compare before and after. */
async function dump(port: PortReads, fx: Fixture): Promise<unknown> {
  const fingerprints = [fx.ca.root.certificate, fx.ca.intermediate.certificate].map((d) => fingerprint(d));
  const bySerial = <T extends { serial: string }>(xs: T[]) => [...xs].sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  return {
    settings: await port.settings().then(
      (s) => s,
      (err: { code?: string }) => ({ error: err.code }),
    ),
    records: await port.records(),
    certificates: await Promise.all(fx.users.map((u) => port.certificate(u.record.serial))),
    credentials: bySerial(await port.credentials()),
    chains: [...(await port.chains(fingerprints))].sort(([a], [b]) => (a < b ? -1 : 1)),
    revocations: bySerial(await port.revocations()),
    crl: await Promise.all(CAS.map((ca) => port.crlState(ca))),
    links: await port.links('links'),
    challenges: await port.links('challenges'),
  };
}

/**
 * `target` with its `n`th method call (counting from 1) failing as a storage fault would
 * (ERR_STORE_IO), without reaching the target; the calls before and after go through.
 * @example
 * await port.transaction(async (tx) => { const ftx = failingOnCall(tx, 3); await ftx.putSettings(s); ... })
 */
export function failingOnCall<T extends object>(target: T, n: number): T {
  let calls = 0;
  return new Proxy(target, {
    get(t, prop) {
      const v = Reflect.get(t, prop, t) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => (++calls === n ? Promise.reject(new StoreIOError('port contract', String(prop), `Injected fault on call ${n} (${String(prop)})`)) : v.apply(t, args));
    },
  });
}

/** Lets other tasks run: a port that reads, yields and writes without excluding others loses updates here. */
const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Registers the port contract's tests, titled `port contract › <name>: ...`, against the
 * stores `factory` makes (a new, empty one for each test).
 */
export function portContract(name: string, factory: PortFactory): void {
  const title = (what: string) => `port contract › ${name}: ${what}`;

  /** A new store of the factory's, its settings put (unless `bare`), and the fixture. */
  async function open(t: ExecutionContext, bare = false) {
    const fx = await fixture();
    const made = await factory(t);
    if (!bare) await made.port.transaction((tx) => tx.putSettings(settingsFor(fx.storeKey)));
    const second = async () => {
      if (!made.reopen) return made.port;
      const other = await made.reopen();
      t.teardown(() => other.close?.());
      return other;
    };
    return { fx, port: made.port, second };
  }

  /** Adds users (each in its own transaction, in the order given) with their keys. */
  async function addUsers(port: StoragePort, fx: Fixture, users: User[], withKey = true) {
    for (const u of users) await port.transaction((tx) => tx.addCertificate(u.record, u.der, withKey ? sealerOf(fx.storeKey, u.key) : undefined));
  }

  const put = (port: StoragePort, c: Cred, current: boolean, key: Buffer | null | undefined, storeKey: Buffer) =>
    port.transaction((tx) => tx.putCredential({ ...c.credential, current }, key ? sealerOf(storeKey, key) : key));

  test(title('settings: rejected before they are put, then round-trip and are replaced'), async (t) => {
    const { fx, port } = await open(t, true);
    await t.throwsAsync(port.settings(), { code: 'ERR_STORE_NOT_INITIALIZED' });
    const s = settingsFor(fx.storeKey);
    await port.transaction((tx) => tx.putSettings(s));
    t.deepEqual(await port.settings(), s);
    const s2 = { ...s, keyGeneration: 2, signerChain: [fingerprint(fx.ca.root.certificate)] };
    await port.transaction((tx) => tx.putSettings(s2));
    t.deepEqual(await port.settings(), s2);
    t.deepEqual(await port.transaction((tx) => tx.settings()), s2);
  });

  test(title('certificates: records by query, oldest first; DER and sealed key'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, a2, bob, carol, dave, erin] = fx.users as [User, User, User, User, User, User];
    t.deepEqual(await port.records(), []);
    // Stored out of order: records come back oldest first all the same.
    const seen: string[] = [];
    await port.transaction(async (tx) => {
      await tx.addCertificate(dave.record, dave.der, sealerOf(fx.storeKey, dave.key, seen));
      await tx.addCertificate(a2.record, a2.der, sealerOf(fx.storeKey, a2.key));
    });
    await addUsers(port, fx, [erin, a1, bob]);
    await addUsers(port, fx, [carol], false);
    t.deepEqual(await port.records(), fx.users.map((u) => u.record));
    t.deepEqual(await port.records({}), fx.users.map((u) => u.record));
    t.deepEqual(await port.records({ user: 'alice@EXAMPLE.com' }), [a1.record, a2.record]);
    t.deepEqual(await port.records({ user: 'BOB@example.com' }), [bob.record]);
    t.deepEqual(await port.records({ user: 'nobody@example.com' }), []);
    t.deepEqual(await port.records({ serial: carol.record.serial }), [carol.record]);
    t.deepEqual(await port.records({ serial: 'abcdef0123456789' }), []);
    t.deepEqual(await port.records({ fingerprint: erin.record.fingerprint }), [erin.record]);
    t.deepEqual(await port.records({ prefix: bob.record.serial.slice(0, 10) }), [bob.record]);
    t.deepEqual(await port.records({ prefix: dave.record.fingerprint.slice(0, 10) }), [dave.record]);
    t.deepEqual(await port.records({ prefix: '0'.repeat(40) }), []);
    t.deepEqual(await port.transaction((tx) => tx.records({ user: 'ALICE@example.com' })), [a1.record, a2.record]);

    const stored = await port.certificate(dave.record.serial);
    t.true(Buffer.isBuffer(stored?.der));
    t.true(stored?.der.equals(dave.der));
    t.deepEqual(seen, [stored?.key?.aad], 'the key is kept with the AAD it was sealed with');
    t.true(opens(fx.storeKey, stored?.key)?.equals(dave.key));
    t.is(opens(randomBytes(32), stored?.key), undefined);
    t.true(opens(fx.storeKey, (await port.certificate(a1.record.serial))?.key)?.equals(a1.key));
    const keyless = await port.certificate(carol.record.serial);
    t.true(keyless?.der.equals(carol.der));
    t.is(keyless?.key, undefined);
    t.is(await port.certificate('abcdef0123456789'), undefined);
    t.deepEqual((await port.transaction((tx) => tx.certificate(bob.record.serial)))?.der, bob.der);
  });

  test(title('a serial held already is refused (ERR_CERT_INVALID), and nothing else of that transaction is written'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, , bob] = fx.users as [User, User, User];
    await addUsers(port, fx, [a1]);
    const before = await dump(port, fx);
    const { link } = newLink('alice@example.com', {}, NOW);
    await t.throwsAsync(
      port.transaction(async (tx) => {
        await tx.putCrlState('issuing', { number: 7 });
        await tx.putLinks('links', [link]);
        await tx.addCertificate(bob.record, bob.der, sealerOf(fx.storeKey, bob.key));
        await tx.addCertificate(a1.record, a1.der, sealerOf(fx.storeKey, a1.key));
      }),
      { code: 'ERR_CERT_INVALID' },
    );
    t.deepEqual(await dump(port, fx), before);
    // Twice in one transaction.
    await t.throwsAsync(
      port.transaction(async (tx) => {
        await tx.addCertificate(bob.record, bob.der);
        await tx.addCertificate(bob.record, bob.der);
      }),
      { code: 'ERR_CERT_INVALID' },
    );
    t.deepEqual(await dump(port, fx), before);
  });

  test(title('amendments show on records; chains by fingerprint'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, , bob, , , erin] = fx.users as [User, User, User, User, User, User];
    await addUsers(port, fx, [a1, bob, erin]);
    const [fpInt, fpRoot] = [fingerprint(fx.ca.intermediate.certificate), fingerprint(fx.ca.root.certificate)];
    await port.transaction((tx) => tx.amend({ serial: a1.record.serial, date: NOW.toISOString(), alsoPurpose: 'smime-encryption' }));
    await port.transaction((tx) => tx.amend({ serial: bob.record.serial, date: NOW.toISOString(), chain: [fpInt] }));
    t.deepEqual(await port.records({ serial: a1.record.serial }), [{ ...a1.record, alsoPurpose: 'smime-encryption' }]);
    t.deepEqual(await port.records({ serial: bob.record.serial }), [{ ...bob.record, addedChain: [fpInt] }]);
    t.deepEqual(await port.records({ serial: erin.record.serial }), [erin.record]);
    // Replaced, not merged.
    await port.transaction((tx) => tx.amend({ serial: bob.record.serial, date: NOW.toISOString(), alsoPurpose: 'smime-encryption', chain: [fpInt, fpRoot] }));
    t.deepEqual(await port.records({ user: 'bob@example.com' }), [{ ...bob.record, alsoPurpose: 'smime-encryption', addedChain: [fpInt, fpRoot] }]);

    const unknown = 'ab'.repeat(32);
    t.deepEqual(await port.chains([fpInt, fpRoot]), new Map());
    await port.transaction((tx) => tx.putChains([fx.ca.intermediate.certificate, fx.ca.root.certificate]));
    await port.transaction((tx) => tx.putChains([fx.ca.intermediate.certificate]));
    const chains = await port.chains([fpInt, unknown, fpRoot]);
    t.deepEqual([...chains.keys()].sort(), [fpInt, fpRoot].sort());
    t.true(Buffer.isBuffer(chains.get(fpInt)));
    t.true(chains.get(fpInt)?.equals(fx.ca.intermediate.certificate));
    t.true(chains.get(fpRoot)?.equals(fx.ca.root.certificate));
    t.deepEqual(await port.chains([]), new Map());
  });

  test(title('credentials: one current per role (and per CA for responders and RAs); keys kept, dropped'), async (t) => {
    const { fx, port } = await open(t);
    const c = fx.creds;
    const k = fx.storeKey;
    const currents = async () => new Map((await port.credentials()).map((x) => [x.serial, x.current]));
    await put(port, c.root, true, c.root.key, k);
    await put(port, c.issuing1, true, c.issuing1.key, k);
    await put(port, c.signer1, true, c.signer1.key, k);
    await put(port, c.responder1, true, c.responder1.key, k);
    await put(port, c.responderB, true, c.responderB.key, k);
    await put(port, c.ra1, true, c.ra1.key, k);
    await put(port, c.raB, true, c.raB.key, k);
    const all = await port.credentials();
    t.is(all.length, 7);
    for (const x of all) {
      const want = Object.values(c).find((y) => y.credential.serial === x.serial)!;
      const { key, ...rest } = x;
      t.deepEqual(rest, { ...want.credential, current: true });
      t.true(Buffer.isBuffer(x.certificate));
      t.true(opens(k, key)?.equals(want.key));
    }
    // A new issuing generation, a new signer, a new responder and RA of `issuing`: the old ones are not current.
    await put(port, c.issuing2, true, c.issuing2.key, k);
    await put(port, c.signer2, true, c.signer2.key, k);
    await put(port, c.responder2, true, c.responder2.key, k);
    await put(port, c.ra2, true, c.ra2.key, k);
    const now = await currents();
    t.deepEqual(
      Object.fromEntries(Object.entries(c).map(([n, x]) => [n, now.get(x.credential.serial)])),
      { root: true, issuing1: false, issuing2: true, signer1: false, signer2: true, responder1: false, responder2: true, responderB: true, ra1: false, raB: true, ra2: true },
    );
    const byserial = async (x: Cred) => (await port.credentials()).find((y) => y.serial === x.credential.serial);
    t.is((await byserial(c.issuing1))?.generation, 1);
    t.true(opens(k, (await byserial(c.issuing1))?.key)?.equals(c.issuing1.key), 'a credential made not current keeps its key');
    // Dropped with null; kept with undefined.
    await put(port, c.signer1, false, null, k);
    t.is((await byserial(c.signer1))?.key, undefined);
    t.false((await byserial(c.signer1))?.current);
    await put(port, c.issuing1, true, undefined, k);
    t.true(opens(k, (await byserial(c.issuing1))?.key)?.equals(c.issuing1.key));
    t.false((await currents()).get(c.issuing2.credential.serial));
    t.is((await port.credentials()).length, 11);
    t.is((await port.transaction((tx) => tx.credentials())).length, 11);
  });

  test(title('revocations: revoked and retired lines, replaced by serial, applied to records'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, a2, bob] = fx.users as [User, User, User];
    await addUsers(port, fx, [a1, a2, bob]);
    t.deepEqual(await port.revocations(), []);
    const revoked: Revocation = { serial: a1.record.serial, date: at(1).toISOString(), reason: 'keyCompromise', kind: 'revoked', ca: 'issuing' };
    const retired: Revocation = { serial: bob.record.serial, date: at(2).toISOString(), reason: 'retired', kind: 'retired' };
    await port.transaction(async (tx) => {
      await tx.putRevocation(revoked);
      await tx.putRevocation(retired);
    });
    const sorted = (xs: Revocation[]) => [...xs].sort((x, y) => (x.serial < y.serial ? -1 : 1));
    t.deepEqual(sorted(await port.revocations()), sorted([revoked, retired]));
    t.deepEqual(await port.records(), [
      { ...a1.record, revoked: { date: revoked.date, reason: 'keyCompromise' } },
      a2.record,
      { ...bob.record, retired: { date: retired.date } },
    ]);
    const again: Revocation = { ...revoked, date: at(3).toISOString(), reason: 'superseded', ca: 'issuing-2' };
    await port.transaction((tx) => tx.putRevocation(again));
    t.deepEqual(sorted(await port.revocations()), sorted([again, retired]));
    t.deepEqual(await port.records({ serial: a1.record.serial }), [{ ...a1.record, revoked: { date: again.date, reason: 'superseded' } }]);
    t.deepEqual(sorted(await port.transaction((tx) => tx.revocations())), sorted([again, retired]));
  });

  test(title('CRL states: absent, put, replaced, per CA, with the published CRL'), async (t) => {
    const { port } = await open(t);
    t.is(await port.crlState('issuing'), undefined);
    await port.transaction((tx) => tx.putCrlState('issuing', { number: 1 }));
    t.deepEqual(await port.crlState('issuing'), { number: 1 });
    t.is(await port.crlState('root'), undefined);
    const der = randomBytes(700);
    const published = { thisUpdate: NOW.toISOString(), nextUpdate: at(1).toISOString(), digest: 'cd'.repeat(32), der };
    await port.transaction((tx) => tx.putCrlState('issuing', { number: 2, published }));
    const got = await port.crlState('issuing');
    t.deepEqual(got, { number: 2, published });
    t.true(Buffer.isBuffer(got?.published?.der));
    await port.transaction((tx) => tx.putCrlState('root', { number: 5 }));
    t.deepEqual(await port.crlState('root'), { number: 5 });
    t.is((await port.transaction((tx) => tx.crlState('issuing')))?.number, 2);
  });

  test(title('links: two books, by token hash, replaced and removed by id'), async (t) => {
    const { port } = await open(t);
    const l1 = newLink('alice@example.com', {}, NOW).link;
    const l2 = newLink('bob@example.com', { uses: 3, ttlMs: 3_600_000 }, at(0.01)).link;
    const c1 = newLink('carol@example.com', {}, at(0.02)).link;
    t.deepEqual(await port.links('links'), []);
    await port.transaction((tx) => tx.putLinks('links', [l1]));
    await port.transaction((tx) => tx.putLinks('links', [l2]));
    await port.transaction((tx) => tx.putLinks('challenges', [c1]));
    t.deepEqual(await port.links('links'), [l1, l2]);
    t.deepEqual(await port.links('challenges'), [c1]);
    t.deepEqual(await port.links('links', l2.tokenHash), [l2]);
    t.deepEqual(await port.links('links', c1.tokenHash), [], 'the books are separate');
    t.deepEqual(await port.links('challenges', c1.tokenHash), [c1]);
    const spent: LinkRecord = { ...l1, usesLeft: 0 };
    const revoked: LinkRecord = { ...l2, revoked: at(0.5).toISOString() };
    await port.transaction((tx) => tx.putLinks('links', [spent, revoked]));
    t.deepEqual(await port.links('links'), [spent, revoked]);
    await port.transaction((tx) => tx.putLinks('challenges', [], [l1.id]));
    t.deepEqual(await port.links('links'), [spent, revoked], 'a removal in the other book');
    await port.transaction((tx) => tx.putLinks('links', [], [l2.id]));
    t.deepEqual(await port.links('links'), [spent]);
    t.deepEqual(await port.links('links', l2.tokenHash), []);
    t.deepEqual(await port.transaction((tx) => tx.links('challenges')), [c1]);
  });

  test(title('rekey: every key resealed, settings replaced, the count returned, the cache dropped'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, a2, bob] = fx.users as [User, User, User];
    const c = fx.creds;
    const k = fx.storeKey;
    await addUsers(port, fx, [a1, a2]);
    await addUsers(port, fx, [bob], false);
    for (const x of [c.root, c.issuing1, c.signer1, c.signer2]) await put(port, x, true, x.key, k);
    await put(port, c.signer1, false, null, k);
    const box = boxOf(k, 1);
    await port.cache?.put(a1.record, { password: 'pw', pkcs12: randomBytes(64) }, box);
    const newKey = randomBytes(32);
    const settings = settingsFor(newKey, 2);
    const resealed: string[] = [];
    const count = await port.transaction((tx) =>
      tx.rekey((key) => {
        resealed.push(key.aad);
        const plain = unseal(k, key.sealed, key.aad);
        if (!plain) throw new Error(`a key does not open with its AAD ${key.aad}`);
        return seal(newKey, plain, key.aad);
      }, settings),
    );
    t.is(count, 5);
    t.is(resealed.length, 5);
    t.deepEqual(await port.settings(), settings);
    for (const u of [a1, a2]) {
      const key = (await port.certificate(u.record.serial))?.key;
      t.true(opens(newKey, key)?.equals(u.key));
      t.is(opens(k, key), undefined);
    }
    t.is((await port.certificate(bob.record.serial))?.key, undefined);
    const creds = await port.credentials();
    for (const x of [c.root, c.issuing1, c.signer2]) {
      const key = creds.find((y) => y.serial === x.credential.serial)?.key;
      t.true(opens(newKey, key)?.equals(x.key));
      t.is(opens(k, key), undefined);
    }
    t.is(creds.find((y) => y.serial === c.signer1.credential.serial)?.key, undefined);
    if (port.cache) t.is(await port.cache.get(a1.record, box), undefined, 'the cache was dropped');
  });

  test(title('cache (when the port has one): a hit only for the fingerprint and the generation'), async (t) => {
    const { fx, port } = await open(t);
    const cache = port.cache;
    if (!cache) return t.pass('no cache');
    const [a1, a2] = fx.users as [User, User];
    // A cache is of the store's certificates (PostgreSQL's rows reference them).
    await addUsers(port, fx, [a1, a2]);
    const box = boxOf(fx.storeKey, 3);
    t.is(await cache.get(a1.record, box), undefined);
    const built = { password: 'pässword 1', pkcs12: randomBytes(900) };
    await cache.put(a1.record, built, box);
    t.deepEqual(await cache.get(a1.record, box), built);
    t.true(Buffer.isBuffer((await cache.get(a1.record, box))?.pkcs12));
    t.is(await cache.get(a2.record, box), undefined);
    t.is(await cache.get({ ...a1.record, fingerprint: a2.record.fingerprint }, box), undefined, 'another fingerprint');
    t.is(await cache.get(a1.record, boxOf(fx.storeKey, 4)), undefined, 'another generation');
    t.is(await cache.get(a1.record, boxOf(randomBytes(32), 3)), undefined, 'another key');
    const rebuilt = { password: '', pkcs12: randomBytes(10) };
    await cache.put(a1.record, rebuilt, box);
    t.deepEqual(await cache.get(a1.record, box), rebuilt);
  });

  test(title('atomicity: a transaction that throws, or whose third call fails, leaves the store as it was'), async (t) => {
    const { fx, port } = await open(t);
    const [a1, a2, bob, carol] = fx.users as [User, User, User, User];
    const c = fx.creds;
    await addUsers(port, fx, [a1, a2]);
    await put(port, c.signer1, true, c.signer1.key, fx.storeKey);
    await port.transaction(async (tx) => {
      await tx.putRevocation({ serial: a2.record.serial, date: NOW.toISOString(), reason: 'superseded', kind: 'revoked' });
      await tx.putCrlState('issuing', { number: 3 });
      await tx.putLinks('links', [newLink('alice@example.com', {}, NOW).link]);
    });
    const before = await dump(port, fx);
    const link = newLink('bob@example.com', {}, NOW).link;
    const everything = async (tx: PortTransaction) => {
      await tx.putSettings(settingsFor(randomBytes(32), 9));
      await tx.addCertificate(bob.record, bob.der, sealerOf(fx.storeKey, bob.key));
      await tx.amend({ serial: a1.record.serial, date: NOW.toISOString(), alsoPurpose: 'smime-encryption', chain: [fingerprint(fx.ca.root.certificate)] });
      await tx.putChains([fx.ca.root.certificate, fx.ca.intermediate.certificate]);
      await tx.putCredential({ ...c.signer2.credential, current: true }, sealerOf(fx.storeKey, c.signer2.key));
      await tx.putCredential({ ...c.signer1.credential, current: false }, null);
      await tx.putRevocation({ serial: a1.record.serial, date: NOW.toISOString(), reason: 'keyCompromise', kind: 'revoked' });
      await tx.putRevocation({ serial: a2.record.serial, date: NOW.toISOString(), reason: 'retired', kind: 'retired' });
      await tx.putCrlState('issuing', { number: 4 });
      await tx.putCrlState('root', { number: 1 });
      await tx.putLinks('links', [link], [(await tx.links('links'))[0]!.id]);
      await tx.putLinks('challenges', [link]);
    };
    await t.throwsAsync(
      port.transaction(async (tx) => {
        await everything(tx);
        throw new Error('boom');
      }),
      { message: 'boom' },
    );
    t.deepEqual(await dump(port, fx), before);
    await t.throwsAsync(
      port.transaction(async (tx) => {
        await everything(tx);
        await tx.rekey((key) => seal(randomBytes(32), Buffer.from('x'), key.aad), settingsFor(randomBytes(32), 2));
        throw new Error('boom after rekey');
      }),
      { message: 'boom after rekey' },
    );
    t.deepEqual(await dump(port, fx), before);
    await t.throwsAsync(
      port.transaction(async (tx) => {
        const ftx = failingOnCall(tx, 3);
        await ftx.addCertificate(carol.record, carol.der, sealerOf(fx.storeKey, carol.key));
        await ftx.putCrlState('issuing', { number: 4 });
        await ftx.putLinks('links', [link]);
        await ftx.putRevocation({ serial: a1.record.serial, date: NOW.toISOString(), reason: 'keyCompromise', kind: 'revoked' });
      }),
      { code: 'ERR_STORE_IO' },
    );
    t.deepEqual(await dump(port, fx), before);
    // And the store still takes a transaction afterwards.
    await port.transaction((tx) => tx.putCrlState('issuing', { number: 4 }));
    t.is((await port.crlState('issuing'))?.number, 4);
  });

  test(title('concurrency: 2 instances × 20 read-modify-write transactions lose no update'), async (t) => {
    const { port, second } = await open(t);
    const other = await second();
    const bump = (p: StoragePort) =>
      p.transaction(async (tx) => {
        const s = await tx.crlState('issuing');
        await turn();
        await tx.putCrlState('issuing', { number: (s?.number ?? 0) + 1 });
      });
    await Promise.all(Array.from({ length: 40 }, (_, i) => bump(i % 2 ? other : port)));
    t.is((await port.crlState('issuing'))?.number, 40);
    t.is((await other.crlState('issuing'))?.number, 40);
  });

  test(title('concurrency: the same serial added by two instances at once: one succeeds, one is refused'), async (t) => {
    const { fx, port, second } = await open(t);
    const other = await second();
    const [a1] = fx.users as [User];
    const add = (p: StoragePort) =>
      p.transaction(async (tx) => {
        await turn();
        await tx.addCertificate(a1.record, a1.der, sealerOf(fx.storeKey, a1.key));
        await turn();
      });
    const results = await Promise.allSettled([add(port), add(other)]);
    t.is(results.filter((r) => r.status === 'fulfilled').length, 1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    t.is(refused.length, 1);
    t.is((refused[0]?.reason as { code?: string }).code, 'ERR_CERT_INVALID');
    t.deepEqual(await port.records(), [a1.record]);
    t.deepEqual(await other.records({ serial: a1.record.serial }), [a1.record]);
  });

  test(title('concurrency: the last use of a link is spent once by 2 × 10 transactions'), async (t) => {
    const { port, second } = await open(t);
    const other = await second();
    const { link } = newLink('alice@example.com', { uses: 1 }, NOW);
    await port.transaction((tx) => tx.putLinks('links', [link]));
    const spend = (p: StoragePort) =>
      p.transaction(async (tx) => {
        const [l] = await tx.links('links', link.tokenHash);
        await turn();
        if (!l || l.usesLeft <= 0) return false;
        await tx.putLinks('links', [{ ...l, usesLeft: l.usesLeft - 1 }]);
        return true;
      });
    const spent = await Promise.all(Array.from({ length: 20 }, (_, i) => spend(i % 2 ? other : port)));
    t.is(spent.filter(Boolean).length, 1);
    t.deepEqual(await port.links('links', link.tokenHash), [{ ...link, usesLeft: 0 }]);
  });
}
