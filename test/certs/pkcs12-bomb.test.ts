/**
 * PKCS#12 bombs (test/helpers/pkcs12-bomb.ts): no MAC and many empty encrypted safes, high
 * iterations, the legacy PKCS#12 KDF and PBKDF2, a MAC that asks for the most, many payloads
 * in one profile. Each is refused within the budget, counted in work (budget units), not time;
 * and a server that lints uploads answers its /health route while it opens one.
 */
import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_KDF_BUDGET, KdfBudget, readPkcs12, readPkcs12Async } from '../../src/certs/pkcs12-read.js';
import { lintProfile } from '../../src/profile/lint.js';
import { inspectProfile } from '../../src/profile/inspect.js';
import { pkcs12Bomb } from '../helpers/pkcs12-bomb.js';
import { cli, httpRequest, need, openssl, pythonBytes, snapshotDir, tmp } from '../helpers/tools.js';

const PW = 'bomb';
/** 7 legacy safes at 200,000 iterations: 3 blocks each (a 3DES key is two SHA-1 outputs, the IV one), 4.2 M units. */
const LEGACY = () => pkcs12Bomb({ safes: 7, iterations: 200_000, kind: 'legacy', password: PW });

test('a bomb of empty legacy safes without a MAC is refused once the budget is spent, never past it', (t) => {
  const budget = new KdfBudget();
  const bytes = LEGACY();
  t.true(bytes.length < 1000, `the bomb is small (${bytes.length} bytes)`);
  t.throws(() => readPkcs12(bytes, PW, { budget }), { code: 'ERR_INPUT_INVALID', message: /more key derivation than allowed \(4,000,000 iterations/ });
  // Each derivation is charged before it runs: six safes (600,000 each), then the seventh's key
  // (400,000) fits exactly and its IV (200,000) does not, so that IV is never derived.
  t.is(budget.spent, 6 * 600_000 + 400_000);
  t.true(budget.spent <= DEFAULT_KDF_BUDGET);
});

test('openssl reads the bomb format: a small one is a valid, empty PKCS#12', (t) => {
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'small.p12'), pkcs12Bomb({ safes: 2, iterations: 2048, kind: 'legacy', password: PW, macIterations: 2048 }));
  const r = openssl(['pkcs12', '-in', join(dir, 'small.p12'), '-passin', `pass:${PW}`, '-nokeys', '-info', '-legacy']);
  t.is(r.status, 0, r.stderr.toString());
  t.regex(r.stderr.toString(), /pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
  // And we read it as what it is: nothing inside, 2 safes and a MAC (2048 x 1 + 2 x 2048 x 3 units).
  const budget = new KdfBudget();
  const p12 = readPkcs12(readFileSync(join(dir, 'small.p12')), PW, { budget });
  t.deepEqual([p12.keys.length, p12.certificates.length], [0, 0]);
  t.is(budget.spent, 2048 + 2 * 2048 * 3);
});

test('PBES2 safes and a MAC at the per-derivation maximum are charged to one budget', async (t) => {
  // Each safe asks 1,000,000 PBKDF2 iterations (one SHA-256 block): four fit in 4 M with nothing left for the fifth.
  const pbes2 = pkcs12Bomb({ safes: 5, iterations: 1_000_000, kind: 'pbes2', password: PW });
  const budget = new KdfBudget();
  await t.throwsAsync(readPkcs12Async(pbes2, PW, { budget }), { code: 'ERR_INPUT_INVALID', message: /more key derivation than allowed/ });
  t.is(budget.spent, 4_000_000);
  // A MAC at the PKCS#12 KDF's maximum (200,000) is charged first; the safes after it get what is left.
  const withMac = pkcs12Bomb({ safes: 7, iterations: 200_000, kind: 'legacy', password: PW, macIterations: 200_000 });
  const b2 = new KdfBudget();
  t.throws(() => readPkcs12(withMac, PW, { budget: b2 }), { message: /more key derivation than allowed/ });
  t.is(b2.spent, 200_000 + 6 * 600_000);
  // Many safes: more than 32 is refused before any work.
  const b3 = new KdfBudget();
  t.throws(() => readPkcs12(pkcs12Bomb({ safes: 40, iterations: 1, kind: 'legacy', password: PW }), PW, { budget: b3 }), { code: 'ERR_INPUT_INVALID', message: 'The PKCS#12 holds 40 safes; more than 32 is refused' });
  t.is(b3.spent, 0);
});

test('the synchronous and asynchronous readers agree on a real PKCS#12 and charge the same work', async (t) => {
  const small = pkcs12Bomb({ safes: 3, iterations: 5000, kind: 'legacy', password: PW, macIterations: 5000 });
  const a = new KdfBudget();
  const b = new KdfBudget();
  const sync = readPkcs12(small, PW, { budget: a });
  const async = await readPkcs12Async(small, PW, { budget: b });
  t.deepEqual([...sync.algorithms], [...async.algorithms]);
  t.is(a.spent, b.spent);
  t.is(a.spent, 5000 + 3 * 5000 * 3);
});

/** A profile with `n` PKCS#12 payloads, written by python's plistlib. */
function profileWith(p12: Buffer, n: number): Buffer {
  const code = `import plistlib,sys,base64,uuid
p12=sys.stdin.buffer.read()
payloads=[{"PayloadType":"com.apple.security.pkcs12","PayloadIdentifier":"b.%d"%i,"PayloadUUID":str(uuid.UUID(int=i+1)).upper(),"PayloadVersion":1,"PayloadContent":p12,"Password":"${PW}"} for i in range(${n})]
sys.stdout.buffer.write(plistlib.dumps({"PayloadType":"Configuration","PayloadIdentifier":"bomb","PayloadUUID":str(uuid.UUID(int=999)).upper(),"PayloadVersion":1,"PayloadDisplayName":"Bomb","PayloadContent":payloads}))`;
  const r = pythonBytes(code, p12);
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

test('many payloads in one profile share one budget: lint and inspect refuse the rest with one finding each', async (t) => {
  if (!need(t, 'python3')) return;
  // 20 payloads, each a modest 2 safes at 200,000 (1.2 M units): three fit, the rest are not opened.
  const profile = profileWith(pkcs12Bomb({ safes: 2, iterations: 200_000, kind: 'legacy', password: PW }), 20);
  const budget = new KdfBudget();
  const lint = await lintProfile(profile, { budget });
  t.true(budget.spent <= DEFAULT_KDF_BUDGET);
  t.is(budget.spent, 3 * 1_200_000 + 400_000, "three payloads and the fourth's first key; its IV is refused");
  const work = lint.findings.filter((f) => f.rule === 'pkcs12-work');
  t.is(work.length, 17);
  t.is(work[0]!.severity, 'error');
  t.regex(work[0]!.message, /^Not opened: Opening this PKCS#12 would cost more key derivation than allowed/);
  const b2 = new KdfBudget();
  const inspected = await inspectProfile(profile, { budget: b2 });
  t.is(b2.spent, budget.spent);
  t.is(inspected.payloads.filter((p) => /more key derivation than allowed/.test(p.note ?? '')).length, 17);
});

test('a server linting uploads answers /health while it opens a bomb (the derivation never blocks the event loop)', async (t) => {
  if (!need(t, 'python3')) return;
  const profile = profileWith(LEGACY(), 3);
  let budget: KdfBudget | undefined;
  // The upload checker of the README's guide: lintProfile behind node:http, with a health route.
  const server: Server = createServer(async (req, res) => {
    if (req.url === '/health') return res.writeHead(200).end(String(budget?.spent ?? -1));
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    budget = new KdfBudget();
    const r = await lintProfile(Buffer.concat(chunks), { budget });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(r.findings.map((f) => f.rule)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let done = false;
  const upload = httpRequest(`${base}/lint`, { method: 'POST', body: profile }).then((r) => ((done = true), r));
  // Health checks while the lint runs: some must be answered with the work part done, which a
  // blocked event loop cannot do (it would answer only before the lint started or after it ended).
  const seen: number[] = [];
  while (!done) {
    const h = await httpRequest(`${base}/health`);
    t.is(h.status, 200);
    if (!done) seen.push(Number(h.text()));
  }
  const final = budget!.spent;
  const midway = seen.filter((s) => s > 0 && s < final);
  t.true(midway.length > 0, `health was answered mid-derivation (seen ${seen.slice(0, 20).join(', ')}; final ${final})`);
  const rules = JSON.parse((await upload).text()) as string[];
  t.true(rules.includes('pkcs12-work'));
  t.true(final <= DEFAULT_KDF_BUDGET);
});

test('cert import of a bomb is one line and exit 1, the store unchanged', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  const env = { PROFILESMITH_PASSPHRASE: 'correct horse battery staple' };
  t.is(cli(['init', '--store', storeDir, '--org', 'Bomb Corp'], { env }).status, 0);
  writeFileSync(join(dir, 'bomb.p12'), LEGACY());
  writeFileSync(join(dir, 'pw'), PW, { mode: 0o600 });
  const before = snapshotDir(storeDir);
  const r = cli(['cert', 'import', join(dir, 'bomb.p12'), '--store', storeDir, '--user', 'bomb@example.com', '--password-file', join(dir, 'pw'), '--purpose', 'smime-encryption'], { env });
  t.is(r.status, 1);
  t.regex(r.stderr, /^error: Opening this PKCS#12 would cost more key derivation than allowed .*\n$/);
  t.is(r.stderr.split('\n').length, 2, 'one line');
  t.deepEqual(snapshotDir(storeDir), before, 'the store is unchanged');
});
