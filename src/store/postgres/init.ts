/**
 * Creating and opening a PostgreSQL store: `init` makes the schema and a new CA in an empty
 * database; `open` migrates an older schema forward and refuses a newer one.
 *
 * @module postgres-init
 */
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { certificateBasics } from '../../certs/x509.js';
import { StoreExists, StoreIOError, StoreNotInitialized } from '../../errors.js';
import { checkNewPassphrase, newStoreCa } from '../issuance.js';
import { DEFAULT_KDF_COST, deriveKey, newKdfParams, seal } from '../secret-box.js';
import type { InitStoreOptions } from '../file/meta.js';
import { Database } from './db.js';
import { PostgresStore } from './pg-store.js';
import { exportKey, type PgStoreMeta } from './rows.js';
import { sealCheck } from '../settings.js';
import { migrate, schemaVersion, SCHEMA_VERSION, STORE_LOCK } from './schema.js';

/** Options of {@link initPostgresStore}: those of the file store's init. */
export type InitPostgresStoreOptions = InitStoreOptions;

/** Options of {@link openPostgresStore}. */
export interface OpenPostgresStoreOptions {
  /** Needed for anything that uses a private key; checked at open when given. */
  passphrase?: string;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Connections in this process's pool. Default: 4. */
  connections?: number;
}

/**
 * Creates the schema and a new CA in an empty database. @throws ERR_STORE_EXISTS when it holds a store
 * @example
 * const store = await initPostgresStore('postgres://profilesmith@db.internal/pki', { organization: 'Example Corp', passphrase })
 * await store.close()
 */
export async function initPostgresStore(url: string, options: InitPostgresStoreOptions): Promise<PostgresStore> {
  checkNewPassphrase(options.passphrase);
  const now = options.now ?? (() => new Date());
  const db = await Database.open(url);
  try {
    // Refuse early, before three keys are made, if the database already holds a store.
    await db.tx(async (c) => {
      if ((await schemaVersion(c)) > 0) throw new StoreExists(db.where);
    }, { op: 'read' });
    const { ca, pkiUrl, domains } = await newStoreCa({ ...options, now });
    const kdf = newKdfParams(options.kdfCost ?? DEFAULT_KDF_COST);
    const key = await deriveKey(options.passphrase, kdf);
    const meta: PgStoreMeta = {
      organization: options.organization.trim(),
      created: now().toISOString(),
      kdf,
      check: sealCheck(key),
      keyGeneration: 1,
      ...(options.keyAlgorithm ? { keyAlgorithm: options.keyAlgorithm } : {}),
      ...(pkiUrl ? { pkiUrl } : {}),
      ...(domains.length ? { permittedEmailDomains: domains } : {}),
    };
    await db.tx(async (c) => {
      // Two inits at once: the lock makes the second see the first's schema and refuse.
      if ((await schemaVersion(c)) > 0) throw new StoreExists(db.where);
      await migrate(c, 0);
      await c.query('INSERT INTO store_meta (meta) VALUES ($1)', [meta]);
      const put = (id: Identity, role: string, issuer: string | null, aad: string) =>
        c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad, generation) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
          normalizeSerial(certificateBasics(id.certificate).serial), role, issuer, id.certificate, seal(key, exportKey(id.privateKey), aad), aad, role === 'issuing' ? 1 : null,
        ]);
      // The same associated data as the file store's key files: sealed keys move between the two as they are.
      await put(ca.root, 'root', null, 'ca/root.key');
      await put(ca.intermediate, 'issuing', 'root', 'ca/intermediate.key');
      await put(ca.signer, 'signer', 'issuing', 'signer/key');
    }, { lock: STORE_LOCK, op: 'create' });
    return PostgresStore.create(db, meta, key, now);
  } catch (err) {
    await db.end();
    throw err;
  }
}

/**
 * Opens the store in a database, migrating an older schema forward.
 * @throws ERR_STORE_NOT_INITIALIZED for a database without one; ERR_STORE_IO for a schema newer than this code, or a server fault
 * @example
 * const store = await openPostgresStore('postgres://profilesmith@db.internal/pki', { passphrase })
 * try {
 *   console.log((await store.listCertificates()).length)
 * } finally {
 *   await store.close()
 * }
 */
export async function openPostgresStore(url: string, options: OpenPostgresStoreOptions = {}): Promise<PostgresStore> {
  const db = await Database.open(url, { ...(options.connections ? { max: options.connections } : {}) });
  try {
    let version = await db.tx((c) => schemaVersion(c), { op: 'read' });
    if (version === 0) throw new StoreNotInitialized(db.where);
    if (version > SCHEMA_VERSION) {
      throw new StoreIOError(db.where, 'read', `The database at ${db.where} has schema version ${version}, newer than this profilesmith reads (${SCHEMA_VERSION}); upgrade profilesmith`);
    }
    if (version < SCHEMA_VERSION) {
      version = await db.tx(async (c) => {
        const v = await schemaVersion(c);
        if (v < SCHEMA_VERSION) await migrate(c, v);
        return SCHEMA_VERSION;
      }, { lock: STORE_LOCK, op: 'migrate' });
    }
    const meta = (await db.query<{ meta: PgStoreMeta }>('SELECT meta FROM store_meta')).rows[0]?.meta;
    if (!meta) throw new StoreNotInitialized(db.where);
    const store = PostgresStore.create(db, meta, undefined, options.now ?? (() => new Date()));
    if (options.passphrase !== undefined) await store.unlock(options.passphrase);
    return store;
  } catch (err) {
    await db.end();
    throw err;
  }
}

