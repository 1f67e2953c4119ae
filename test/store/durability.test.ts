import test from 'ava';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeSerial } from '../../src/certs/pem.js';
import { checkStore } from '../../src/store/check.js';
import { openStore } from '../../src/store/fs-store.js';
import { withLock } from '../../src/store/lock.js';
import { formatIndex, parseIndex } from '../../src/store/file/index-format.js';
import type { CertificateRecord } from '../../src/store/store.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { outsideCa } from '../helpers/outside-ca.js';
import { cli, need, ROOT, snapshotDir, tmp } from '../helpers/tools.js';

const WRITER = join(ROOT, 'test', 'helpers', 'writer.ts');

function writer(dir: string, count: number, tag: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', WRITER, dir, String(count), tag], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const done = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, done, err: () => err };
}

test('concurrent writers in separate processes both succeed and lose nothing', async (t) => {
  const dir = join(tmp(t), 'store');
  await aliceStore(dir);
  const writers = ['a', 'b', 'c'].map((tag) => writer(dir, 4, tag));
  const codes = await Promise.all(writers.map((w) => w.done));
  t.deepEqual(codes, [0, 0, 0], writers.map((w) => w.err()).join('\n'));
  const store = await openStore(dir, { passphrase: PASSPHRASE });
  const records = await store.listCertificates();
  t.is(records.length, 3 + 12);
  for (const tag of ['a', 'b', 'c']) for (let i = 0; i < 4; i++) t.truthy(records.find((r) => r.user === `${tag}${i}@example.com`));
  t.deepEqual((await checkStore(store)).filter((f) => f.severity === 'error'), []);
});

test('a writer killed with SIGKILL at any moment leaves a readable store with the old or the new state', async (t) => {
  const dir = join(tmp(t), 'store');
  await aliceStore(dir);
  let before = 3;
  for (const delay of [150, 400, 650, 900, 1300]) {
    const w = writer(dir, 100, `k${delay}-`);
    await sleep(delay);
    w.child.kill('SIGKILL');
    await w.done;
    const store = await openStore(dir, { passphrase: PASSPHRASE });
    const findings = await checkStore(store);
    t.deepEqual(findings.filter((f) => f.severity === 'error'), [], `after a kill at ${delay} ms`);
    const records = await store.listCertificates();
    t.true(records.length >= before);
    for (const r of records) t.truthy(await store.getIdentity(r.serial), 'every listed entry is whole');
    before = records.length;
    // A killed writer's lock goes stale after 15 s (tested below); remove it so the next round does not wait.
    rmSync(join(dir, 'store.lock'), { force: true });
  }
});

test('store check reports truncation, corruption, bad modes and broken chains, and deletes nothing', async (t) => {
  const base = tmp(t);
  const dir = join(base, 'store');
  const store = await aliceStore(dir);
  const [a, b, c] = await store.listCertificates();
  writeFileSync(join(dir, 'certs', a!.serial, 'entry.json'), '{"serial": "tru');
  chmodSync(join(dir, 'certs', b!.serial, 'key.1'), 0o644);
  const sealed = JSON.parse(readFileSync(join(dir, 'certs', c!.serial, 'key.1'), 'utf8'));
  sealed.data = Buffer.from(sealed.data, 'base64').fill(7, 10, 20).toString('base64');
  writeFileSync(join(dir, 'certs', c!.serial, 'key.1'), JSON.stringify(sealed));
  writeFileSync(join(dir, 'certs', b!.serial, 'cert.pem'), readFileSync(join(dir, 'ca', 'root.pem')));
  const snapshot = snapshotDir(dir);
  const r = cli(['store', 'check', '--store', dir, '--json'], { cwd: base, env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } });
  t.is(r.status, 3, r.stderr);
  const report = JSON.parse(r.stdout);
  const where = (serial: string, file: string) => report.findings.filter((f: any) => f.severity === 'error' && f.path.endsWith(join(serial, file)));
  t.is(where(a!.serial, 'entry.json').length, 1, 'truncated entry');
  t.is(where(b!.serial, 'key.1').length >= 1, true, 'mode 644 on a key');
  t.true(where(b!.serial, 'cert.pem').length >= 1, 'certificate swapped');
  t.regex(where(c!.serial, 'key.1')[0]?.message ?? '', /does not decrypt/);
  t.deepEqual(snapshotDir(dir), snapshot, 'nothing changed or deleted');
});

test('a lock left by a killed writer goes stale and the next writer takes it over; a live one is waited for', async (t) => {
  const dir = join(tmp(t), 'store');
  const store = await aliceStore(dir);
  const lock = join(dir, 'store.lock');
  writeFileSync(lock, 'left by a killed process');
  const old = new Date(Date.now() - 60_000);
  utimesSync(lock, old, old);
  await store.issueCertificate({ user: 'late@example.com', name: 'Late', purpose: 'smime-signing' });
  t.is((await store.listCertificates({ user: 'late@example.com' })).length, 1);
  writeFileSync(lock, 'held by a live writer');
  await t.throwsAsync(withLock(dir, async () => 1, { timeoutMs: 300 }), { code: 'ERR_STORE_IO', message: `The store at "${dir}" is locked by another process` });
});

/** Alice's store plus 260 users (one shared key, to be quick): large enough to keep index.json. */
async function largeStore(t: import('ava').ExecutionContext) {
  const dir = join(tmp(t), 'store');
  await aliceStore(dir);
  const { generateKeyPairSync } = await import('node:crypto');
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  const bulk = await openStore(dir, { passphrase: PASSPHRASE, durable: false });
  for (let i = 0; i < 260; i++) await bulk.issueCertificate({ user: `bulk${i}@example.com`, name: `Bulk ${i}`, purpose: 'smime-signing', privateKey: key });
  return { dir, key, bulk };
}

test('a large store keeps index.json: a new reader starts from it, picks up later entries, and store check compares it', async (t) => {
  const { dir, key, bulk } = await largeStore(t);
  const reader = await openStore(dir);
  t.is((await reader.listCertificates()).length, 263);
  t.true(existsSync(join(dir, 'index.json')));
  await bulk.issueCertificate({ user: 'late@example.com', name: 'Late', purpose: 'smime-signing', privateKey: key });
  const next = await openStore(dir);
  t.is((await next.listCertificates({ user: 'late@example.com' })).length, 1, 'entries newer than the index are read');
  t.is((await next.listCertificates()).length, 264);
  const text = readFileSync(join(dir, 'index.json'), 'utf8');
  t.is(JSON.parse(text.slice(0, text.indexOf('\n'))).version, 3);
  const idx = parseIndex(text);
  const victim = idx.records.find((r) => r.user === 'bulk7@example.com')!;
  victim.user = 'mallory@example.com';
  writeFileSync(join(dir, 'index.json'), formatIndex(idx.records, idx.dirKey));
  const findings = await checkStore(await openStore(dir));
  t.true(findings.some((f) => f.severity === 'error' && f.path.endsWith('index.json') && f.message.includes(victim.serial)));
});

test('index.json vouches for the listing only while certs/ is in the state it was written from', async (t) => {
  const { dir, key, bulk } = await largeStore(t);
  // The directory state is recorded only once it has been unchanged for 5 s.
  await new Promise((r) => setTimeout(r, 5200));
  t.is((await (await openStore(dir)).listCertificates()).length, 263);
  const idx = parseIndex(readFileSync(join(dir, 'index.json'), 'utf8'));
  t.is(typeof idx.dirKey, 'string');
  // A record only in the index shows that the listing was skipped...
  idx.records.push({ ...idx.records[0]!, serial: 'ab'.repeat(16), user: 'ghost@example.com' });
  writeFileSync(join(dir, 'index.json'), formatIndex(idx.records, idx.dirKey));
  t.is((await (await openStore(dir)).listCertificates({ user: 'ghost@example.com' })).length, 1);
  // ...and any change to certs/ makes a reader list it again: the new entry is found, the ghost is gone.
  await bulk.issueCertificate({ user: 'late@example.com', name: 'Late', purpose: 'smime-signing', privateKey: key });
  const next = await openStore(dir);
  t.is((await next.listCertificates({ user: 'late@example.com' })).length, 1);
  t.is((await next.listCertificates({ user: 'ghost@example.com' })).length, 0);
  t.is((await next.listCertificates()).length, 264);
});

test('index.json version 3 gives back every record exactly; versions 1 and 2 are still read (and rewritten); a bad row or a lost line withdraws the directory key', (t) => {
  const records: CertificateRecord[] = [
    { serial: '0a1b', user: 'Ann@Example.com', purpose: 'smime-signing', source: 'issued', subject: 'CN=Ann', issuer: 'CN=CA, O=X', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2027-01-01T00:00:00.000Z', fingerprint: 'f'.repeat(64), created: '2026-01-01T00:00:01.234Z', name: 'Ann' },
    { serial: 'ff', user: 'ben@example.com', purpose: 'smime-encryption', source: 'imported', subject: 'CN=Ben "B", O=Ü', issuer: 'CN=Other CA', notBefore: '2020-01-01T00:00:00.000Z', notAfter: '2021-01-01T00:00:00.000Z', fingerprint: 'e'.repeat(64), created: '2026-02-01T00:00:00.000Z', chain: ['a'.repeat(64), 'b'.repeat(64)] },
    { serial: '0c', user: 'ann@example.com', purpose: 'smime-encryption', source: 'issued', subject: 'CN=Ann', issuer: 'CN=CA, O=X', notBefore: '2026-01-01T00:00:00.000Z', notAfter: '2027-01-01T00:00:00.000Z', fingerprint: 'd'.repeat(64), created: '2026-01-01T00:00:02.000Z' },
  ];
  const text = formatIndex(records, '1:2');
  const byUser = (rs: CertificateRecord[]) => [...rs].sort((a, b) => a.serial.localeCompare(b.serial));
  const parsed = parseIndex(text);
  t.is(parsed.dirKey, '1:2');
  t.deepEqual(byUser(parsed.records), byUser(records));
  t.is(text.trimEnd().split('\n').length, 3, 'a header and one line per user, whatever the case of the address');
  t.deepEqual(Object.keys(parsed.records.find((r) => r.serial === '0a1b')!), Object.keys(records[0]!), 'same property order as entry.json');
  t.deepEqual(parseIndex(JSON.stringify({ version: 1, dirKey: '1:2', records })), { records }, 'read, but it does not vouch for the listing');
  const header = JSON.parse(text.slice(0, text.indexOf('\n')));
  const v2 = { version: 2, dirKey: '1:2', columns: header.columns, strings: header.strings, records: text.trimEnd().split('\n').slice(1).flatMap((l) => JSON.parse(l.slice(l.indexOf('\t') + 1))) };
  t.deepEqual(byUser(parseIndex(JSON.stringify(v2)).records), byUser(records));
  t.is(parseIndex(JSON.stringify(v2)).dirKey, undefined, 'version 2 is rewritten before it vouches');
  const bad = text.replace('"ff"', '"../x"');
  t.deepEqual(byUser(parseIndex(bad).records), byUser([records[0]!, records[2]!]));
  t.is(parseIndex(bad).dirKey, undefined);
  const lost = text.trimEnd().split('\n').slice(0, -1).join('\n') + '\n';
  t.is(parseIndex(lost).dirKey, undefined, 'fewer user lines than the header announces');
  t.is(parseIndex(text.slice(0, -1)).dirKey, undefined, 'no final newline: cut short');
  t.deepEqual(parseIndex(JSON.stringify({ version: 4, records: [] })), { records: [] });
});

test('a damaged line of a vouching index.json is never served: the reader lists certs/ and repairs the index', async (t) => {
  const { dir } = await largeStore(t);
  await new Promise((r) => setTimeout(r, 5200));
  t.is((await (await openStore(dir)).listCertificates()).length, 263);
  const path = join(dir, 'index.json');
  const text = readFileSync(path, 'utf8');
  t.is(typeof parseIndex(text).dirKey, 'string');
  const line = text.split('\n').find((l) => l.startsWith('"bulk7@example.com"\t'))!;
  // Still JSON, still one line: only the record inside is wrong.
  writeFileSync(path, text.replace(line, '"bulk7@example.com"\t[["zz"]]'));
  const reader = await openStore(dir);
  t.is((await reader.listCertificates({ user: 'bulk8@example.com' })).length, 1, 'another user, from the index');
  t.is((await reader.listCertificates({ user: 'bulk7@example.com' })).length, 1, 'the damaged user, from the entries');
  t.is((await reader.listCertificates()).length, 263);
  // An index written from the listing replaces it.
  const repaired = parseIndex(readFileSync(path, 'utf8'));
  t.true(repaired.records.some((r) => r.user === 'bulk7@example.com'));
  t.is(repaired.records.length, 263);
});
/** Runs test/helpers/stopped-issue.ts until it stops at `stage`, kills it (SIGKILL) and returns the entry's temporary folder. */
async function killedIssue(dir: string, user: string, stage: 'key' | 'rename'): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test', 'helpers', 'stopped-issue.ts'), dir, user, stage], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c) => (err += c));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const folder = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('\n')) resolve(out.trim());
    });
    // 'close', not 'exit': the child's output is all read by then, so a folder it printed is never missed.
    child.on('close', (code, signal) => reject(new Error(`the issue ended before it stopped (exit ${code ?? signal}): ${err}`)));
  });
  child.kill('SIGKILL');
  await exited;
  return folder;
}

test('an issue killed before its entry is recorded leaves a temporary folder with a signed certificate: store check names it and says what to do, without calling the store damaged; a healthy store has no findings (issue 28)', async (t) => {
  const base = tmp(t);
  const dir = join(base, 'store');
  await aliceStore(dir);
  const check = (json = true) => cli(['store', 'check', '--store', dir, ...(json ? ['--json'] : [])], { cwd: base, env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } });
  const healthy = check();
  t.is(healthy.status, 0, healthy.stdout);
  t.deepEqual(JSON.parse(healthy.stdout).findings, [], 'a healthy store: nothing to report');

  const lock = join(dir, 'store.lock');
  for (const [user, stage] of [['kim@example.com', 'rename'], ['lou@example.com', 'key']] as const) {
    const folder = await killedIssue(dir, user, stage);
    t.true(folder.startsWith(join(dir, 'certs', '.tmp-')), folder);
    t.deepEqual(readdirSync(folder).sort(), stage === 'rename' ? ['cert.pem', 'entry.json', 'key.1'] : ['cert.pem']);
    const serial = normalizeSerial(new X509Certificate(readFileSync(join(folder, 'cert.pem'))).serialNumber);

    // Straight after the kill its lock is fresh: a writer may be at work, so nothing is a leftover yet.
    const early = check();
    t.is(early.status, 0, early.stdout);
    t.deepEqual(JSON.parse(early.stdout).findings, [
      { severity: 'info', path: folder, message: 'being written by the process that holds the store lock (if that process was killed, run store check again once the lock is stale, after 15 s)' },
      { severity: 'info', path: lock, message: 'a writer holds the lock, or one was killed (the lock goes stale after 15 s)' },
    ]);

    // Once the lock is stale (its time set back, rather than waited for): the certificate is named, with what to do.
    const old = new Date('2020-01-01T00:00:00Z');
    utimesSync(lock, old, old);
    const r = check(false);
    t.is(r.status, 0, 'not damage: exit 0');
    t.is(
      r.stdout,
      `warning: ${folder}: holds certificate ${serial} for ${user}, signed by the store's CA but never recorded: an issue was stopped before it finished. It was never handed out: delete this folder, and issue again if ${user} still needs one\n` +
        `info: ${lock}: left by a writer that was killed; the next writer takes it over\n`,
    );
    t.is(r.stderr, `No errors in ${dir}\n`);
    t.is((await (await openStore(dir)).listCertificates({ user })).length, 0, 'no record');

    // Doing what it says: the folder goes, the user is issued a certificate, the next writer takes the lock over.
    rmSync(folder, { recursive: true });
    t.is(cli(['cert', 'issue', '--store', dir, '--user', user, '--name', 'Again', '--purpose', 'smime-signing'], { cwd: base, env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } }).status, 0);
    const after = check();
    t.is(after.status, 0);
    t.deepEqual(JSON.parse(after.stdout).findings, []);
  }
});

test('a temporary entry folder holding an outside certificate (an import stopped) is named too; one without a certificate is safe to delete (issue 28)', async (t) => {
  if (!need(t, 'openssl')) return;
  const base = tmp(t);
  const dir = join(base, 'store');
  await aliceStore(dir);
  mkdirSync(join(base, 'outside'));
  const ca = outsideCa(join(base, 'outside'), { email: 'ola@example.com' });
  const imported = join(dir, 'certs', '.tmp-0123456789ab');
  const empty = join(dir, 'certs', '.tmp-ba9876543210');
  mkdirSync(imported, { mode: 0o700 });
  mkdirSync(empty, { mode: 0o700 });
  writeFileSync(join(imported, 'cert.pem'), readFileSync(ca.userPem), { mode: 0o644 });
  const serial = normalizeSerial(new X509Certificate(readFileSync(ca.userPem)).serialNumber);
  const r = cli(['store', 'check', '--store', dir, '--json'], { cwd: base, env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } });
  t.is(r.status, 0, r.stdout);
  t.deepEqual(
    JSON.parse(r.stdout).findings.sort((a: { path: string }, b: { path: string }) => a.path.localeCompare(b.path)),
    [
      { severity: 'warning', path: imported, message: `holds certificate ${serial} for ola@example.com, never recorded: an import was stopped before it finished. Delete this folder and import it again` },
      { severity: 'info', path: empty, message: 'left over from an interrupted write, with no certificate in it; safe to delete' },
    ],
  );
});
