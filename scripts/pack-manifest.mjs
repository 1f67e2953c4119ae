#!/usr/bin/env node
/**
 * npm pack / npm publish: the packed package.json carries no script that belongs to the
 * repository. `prepare` builds dist/ when a clone runs `npm install` (the README's
 * `npm install && npm start`); in the tarball it only makes npm 11 flag the package on install.
 *
 *   node scripts/pack-manifest.mjs strip     (prepack) build dist/ if a source is newer, then
 *                                             write package.json without the repository's scripts
 *   node scripts/pack-manifest.mjs restore   (postpack) put the repository's package.json back
 *
 * npm reads package.json from disk when it makes the tarball, after prepack. The original is kept
 * byte for byte beside it and renamed back; each write is a rename, so no reader sees half a file.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const MANIFEST = join(ROOT, 'package.json');
const KEPT = join(ROOT, '.package.json.prepack');
/** Scripts that only mean something in a clone: building on install, and this step itself. */
const REPOSITORY_ONLY = ['prepare', 'prepack', 'postpack'];

const mtimes = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? mtimes(join(dir, e.name)) : [statSync(join(dir, e.name)).mtimeMs]));

/** True when dist/ is missing, or a source or compiler setting changed after the oldest built file. */
function stale() {
  if (!existsSync(join(ROOT, 'dist', 'index.js'))) return true;
  const built = Math.min(...mtimes(join(ROOT, 'dist')));
  const sources = [...mtimes(join(ROOT, 'src')), ...['tsconfig.json', 'tsconfig.build.json'].map((f) => statSync(join(ROOT, f)).mtimeMs)];
  return Math.max(...sources) > built;
}

const step = process.argv[2];
if (step === 'strip') {
  if (existsSync(KEPT)) {
    console.error(`error: ${KEPT} exists: an earlier npm pack did not finish. Run: node scripts/pack-manifest.mjs restore`);
    process.exit(1);
  }
  if (stale()) {
    const r = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) process.exit(r.status ?? 1);
  }
  const text = readFileSync(MANIFEST, 'utf8');
  const pkg = JSON.parse(text);
  for (const s of REPOSITORY_ONLY) delete pkg.scripts?.[s];
  writeFileSync(KEPT, text);
  writeFileSync(`${MANIFEST}.tmp`, JSON.stringify(pkg, null, 2) + '\n');
  renameSync(`${MANIFEST}.tmp`, MANIFEST);
} else if (step === 'restore') {
  if (existsSync(KEPT)) renameSync(KEPT, MANIFEST);
} else {
  console.error('usage: node scripts/pack-manifest.mjs strip|restore');
  process.exit(2);
}
