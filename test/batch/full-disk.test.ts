/**
 * A full disk under `cert issue-batch` (issue 28): the run stops at the first store write that
 * fails, with one error, and starts no further row (each would generate a key only to fail the
 * same way). What was issued before it stays recorded, `store check` finds the store sound, and
 * a second run, with room again, issues the rest.
 */
import test from 'ava';
import { existsSync, promises as fsp, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueBatch } from '../../src/batch/issue-batch.js';
import { checkStore } from '../../src/store/check.js';
import { initStore, openStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { fill, SKIP_NO_DISK, smallDisk } from '../helpers/small-disk.js';
import { cli, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const emails = Array.from({ length: 10 }, (_, i) => `user${i + 1}@example.com`);

for (const errno of ['ENOSPC', 'EDQUOT'] as const) {
  // Serial: the fault is injected into this process's fs.promises.open while it runs.
  test.serial(`issueBatch stops at the first ${errno}: no row starts after it, one error is thrown, the store stays sound, a rerun finishes`, async (t) => {
    const dir = tmp(t);
    const storeDir = join(dir, 'store');
    await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
    writeFileSync(join(dir, 'users.csv'), ['email', ...emails].join('\n') + '\n');
    const store = await openStore(storeDir, { passphrase: PASSPHRASE });

    // Every row the store is asked to issue for generates a key: count them.
    let asked = 0;
    const ifMissing = store.issueCertificateIfMissing.bind(store);
    store.issueCertificateIfMissing = (o) => (asked++, ifMissing(o));
    // The disk fills up after three certificates: the fourth entry's first file cannot be written.
    const open = fsp.open;
    let entries = 0;
    fsp.open = (async (path: Parameters<typeof open>[0], ...rest: unknown[]) => {
      if (/\/certs\/\.tmp-[0-9a-f]+\/cert\.pem$/.test(String(path)) && ++entries > 3) {
        throw Object.assign(new Error(`${errno}: no space left on device, open '${String(path)}'`), { code: errno, syscall: 'open', path: String(path) });
      }
      return (open as (...a: unknown[]) => ReturnType<typeof open>)(path, ...rest);
    }) as typeof open;
    const failures: unknown[] = [];
    let err: (Error & { code?: string; path?: string }) | undefined;
    try {
      await issueBatch({ store, usersFile: join(dir, 'users.csv'), purpose: 'smime-signing', jobs: 1, onFailure: (f) => failures.push(f) });
    } catch (e) {
      err = e as typeof err;
    } finally {
      fsp.open = open;
    }
    const words = errno === 'ENOSPC' ? 'no space left on the disk' : 'the disk quota is used up';
    t.is(err?.code, 'ERR_STORE_IO');
    t.regex(err?.path ?? '', new RegExp(`^${storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/certs/[0-9a-f]+$`));
    t.is(err?.message, `Cannot write "${err?.path}": ${words} (${errno})`);
    t.deepEqual(failures, [], 'the fault is the run\'s, not a row\'s: no row is reported for it');
    t.is(asked, 4, 'three issued, the fourth failed, and no key was generated after it');

    const reopened = await openStore(storeDir, { passphrase: PASSPHRASE });
    t.deepEqual((await reopened.listCertificates()).map((r) => r.user).sort(), emails.slice(0, 3).sort());
    t.deepEqual((await checkStore(reopened)).filter((f) => f.severity !== 'info'), [], 'store check: no errors, no warnings');
    const again = await issueBatch({ store: reopened, usersFile: join(dir, 'users.csv'), purpose: 'smime-signing', jobs: 1 });
    t.like(again, { generated: 7, existing: 3, failed: 0 });
  });
}

test('cert issue-batch on a disk that fills up: one error and its hint, exit 1, what was issued is recorded, store check is clean, a rerun with room finishes', async (t) => {
  const disk = smallDisk(t);
  if (!disk) {
    t.log(`${SKIP_NO_DISK}; the library tests above inject the same fault`);
    return t.pass();
  }
  const dir = tmp(t);
  const storeDir = join(disk, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'users.csv'), ['email', ...emails].join('\n') + '\n');
  // Fill the disk but for room for a few entries (each takes a few 4 KiB pages).
  fill(disk, 'filler', 48 * 1024);

  const r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--jobs', '1'], { cwd: dir, env });
  t.is(r.status, 1, r.stderr);
  // A progress line appears only after 5 s of run (the clock of a loaded machine): not what is tested.
  const lines = r.stderr.split('\n').filter((l) => !/^issue: /.test(l));
  const store = storeDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  t.regex(lines[0] ?? '', new RegExp(`^error: Cannot (write "${store}/certs/[0-9a-f]+"|lock the store at "${store}"): no space left on the disk \\(ENOSPC\\)$`));
  t.deepEqual(lines.slice(1), ['hint: Free space on that disk (or raise the quota), then run the command again: what it finished stays done', '']);

  const issued = (JSON.parse(cli(['cert', 'list', '--store', storeDir, '--json'], { cwd: dir }).stdout) as { user: string }[]).map((c) => c.user);
  t.true(issued.length >= 1 && issued.length < emails.length, `issued before the disk was full: ${issued.length}`);
  t.deepEqual(issued.sort(), emails.slice(0, issued.length).sort(), 'the first rows, in order, and nothing after the failure');
  const check = cli(['store', 'check', '--store', storeDir, '--json'], { cwd: dir, env });
  t.is(check.status, 0, check.stdout);
  t.deepEqual(JSON.parse(check.stdout).findings, [], 'no leftover: no temporary folder, no lock');

  // With no room at all, the first write is the lock's: refused in one line, and no lock left
  // behind to hold off the next writer until it went stale.
  fill(disk, 'filler2');
  t.is(statfsSync(disk).bavail, 0);
  const full = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--jobs', '1'], { cwd: dir, env });
  t.is(full.status, 1, full.stderr);
  t.deepEqual(full.stderr.split('\n').filter((l) => !/^issue: /.test(l)), [
    `error: Cannot lock the store at "${storeDir}": no space left on the disk (ENOSPC)`,
    'hint: Free space on that disk (or raise the quota), then run the command again: what it finished stays done',
    '',
  ]);
  t.false(existsSync(join(storeDir, 'store.lock')));

  rmSync(join(disk, 'filler'));
  rmSync(join(disk, 'filler2'));
  const rerun = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--json'], { cwd: dir, env });
  t.is(rerun.status, 0, rerun.stderr);
  t.like(JSON.parse(rerun.stdout), { generated: emails.length - issued.length, existing: issued.length, failed: 0 });
});

test('a store fault that passes (a PostgreSQL transaction that collided with another node\'s) fails its row only; the run goes on', async (t) => {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  writeFileSync(join(dir, 'users.csv'), ['email', ...emails.slice(0, 4)].join('\n') + '\n');
  const store = await openStore(storeDir, { passphrase: PASSPHRASE });
  const ifMissing = store.issueCertificateIfMissing.bind(store);
  const { pgError } = await import('../../src/store/postgres/db.js');
  store.issueCertificateIfMissing = async (o) => {
    if (o.user === emails[1]) throw pgError('postgres://db.example.com/ca', 'write', Object.assign(new Error('could not serialize access due to concurrent update'), { code: '40001' }));
    return ifMissing(o);
  };
  const s = await issueBatch({ store, usersFile: join(dir, 'users.csv'), purpose: 'smime-signing', jobs: 1 });
  t.like(s, { generated: 3, failed: 1 });
  t.deepEqual(s.failures, [{ line: 3, email: emails[1], code: 'ERR_STORE_IO', message: "The PostgreSQL server of postgres://db.example.com/ca aborted a transaction that collided with another node's (40001); run it again" }]);
});
