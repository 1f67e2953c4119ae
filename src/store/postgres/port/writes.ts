/**
 * The PostgreSQL port's writes, on the client of one transaction (which holds the port's write
 * lock): rows of today's schema, written as today's store writes them, so that a database
 * written through the port opens with `openPostgresStore` and the other way round.
 *
 * @module postgres-port-writes
 */
import { fingerprint } from '../../../certs/pem.js';
import { CertificateInvalid, StoreEntryNotFound } from '../../../errors.js';
import type { LinkRecord } from '../../../server/links.js';
import type { Sealed } from '../../secret-box.js';
import type { CertificateRecord } from '../../store.js';
import type { Amendment, Credential, CrlState, LinkBookName, PortTransaction, Revocation, SealedKey, Sealer, StoreSettings } from '../../port/port.js';
import { PgPortReads } from './reads.js';
import { certificateKeyAad, credentialKeyAad, linkTable } from './sql.js';

/** Rows per UPDATE … FROM unnest in {@link PgPortTransaction.rekey}: bounds one statement's parameters. */
const RESEAL_BATCH = 2000;

/** A transaction of the port: its reads and writes go through the transaction's client. */
export class PgPortTransaction extends PgPortReads implements PortTransaction {
  /** The one settings row (`store_meta`), added or replaced. */
  async putSettings(settings: StoreSettings): Promise<void> {
    await this.run('INSERT INTO store_meta (only_row, meta) VALUES (true, $1::jsonb) ON CONFLICT (only_row) DO UPDATE SET meta = EXCLUDED.meta', [JSON.stringify(settings)]);
  }

  /**
   * A `certificates` row: the record's facts in `record`, what imports add in `also_purpose`
   * and `added_chain`, the key sealed with `certs/<serial>/key`. A serial or fingerprint held
   * already is refused without aborting the transaction (ON CONFLICT DO NOTHING).
   * @throws ERR_CERT_INVALID (`duplicate`)
   */
  async addCertificate(record: CertificateRecord, der: Buffer, key?: Sealer): Promise<void> {
    const { alsoPurpose, addedChain, revoked: _revoked, retired: _retired, ...facts } = record;
    const sealed = key ? key(certificateKeyAad(record.serial)) : null;
    const r = await this.run(
      `INSERT INTO certificates (serial, fingerprint, user_lower, purpose, record, certificate, sealed_key, also_purpose, added_chain)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7::jsonb, $8, $9::jsonb) ON CONFLICT DO NOTHING`,
      [
        record.serial, record.fingerprint, record.user.toLowerCase(), record.purpose, JSON.stringify(facts), der,
        sealed ? JSON.stringify(sealed) : null, alsoPurpose ?? null, addedChain?.length ? JSON.stringify(addedChain) : null,
      ],
    );
    if (!r.rowCount) throw new CertificateInvalid('duplicate', `A different certificate with serial ${record.serial} is already in the store`);
  }

  /** Sets `also_purpose` and `added_chain` (the schema keeps no amendment date). @throws ERR_STORE_ENTRY_NOT_FOUND */
  async amend(amendment: Amendment): Promise<void> {
    const r = await this.run('UPDATE certificates SET also_purpose = $2, added_chain = $3::jsonb WHERE serial = $1', [
      amendment.serial, amendment.alsoPurpose ?? null, amendment.chain?.length ? JSON.stringify(amendment.chain) : null,
    ]);
    if (!r.rowCount) throw new StoreEntryNotFound(amendment.serial, 'certificate');
  }

  /** Adds `chains` rows by SHA-256, leaving those held. */
  async putChains(ders: readonly Buffer[]): Promise<void> {
    if (!ders.length) return;
    await this.run('INSERT INTO chains (fingerprint, certificate) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING', [ders.map((d) => fingerprint(d)), [...ders]]);
  }

  /**
   * Adds a `ca_certs` row, or changes one held: `current`, and the key (sealed anew with the
   * row's own `key_aad`, or dropped with `null`). Making one current clears `current` on the
   * others of its role (and of its CA, for responders and SCEP RAs).
   * @throws ERR_CERT_INVALID (`duplicate`) when the serial is held by another certificate
   */
  async putCredential(credential: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<void> {
    const held = (await this.run<{ certificate: Buffer; key_aad: string }>('SELECT certificate, key_aad FROM ca_certs WHERE serial = $1 FOR UPDATE', [credential.serial])).rows[0];
    if (held && !held.certificate.equals(credential.certificate)) {
      throw new CertificateInvalid('duplicate', `A different certificate with serial ${credential.serial} is already in the store`);
    }
    if (credential.current) {
      const perCa = credential.role === 'responder' || credential.role === 'scep-ra';
      await this.run(
        `UPDATE ca_certs SET current = false WHERE role = $1 AND serial <> $2 AND current${perCa ? ' AND ca IS NOT DISTINCT FROM $3' : ''}`,
        perCa ? [credential.role, credential.serial, credential.ca ?? null] : [credential.role, credential.serial],
      );
    }
    // A store's first signer has the key path the file store gives it (`signer/key`), as init always wrote it.
    const first = credential.role === 'signer' && !held && !(await this.run(`SELECT 1 FROM ca_certs WHERE role = 'signer' LIMIT 1`)).rowCount;
    const aad = held?.key_aad ?? key?.aad ?? (first ? 'signer/key' : credentialKeyAad(credential));
    const sealed = key ? JSON.stringify(key(aad)) : null;
    if (held) {
      // undefined: the key stays as it is.
      await this.run(`UPDATE ca_certs SET current = $2${key === undefined ? '' : ', sealed_key = $3::jsonb'} WHERE serial = $1`, key === undefined ? [credential.serial, credential.current] : [credential.serial, credential.current, sealed]);
      return;
    }
    await this.run('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad, current, generation) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)', [
      credential.serial, credential.role, credential.ca ?? null, credential.certificate, sealed, aad, credential.current,
      credential.role === 'issuing' ? (credential.generation ?? 1) : (credential.generation ?? null),
    ]);
  }

  /** Sets the `revocations` row of a serial (`ca` absent: NULL), keeping its place in the order. */
  async putRevocation(revocation: Revocation): Promise<void> {
    await this.run(
      `INSERT INTO revocations (serial, kind, ca, date, reason) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (serial) DO UPDATE SET kind = EXCLUDED.kind, ca = EXCLUDED.ca, date = EXCLUDED.date, reason = EXCLUDED.reason`,
      [revocation.serial, revocation.kind, revocation.ca ?? null, new Date(revocation.date), revocation.reason],
    );
  }

  /** Sets the `crls` row of a CA (the published CRL's columns NULL without one). */
  async putCrlState(ca: string, state: CrlState): Promise<void> {
    const p = state.published;
    await this.run(
      `INSERT INTO crls (ca, number, this_update, next_update, digest, der) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (ca) DO UPDATE SET number = EXCLUDED.number, this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, digest = EXCLUDED.digest, der = EXCLUDED.der`,
      [ca, state.number, p ? new Date(p.thisUpdate) : null, p ? new Date(p.nextUpdate) : null, p?.digest ?? null, p?.der ?? null],
    );
  }

  /** Adds or replaces rows of `links` or `scep_challenges` by id, then deletes those of `remove`. */
  async putLinks(book: LinkBookName, links: readonly LinkRecord[], remove: readonly string[] = []): Promise<void> {
    const table = linkTable(book);
    if (links.length) {
      await this.run(
        `INSERT INTO ${table} (token_hash, id, user_email, created, expires, uses_left, revoked)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[], $7::timestamptz[])
           ON CONFLICT (id) DO UPDATE SET token_hash = EXCLUDED.token_hash, user_email = EXCLUDED.user_email, created = EXCLUDED.created,
             expires = EXCLUDED.expires, uses_left = EXCLUDED.uses_left, revoked = EXCLUDED.revoked`,
        [
          links.map((l) => l.tokenHash), links.map((l) => l.id), links.map((l) => l.user), links.map((l) => l.created),
          links.map((l) => l.expires), links.map((l) => l.usesLeft), links.map((l) => l.revoked ?? null),
        ],
      );
    }
    if (remove.length) await this.run(`DELETE FROM ${table} WHERE id = ANY($1::text[])`, [[...remove]]);
  }

  /**
   * Every sealed key of `certificates` and `ca_certs` resealed under its own associated data,
   * read in one query per table and written back by UPDATE … FROM unnest in batches; the
   * PKCS#12 cache emptied; the settings replaced. Returns how many keys.
   */
  async rekey(reseal: (key: SealedKey) => Sealed, settings: StoreSettings): Promise<number> {
    const certs = (await this.run<{ serial: string; sealed_key: Sealed }>('SELECT serial, sealed_key FROM certificates WHERE sealed_key IS NOT NULL', [], 'read')).rows;
    const cas = (await this.run<{ serial: string; sealed_key: Sealed; key_aad: string }>('SELECT serial, sealed_key, key_aad FROM ca_certs WHERE sealed_key IS NOT NULL', [], 'read')).rows;
    const certKeys = certs.map((r) => ({ serial: r.serial, sealed: reseal({ sealed: r.sealed_key, aad: certificateKeyAad(r.serial) }) }));
    const caKeys = cas.map((r) => ({ serial: r.serial, sealed: reseal({ sealed: r.sealed_key, aad: r.key_aad }) }));
    await this.writeKeys('certificates', certKeys);
    await this.writeKeys('ca_certs', caKeys);
    await this.run('DELETE FROM pkcs12_cache');
    await this.putSettings(settings);
    return certKeys.length + caKeys.length;
  }

  private async writeKeys(table: 'certificates' | 'ca_certs', keys: readonly { serial: string; sealed: Sealed }[]): Promise<void> {
    for (let i = 0; i < keys.length; i += RESEAL_BATCH) {
      const batch = keys.slice(i, i + RESEAL_BATCH);
      await this.run(`UPDATE ${table} AS t SET sealed_key = u.k::jsonb FROM unnest($1::text[], $2::text[]) AS u(s, k) WHERE t.serial = u.s`, [
        batch.map((k) => k.serial), batch.map((k) => JSON.stringify(k.sealed)),
      ]);
    }
  }
}
