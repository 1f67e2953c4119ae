/**
 * What a vendor installs: the packed file list (npm pack), the public exports, and an import
 * without side effects.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/tools.js';

test('npm pack ships dist (code and types), templates, README and LICENSE; no tests, fixtures, sources or keys', (t) => {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const files: string[] = JSON.parse(r.stdout)[0].files.map((f: { path: string }) => f.path);
  for (const needed of ['dist/index.js', 'dist/index.d.ts', 'dist/errors.d.ts', 'dist/cli/main.js', 'dist/batch/worker.js', 'dist/cms/pkcs11.d.ts', 'templates/exchange-smime.mobileconfig.hbs', 'templates/exchange-smime.json', 'templates/partials/profile-head.hbs', 'README.md', 'LICENSE', 'package.json']) {
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
    'DEFAULT_KDF_BUDGET', 'FileStore', 'KdfBudget', 'LINT_RULES', 'LinkBook', 'LinkLedger', 'MAX_SCEP_MESSAGE', 'MemoryLinks', 'MemoryStore', 'PURPOSES', 'PostgresStore', 'ProfilesmithError', 'RANDOM_PASSWORD_ITERATIONS', 'REVOCATION_REASONS', 'SCEP_CAPABILITIES', 'assertEmail', 'certifyPublicKey', 'checkImport',
    'checkStore', 'closeStore', 'compareRecords', 'createCertificateAuthority', 'createCrl', 'createMemoryStore', 'createPkiHandler', 'createProfileHandler', 'createScepHandler', 'createScepService',
    'decryptProfile', 'describeCertificate', 'distinctIssuers', 'encryptProfileXml', 'errors', 'findRecord', 'fingerprint', 'generateProfile', 'initPostgresStore', 'initStore', 'inspectProfile',
    'isPkiPath', 'isProfilesmithError', 'isRemovedUser', 'issueBatch', 'issueCertificate', 'keyOnDeviceError', 'keySigner', 'linkState', 'lintProfile', 'lintToSarif', 'listTemplates',
    'loadTemplate', 'migrateStore', 'openPostgresStore', 'openStore', 'parseCertificateRequest', 'parsePkcs11Uri', 'parseProfile', 'pkcs11Signer', 'planReimport', 'readIdentity', 'readIdentityAsync', 'removalOf', 'resolveStoreDir', 'runBatch', 'servesPurpose', 'signProfile',
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
