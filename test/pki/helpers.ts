import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { initStore, type InitStoreOptions } from '../../src/store/fs-store.js';
import { initPostgresStore } from '../../src/store/postgres/init.js';
import { PASSPHRASE } from '../helpers/fixture.js';
import { BIN, cli, httpRequest, openssl, startServer, tmp } from '../helpers/tools.js';

export const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };

/** A port that was free a moment ago (the store's PKI URL must name it before the server starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/**
 * A store whose PKI URL is a loopback port, and a real `pki serve` answering there. With
 * `postgres`, the store is a database on that server (storeDir is then its URL).
 */
export async function pkiStore(t: ExecutionContext, options: Partial<InitStoreOptions> = {}, postgres?: { createDatabase(): Promise<string> }) {
  const dir = tmp(t);
  const port = await freePort();
  const pkiUrl = `http://127.0.0.1:${port}`;
  const init = { organization: 'Example Corp', passphrase: PASSPHRASE, kdfCost: 14, pkiUrl, ...options };
  let storeDir = join(dir, 'store');
  if (postgres) {
    storeDir = await postgres.createDatabase();
    await (await initPostgresStore(storeDir, init)).close();
  } else {
    await initStore(storeDir, init);
  }
  const server = await startServer(t, [BIN, 'pki', 'serve', '--store', storeDir, '--listen', `127.0.0.1:${port}`], env);
  return { dir, storeDir, pkiUrl, server };
}

/** Runs the CLI against the store; fails the test with stderr when it does not exit 0. */
export function run(t: ExecutionContext, dir: string, args: string[]) {
  const r = cli(args, { cwd: dir, env });
  t.is(r.status, 0, r.stderr);
  return r;
}

/** Issues a certificate with the CLI and writes it to `<name>.pem`; returns its serial and path. */
export function issue(t: ExecutionContext, dir: string, storeDir: string, user: string, purpose = 'smime-signing', extra: string[] = []) {
  const r = run(t, dir, ['cert', 'issue', '--store', storeDir, '--user', user, '--name', user, '--purpose', purpose, '--json', ...extra]);
  const record = JSON.parse(r.stdout) as { serial: string; notBefore: string; notAfter: string };
  const pem = join(dir, `${record.serial}.pem`);
  writeFileSync(pem, run(t, dir, ['cert', 'show', record.serial, '--store', storeDir, '--pem']).stdout);
  return { ...record, pem, stderr: r.stderr };
}

/** The URLs a certificate names, read by openssl (not by our parser). */
export function urlsIn(pem: string): { crl: string[]; caIssuers: string[]; ocsp: string[] } {
  const text = openssl(['x509', '-in', pem, '-noout', '-text']).stdout.toString();
  const crl: string[] = [];
  const caIssuers: string[] = [];
  const ocsp: string[] = [];
  const cdp = /X509v3 CRL Distribution Points:([\s\S]*?)(?:\n {12}X509v3|\n {12}Authority|\n {4}Signature)/.exec(text)?.[1] ?? '';
  for (const m of cdp.matchAll(/URI:(\S+)/g)) crl.push(m[1]!);
  for (const m of text.matchAll(/OCSP - URI:(\S+)/g)) ocsp.push(m[1]!);
  for (const m of text.matchAll(/CA Issuers - URI:(\S+)/g)) caIssuers.push(m[1]!);
  return { crl, caIssuers, ocsp };
}

/** Requests a URL with Node's HTTP client, on a connection of its own; the body and headers. */
export async function fetchBytes(url: string, init: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}): Promise<{ status: number; body: Buffer; headers: { get(name: string): string | null } }> {
  const r = await httpRequest(url, init);
  const get = (name: string) => {
    const v = r.headers[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
  };
  return { status: r.status, body: r.body, headers: { get } };
}

/** Fetches every CRL a certificate points at and writes them as PEM files; returns the paths. */
export async function fetchCrls(dir: string, pems: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pem of pems) {
    for (const url of urlsIn(pem).crl) {
      const { status, body, headers } = await fetchBytes(url);
      if (status !== 200 || headers.get('content-type') !== 'application/pkix-crl') throw new Error(`${url}: ${status} ${headers.get('content-type')}`);
      const path = join(dir, `crl-${out.length}.pem`);
      writeFileSync(path, openssl(['crl', '-inform', 'DER', '-outform', 'PEM'], body).stdout);
      out.push(path);
    }
  }
  return out;
}
