/**
 * The comforts mkcert, step and wrangler users expect (issue "The admin's CLI, polished"): a
 * config file with its precedence, shell completion run by the real shells, -o that refuses
 * to overwrite, --dry-run, and skipping removed users. Through the CLI, as processes.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aliceStoreIn, PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, snapshotDir, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

const store = aliceStoreIn;

/** The Host of the account payload of an unsigned profile written by `generate --no-sign`. */
function host(file: string): string | undefined {
  return /<key>Host<\/key>\s*<string>([^<]*)<\/string>/.exec(readFileSync(file, 'utf8'))?.[1];
}

test('config file: ./profilesmith.json, --config, PROFILESMITH_CONFIG; flags and the environment override it; config show says where each value came from', async (t) => {
  const { dir, storeDir } = await store(t);
  mkdirSync(join(dir, 'site'));
  // A relative store is relative to the config file.
  writeFileSync(join(dir, 'site', 'profilesmith.json'), JSON.stringify({ store: '../store', set: { 'exchange.host': 'cwd.example.com', 'imap.host': 'other-template.example.com' } }));
  const site = join(dir, 'site');
  const gen = (args: string[], extra: Record<string, string> = {}, cwd = site) =>
    cli(['generate', 'exchange-smime', '--user', 'alice@example.com', '--no-sign', '--force', '-o', join(dir, 'p.xml'), ...args], { cwd, env: { ...env, ...extra } });

  let r = gen([]);
  t.is(r.status, 0, r.stderr);
  t.is(host(join(dir, 'p.xml')), 'cwd.example.com', 'store and value from ./profilesmith.json');
  t.notRegex(r.stderr, /imap\.host/, 'a "set" key of another template is not warned about');

  r = gen(['--set', 'exchange.host=flag.example.com']);
  t.is(r.status, 0, r.stderr);
  t.is(host(join(dir, 'p.xml')), 'flag.example.com', '--set wins over the config');

  writeFileSync(join(dir, 'data.json'), JSON.stringify({ exchange: { host: 'data.example.com' } }));
  r = gen(['--data', join(dir, 'data.json')]);
  t.is(host(join(dir, 'p.xml')), 'data.example.com', '--data wins over the config');

  writeFileSync(join(dir, 'other.json'), JSON.stringify({ store: './store', templates: { 'exchange-smime': { 'exchange.host': 'named.example.com' } }, set: { 'exchange.host': 'loses.example.com' } }));
  r = gen(['--config', join(dir, 'other.json')]);
  t.is(r.status, 0, r.stderr);
  t.is(host(join(dir, 'p.xml')), 'named.example.com', '--config wins over ./profilesmith.json; templates.NAME over set');
  r = gen([], { PROFILESMITH_CONFIG: join(dir, 'other.json') });
  t.is(host(join(dir, 'p.xml')), 'named.example.com', 'PROFILESMITH_CONFIG wins over ./profilesmith.json');

  // --store and PROFILESMITH_STORE over the config's store: an empty directory is no store.
  mkdirSync(join(dir, 'empty'));
  r = gen(['--store', join(dir, 'empty')]);
  t.is(r.status, 1);
  t.regex(r.stderr, /^error: .*empty/);
  r = gen([], { PROFILESMITH_STORE: join(dir, 'empty') });
  t.is(r.status, 1);
  r = gen(['--no-config'], { PROFILESMITH_STORE: storeDir });
  t.is(r.status, 1, '--no-config: no exchange.host');
  t.regex(r.stderr, /exchange\.host/);

  const show = cli(['config', 'show', '--json'], { cwd: site, env: { PROFILESMITH_STORE: storeDir } });
  t.is(show.status, 0, show.stderr);
  const rows = JSON.parse(show.stdout) as { key: string; value: string; source: string }[];
  t.deepEqual(rows[0], { key: 'config', value: join(site, 'profilesmith.json'), source: 'working directory' });
  t.deepEqual(rows[1], { key: 'store', value: storeDir, source: 'PROFILESMITH_STORE' });
  t.deepEqual(rows[2], { key: 'set exchange.host', value: '"cwd.example.com"', source: 'config set' });
  const tpl = JSON.parse(cli(['config', 'show', '--json', '--template', 'exchange-smime', '--config', join(dir, 'other.json')], { cwd: site }).stdout) as typeof rows;
  t.deepEqual(tpl[1], { key: 'store', value: storeDir, source: 'config file' });
  t.deepEqual(tpl.find((x) => x.key === 'exchange.host'), { key: 'exchange.host', value: '"named.example.com"', source: 'config templates.exchange-smime' });
  t.deepEqual(tpl.find((x) => x.key === 'exchange.accountName'), { key: 'exchange.accountName', value: '"${organization} Exchange"', source: 'template default' });
});

test('config file: a secret, an unknown key, bad JSON and a missing --config file are one line each, exit 1, nothing written', async (t) => {
  const { dir, storeDir } = await store(t);
  const before = snapshotDir(storeDir);
  const cases: [unknown, string][] = [
    [{ set: { 'removal.password': 'hunter2' } }, 'error: The config file profilesmith.json: "set": "removal.password" is a secret, and secrets do not belong in a config file; put it in a --data file'],
    [{ passphrase: 'hunter22' }, 'error: The config file profilesmith.json: "passphrase" looks like a secret, and secrets do not belong in a config file (use PROFILESMITH_PASSPHRASE_FILE or a --data file)'],
    [{ stroe: './store' }, 'error: The config file profilesmith.json: unknown key "stroe" (known: store, set, templates)'],
    ['{"store": ', 'error: The config file profilesmith.json: not JSON ('],
  ];
  for (const [body, line] of cases) {
    writeFileSync(join(dir, 'profilesmith.json'), typeof body === 'string' ? body : JSON.stringify(body));
    const r = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '-o', 'a.mobileconfig'], { cwd: dir, env });
    t.is(r.status, 1, line);
    t.true(r.stderr.startsWith(line), r.stderr);
    t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
    t.false(existsSync(join(dir, 'a.mobileconfig')));
  }
  const missing = cli(['config', 'show', '--config', 'nope.json'], { cwd: dir });
  t.is(missing.status, 1);
  t.is(missing.stderr, `error: Cannot read the config file ${join(dir, 'nope.json')} (--config): no such file\n`);
  t.deepEqual(snapshotDir(storeDir), before);
});

test('completion: the bash, zsh and fish scripts complete commands, flags, choices, template names and the --set keys of the template on the line', async (t) => {
  const dir = tmp(t);
  // The scripts call `profilesmith` from the PATH, as an installed package would be.
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin', 'profilesmith'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
  chmodSync(join(dir, 'bin', 'profilesmith'), 0o755);
  const PATH = `${join(dir, 'bin')}:${process.env.PATH}`;
  const script = (shell: string) => {
    const r = cli(['completion', shell]);
    t.is(r.status, 0, r.stderr);
    writeFileSync(join(dir, `c.${shell}`), r.stdout);
    return join(dir, `c.${shell}`);
  };

  // bash: the function bash calls on Tab, with COMP_WORDS as bash splits the line (at "=" too).
  const bash = script('bash');
  const complete = (...words: string[]) => {
    const r = spawnSync('bash', ['-c', `source "${bash}"; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _profilesmith_complete; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', 'profilesmith', ...words], { cwd: dir, env: { PATH, HOME: dir }, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    return r.stdout.split('\n').filter(Boolean);
  };
  t.deepEqual(complete('gen'), ['generate']);
  t.deepEqual(complete('cert', 'issue-'), ['issue-batch']);
  t.deepEqual(complete('generate', 'imap'), ['imap-smime']);
  t.deepEqual(complete('generate', 'exchange-smime', '--set', 'exchange.'), ['exchange.host=', 'exchange.ssl=', 'exchange.username=', 'exchange.accountName=']);
  t.deepEqual(complete('generate', 'imap-smime', '--set', 'smtp.p'), ['smtp.port=']);
  t.false(complete('generate', 'exchange-smime', '--set', 'removal.').includes('removal.password='), 'secrets are not offered for --set');
  t.deepEqual(complete('generate', 'exchange-smime', '--set', 'smime.signingEnabled', '='), ['true', 'false']);
  t.deepEqual(complete('cert', 'issue', '--purpose', 'smime-e'), ['smime-encryption']);
  t.deepEqual(complete('batch', 'exchange-smime', '--only'), ['--only-changed']);
  t.deepEqual(complete('batch', 'exchange-smime', '--users', ''), [], 'a file option: the shell completes file names');
  t.deepEqual(complete('completion', 'z'), ['zsh']);
  // A template given by path: its own variables, read as generate reads the path.
  writeFileSync(join(dir, 'mine.mobileconfig.hbs'), '<plist version="1.0"><dict/></plist>');
  writeFileSync(join(dir, 'mine.json'), JSON.stringify({ description: 'mine', variables: { 'site.name': { type: 'string' } } }));
  t.deepEqual(complete('generate', './mine.mobileconfig.hbs', '--set', 'site.'), ['site.name=']);

  // zsh: the completion function run by zsh, with compadd recording what it is given.
  const zsh = spawnSync('zsh', ['--version']);
  if (zsh.error) t.log('zsh is not installed: the zsh script is not run (.ci/run installs it)');
  else {
    const z = spawnSync(
      'zsh',
      ['-f', '-c', `compdef() { :; }; compadd() { local s=; [[ $1 == -S ]] && { s=' (no space)'; shift 2; }; [[ $1 == -- ]] && shift; print -l -- "\${@/%/$s}"; }; _files() { print '(files)'; }; source "${script('zsh')}"; words=(profilesmith generate exchange-smime --set smime.encryptBy); CURRENT=5; _profilesmith; words=(profilesmith batch x --users ''); CURRENT=5; _profilesmith`],
      { cwd: dir, env: { PATH, HOME: dir }, encoding: 'utf8' },
    );
    t.is(z.status, 0, z.stderr);
    t.deepEqual(z.stdout.split('\n').filter(Boolean), ['smime.encryptByDefault= (no space)', 'smime.encryptByDefaultUserOverrideable= (no space)', '(files)']);
  }
  // fish: `complete -C` asks fish itself what it would offer for a command line.
  const fish = spawnSync('fish', ['--version']);
  if (fish.error) t.log('fish is not installed: the fish script is not run (.ci/run installs it)');
  else {
    const f = spawnSync('fish', ['--no-config', '-c', `source "${script('fish')}"; complete -C 'profilesmith generate exchange-smime --set exchange.ho'; complete -C 'profilesmith templates sh'`], { cwd: dir, env: { PATH, HOME: dir }, encoding: 'utf8' });
    t.is(f.status, 0, f.stderr);
    t.deepEqual(f.stdout.split('\n').filter(Boolean).map((l) => l.split('\t')[0]), ['exchange.host=', 'show']);
  }
});

test('-o refuses to replace a file without --force, and says so before any work; a missing directory and a directory are one line each', async (t) => {
  const { dir, storeDir } = await store(t);
  writeFileSync(join(dir, 'a.mobileconfig'), 'keep me');
  const before = snapshotDir(storeDir);
  const base = ['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=h.example.com'];
  let r = cli([...base, '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: "a.mobileconfig" exists; pass --force to replace it (or choose another -o)\n');
  t.is(readFileSync(join(dir, 'a.mobileconfig'), 'utf8'), 'keep me');
  r = cli([...base, '-o', 'nodir/a.mobileconfig'], { cwd: dir, env });
  t.is(r.stderr, 'error: Cannot write "nodir/a.mobileconfig": the directory "nodir" does not exist\n');
  r = cli([...base, '-o', '.'], { cwd: dir, env });
  t.is(r.stderr, 'error: Cannot write ".": it is a directory; name a file\n');
  // crl takes a CRL number when it makes one: refused before, nothing in the store changes.
  r = cli(['crl', '--store', storeDir, '-o', 'a.mobileconfig'], { cwd: dir, env });
  t.is(r.status, 1);
  t.is(r.stderr, 'error: "a.mobileconfig" exists; pass --force to replace it (or choose another -o)\n');
  t.deepEqual(snapshotDir(storeDir), before);
  r = cli([...base, '-o', 'a.mobileconfig', '--force'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.not(readFileSync(join(dir, 'a.mobileconfig'), 'utf8'), 'keep me');
  t.deepEqual(readdirSync(dir).filter((f) => f.startsWith('.tmp-')), []);
});

test('--dry-run: batch makes every profile in memory and writes nothing; cert issue-batch issues nothing and needs no passphrase', async (t) => {
  const { dir, storeDir } = await store(t);
  writeFileSync(join(dir, 'users.csv'), 'email,name\nalice@example.com,Alice\nnobody@example.com,Nobody\n');
  const before = snapshotDir(storeDir);
  const b = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com', '--dry-run', '--json'], { cwd: dir, env });
  t.is(b.status, 1, 'the row without certificates fails in a dry run too');
  const summary = JSON.parse(b.stdout) as { dryRun: boolean; generated: number; failed: number };
  t.like(summary, { dryRun: true, generated: 1, failed: 1 });
  t.regex(b.stderr, /^error: line 3: nobody@example\.com: /m);
  t.regex(b.stderr, /Dry run, nothing written: 1 would be written, 0 unchanged, 1 failed/);
  t.false(existsSync(join(dir, 'out')), 'not even the output directory');
  t.deepEqual(snapshotDir(storeDir), before, 'no PKCS#12 cache entry either');

  const i = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--dry-run'], { cwd: dir });
  t.is(i.status, 0, i.stderr);
  t.regex(i.stderr, /Dry run, nothing issued: 1 would be issued, 1 already held one, 0 failed/);
  writeFileSync(join(dir, 'bad.csv'), `email,name\nnot-an-address,X\nlong@example.com,${'N'.repeat(70)}\n`);
  const bad = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'bad.csv', '--purpose', 'smime-signing', '--dry-run'], { cwd: dir });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /^error: line 2: not-an-address: /m);
  t.regex(bad.stderr, /^error: line 3: long@example\.com: The common name "N+" has 70 characters; X\.509 allows at most 64/m);
  t.deepEqual(snapshotDir(storeDir), before);
  // The store's own policy is part of the dry run: a CA limited to a domain refuses others.
  const limited = join(dir, 'limited');
  t.is(cli(['init', '--store', limited, '--org', 'Limited', '--permit-email-domain', 'example.com'], { cwd: dir, env }).status, 0);
  writeFileSync(join(dir, 'other.csv'), 'email\nok@example.com\nx@other.org\n');
  const policy = cli(['cert', 'issue-batch', '--store', limited, '--users', 'other.csv', '--purpose', 'smime-signing', '--dry-run'], { cwd: dir });
  t.is(policy.status, 1);
  t.regex(policy.stderr, /^error: line 3: x@other\.org: "x@other\.org" is outside the email domains this CA may issue for \(example\.com\)$/m);
  t.regex(policy.stderr, /Dry run, nothing issued: 1 would be issued, 0 already held one, 1 failed/);
});

test('a user removed from the store fails their batch row with one clear line; --skip-removed skips them (batch and issue-batch)', async (t) => {
  const { dir, storeDir } = await store(t);
  t.is(cli(['cert', 'issue', '--store', storeDir, '--user', 'bob@example.com', '--name', 'Bob', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);
  t.is(cli(['user', 'remove', 'bob@example.com', '--store', storeDir, '--revoke'], { cwd: dir, env }).status, 0);
  writeFileSync(join(dir, 'users.csv'), 'email\nalice@example.com\nbob@example.com\n');
  const line = 'error: line 3: bob@example.com: bob@example.com was removed from the store (user remove); take the row out of the users file, or pass --skip-removed';
  const args = ['batch', 'exchange-smime', '--store', storeDir, '--users', 'users.csv', '--out', 'out', '--set', 'exchange.host=h.example.com'];
  let r = cli(args, { cwd: dir, env });
  t.is(r.status, 1);
  t.true(r.stderr.split('\n').includes(line), r.stderr);
  r = cli([...args, '--skip-removed', '--json'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.like(JSON.parse(r.stdout), { generated: 1, skipped: 1, failed: 0, done: 2 });
  t.regex(r.stderr, /1 removed users skipped/);
  const certs = () => readdirSync(join(storeDir, 'certs')).length;
  const n = certs();
  r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing'], { cwd: dir, env });
  t.is(r.status, 1, 'issuing again would re-enroll bob');
  t.true(r.stderr.split('\n').includes(line), r.stderr);
  r = cli(['cert', 'issue-batch', '--store', storeDir, '--users', 'users.csv', '--purpose', 'smime-signing', '--skip-removed'], { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  t.is(certs(), n);
  t.true(statSync(join(dir, 'out', 'alice@example.com.mobileconfig')).isFile());
});
