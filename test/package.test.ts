/**
 * What a vendor installs: the packed file list (npm pack), the public exports, and an import
 * without side effects.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { apiExamples, exampleContext } from './helpers/api-examples.js';
import { ROOT, tmp } from './helpers/tools.js';

test('npm pack ships dist (code and types), templates, the schema data, README and LICENSE; no tests, fixtures, sources or keys', (t) => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/errors.d.ts', 'dist/cli/main.js', 'dist/batch/worker.js', 'dist/cms/pkcs11.d.ts', 'templates/exchange-smime.mobileconfig.hbs', 'templates/exchange-smime.json', 'templates/partials/profile-head.hbs', 'schema/profiles/index.json', 'schema/profiles/com.apple.eas.account.json', 'README.md', 'LICENSE', 'package.json']) {
    t.true(files.includes(needed), `${needed} is shipped`);
  }
  const unwanted = files.filter((f) => /^(test|examples|src|scripts|bench|docs|\.ci|scratch)\/|\.test\.|fixtures|tsconfig|ava\.config/.test(f));
  t.deepEqual(unwanted, []);
  for (const f of files) {
    const text = readFileSync(join(ROOT, f), 'latin1');
    t.false(/-----BEGIN [A-Z ]*PRIVATE KEY-----\s*[A-Za-z0-9+/]{16}/.test(text), `${f} holds no key`);
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.is(pkg.exports['.'].types, './dist/index.d.ts');
  t.is(pkg.sideEffects, false);
});

test('the package root exports what the README promises, and importing it has no side effects', (t) => {
  const script = `
    const before = new Set(Object.keys(globalThis));
    const api = await import('profilesmith');
    const errors = await import('profilesmith/errors');
    const { createRequire } = await import('node:module');
    const cache = Object.keys(createRequire(import.meta.url).cache);
    console.log(JSON.stringify({
      names: Object.keys(api).sort(),
      errorCodes: Object.values(errors).filter((c) => typeof c === 'function' && typeof c.code === 'string').map((c) => c.code).sort(),
      newGlobals: Object.keys(globalThis).filter((k) => !before.has(k)),
      reflectMetadata: typeof Reflect.getMetadata,
      nativeLoaded: cache.filter((p) => /pkcs11js|better-sqlite3|node_modules\\/pg\\//.test(p)),
    }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  const out = JSON.parse(r.stdout);
  // The public surface, exactly: a new export is a decision (add it here), an internal one leaking out is a failure.
  t.deepEqual(out.names, [
    'CaStore', 'DEFAULT_KDF_BUDGET', 'FileStore', 'KdfBudget', 'LINT_RULES', 'LinkBook', 'LinkLedger', 'MAX_SCEP_MESSAGE', 'MemoryLinks', 'MemoryPort', 'MemoryStore', 'PURPOSES', 'PortLinks', 'PostgresStore', 'ProfilesmithError', 'RANDOM_PASSWORD_ITERATIONS', 'REVOCATION_REASONS', 'SCEP_CAPABILITIES', 'assertEmail', 'certifyPublicKey', 'checkImport',
    'checkStore', 'closeStore', 'compareRecords', 'createCertificateAuthority', 'createCrl', 'createMemoryStore', 'createPkiHandler', 'createProfileHandler', 'createScepHandler', 'createScepService',
    'decryptProfile', 'describeCertificate', 'distinctIssuers', 'encryptProfileXml', 'errors', 'findRecord', 'fingerprint', 'generateProfile', 'initPostgresStore', 'initStore', 'initializeCa', 'inspectProfile',
    'isPkiPath', 'isProfilesmithError', 'isRemovedUser', 'issueBatch', 'issueCertificate', 'keyOnDeviceError', 'keySigner', 'linkState', 'lintProfile', 'lintToSarif', 'listTemplates',
    'loadTemplate', 'migratePort', 'migrateStore', 'openPostgresStore', 'openStore', 'parseCertificateRequest', 'parsePkcs11Uri', 'parseProfile', 'pkcs11Signer', 'planReimport', 'readIdentity', 'readIdentityAsync', 'removalOf', 'resolveStoreDir', 'runBatch', 'servesPurpose', 'signProfile',
    'statusOf', 'toCertificates', 'toPem', 'toPkcs12', 'validateProfile', 'verifyProfile',
  ]);
  t.true(out.errorCodes.includes('ERR_PKCS11'));
  t.true(out.errorCodes.includes('ERR_SIGNER_INVALID'));
  t.true(out.errorCodes.includes('ERR_STORE_ENTRY_NOT_FOUND'));
  t.deepEqual(out.newGlobals, [], 'no globals added');
  t.is(out.reflectMetadata, 'undefined', 'the Reflect polyfill loads only when a certificate is made');
  t.deepEqual(out.nativeLoaded, [], 'no native module loaded on import');
});

test('the packed files name no file the package does not ship, and the declarations hold no @internal member', (t) => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  // The design notes beside the repository, the sources, source maps pointing at them.
  const unshipped = /shared\/reference|\.\.\/shared|apple-spec|ios-behaviour\.md|perf-baseline|ARCHITECTURE\.md|sourceMappingURL|"sources":\["\.\.\/src/;
  const offenders = files.filter((f) => !f.endsWith('.md') && unshipped.test(readFileSync(join(ROOT, f), 'utf8')));
  t.deepEqual(offenders, []);
  t.false(files.some((f) => f.endsWith('.map')), 'no source maps (they would point at src/, which is not shipped)');
  const internal = files.filter((f) => f.endsWith('.d.ts') && /@internal/.test(readFileSync(join(ROOT, f), 'utf8')));
  t.deepEqual(internal, [], 'stripInternal keeps @internal members out of the declarations');
  const fsStore = readFileSync(join(ROOT, 'dist', 'store', 'fs-store.d.ts'), 'utf8');
  t.false(/derivedKey|unlockWithKey/.test(fsStore), 'the store key is not in the types');
});

/**
 * A vendor's new project: the packed tarball unpacked as npm installs it, the package's
 * production dependencies (from package-lock.json, no devDependency: no @types/pg, no
 * @types/yargs) beside it, and @types/node, which every Node project has. No network.
 */
function consumerProject(t: ExecutionContext): { proj: string; manifest: Record<string, any> } {
  const dir = tmp(t);
  // With its scripts, as npm publish packs it (prepack builds only when dist/ is older than src/).
  const packed = spawnSync('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' });
  if (packed.status !== 0) throw new Error(packed.stderr);
  const tarball = join(dir, JSON.parse(packed.stdout)[0].filename as string);
  const proj = join(dir, 'project');
  const installed = join(proj, 'node_modules', 'profilesmith');
  mkdirSync(installed, { recursive: true });
  const untar = spawnSync('tar', ['xzf', tarball, '-C', installed, '--strip-components=1'], { encoding: 'utf8' });
  if (untar.status !== 0) throw new Error(untar.stderr);
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  const production = Object.entries(lock.packages)
    .filter(([path, p]) => /^node_modules\/(@[^/]+\/)?[^/@]+$/.test(path) && !p.dev)
    .map(([path]) => path.slice('node_modules/'.length));
  // The consumer's own: @types/node, and better-sqlite3 for the SQLite example.
  for (const name of [...production, '@types/node', 'better-sqlite3', '@types/better-sqlite3']) {
    const from = join(ROOT, 'node_modules', name);
    if (!existsSync(from)) continue; // an optional dependency not installed here
    mkdirSync(join(proj, 'node_modules', name, '..'), { recursive: true });
    symlinkSync(from, join(proj, 'node_modules', name), 'dir');
  }
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ name: 'vendor-app', private: true, type: 'module', dependencies: { profilesmith: `file:${tarball}` } }));
  return { proj, manifest: JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) };
}

/** Every export of the installed package by name, values and types, as the compiler sees them. */
function exportsOf(proj: string, specifier: string): { values: string[]; types: string[]; arity: Record<string, number> } {
  const entry = join(proj, 'exports-probe.ts');
  writeFileSync(entry, `export * from '${specifier}';\n`);
  const program = ts.createProgram([entry], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(entry)!)!;
  const values: string[] = [];
  const types: string[] = [];
  const arity: Record<string, number> = {};
  for (const s of checker.getExportsOfModule(symbol)) {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
    (target.flags & ts.SymbolFlags.Value ? values : types).push(s.name);
    const declaration = target.declarations?.[0];
    const parameters = declaration && (ts.isInterfaceDeclaration(declaration) || ts.isTypeAliasDeclaration(declaration)) ? declaration.typeParameters : undefined;
    arity[s.name] = parameters?.filter((p) => !p.default).length ?? 0;
  }
  rmSync(entry);
  return { values: values.sort(), types: types.sort(), arity };
}

test('the packed tarball installed in a new project type-checks with TypeScript defaults (strict, skipLibCheck false; nodenext, then bundler) over every public export, every API example, the examples and the type test', (t) => {
  const { proj } = consumerProject(t);
  const root = exportsOf(proj, 'profilesmith');
  const errs = exportsOf(proj, 'profilesmith/errors');
  t.true(root.values.includes('createProfileHandler') && root.types.includes('ProfileHandlerOptions'), JSON.stringify(root));
  // One program naming every export: each value used, each type named (a generic one with `any` arguments).
  const program = [
    `import * as api from 'profilesmith';`,
    `import * as errors from 'profilesmith/errors';`,
    `import type * as types from 'profilesmith';`,
    `export const values = [${root.values.map((v) => `api.${v}`).join(', ')}, ${errs.values.map((v) => `errors.${v}`).join(', ')}];`,
    `export type Types = [${root.types.map((n) => `types.${n}${root.arity[n] ? `<${Array(root.arity[n]).fill('any').join(', ')}>` : ''}`).join(', ')}];`,
  ].join('\n');
  writeFileSync(join(proj, 'every-export.ts'), program + '\n');
  // The examples and the type test, as a vendor would copy them.
  cpSync(join(ROOT, 'examples'), join(proj, 'examples'), { recursive: true });
  cpSync(join(ROOT, 'test', 'types', 'public-api.ts'), join(proj, 'public-api.ts'));
  // Every @example of the API reference, each a module of its own.
  mkdirSync(join(proj, 'api-examples'));
  writeFileSync(join(proj, 'api-examples', 'context.d.ts'), exampleContext(root.values, errs.values));
  const examples = apiExamples();
  t.true(examples.length > 80, `${examples.length} examples`);
  examples.forEach((e, i) => writeFileSync(join(proj, 'api-examples', `${String(i).padStart(3, '0')}-${e.page.replace(/[/.]/g, '-')}.ts`), `${e.code}\nexport {};\n`));
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const configs = {
    nodenext: { strict: true, module: 'nodenext', noEmit: true },
    bundler: { strict: true, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', noEmit: true },
  };
  for (const [name, compilerOptions] of Object.entries(configs)) {
    writeFileSync(join(proj, 'tsconfig.json'), JSON.stringify({ compilerOptions, include: ['every-export.ts', 'public-api.ts', 'examples', 'api-examples'] }));
    const r = spawnSync(process.execPath, [tsc, '-p', '.', '--listFiles'], { cwd: proj, encoding: 'utf8' });
    const diagnostics = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l));
    t.deepEqual(diagnostics, [], `${name}: tsc in the new project`);
    t.is(r.status, 0, `${name}: ${r.stdout.slice(0, 4000)}${r.stderr}`);
    // What was checked is what npm installed: the unpacked tarball, not the repository's dist.
    const listed = r.stdout.split('\n').filter((l) => l.includes('/profilesmith/dist/'));
    t.true(listed.length > 0 && listed.every((l) => l.startsWith(join(proj, 'node_modules'))), `${name}: declarations from the installed package`);
    t.false(r.stdout.includes('/@types/pg/'), `${name}: the declarations need no @types/pg`);
  }
  // And it runs from there: the dependencies resolve and the shipped templates are found.
  const script = `import { createMemoryStore, generateProfile, verifyProfile } from 'profilesmith';
    const store = await createMemoryStore({ organization: 'Example Corp' });
    await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-signing' });
    await store.issueCertificate({ user: 'a@example.com', name: 'A', purpose: 'smime-encryption' });
    const p = await generateProfile({ store, template: 'exchange-smime', user: 'a@example.com', data: { exchange: { host: 'mail.example.com' } } });
    const v = await verifyProfile(p.bytes, { ca: (await store.trustChain()).roots });
    console.log(v.valid, import.meta.resolve('profilesmith'));`;
  const ran = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: proj, encoding: 'utf8' });
  t.is(ran.status, 0, ran.stderr);
  t.is(ran.stdout.trim(), `true ${pathToFileURL(join(proj, 'node_modules', 'profilesmith', 'dist', 'index.js')).href}`);
});

test('the packed package.json has no install-time script (npm 11 flags prepare), while the repository keeps its build on install', (t) => {
  const { manifest } = consumerProject(t);
  const lifecycle = ['preinstall', 'install', 'postinstall', 'prepare', 'prepack', 'postpack', 'prepublish'];
  t.deepEqual(Object.keys(manifest.scripts ?? {}).filter((s) => lifecycle.includes(s)), []);
  t.is(manifest.bin.profilesmith, 'dist/cli/main.js');
  const repo = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.is(repo.scripts.prepare, 'npm run build', 'a fresh clone builds dist/ on npm install, so npm start works');
  // Packing put the repository's package.json back as it was.
  t.false(existsSync(join(ROOT, '.package.json.prepack')));
  const { scripts: _a, ...packedRest } = manifest;
  const { scripts: _b, ...repoRest } = repo;
  t.deepEqual(packedRest, repoRest, 'only the scripts differ');
});

test('the installed CLI runs without yargs installed (it ships bundled), and --version is the package\'s, not the project\'s', (t) => {
  const { proj, manifest } = consumerProject(t);
  t.false(existsSync(join(proj, 'node_modules', 'yargs')), 'yargs is a devDependency: npm does not install it');
  writeFileSync(join(proj, 'package.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(proj, 'package.json'), 'utf8')), version: '9.9.9' }));
  const bin = join(proj, 'node_modules', 'profilesmith', manifest.bin.profilesmith);
  for (const argv of [['--version'], ['cert', '--version']]) {
    const r = spawnSync(process.execPath, [bin, ...argv], { cwd: proj, encoding: 'utf8' });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout, `${manifest.version}\n`, argv.join(' '));
  }
  const help = spawnSync(process.execPath, [bin, '--help'], { cwd: proj, encoding: 'utf8', env: { ...process.env, LANG: 'de_DE.UTF-8', LC_ALL: '' } });
  t.is(help.status, 0, help.stderr);
  t.true(help.stdout.includes('profilesmith cert <command>'), help.stdout);
  t.true(help.stdout.includes('Kommandos:'), 'yargs finds its translations beside the bundle');
});
