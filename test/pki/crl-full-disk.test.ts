/**
 * `crl -o ELSEWHERE` when the store's disk is full (issue 28): the CRL goes where it was asked
 * for; the store gets only its CRL number (a few hundred bytes), so the numbering stays right,
 * and a disk with no room even for that refuses in one line and writes nothing.
 */
import test from 'ava';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { initStore } from '../../src/store/fs-store.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { fill, SKIP_NO_DISK, smallDisk } from '../helpers/small-disk.js';
import { cli, need, openssl, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const number = (file: string) => BigInt(/X509v3 CRL Number: \s*(\d+)/.exec(openssl(['crl', '-inform', 'DER', '-in', file, '-noout', '-text']).stdout.toString())![1]!);

test('crl -o to another disk when the store\'s disk is full: written, numbers strictly increase; with no room for the number, one line and nothing written', async (t) => {
  if (!need(t, 'openssl')) return;
  const disk = smallDisk(t);
  if (!disk) {
    t.log(SKIP_NO_DISK);
    return t.pass();
  }
  const dir = tmp(t);
  const storeDir = join(disk, 'store');
  await initStore(storeDir, { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14 });
  // Three pages left (tmpfs counts whole pages): the lock, the CRL number and the number that
  // replaces it. No room for a copy of the CRL as well.
  fill(disk, 'filler', 3 * 4096);
  const crl = (out: string) => cli(['crl', '--store', storeDir, '-o', out], { cwd: dir, env });
  for (const out of ['a.crl', 'b.crl', 'c.crl']) {
    const r = crl(out);
    t.is(r.status, 0, r.stderr);
    t.is(r.stderr, `Wrote ${join(dir, out)}\n`);
  }
  t.true(number(join(dir, 'b.crl')) > number(join(dir, 'a.crl')));
  t.true(number(join(dir, 'c.crl')) > number(join(dir, 'b.crl')));
  t.deepEqual(readdirSync(join(storeDir, 'crl')), ['issuing.json'], 'no copy of the CRL in the store');

  // No room at all: refused before a number is taken; nothing is written.
  fill(disk, 'filler2');
  const full = crl('x.crl');
  t.is(full.status, 1);
  t.is(full.stderr, `error: Cannot lock the store at "${storeDir}": no space left on the disk (ENOSPC)\nhint: Free space on that disk (or raise the quota), then run the command again: what it finished stays done\n`);
  t.false(existsSync(join(dir, 'x.crl')));
  t.false(existsSync(join(storeDir, 'store.lock')));

  rmSync(join(disk, 'filler'));
  rmSync(join(disk, 'filler2'));
  t.is(crl('d.crl').status, 0);
  t.true(number(join(dir, 'd.crl')) > number(join(dir, 'c.crl')), 'no number handed out is used again');
  t.deepEqual(JSON.parse(readFileSync(join(storeDir, 'crl', 'issuing.json'), 'utf8')), { number: Number(number(join(dir, 'd.crl'))) });
  const check = cli(['store', 'check', '--store', storeDir, '--json'], { cwd: dir, env });
  t.is(check.status, 0, check.stdout);
  t.deepEqual(JSON.parse(check.stdout).findings, []);
});
