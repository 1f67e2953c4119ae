/**
 * TLS to the PostgreSQL server, asked for in the URL (sslmode, sslrootcert), and connection
 * settings from the PG* environment variables: against a real server whose certificate comes
 * from a CA openssl made here. The connection is checked on the server's side (pg_stat_ssl).
 */
import test from 'ava';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/store/postgres/init.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { cli, openssl, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres({ tls: true });

if (hasPostgres(server, 'PostgreSQL TLS tests')) {
  test('sslmode=verify-full with the server CA: the CLI works over TLS (pg_stat_ssl says so); the wrong CA is one line, exit 1; PG* variables fill in what the URL leaves out', async (t) => {
    const dir = tmp(t);
    const url = await server.createDatabase();
    const tls = `${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(server.caFile!)}`;
    const init = cli(['init', '--store', tls, '--org', 'TLS Corp'], { cwd: dir, env });
    t.is(init.status, 0, init.stderr);
    t.is(cli(['cert', 'issue', '--store', tls, '--user', 'tia@example.com', '--name', 'Tia', '--purpose', 'smime-signing'], { cwd: dir, env }).status, 0);

    const store = await openPostgresStore(tls, { passphrase: PASSPHRASE });
    t.teardown(() => store.close());
    const ssl = await store.database.query<{ ssl: boolean; version: string }>('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    t.true(ssl.rows[0]?.ssl, 'the server sees a TLS connection');
    t.regex(ssl.rows[0]?.version ?? '', /^TLSv1\.[23]$/);

    // A CA that did not issue the server's certificate: refused, one line, nothing written.
    const other = join(dir, 'other.pem');
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', '/dev/null', '-out', other, '-subj', '/CN=Other CA', '-days', '1']);
    const wrong = cli(['cert', 'issue', '--store', `${url}?sslmode=verify-full&sslrootcert=${encodeURIComponent(other)}`, '--user', 'x@example.com', '--name', 'X', '--purpose', 'smime-signing'], { cwd: dir, env });
    t.is(wrong.status, 1);
    t.regex(wrong.stderr, /^error: TLS to the PostgreSQL server of postgres:\/\/.* failed: .*\n$/);
    t.is(JSON.parse(cli(['cert', 'list', '--store', tls, '--json'], { cwd: dir, env }).stdout).length, 1, 'nothing was issued');

    // What the URL leaves out comes from PGHOST, PGPORT, PGUSER, PGDATABASE.
    const db = new URL(url).pathname.slice(1);
    const fromEnv = cli(['cert', 'list', '--store', 'postgres://', '--json'], { cwd: dir, env: { ...env, PGHOST: server.host, PGPORT: String(server.port), PGUSER: server.user, PGDATABASE: db } });
    t.is(fromEnv.status, 0, fromEnv.stderr);
    t.is((JSON.parse(fromEnv.stdout) as { user: string }[])[0]?.user, 'tia@example.com');
  });
}
