/**
 * The API reference in docs/api is generated (npm run docs) from the JSDoc of the public exports.
 * typedoc fails on an exported function, class, interface or type without documentation
 * (treatValidationWarningsAsErrors), and the committed reference must match a fresh one.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { apiExamples } from './helpers/api-examples.js';
import { ROOT, tmp } from './helpers/tools.js';

test('every public export is documented, and docs/api is what npm run docs makes now', (t) => {
  const out = tmp(t);
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
  const committed = join(ROOT, 'docs', 'api');
  // One page per export, in folders by kind: the whole tree is compared.
  const walk = (dir: string, base = ''): string[] =>
    readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f), `${base}${f}/`) : [`${base}${f}`])).sort();
  const files = walk(out);
  t.deepEqual(walk(committed), files);
  for (const f of files) {
    t.is(readFileSync(join(committed, f), 'utf8'), readFileSync(join(out, f), 'utf8'), `docs/api/${f} is stale: run npm run docs`);
  }
});

test('docs/errors.md lists every error code, with its class, and nothing else', async (t) => {
  const errors = await import('../src/errors.js');
  const classes = Object.entries(errors)
    .filter(([, v]) => typeof v === 'function' && typeof (v as { code?: unknown }).code === 'string' && (v as { code: string }).code !== 'ERR_PROFILESMITH')
    .map(([name, v]) => [(v as { code: string }).code, name])
    .sort();
  const table = [...readFileSync(join(ROOT, 'docs', 'errors.md'), 'utf8').matchAll(/^\| `(ERR_[A-Z0-9_]+)` \| `(\w+)` \|/gm)].map((m) => [m[1], m[2]]).sort();
  t.deepEqual(table, classes);
});

test('every guide and doc page links only to files that exist', (t) => {
  const pages = ['docs/README.md', 'docs/errors.md', ...readdirSync(join(ROOT, 'docs', 'guides')).map((f) => `docs/guides/${f}`)];
  for (const page of pages) {
    const text = readFileSync(join(ROOT, page), 'utf8');
    for (const m of text.matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
      const target = m[1]!;
      if (/^https?:/.test(target)) continue;
      t.notThrows(() => statSync(join(ROOT, page, '..', target)), `${page} links to ${target}`);
    }
  }
});

test('every public function, class and constant has an example (its JSDoc @example, a page section typedoc writes)', (t) => {
  const pages = ['profilesmith', 'errors'].flatMap((module) =>
    ['functions', 'classes', 'variables']
      .filter((kind) => existsSync(join(ROOT, 'docs', 'api', module, kind)))
      .flatMap((kind) => readdirSync(join(ROOT, 'docs', 'api', module, kind)).map((f) => `${module}/${kind}/${f}`)),
  );
  t.true(pages.length > 60, `${pages.length} pages`);
  const withExample = new Set(apiExamples().map((e) => e.page));
  // A class's example may sit on the class or on its constructor: both are on the class's page.
  t.deepEqual(pages.filter((p) => !withExample.has(p)), [], 'these public exports have no @example');
});
