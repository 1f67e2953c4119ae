/**
 * The messages a new admin meets, one line each, with the right exit code and nothing written
 * (issue "The admin's CLI, polished"): bad choices, bad numbers, typos, `-` for stdin, missing
 * files, unknown links, unsigned profiles.
 */
import test from 'ava';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { cli, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

async function store(t: import('ava').ExecutionContext) {
  const dir = tmp(t);
  const storeDir = join(dir, 'store');
  await aliceStore(storeDir);
  return { dir, storeDir, certs: () => readdirSync(join(storeDir, 'certs')).sort() };
}

test('usage errors are one line, exit 2, and change nothing: a bad choice, a bad number, a typo flag', async (t) => {
  const { dir, storeDir, certs } = await store(t);
  const before = certs();
  const cases: [string[], string][] = [
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'signing'], 'error: Invalid values: Argument: purpose, Given: "signing", Choices: "smime-signing", "smime-encryption"'],
    [['cert', 'issue', '--store', storeDir, '--user', 'b@example.com', '--name', 'B', '--purpose', 'smime-signing', '--days', 'abc'], 'error: --days takes a number'],
    [['cert', 'issue-batch', '--store', storeDir, '--users', 'u.csv', '--purpose', 'smime-signing', '--dry-runn'], 'error: Unknown argument: --dry-runn'],
  ];
  for (const [args, line] of cases) {
    const r = cli(args, { cwd: dir, env });
    t.is(r.status, 2, args.join(' '));
    t.is(r.stderr, `${line}\n`);
  }
  t.deepEqual(certs(), before);
});

test('`--passphrase-file -` reads the passphrase from stdin; a missing passphrase file says "no such file"', async (t) => {
  const { dir, storeDir } = await store(t);
  const ok = cli(['cert', 'issue', '--store', storeDir, '--user', 'c@example.com', '--name', 'C', '--purpose', 'smime-signing', '--passphrase-file', '-'], { cwd: dir, input: `${PASSPHRASE}\n` });
  t.is(ok.status, 0, ok.stderr);
  const missing = cli(['cert', 'issue', '--store', storeDir, '--user', 'd@example.com', '--name', 'D', '--purpose', 'smime-signing', '--passphrase-file', 'nope.txt'], { cwd: dir });
  t.is(missing.status, 1);
  t.is(missing.stderr, 'error: Cannot read the passphrase file "nope.txt": no such file\n');
});

test('an unknown link points at link list; verify of an unsigned profile says it is not signed', async (t) => {
  const { dir, storeDir } = await store(t);
  const r = cli(['link', 'revoke', 'nope', '--store', storeDir], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: No link "nope"\nhint: See `profilesmith link list` for the links\n');
  writeFileSync(join(dir, 'u.mobileconfig'), '<?xml version="1.0"?><plist version="1.0"><dict/></plist>');
  const v = cli(['verify', 'u.mobileconfig'], { cwd: dir });
  t.is(v.status, 1);
  t.is(v.stderr, 'error: The profile is not signed: it is an unsigned XML property list\n');
});
