/**
 * A real PostgreSQL server for tests: Debian's postgresql, a throwaway cluster per test file
 * (initdb in a temporary directory, a free loopback port, trust authentication for loopback
 * only, stopped and deleted when the file's tests end). initdb refuses to run as root, so as
 * root the cluster belongs to the unprivileged `postgres` account the Debian package creates.
 *
 * PROFILESMITH_TEST_PG_URL, when set, names a server to use instead (each test still gets a
 * database of its own).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PgServer {
  /** postgres://…/postgres: the maintenance database. */
  url: string;
  /** With `tls`: the server's self-signed certificate for 127.0.0.1 (PEM file), the root clients verify it with. */
  caFile?: string;
  host: string;
  port: number;
  user: string;
  /** A new empty database; returns its URL. */
  createDatabase(): Promise<string>;
  /** pg_ctl restart (fast mode): every connection is cut. */
  restart(): void;
  /** pg_ctl stop (immediate) and delete the cluster. */
  stop(): void;
  /** pg_ctl start again after a stop of the test's own, with the cluster's settings. */
  start(): void;
  /** The cluster's pg_ctl and its environment, for tests that drive it themselves. */
  pgCtl(args: string[]): void;
}

function binDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

let counter = 0;
let started: Promise<PgServer | { missing: string }> | undefined;

/**
 * The file's PostgreSQL server (started on first use), or why there is none. With `tls`, the
 * server takes TLS (ssl=on) with a certificate for 127.0.0.1 from a CA made here by openssl.
 */
export function postgres(options: { tls?: boolean } = {}): Promise<PgServer | { missing: string }> {
  return (started ??= start(options));
}

async function start(options: { tls?: boolean }): Promise<PgServer | { missing: string }> {
  const given = process.env.PROFILESMITH_TEST_PG_URL;
  if (given) {
    const u = new URL(given);
    return server(given, u.hostname, Number(u.port || 5432), decodeURIComponent(u.username), () => {}, () => {});
  }
  const bin = binDir();
  if (!bin) return { missing: 'PostgreSQL is not installed (Debian package postgresql)' };
  const asRoot = process.getuid?.() === 0;
  let uid: number | undefined;
  let gid: number | undefined;
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) return { missing: 'running as root and there is no unprivileged postgres account for initdb' };
    uid = Number(id.stdout.trim());
    gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  }
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-pg-'));
  chmodSync(dir, 0o755);
  if (uid !== undefined) chownSync(dir, uid, gid!);
  const data = join(dir, 'data');
  const run = (cmd: string, args: string[]) => execFileSync(join(bin, cmd), args, { stdio: ['ignore', 'pipe', 'pipe'], ...(uid !== undefined ? { uid, gid } : {}), env: { ...process.env, LC_ALL: 'C' }, cwd: dir });
  const user = 'profilesmith';
  const port = await freePort();
  let tlsOptions = '';
  let caFile: string | undefined;
  if (options.tls) {
    // A self-signed server certificate for 127.0.0.1, made by openssl, which clients are given as
    // the root to verify against (sslrootcert). The server needs its key as a file: a throwaway
    // test server's, mode 0600 and owned by the account that runs it, deleted with the cluster.
    const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-subj', '/CN=127.0.0.1', '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1']);
    chmodSync(join(dir, 'server.key'), 0o600);
    if (uid !== undefined) chownSync(join(dir, 'server.key'), uid, gid!);
    caFile = join(dir, 'server.pem');
    tlsOptions = ` -c ssl=on -c ssl_cert_file=${join(dir, 'server.pem')} -c ssl_key_file=${join(dir, 'server.key')}`;
  }
  const startCluster = () =>
    void run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-t', '180', '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c max_connections=200${tlsOptions}`, 'start']);
  try {
    run('initdb', ['-D', data, '-U', user, '--auth=trust', '-E', 'UTF8', '--no-sync']);
    // Loopback TCP only; the socket directory is the cluster's own (not /var/run/postgresql).
    startCluster();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    const e = err as { stderr?: Buffer };
    return { missing: `the throwaway PostgreSQL cluster did not start: ${e.stderr?.toString().trim().split('\n').pop() ?? String(err)}` };
  }
  const pgCtl = (args: string[]) => void run('pg_ctl', ['-D', data, '-w', '-t', '180', ...args]);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    try {
      pgCtl(['-m', 'immediate', 'stop']);
    } catch {
      // already down
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  const made = server(`postgres://${user}@127.0.0.1:${port}/postgres`, '127.0.0.1', port, user, stop, () => pgCtl(['-l', join(dir, 'log'), '-m', 'fast', 'restart']), pgCtl, startCluster);
  return caFile ? { ...made, caFile } : made;
}

function server(url: string, host: string, port: number, user: string, stop: () => void, restart: () => void, pgCtl: (args: string[]) => void = () => {}, start: () => void = () => {}): PgServer {
  return {
    url,
    host,
    port,
    user,
    stop,
    start,
    restart,
    pgCtl,
    async createDatabase() {
      const name = `t_${process.pid}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      const u = new URL(url);
      u.pathname = `/${name}`;
      return u.toString();
    },
  };
}

/**
 * True when the file's PostgreSQL server runs; otherwise registers one test that logs why
 * the file's tests (`what`) are skipped. For a file whose suite is the `if`'s body.
 */
export function hasPostgres(server: PgServer | { missing: string }, what: string): server is PgServer {
  if (!('missing' in server)) return true;
  const missing = server.missing;
  test(`${what} are skipped`, (t) => {
    t.log(`skipped: ${missing}`);
    t.pass();
  });
  return false;
}
