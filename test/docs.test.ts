/**
 * The API reference in docs/api is generated (npm run docs) from the JSDoc of the public exports.
 * typedoc fails on an exported function, class, interface or type without documentation
 * (treatValidationWarningsAsErrors), and the committed reference must match a fresh one.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, tmp } from './helpers/tools.js';

test('every public export is documented, and docs/api is what npm run docs makes now', (t) => {
  const out = tmp(t);
  const r = spawnSync(process.execPath, [join(ROOT, 'node_modules', 'typedoc', 'bin', 'typedoc'), '--out', out], { cwd: ROOT, encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
  const committed = join(ROOT, 'docs', 'api');
  const files = readdirSync(out).sort();
  t.deepEqual(readdirSync(committed).sort(), files);
  for (const f of files) {
    t.is(readFileSync(join(committed, f), 'utf8'), readFileSync(join(out, f), 'utf8'), `docs/api/${f} is stale: run npm run docs`);
  }
});
