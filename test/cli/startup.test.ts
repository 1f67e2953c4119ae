/**
 * Issue 29, start-up: a command loads only what it uses. What is asserted is what each run
 * loads, never how long it takes (npm run bench measures that: BENCH_ONLY=startup). A preload
 * records every module the run resolves (an ESM resolve hook, in its own thread, appending to a
 * file) and, at exit, the CommonJS modules in require.cache (node-forge and @peculiar/x509 are
 * required, which no ESM hook sees) and the Node built-ins loaded (process.moduleLoadList).
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { aliceStoreIn } from '../helpers/fixture.js';
import { BIN, ROOT, tmp } from '../helpers/tools.js';

const HOOKS = `
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(process.env.PROFILESMITH_TRACE, 'module ' + r.url + '\\n');
  return r;
}`;
const PRELOAD = `
import { register, createRequire } from 'node:module';
import { appendFileSync } from 'node:fs';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(HOOKS)}));
const cache = createRequire(import.meta.url).cache;
process.on('exit', () => {
  const lines = [...Object.keys(cache).map((f) => 'module ' + f), ...process.moduleLoadList.map((m) => 'builtin ' + m)];
  appendFileSync(process.env.PROFILESMITH_TRACE, lines.join('\\n') + '\\n');
});`;

/** The heavy dependencies none of these commands may load (yargs: the package, not our bundle of it). */
const HEAVY = ['node-forge', '@peculiar/x509', 'reflect-metadata', 'pg', 'handlebars', 'plist', 'yargs', 'tsyringe', 'pkcs11js'];

interface Loaded {
  /** Our modules, relative to dist/ (the CLI must run from dist/, not the sources). */
  ours: string[];
  /** Packages from node_modules, by name. */
  packages: string[];
  builtins: string[];
  stdout: string;
}

function loadedBy(t: ExecutionContext, args: string[], cwd: string): Loaded {
  const dir = tmp(t);
  const preload = join(dir, 'trace.mjs');
  const trace = join(dir, 'trace.txt');
  writeFileSync(preload, PRELOAD);
  writeFileSync(trace, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, BIN, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', PROFILESMITH_TRACE: trace },
    encoding: 'utf8',
  });
  t.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  const lines = readFileSync(trace, 'utf8').split('\n').filter(Boolean);
  const files = new Set(
    lines
      .filter((l) => l.startsWith('module '))
      .map((l) => l.slice('module '.length))
      .filter((u) => !u.startsWith('node:') && u !== pathToFileURL(preload).href && !u.startsWith('data:'))
      .map((u) => (u.startsWith('file:') ? fileURLToPath(u) : u)),
  );
  const packages = new Set<string>();
  const ours: string[] = [];
  for (const f of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) packages.add(m[1]!);
    else ours.push(relative(join(ROOT, 'dist'), f));
  }
  return {
    ours: ours.sort(),
    packages: [...packages].sort(),
    builtins: lines.filter((l) => l.startsWith('builtin NativeModule ')).map((l) => l.slice('builtin NativeModule '.length)),
    stdout: r.stdout,
  };
}

function noneHeavy(t: ExecutionContext, what: string, loaded: Loaded): void {
  t.deepEqual(loaded.packages.filter((p) => HEAVY.includes(p)), [], `${what} loads none of ${HEAVY.join(', ')}`);
  t.deepEqual(loaded.ours.filter((f) => f.startsWith('..')), [], `${what} runs from dist/`);
}

test('--version loads the entry and the version module only: no parser, no command', (t) => {
  const loaded = loadedBy(t, ['--version'], ROOT);
  t.is(loaded.stdout, `${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}\n`);
  noneHeavy(t, '--version', loaded);
  t.deepEqual(loaded.ours, ['cli/main.js', 'cli/version.js']);
  t.deepEqual(loaded.packages, []);
});

test('--help loads the bundled yargs and the command table, not the commands: no library code, no node:crypto', (t) => {
  const loaded = loadedBy(t, ['--help'], ROOT);
  t.true(loaded.stdout.includes('profilesmith cert <command>'), loaded.stdout);
  noneHeavy(t, '--help', loaded);
  t.deepEqual(loaded.packages, [], 'yargs is the bundle in dist/vendor, not the package');
  t.true(loaded.ours.includes('vendor/yargs.js'));
  t.deepEqual(loaded.ours.filter((f) => f.startsWith('cli/commands/') && f !== 'cli/commands/index.js'), [], 'no command module');
  t.deepEqual(loaded.ours.filter((f) => /^(certs|cms|store\/file|profile\/(render|generate|parse)|batch|server|scep|pki)\//.test(f)), [], 'no library code beyond the CLI\'s own');
  t.false(loaded.builtins.includes('crypto'), 'node:crypto is not loaded');
  // 14 today (main, run, version, the command table, the yargs bundle and the light modules
  // run.ts needs for its middleware and errors): a static import of a command or of the
  // library from run.ts, or of something heavy from those, goes past this.
  t.log(`--help: ${loaded.ours.length} of our modules`);
  t.true(loaded.ours.length <= 18, `--help loads ${loaded.ours.length} of our modules: ${loaded.ours.join(', ')}`);
});

test('cert list loads the file store\'s reading code only: no certificate code, no issuing, no PostgreSQL', async (t) => {
  const { dir, storeDir } = await aliceStoreIn(t);
  const loaded = loadedBy(t, ['cert', 'list', '--store', storeDir], dir);
  t.is(loaded.stdout.trim().split('\n').length, 4, loaded.stdout); // the header and alice's three
  noneHeavy(t, 'cert list', loaded);
  t.deepEqual(loaded.packages, []);
  t.deepEqual(loaded.ours.filter((f) => f.startsWith('cli/commands/') && !['cli/commands/index.js', 'cli/commands/cert.js', 'cli/commands/cert-import.js'].includes(f)), [], 'only the cert command');
  const forbidden = /^(certs\/(x509|issue|crl|keys|import|pkcs12|pkcs12-read|forge|ca|extensions)|cms\/|store\/file\/(admin|entries|pki|ca-read)|store\/issuance|store\/postgres\/(?!db\.js)|profile\/(render|generate|parse|template-data)|batch\/|scep\/|pki\/)/;
  t.deepEqual(loaded.ours.filter((f) => forbidden.test(f)), [], 'nothing that issues, signs, publishes or renders');
  // 44 today; before issue 29, --help and cert list loaded 386 modules (every command, most of the library).
  t.log(`cert list: ${loaded.ours.length} of our modules`);
  t.true(loaded.ours.length <= 50, `cert list loads ${loaded.ours.length} of our modules: ${loaded.ours.join(', ')}`);
});

test('a reader that stops reading (profilesmith --help | head -1, | true) ends the command quietly: exit 0, no EPIPE stack trace', async (t) => {
  const { spawn } = await import('node:child_process');
  for (const args of [['--help'], ['cert', '--help'], ['templates', 'list']]) {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    // The reading end is closed at once, before the child has even loaded, as `| true` would: its first write meets EPIPE.
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    t.is(stderr, '', args.join(' '));
    t.is(code, 0, args.join(' '));
  }
});
