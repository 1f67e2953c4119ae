// The evaluation behind "keep the file store as the embedded default" (issue "When one machine
// is not enough"): what PGlite (PostgreSQL compiled to WebAssembly, in a local directory) costs
// a CLI command, and what happens when two processes use one PGlite directory at once, as
// `serve`, a batch and `link create` do on one store. Not a test, not a dependency:
//   npm install --no-save @electric-sql/pglite && node scripts/eval-pglite.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let PGlite;
try {
  ({ PGlite } = await import('@electric-sql/pglite'));
} catch {
  console.error('install it first: npm install --no-save @electric-sql/pglite');
  process.exit(2);
}
const [role, dir] = process.argv.slice(2);
if (role === 'writer') {
  // A child: 300 inserts into the shared directory, counting its successes.
  const db = await PGlite.create({ dataDir: dir });
  let ok = 0;
  for (let i = 0; i < 300; i++) {
    try {
      await db.query('INSERT INTO certificates VALUES ($1, $2)', [`${process.pid}-${i}`, Buffer.alloc(1200)]);
      ok++;
    } catch {}
  }
  await db.close();
  console.log(JSON.stringify({ pid: process.pid, ok }));
  process.exit(0);
}
const base = mkdtempSync(join(tmpdir(), 'pglite-eval-'));
const data = join(base, 'data');
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
let t0 = process.hrtime.bigint();
let db = await PGlite.create({ dataDir: data });
await db.exec('CREATE TABLE certificates (serial text PRIMARY KEY, certificate bytea)');
const create = ms(t0);
t0 = process.hrtime.bigint();
for (let i = 0; i < 1000; i++) await db.query('INSERT INTO certificates VALUES ($1, $2)', [`s${i}`, Buffer.alloc(1200)]);
const inserts = ms(t0);
await db.close();
const opens = [];
for (let i = 0; i < 3; i++) {
  t0 = process.hrtime.bigint();
  db = await PGlite.create({ dataDir: data });
  await db.query('SELECT count(*) FROM certificates');
  opens.push(ms(t0));
  await db.close();
}
await new Promise((r) => setTimeout(r, 100));
db = await PGlite.create({ dataDir: data });
await db.exec('DELETE FROM certificates');
await db.close();
// Two processes at once on the one directory.
const run = () => new Promise((resolve) => {
  const c = spawn(process.execPath, [import.meta.filename, 'writer', data]);
  let out = '';
  c.stdout.on('data', (d) => (out += d));
  c.on('exit', () => resolve(JSON.parse(out)));
});
const reported = await Promise.all([run(), run()]);
db = await PGlite.create({ dataDir: data });
const kept = Number((await db.query('SELECT count(*) AS n FROM certificates')).rows[0].n);
await db.close();
rmSync(base, { recursive: true, force: true });
console.log(JSON.stringify({
  createMs: Math.round(create),
  openAndFirstQueryMs: opens.map(Math.round),
  insert1000Ms: Math.round(inserts),
  twoProcesses: { reportedInserted: reported.reduce((n, r) => n + r.ok, 0), kept, lost: reported.reduce((n, r) => n + r.ok, 0) - kept },
}, null, 1));
