/**
 * The PostgreSQL store's schema and its migrations. `init` creates the schema at the newest
 * version; opening a store migrates an older one forward (under an advisory lock, in one
 * transaction), and refuses one newer than this code.
 *
 * Private keys are sealed client-side (AES-256-GCM under the scrypt-derived store key, as in
 * the file store, with the same associated data): the database only ever holds ciphertext.
 *
 * @module postgres-schema
 */
import type pg from 'pg';

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = 4;

/** The advisory lock id of migrations and of the store-wide writes (init, passphrase change). */
export const STORE_LOCK = 0x70726f66; // 'prof'

/** Each migration takes the schema from version i to i+1 (index 0: from nothing to 1). */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE profilesmith_schema (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version integer NOT NULL
  );
  -- What store.json holds in the file store: organization, KDF parameters, the passphrase
  -- check value, the key generation, the PKI URL and the CA's permitted domains.
  CREATE TABLE store_meta (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    meta jsonb NOT NULL
  );
  -- The store's own certificates: root, issuing CA, profile signers, OCSP responders.
  -- role: root | issuing | signer | responder; ca: the slug of the CA that issued it.
  CREATE TABLE ca_certs (
    serial text PRIMARY KEY,
    role text NOT NULL,
    ca text,
    certificate bytea NOT NULL,
    sealed_key jsonb NOT NULL,
    key_aad text NOT NULL,
    current boolean NOT NULL DEFAULT true,
    created timestamptz NOT NULL DEFAULT now()
  );
  -- User certificates. record: the facts of the certificate (never change); the columns after
  -- it are what later imports add. A serial is unique across every node by the primary key.
  CREATE TABLE certificates (
    serial text PRIMARY KEY,
    fingerprint text NOT NULL UNIQUE,
    user_lower text NOT NULL,
    purpose text NOT NULL,
    record jsonb NOT NULL,
    certificate bytea NOT NULL,
    sealed_key jsonb,
    also_purpose text,
    added_chain jsonb,
    seq bigserial NOT NULL
  );
  CREATE INDEX certificates_user ON certificates (user_lower);
  CREATE TABLE chains (
    fingerprint text PRIMARY KEY,
    certificate bytea NOT NULL
  );
  -- Revocations of user certificates and of the store's own (signers, responders);
  -- kind retired: out of generation without revocation (outside CAs' certificates).
  CREATE TABLE revocations (
    serial text PRIMARY KEY,
    kind text NOT NULL CHECK (kind IN ('revoked', 'retired')),
    ca text,
    date timestamptz NOT NULL,
    reason text NOT NULL,
    seq bigserial NOT NULL
  );
  -- Per CA: the last CRL number, and the CRL last published with the revocations it lists.
  CREATE TABLE crls (
    ca text PRIMARY KEY,
    number bigint NOT NULL,
    this_update timestamptz,
    next_update timestamptz,
    digest text,
    der bytea
  );
  -- One-time links: the token is kept only as its SHA-256.
  CREATE TABLE links (
    token_hash text PRIMARY KEY,
    id text NOT NULL UNIQUE,
    user_email text NOT NULL,
    created timestamptz NOT NULL,
    expires timestamptz NOT NULL,
    uses_left integer NOT NULL,
    revoked timestamptz,
    seq bigserial NOT NULL
  );
  -- Each identity's iOS-form PKCS#12 and its password, sealed (key generation in the AAD).
  CREATE TABLE pkcs12_cache (
    serial text PRIMARY KEY REFERENCES certificates (serial),
    user_lower text NOT NULL,
    key_generation integer NOT NULL,
    sealed bytea NOT NULL
  );
  CREATE INDEX pkcs12_cache_user ON pkcs12_cache (user_lower);
  `,
  // 2: a retired profile signer's key is deleted (as the file store deletes its key file),
  // so a CA row may hold no key.
  `
  ALTER TABLE ca_certs ALTER COLUMN sealed_key DROP NOT NULL;
  `,
  // 3: issuing CA generations (ca rotate-issuing): each issuing row has its generation.
  `
  ALTER TABLE ca_certs ADD COLUMN generation integer;
  UPDATE ca_certs SET generation = 1 WHERE role = 'issuing';
  CREATE UNIQUE INDEX ca_certs_issuing_generation ON ca_certs (generation) WHERE role = 'issuing';
  `,
  // 4: SCEP. One-time enrollment challenges (a table of their own: a challenge is never a
  // download link); a certificate row of a device's key holds no sealed key (already nullable);
  // the SCEP RA is a ca_certs row of role 'scep-ra'.
  `
  CREATE TABLE scep_challenges (
    token_hash text PRIMARY KEY,
    id text NOT NULL UNIQUE,
    user_email text NOT NULL,
    created timestamptz NOT NULL,
    expires timestamptz NOT NULL,
    uses_left integer NOT NULL,
    revoked timestamptz,
    seq bigserial NOT NULL
  );
  `,
];

/** The schema version of the database: 0 when it has none, undefined when the query fails for another reason. */
export async function schemaVersion(client: pg.ClientBase): Promise<number> {
  const exists = await client.query<{ t: string | null }>(`SELECT to_regclass('profilesmith_schema')::text AS t`);
  if (!exists.rows[0]?.t) return 0;
  const r = await client.query<{ version: number }>('SELECT version FROM profilesmith_schema');
  return r.rows[0]?.version ?? 0;
}

/** Runs the migrations from `from` up to {@link SCHEMA_VERSION} (the caller holds the transaction and the lock). */
export async function migrate(client: pg.ClientBase, from: number): Promise<void> {
  for (let v = from; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!);
  await client.query(
    'INSERT INTO profilesmith_schema (only_row, version) VALUES (true, $1) ON CONFLICT (only_row) DO UPDATE SET version = EXCLUDED.version',
    [SCHEMA_VERSION],
  );
}
