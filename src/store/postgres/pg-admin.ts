/**
 * The PostgreSQL store's administration, each one transaction: the passphrase change (every
 * key re-sealed), the PKI URL, and the profile signer's rotation.
 *
 * @module postgres-admin
 */
import { normalizeSerial } from '../../certs/pem.js';
import { StoreIOError } from '../../errors.js';
import { checkNewPassphrase, checkSignerImport } from '../issuance.js';
import type { IdentityBundle } from '../../certs/import.js';
import { fingerprint, type CertificateInput } from '../../certs/pem.js';
import { CertificateInvalid } from '../../errors.js';
import { createIssuingCa, createProfileSigner } from '../../certs/ca.js';
import type { Identity } from '../../certs/issue.js';
import { caSlug } from '../../certs/publication.js';
import type pg from 'pg';
import { checkPkiUrl, checkScepUrl } from '../../certs/publication.js';
import { certificateBasics } from '../../certs/x509.js';
import { deriveKey, newKdfParams, seal, type Sealed } from '../secret-box.js';
import { exportKey, type PgStoreMeta } from './rows.js';
import { sealCheck } from '../settings.js';
import { STORE_LOCK } from './schema.js';

import type { PostgresStore } from './pg-store.js';

/**
 * Re-seals every private key under a new passphrase in one transaction: all or none, and
 * every node sees the new key generation at once (their sealed PKCS#12 caches are dropped).
 */
export async function changePassphrase(store: PostgresStore, newPassphrase: string, options: { kdfCost?: number } = {}): Promise<number> {
  checkNewPassphrase(newPassphrase);
  store.requireKey('change the passphrase');
  const kdf = newKdfParams(options.kdfCost ?? Math.log2(store.keys.meta.kdf.N));
  const newKey = await deriveKey(newPassphrase, kdf);
  const { count, meta } = await store.db.tx(async (c) => {
    const current = (await c.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta FOR UPDATE')).rows[0]!.meta;
    if (current.keyGeneration !== store.keys.meta.keyGeneration) throw new StoreIOError(store.dir, 'write', 'The store passphrase was changed while this ran; run it again');
    let count = 0;
    for (const row of (await c.query<{ serial: string; sealed_key: Sealed; key_aad: string }>('SELECT serial, sealed_key, key_aad FROM ca_certs WHERE sealed_key IS NOT NULL')).rows) {
      await c.query('UPDATE ca_certs SET sealed_key = $2 WHERE serial = $1', [row.serial, seal(newKey, exportKey(store.keys.open(row.sealed_key, row.key_aad)), row.key_aad)]);
      count++;
    }
    for (const row of (await c.query<{ serial: string; sealed_key: Sealed }>('SELECT serial, sealed_key FROM certificates WHERE sealed_key IS NOT NULL')).rows) {
      const aad = `certs/${row.serial}/key`;
      await c.query('UPDATE certificates SET sealed_key = $2 WHERE serial = $1', [row.serial, seal(newKey, exportKey(store.keys.open(row.sealed_key, aad)), aad)]);
      count++;
    }
    await c.query('DELETE FROM pkcs12_cache');
    const meta: PgStoreMeta = { ...current, kdf, check: sealCheck(newKey), keyGeneration: current.keyGeneration + 1 };
    await c.query('UPDATE store_meta SET meta = $1', [meta]);
    return { count, meta };
  }, { lock: STORE_LOCK });
  store.keys.meta = meta;
  store.keys.key = newKey;
  store.ca.forgetKeys();
  return count;
}

/**
 * Sets (or, with undefined, clears) the PKI base URL, for certificates issued from then on by
 * any node (each reads the meta row when it issues).
 * @throws ERR_INPUT_INVALID for a URL that is not http(s)
 */
export function setPkiUrl(store: PostgresStore, url: string | undefined): Promise<string | undefined> {
  return setMetaUrl(store, 'pkiUrl', url === undefined ? undefined : checkPkiUrl(url));
}

/** Sets (or, with undefined, clears) the URL of the store's SCEP server, for every node. */
export function setScepUrl(store: PostgresStore, url: string | undefined): Promise<string | undefined> {
  return setMetaUrl(store, 'scepUrl', url === undefined ? undefined : checkScepUrl(url));
}

/** One URL setting of the meta row, changed under the store lock. */
async function setMetaUrl(store: PostgresStore, field: 'pkiUrl' | 'scepUrl', checked: string | undefined): Promise<string | undefined> {
  const meta = await store.db.tx(async (c) => {
    const current = (await c.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta FOR UPDATE')).rows[0]!.meta;
    const next: PgStoreMeta = { ...current };
    if (checked) next[field] = checked;
    else delete next[field];
    await c.query('UPDATE store_meta SET meta = $1', [next]);
    return next;
  }, { lock: STORE_LOCK });
  store.keys.meta = meta;
  return checked;
}

/**
 * A new profile signer from the issuing CA, in one transaction: the previous one is revoked
 * (superseded) and its key deleted. Every node signs with the new one from its next profile.
 */
export async function rotateSigner(store: PostgresStore): Promise<{ previous: string; serial: string }> {
  const key = store.requireKey('rotate the profile signer');
  const gen = await store.ca.current();
  const signer = await createProfileSigner(await store.ca.caIdentity(gen), gen, caOptions(store));
  const serial = normalizeSerial(certificateBasics(signer.certificate).serial);
  const previous = await store.db.tx(async (c) => {
    await store.assertGeneration(c);
    return putSigner(store, c, signer, serial, caSlug(gen), key);
  }, { lock: STORE_LOCK });
  const { signerChain: _outside, ...rest } = store.keys.meta;
  store.keys.meta = rest;
  return { previous, serial };
}

/**
 * Makes an identity from an outside CA the profile signer, in one transaction: its key sealed,
 * its issuers kept in `chains` for the signature; the store's own previous signer is revoked
 * (superseded). An imported signer belongs to its CA, which alone can revoke it.
 * @throws ERR_CERT_INVALID for an expired certificate, a CA certificate, one without digitalSignature, or the current signer again
 */
export async function importSigner(store: PostgresStore, bundle: IdentityBundle, options: { chain?: CertificateInput } = {}): Promise<{ previous: string; serial: string; warnings: string[] }> {
  const key = store.requireKey('import a signer');
  const { serial, chain, warnings } = await checkSignerImport(bundle, options, store.now());
  const previous = await store.db.tx(async (c) => {
    await store.assertGeneration(c);
    const meta = (await c.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta FOR UPDATE')).rows[0]!.meta;
    const old = (await c.query<{ serial: string; ca: string | null }>(`SELECT serial, ca FROM ca_certs WHERE role = 'signer' AND current FOR UPDATE`)).rows[0];
    if (old?.serial === serial) throw new CertificateInvalid('duplicate', 'This certificate is the profile signer already');
    for (const der of chain) await c.query('INSERT INTO chains (fingerprint, certificate) VALUES ($1, $2) ON CONFLICT DO NOTHING', [fingerprint(der), der]);
    await c.query(`UPDATE ca_certs SET current = false, sealed_key = NULL WHERE role = 'signer'`);
    const aad = `signer/${serial}.key`;
    // The same outside signer again (after a rotation away from it) takes its old row back.
    const put = await c.query(
      `INSERT INTO ca_certs AS a (serial, role, ca, certificate, sealed_key, key_aad) VALUES ($1, 'signer', NULL, $2, $3, $4)
         ON CONFLICT (serial) DO UPDATE SET current = true, sealed_key = EXCLUDED.sealed_key, key_aad = EXCLUDED.key_aad
         WHERE a.certificate = EXCLUDED.certificate AND a.role = 'signer' RETURNING serial`,
      [serial, bundle.certificate, seal(key, exportKey(bundle.privateKey), aad), aad],
    );
    if (!put.rowCount) throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
    // Our own previous signer is revoked; an outside one is its CA's to revoke.
    if (old?.ca) await c.query(`INSERT INTO revocations (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $2, $3, 'superseded') ON CONFLICT (serial) DO NOTHING`, [old.serial, old.ca, store.now()]);
    const next: PgStoreMeta = { ...meta, signerChain: chain.map((d) => fingerprint(d)) };
    await c.query('UPDATE store_meta SET meta = $1', [next]);
    store.keys.meta = { ...store.keys.meta, signerChain: next.signerChain! };
    return old?.serial ?? '';
  }, { lock: STORE_LOCK });
  return { previous, serial, warnings };
}

/** The options of the CA certificates the store makes after init. */
function caOptions(store: PostgresStore) {
  const m = store.keys.meta;
  return { organization: m.organization, now: store.now, ...(m.keyAlgorithm ? { keyAlgorithm: m.keyAlgorithm } : {}), ...(m.pkiUrl ? { pkiUrl: m.pkiUrl } : {}) };
}

/**
 * In the caller's transaction: `signer` (issued by the CA `slug`) becomes the profile signer;
 * the previous one is retired (its key deleted) and, if it was ours, revoked (superseded).
 * Returns the previous signer's serial.
 */
async function putSigner(store: PostgresStore, c: pg.ClientBase, signer: Identity, serial: string, slug: string, key: Buffer): Promise<string> {
  const old = (await c.query<{ serial: string; ca: string | null }>(`SELECT serial, ca FROM ca_certs WHERE role = 'signer' AND current FOR UPDATE`)).rows[0];
  await c.query(`UPDATE ca_certs SET current = false, sealed_key = NULL WHERE role = 'signer'`);
  const aad = `signer/${serial}.key`;
  await c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad) VALUES ($1, $2, $3, $4, $5, $6)', [serial, 'signer', slug, signer.certificate, seal(key, exportKey(signer.privateKey), aad), aad]);
  // Our own previous signer is revoked; an imported one is its CA's to revoke.
  if (old?.ca) {
    await c.query(`INSERT INTO revocations (serial, kind, ca, date, reason) VALUES ($1, 'revoked', $2, $3, 'superseded') ON CONFLICT (serial) DO NOTHING`, [old.serial, old.ca, store.now()]);
  }
  // The store's own signer again: the issuers of an imported one no longer apply.
  await c.query(`UPDATE store_meta SET meta = meta - 'signerChain'`);
  return old?.serial ?? '';
}

/**
 * A new issuing CA under the same root, and a new profile signer from it, in one transaction;
 * every node issues from it from its next certificate on (each re-reads the CA list within a second).
 */
export async function rotateIssuing(store: PostgresStore): Promise<{ generation: number; serial: string; signer: string }> {
  const key = store.requireKey('rotate the issuing CA');
  const generation = (await store.ca.current()) + 1;
  const m = store.keys.meta;
  const ca = await createIssuingCa(await store.ca.caIdentity('root'), generation, { ...caOptions(store), ...(m.permittedEmailDomains?.length ? { permittedEmailDomains: m.permittedEmailDomains } : {}) });
  const signer = await createProfileSigner(ca, generation, caOptions(store));
  const caSerial = normalizeSerial(certificateBasics(ca.certificate).serial);
  const signerSerial = normalizeSerial(certificateBasics(signer.certificate).serial);
  await store.db.tx(async (c) => {
    await store.assertGeneration(c);
    const newest = (await c.query<{ g: number | null }>(`SELECT max(generation) AS g FROM ca_certs WHERE role = 'issuing'`)).rows[0]?.g ?? 1;
    if (newest + 1 !== generation) throw new StoreIOError(store.dir, 'write', 'Another node rotated the issuing CA while this ran; run it again');
    const aad = `ca/issuing-${generation}.key`;
    await c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad, generation) VALUES ($1, $2, $3, $4, $5, $6, $7)', [caSerial, 'issuing', 'root', ca.certificate, seal(key, exportKey(ca.privateKey), aad), aad, generation]);
    await putSigner(store, c, signer, signerSerial, caSlug(generation), key);
  }, { lock: STORE_LOCK });
  store.ca.forgetCas();
  const { signerChain: _outside, ...rest } = store.keys.meta;
  store.keys.meta = rest;
  return { generation, serial: caSerial, signer: signerSerial };
}
