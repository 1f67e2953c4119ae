// A throwaway PostgreSQL cluster for the bench: Debian's server binaries, initdb in a temporary
// directory (as the unprivileged postgres account when run as root: initdb refuses root), a free
// loopback port, fsync off; stopped and deleted by stop(). Returns undefined, with the reason,
// where there is no server to be had. test/helpers/postgres.ts does the same for the tests.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function startCluster() {
  const base = '/usr/lib/postgresql';
  const version = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => b - a)[0] : undefined;
  if (!version) return { missing: 'PostgreSQL is not installed (Debian package postgresql)' };
  const bin = join(base, version, 'bin');
  let ids = {};
  if (process.getuid?.() === 0) {
    const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (uid.status !== 0) return { missing: 'running as root without a postgres account for initdb' };
    ids = { uid: Number(uid.stdout), gid: Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout) };
  }
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-bench-pg-'));
  chmodSync(dir, 0o755);
  if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid);
  const port = await new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const run = (cmd, args) => execFileSync(join(bin, cmd), args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, env: { ...process.env, LC_ALL: 'C' }, ...ids });
  const data = join(dir, 'data');
  run('initdb', ['-D', data, '-U', 'profilesmith', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '180', '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off`, 'start']);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
    } catch {}
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', stop);
  return { url: (db) => `postgres://profilesmith@127.0.0.1:${port}/${db}`, run, bin, stop };
}
