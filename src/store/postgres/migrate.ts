/**
 * `store migrate`: copies a file store whole into an empty PostgreSQL database, in one
 * transaction (a failure leaves the database empty). Sealed keys are copied as they are, with
 * the KDF parameters and the check value: both stores seal with the same key and the same
 * associated data, so nothing is decrypted on the way and the passphrase stays the same.
 *
 * Copied: the CA (root, every issuing CA generation, the current and earlier profile signers), every user certificate with its sealed key
 * and the issuers that came with it, revocations and retirements, amendments (dual use, added
 * chains), one-time links (as their hashes), and the CRL numbers, which go on increasing.
 * Not copied: the PKCS#12 cache (rebuilt on use) and OCSP responders (issued again on demand).
 *
 * @module postgres-migrate
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { certificatesFrom, normalizeSerial } from '../../certs/pem.js';
import { certificateBasics } from '../../certs/x509.js';
import { StoreExists, StoreIOError } from '../../errors.js';
import type { FileStore } from '../fs-store.js';
import type { Sealed } from '../secret-box.js';
import { storeSettings } from '../settings.js';
import { caSlug } from '../../certs/publication.js';
import { issuingPaths, signerPaths, verifiesWith } from '../pki-files.js';
import { Database } from './db.js';
import type { PgStoreMeta } from './rows.js';
import { migrate, schemaVersion, STORE_LOCK } from './schema.js';

/** What {@link migrateStore} copied. */
export interface MigrateResult {
  certificates: number;
  keys: number;
  revocations: number;
  links: number;
  chains: number;
}

/**
 * Copies the file store `from` into the empty PostgreSQL database at `toUrl`.
 * @throws ERR_STORE_EXISTS when the database holds a store already; ERR_STORE_IO for a key file that is missing or damaged
 * @example
 * const from = await openStore('./store', { passphrase })
 * if (!(from instanceof FileStore)) throw new Error('./store is not a directory')
 * const moved = await migrateStore(from, 'postgres://profilesmith@db.internal/pki')
 * console.log(`${moved.certificates} certificates, ${moved.revocations} revocations moved`)
 */
export async function migrateStore(from: FileStore, toUrl: string): Promise<MigrateResult> {
  const meta = from.meta;
  const file = (rel: string) => join(from.dir, rel);
  const pem = async (rel: string) => {
    const der = certificatesFrom(await fs.readFile(file(rel), 'utf8'))[0];
    if (!der) throw new StoreIOError(file(rel), 'read', `"${file(rel)}" holds no certificate`);
    return der;
  };
  const sealed = async (rel: string) => {
    const path = file(`${rel}.${meta.keyGeneration}`);
    try {
      return JSON.parse(await fs.readFile(path, 'utf8')) as Sealed;
    } catch (cause) {
      throw new StoreIOError(path, 'read', `The key file "${path}" is missing or damaged; run \`profilesmith store check\` on the file store`, { cause });
    }
  };
  const crlNumber = async (slug: string) => {
    try {
      return Number((JSON.parse(await fs.readFile(file(`crl/${slug}.json`), 'utf8')) as { number: number }).number) || 0;
    } catch {
      return 0;
    }
  };

  const records = await from.listCertificates();
  const links = await from.links.list();
  // Every CA certificate with its sealed key: the root, each issuing CA generation, the current
  // signer (issued by one of them, or imported with its chain); earlier signers keep their rows
  // without a key (their keys were deleted at rotation), for their OCSP status.
  const ca: { role: string; issuer: string | null; cert: Buffer; key: Sealed | null; aad: string; generation: number | null; current: boolean }[] = [
    { role: 'root', issuer: null, cert: await pem('ca/root.pem'), key: await sealed('ca/root.key'), aad: 'ca/root.key', generation: null, current: true },
  ];
  for (let g = 1; g <= (meta.issuing ?? 1); g++) {
    const paths = issuingPaths(g);
    ca.push({ role: 'issuing', issuer: 'root', cert: await pem(paths.cert), key: await sealed(paths.key), aad: paths.key, generation: g, current: true });
  }
  const signerAt = signerPaths(meta);
  const signerCert = await pem(signerAt.cert);
  ca.push({ role: 'signer', issuer: meta.signerChain ? null : caSlug(meta.signerIssuing ?? 1), cert: signerCert, key: await sealed(signerAt.key), aad: signerAt.key, generation: null, current: true });
  const issuingCerts = ca.filter((c) => c.role === 'issuing');
  for (const name of (await fs.readdir(file('signer')).catch(() => [] as string[])).sort()) {
    if (!name.endsWith('.pem') || `signer/${name}` === signerAt.cert) continue;
    const der = await pem(`signer/${name}`);
    // Issued by which of our CAs (an earlier imported signer is an outside CA's: left out).
    const by = issuingCerts.find((i) => verifiesWith(der, i.cert));
    if (by) ca.push({ role: 'signer', issuer: caSlug(by.generation!), cert: der, key: null, aad: `signer/${name.slice(0, -4)}.key`, generation: null, current: false });
  }
  const signerChain = meta.signerChain ? await Promise.all(meta.signerChain.map(async (fp) => ({ fp, der: await pem(`chains/${fp}.pem`) }))) : [];
  const revocations = await from.index.revocations();
  const known = new Set([...records.map((r) => r.serial), ...ca.map((c) => normalizeSerial(certificateBasics(c.cert).serial))]);
  // Every setting both stores keep, the SCEP URL included; the file store's own pointers stay behind.
  const pgMeta: PgStoreMeta = storeSettings(meta);

  const db = await Database.open(toUrl);
  try {
    return await db.tx(async (c) => {
      if ((await schemaVersion(c)) > 0) throw new StoreExists(db.where);
      await migrate(c, 0);
      await c.query('INSERT INTO store_meta (meta) VALUES ($1)', [pgMeta]);
      for (const x of ca) {
        await c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad, generation, current) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [normalizeSerial(certificateBasics(x.cert).serial), x.role, x.issuer, x.cert, x.key, x.aad, x.generation, x.current]);
      }
      const out: MigrateResult = { certificates: 0, keys: ca.filter((x) => x.key).length, revocations: 0, links: 0, chains: 0 };
      for (const { fp, der } of signerChain) out.chains += (await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fp, der])).rowCount ?? 0;
      for (const r of records) {
        const der = await from.getCertificate(r.serial);
        const key = await sealed(`certs/${r.serial}/key`).catch(() => undefined);
        const { alsoPurpose, addedChain, revoked, retired, ...facts } = r;
        await c.query('INSERT INTO certificates (serial, fingerprint, user_lower, purpose, record, certificate, sealed_key, also_purpose, added_chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
          r.serial, r.fingerprint, r.user.toLowerCase(), r.purpose, facts, der, key ?? null, alsoPurpose ?? null, addedChain?.length ? JSON.stringify(addedChain) : null,
        ]);
        out.certificates++;
        if (key) out.keys++;
        if (r.source === 'imported') {
          const chain = await from.issuerChain(r.serial);
          const fps = [...new Set([...(r.chain ?? []), ...(addedChain ?? [])])];
          for (const [i, d] of chain.entries()) {
            const added = await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fps[i], d]);
            out.chains += added.rowCount ?? 0;
          }
        }
      }
      // Every revocation and retirement, of user certificates and of the store's own (signers,
      // issuing CAs), with the CA whose CRL lists it; those of certificates not carried (OCSP
      // responders, issued again on demand) stay behind.
      for (const r of revocations) {
        if (!known.has(r.serial)) continue;
        await c.query('INSERT INTO revocations (serial, kind, ca, date, reason) VALUES ($1, $2, $3, $4, $5)', [r.serial, r.kind, r.kind === 'revoked' ? (r.ca ?? 'issuing') : null, r.date, r.reason]);
        out.revocations++;
      }
      for (const l of links) {
        await c.query('INSERT INTO links (token_hash, id, user_email, created, expires, uses_left, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7)', [l.tokenHash, l.id, l.user, l.created, l.expires, l.usesLeft, l.revoked ?? null]);
        out.links++;
      }
      for (const slug of ['root', ...issuingCerts.map((i) => caSlug(i.generation!))]) {
        const n = await crlNumber(slug);
        if (n) await c.query('INSERT INTO crls (ca, number) VALUES ($1, $2)', [slug, n]);
      }
      return out;
    }, { lock: STORE_LOCK, op: 'migrate' });
  } finally {
    await db.end();
  }
}
