/**
 * `store check` for the PostgreSQL store: reads every row and reports what is damaged (a
 * certificate that does not match its record, a key that does not open or does not belong to
 * its certificate, a missing chain). It never changes anything.
 *
 * @module postgres-check
 */
import { X509Certificate } from 'node:crypto';
import { keysMatch } from '../../certs/keys.js';
import { fingerprint, normalizeSerial } from '../../certs/pem.js';
import type { StoreFinding } from '../findings.js';
import type { Sealed } from '../secret-box.js';
import type { CertificateRecord } from '../store.js';
import { SCHEMA_VERSION } from './schema.js';
import { caSlug } from '../../certs/publication.js';
import type { PostgresStore } from './pg-store.js';

/** Checks a PostgreSQL store. Keys are decrypted only when the store is unlocked. */
export async function checkPostgresStore(store: PostgresStore): Promise<StoreFinding[]> {
  const findings: StoreFinding[] = [];
  const add = (severity: StoreFinding['severity'], path: string, message: string) => findings.push({ severity, path, message });
  const db = store.database;
  const version = (await db.query<{ version: number }>('SELECT version FROM profilesmith_schema')).rows[0]?.version;
  if (version !== SCHEMA_VERSION) add('error', 'profilesmith_schema', `schema version ${version ?? 'missing'}, expected ${SCHEMA_VERSION}`);

  const key = (path: string, sealed: Sealed | null, aad: string, cert: X509Certificate | undefined) => {
    if (!sealed) return;
    if (!store.unlocked) return;
    try {
      const k = store.checkSealed(sealed, aad);
      if (cert && !keysMatch(k, cert.publicKey)) add('error', path, 'the key does not belong to its certificate');
    } catch (err) {
      add('error', path, (err as Error).message);
    }
  };
  const parse = (path: string, der: Buffer): X509Certificate | undefined => {
    try {
      return new X509Certificate(der);
    } catch {
      add('error', path, 'is not a certificate');
      return undefined;
    }
  };

  const cas = (await db.query<{ serial: string; role: string; ca: string | null; generation: number | null; certificate: Buffer; sealed_key: Sealed | null; key_aad: string }>('SELECT serial, role, ca, generation, certificate, sealed_key, key_aad FROM ca_certs ORDER BY created')).rows;
  const byRole = (role: string) => cas.filter((c) => c.role === role);
  for (const role of ['root', 'issuing', 'signer']) if (!byRole(role).length) add('error', `ca_certs/${role}`, `the ${role} certificate is missing`);
  const root = byRole('root')[0] && parse('ca_certs/root', byRole('root')[0]!.certificate);
  if (root && !(root.checkIssued(root) && root.verify(root.publicKey))) add('error', 'ca_certs/root', 'the root is not self-signed');
  // Every issuing CA generation, by the slug its certificates name it with.
  const issuers = new Map<string, X509Certificate>();
  if (root) issuers.set('root', root);
  for (const c of byRole('issuing')) {
    const x = parse(`ca_certs/issuing/${c.serial}`, c.certificate);
    if (x) issuers.set(caSlug(c.generation ?? 1), x);
  }
  for (const c of cas) {
    const path = `ca_certs/${c.role}/${c.serial}`;
    const x = parse(path, c.certificate);
    if (x && normalizeSerial(x.serialNumber) !== c.serial) add('error', path, 'the certificate does not carry the serial of its row');
    // An imported signer (no ca) belongs to an outside CA.
    const issuer = c.role === 'root' || c.ca === null ? undefined : issuers.get(c.ca);
    if (x && c.role !== 'root' && c.ca !== null && (!issuer || !x.verify(issuer.publicKey))) add('error', path, `does not chain to the ${c.ca} CA that issued it`);
    key(`${path} (key)`, c.sealed_key, c.key_aad, x);
  }
  const issuing = [...issuers.entries()].filter(([slug]) => slug !== 'root').map(([, x]) => x);

  const chains = new Set((await db.query<{ fingerprint: string }>('SELECT fingerprint FROM chains')).rows.map((r) => r.fingerprint));
  const rows = (await db.query<{ serial: string; fingerprint: string; user_lower: string; record: CertificateRecord; certificate: Buffer; sealed_key: Sealed | null; added_chain: string[] | null }>(
    'SELECT serial, fingerprint, user_lower, record, certificate, sealed_key, added_chain FROM certificates ORDER BY seq',
  )).rows;
  for (const r of rows) {
    const path = `certificates/${r.serial}`;
    if (r.record.serial !== r.serial || r.record.fingerprint !== r.fingerprint || r.record.user.toLowerCase() !== r.user_lower) add('error', path, 'the record disagrees with its row');
    const x = parse(path, r.certificate);
    if (!x) continue;
    if (fingerprint(x.raw) !== r.fingerprint) add('error', path, 'does not match the fingerprint its record holds');
    if (r.record.source === 'issued' && issuing.length && !issuing.some((i) => x.verify(i.publicKey))) add('error', path, 'does not chain to any issuing CA of the store');
    for (const fp of [...(r.record.chain ?? []), ...(r.added_chain ?? [])]) if (!chains.has(fp)) add('error', path, `its issuer ${fp.slice(0, 16)}… is not in chains`);
    key(`${path} (key)`, r.sealed_key, `certs/${r.serial}/key`, x);
  }
  const orphans = (await db.query<{ n: string }>('SELECT count(*) AS n FROM revocations v WHERE NOT EXISTS (SELECT 1 FROM certificates c WHERE c.serial = v.serial) AND NOT EXISTS (SELECT 1 FROM ca_certs a WHERE a.serial = v.serial)')).rows[0]!.n;
  if (Number(orphans)) add('warning', 'revocations', `${orphans} revocation(s) of serials the store does not hold`);
  const stale = (await db.query<{ n: string }>('SELECT count(*) AS n FROM pkcs12_cache WHERE key_generation <> $1', [store.meta.keyGeneration])).rows[0]!.n;
  if (Number(stale)) add('info', 'pkcs12_cache', `${stale} cached PKCS#12 of another passphrase generation, which no longer open; they are rebuilt on use`);
  return findings;
}
