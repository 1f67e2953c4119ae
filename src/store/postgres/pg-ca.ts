/**
 * The PostgreSQL store's CA: its certificates and keys (root, issuing CA, profile signer, OCSP
 * responders, in `ca_certs`), revocation, CRLs and OCSP status. CRLs and statuses are read from
 * the tables when asked, so a revocation committed on one node is in the next answer of every
 * node; a CRL number is taken by an update of its row inside the transaction that signs it.
 *
 * @module postgres-ca
 */
import type { SerialStatus } from '../../pki/handler.js';
import { X509Certificate } from 'node:crypto';
import type pg from 'pg';
import { createOcspResponder, createScepRa } from '../../certs/ca.js';
import { createCrl, type RevocationReason } from '../../certs/crl.js';
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { caSlug, parseCaSlug, type CaRef } from '../../certs/publication.js';
import { certificateBasics, describeCertificate } from '../../certs/x509.js';
import { keySigner, type Signer } from '../../cms/sign.js';
import { CertificateInvalid, InputInvalid, StoreIOError } from '../../errors.js';
import type { ResponderIdentity, RevokeResult, ServiceKind, StoreCa } from '../pki-files.js';
import type { Sealed } from '../secret-box.js';
import type { CertificateRecord, RemoveUserResult, TrustChain } from '../store.js';
import type { Database } from './db.js';
import * as revocation from './pg-revocation.js';
import { digestOf, exportKey, type Keyring } from './rows.js';
import { seal } from '../secret-box.js';

/** How the CA part finds the store's records. */
export interface RecordLookup {
  record(serial: string): Promise<CertificateRecord>;
  list(options: { user: string }): Promise<CertificateRecord[]>;
}

/** The CA of a PostgreSQL store. */
export class PgCa {
  #issuers = new Map<string, Promise<Identity>>();
  #caCerts: Promise<StoreCa[]> | undefined;
  #caCertsAt = 0;
  #chain: { at: number; value: TrustChain } | undefined;
  #responders = new Map<string, Promise<ResponderIdentity>>();

  /** @internal */
  readonly db: Database;
  /** @internal */
  readonly lookup: RecordLookup;
  /** @internal */
  readonly now: () => Date;

  constructor(
    db: Database,
    private readonly keys: Keyring,
    lookup: RecordLookup,
    now: () => Date,
    /** Refuses a write sealed under a key generation that is no longer the store's. */
    private readonly guard: (c: pg.ClientBase) => Promise<void>,
  ) {
    this.db = db;
    this.lookup = lookup;
    this.now = now;
  }

  /** Forgets the decrypted CA keys (after a passphrase change). */
  forgetKeys(): void {
    this.#issuers.clear();
    this.#responders.clear();
  }

  /**
   * The store's CA certificates: the root and every issuing CA generation, oldest first.
   * Re-read at most once a second, so that a long-running node sees a rotation made on another.
   */
  async caCertificates(): Promise<StoreCa[]> {
    if (this.#caCerts && Date.now() - this.#caCertsAt > 1000) this.#caCerts = undefined;
    return (this.#caCerts ??= (async () => {
      this.#caCertsAt = Date.now();
      const r = await this.db.query<{ role: string; generation: number | null; certificate: Buffer }>(`SELECT role, generation, certificate FROM ca_certs WHERE role IN ('root', 'issuing') ORDER BY role DESC, generation`);
      const out: StoreCa[] = [];
      for (const row of r.rows) {
        const ca: CaRef = row.role === 'root' ? 'root' : (row.generation ?? 1);
        const info = await describeCertificate(row.certificate);
        out.push({ ca, slug: caSlug(ca), certificate: row.certificate, serial: normalizeSerial(info.serial), subject: info.subject, notBefore: info.notBefore, notAfter: info.notAfter });
      }
      return out;
    })()).catch((err) => {
      this.#caCerts = undefined;
      throw err;
    });
  }

  /** The current issuing CA's generation (the newest). */
  async current(): Promise<number> {
    return Math.max(1, ...(await this.caCertificates()).filter((c) => c.ca !== 'root').map((c) => c.ca as number));
  }

  /** The issuing CA generation that issued a record of this store's CA (by its issuer name). */
  async issuingOf(record: { issuer: string }): Promise<number> {
    const hit = (await this.caCertificates()).find((c) => c.ca !== 'root' && c.subject === record.issuer);
    return hit ? (hit.ca as number) : 1;
  }

  /** Forgets the CA certificates read (after a rotation by this node). */
  forgetCas(): void {
    this.#caCerts = undefined;
    this.#chain = undefined;
  }

  async caCert(ca: CaRef): Promise<Buffer> {
    const hit = (await this.caCertificates()).find((c) => c.ca === ca);
    if (!hit) throw new InputInvalid('ca', `This store has no CA ${caSlug(ca)}`);
    return hit.certificate;
  }

  /** The issuing CA's certificate and key; needs the passphrase. */
  async issuerIdentity(generation?: number): Promise<Identity> {
    return this.caIdentity(generation ?? (await this.current()));
  }

  caIdentity(ca: CaRef): Promise<Identity> {
    const slug = caSlug(ca);
    let hit = this.#issuers.get(slug);
    if (!hit) {
      hit = (async () => {
        const r = ca === 'root'
          ? await this.db.query<{ certificate: Buffer; sealed_key: Sealed; key_aad: string }>(`SELECT certificate, sealed_key, key_aad FROM ca_certs WHERE role = 'root'`)
          : await this.db.query<{ certificate: Buffer; sealed_key: Sealed; key_aad: string }>(`SELECT certificate, sealed_key, key_aad FROM ca_certs WHERE role = 'issuing' AND generation = $1`, [ca]);
        if (!r.rows[0] && ca !== 'root') throw new InputInvalid('ca', `This store has no issuing CA ${slug}`);
        const row = r.rows[0];
        if (!row) throw new StoreIOError(this.db.where, 'read', `The store at ${this.db.where} has no ${slug} CA`);
        return { certificate: row.certificate, privateKey: await this.keys.openChecked(this.db, row.sealed_key, row.key_aad) };
      })();
      hit.catch(() => this.#issuers.delete(slug));
      this.#issuers.set(slug, hit);
    }
    return hit;
  }

  /**
   * The root, and the issuing CAs a device needs: the current one first, then each older one
   * that is neither revoked nor expired and still has live certificates (or issued the signer).
   */
  async trustChain(): Promise<TrustChain> {
    // Every profile asks for it: after a rotation it costs three queries over the certificates,
    // so it is kept as long as the CA list is (re-read within a second).
    if (this.#chain && Date.now() - this.#chain.at <= 1000) return this.#chain.value;
    const value = await this.readTrustChain();
    this.#chain = { at: Date.now(), value };
    return value;
  }

  private async readTrustChain(): Promise<TrustChain> {
    const root = await this.caCert('root');
    const current = await this.current();
    if (current === 1) return { roots: [root], intermediates: [await this.caCert(1)] };
    const cas = (await this.caCertificates()).filter((c) => c.ca !== 'root');
    const revoked = await this.revokedSerials();
    const signerCa = (await this.db.query<{ ca: string | null }>(`SELECT ca FROM ca_certs WHERE role = 'signer' AND current`)).rows[0]?.ca;
    const signerGen = signerCa ? parseCaSlug(signerCa) : undefined;
    const live = new Set((await this.db.query<{ issuer: string }>(
      `SELECT DISTINCT c.record->>'issuer' AS issuer FROM certificates c LEFT JOIN revocations v ON v.serial = c.serial
         WHERE c.record->>'source' = 'issued' AND v.serial IS NULL AND (c.record->>'notAfter')::timestamptz > $1 AND (c.record->>'notBefore')::timestamptz <= $1`,
      [this.now()],
    )).rows.map((r) => r.issuer));
    const now = this.now();
    const keep = cas.filter((c) => c.ca === current || c.ca === signerGen || (!revoked.has(c.serial) && c.notAfter > now && live.has(c.subject)));
    keep.sort((a, b) => (a.ca === current ? -1 : b.ca === current ? 1 : (b.ca as number) - (a.ca as number)));
    return { roots: [root], intermediates: keep.map((c) => c.certificate) };
  }

  async profileSigner(): Promise<Signer> {
    const r = await this.db.query<{ serial: string; ca: string | null; certificate: Buffer; sealed_key: Sealed; key_aad: string; revoked: boolean }>(
      `SELECT s.serial, s.ca, s.certificate, s.sealed_key, s.key_aad, EXISTS (SELECT 1 FROM revocations v WHERE v.serial = s.serial AND v.kind = 'revoked') AS revoked
         FROM ca_certs s WHERE s.role = 'signer' AND s.current`,
    );
    const row = r.rows[0];
    if (!row) throw new StoreIOError(this.db.where, 'read', `The store at ${this.db.where} has no profile signer`);
    if (row.revoked) throw new CertificateInvalid('revoked', 'The profile-signing certificate of this store has been revoked');
    // An imported signer's issuers are kept in chains (meta.signerChain), refreshed from the meta row.
    const meta = (await this.db.query<{ chain: string[] | null }>(`SELECT meta->'signerChain' AS chain FROM store_meta`)).rows[0]?.chain;
    let chain: Buffer[] = [await this.caCert(parseCaSlug(row.ca ?? 'issuing') ?? 1)];
    if (meta?.length) {
      const r = await this.db.query<{ fingerprint: string; certificate: Buffer }>('SELECT fingerprint, certificate FROM chains WHERE fingerprint = ANY($1)', [meta]);
      const by = new Map(r.rows.map((x) => [x.fingerprint, x.certificate]));
      chain = meta.map((fp) => by.get(fp)).filter((d): d is Buffer => !!d);
    }
    return keySigner({ key: await this.keys.openChecked(this.db, row.sealed_key, row.key_aad), certificate: row.certificate, chain });
  }

  /** Serials revoked by this store's CAs, for `verify`. */
  async revokedSerials(): Promise<Set<string>> {
    return new Set((await this.db.query<{ serial: string }>(`SELECT serial FROM revocations WHERE kind = 'revoked'`)).rows.map((r) => r.serial));
  }



  revokeCertificate(serial: string, reason: RevocationReason = 'unspecified'): Promise<RevokeResult> {
    // What this node revokes is in its own next trust chain at once (others see it within a second).
    this.#chain = undefined;
    return revocation.revokeCertificate(this, serial, reason).finally(() => (this.#chain = undefined));
  }

  removeUser(user: string, options: { revoke?: boolean } = {}): Promise<RemoveUserResult> {
    return revocation.removeUser(this, user, options).finally(() => (this.#chain = undefined));
  }

  /** A query in the transaction `c`, or on the pool. */
  private run<R extends pg.QueryResultRow>(c: pg.ClientBase | undefined, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return c ? c.query<R>(text, values) : this.db.query<R>(text, values);
  }

  private async revocationsOf(c: pg.ClientBase | undefined, ca: CaRef) {
    const r = await this.run<{ serial: string; date: Date; reason: string }>(c, `SELECT serial, date, reason FROM revocations WHERE kind = 'revoked' AND COALESCE(ca, 'issuing') = $1 ORDER BY seq`, [caSlug(ca)]);
    return r.rows.map((x) => ({ serial: x.serial, date: x.date, reason: x.reason as RevocationReason }));
  }

  /**
   * Signs a CRL with the next CRL number (taken in the same transaction, under the row's lock:
   * strictly increasing across nodes) and keeps it as the published one.
   */
  private async signCrl(ca: CaRef, validityMs: number): Promise<Buffer> {
    const issuer = await this.caIdentity(ca);
    const slug = caSlug(ca);
    return this.db.tx(async (c) => {
      await c.query('INSERT INTO crls (ca, number) VALUES ($1, 0) ON CONFLICT DO NOTHING', [slug]);
      const prev = (await c.query<{ number: string }>('SELECT number FROM crls WHERE ca = $1 FOR UPDATE', [slug])).rows[0]!;
      const now = this.now();
      const number = Math.max(Number(prev.number) + 1, Math.floor(now.getTime() / 1000));
      const entries = await this.revocationsOf(c, ca);
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + validityMs);
      const der = await createCrl({ issuerCertificate: issuer.certificate, issuerKey: issuer.privateKey, entries, thisUpdate, nextUpdate, crlNumber: number });
      await c.query('UPDATE crls SET number = $2, this_update = $3, next_update = $4, digest = $5, der = $6 WHERE ca = $1', [slug, number, thisUpdate, nextUpdate, digestOf(entries), der]);
      return der;
    });
  }

  async createCrl(options: { ca?: CaRef; nextUpdateMs?: number } = {}): Promise<Buffer> {
    const current = await this.current();
    const ca = options.ca ?? current;
    if (ca !== 'root' && (ca < 1 || ca > current)) throw new InputInvalid('ca', `This store has no issuing CA ${caSlug(ca)}`);
    return this.signCrl(ca, options.nextUpdateMs ?? 7 * 86_400_000);
  }

  /** The CA's current CRL: the last one signed while it lists exactly today's revocations and is less than half through its validity, else a new one. */
  async publishedCrl(ca: CaRef, options: { validityMs?: number } = {}): Promise<Buffer> {
    const r = (await this.db.query<{ digest: string | null; der: Buffer | null; this_update: Date | null; next_update: Date | null }>('SELECT digest, der, this_update, next_update FROM crls WHERE ca = $1', [caSlug(ca)])).rows[0];
    const now = this.now().getTime();
    if (r?.der && r.this_update && r.next_update && r.digest === digestOf(await this.revocationsOf(undefined, ca))) {
      const start = r.this_update.getTime();
      if (now >= start && now < start + (r.next_update.getTime() - start) / 2) return r.der;
    }
    return this.signCrl(ca, options.validityMs ?? 7 * 86_400_000);
  }

  /** The delegated OCSP responder of `ca`, issued and renewed as needed (kept in `ca_certs`, key sealed). */
  ocspResponder(ca: CaRef): Promise<ResponderIdentity> {
    return this.serviceIdentity(ca, 'ocsp');
  }

  /**
   * One of the identities a CA issues for the store's own services (the OCSP responder, role
   * `responder`; the SCEP RA, role `scep-ra`), issued and renewed at half its validity, in one
   * transaction under a lock so that two nodes make one.
   */
  async serviceIdentity(ca: CaRef, kind: ServiceKind): Promise<ResponderIdentity> {
    const slug = caSlug(ca);
    const role = kind === 'ocsp' ? 'responder' : 'scep-ra';
    const slot = `${kind}:${slug}`;
    const fresh = (r: ResponderIdentity) => {
      const now = this.now().getTime();
      return now >= r.notBefore.getTime() && now < r.notBefore.getTime() + (r.notAfter.getTime() - r.notBefore.getTime()) / 2;
    };
    const hit = await this.#responders.get(slot)?.catch(() => undefined);
    if (hit && fresh(hit)) return hit;
    const read = (c?: pg.ClientBase) => this.readService(c, role, slug);
    const next = (async () => {
      const current = await read();
      if (current && fresh(current)) return current;
      const issuer = await this.caIdentity(ca);
      return this.db.tx(async (c) => {
        const again = await read(c);
        if (again && fresh(again)) return again;
        const options = { organization: this.keys.meta.organization, now: this.now, ...(this.keys.meta.keyAlgorithm ? { keyAlgorithm: this.keys.meta.keyAlgorithm } : {}), ...(this.keys.meta.pkiUrl ? { pkiUrl: this.keys.meta.pkiUrl } : {}) };
        const r = await (kind === 'ocsp' ? createOcspResponder : createScepRa)(issuer, ca, options);
        const info = certificateBasics(r.certificate);
        const serial = normalizeSerial(info.serial);
        const aad = `${kind === 'ocsp' ? 'ocsp' : 'scep'}/${slug}-${serial}.key`;
        await this.guard(c);
        await c.query(`UPDATE ca_certs SET current = false WHERE role = $1 AND ca = $2`, [role, slug]);
        await c.query('INSERT INTO ca_certs (serial, role, ca, certificate, sealed_key, key_aad) VALUES ($1, $2, $3, $4, $5, $6)', [serial, role, slug, r.certificate, seal(this.keys.require(`issue ${kind === 'ocsp' ? 'an OCSP responder' : 'the SCEP RA certificate'}`), exportKey(r.privateKey), aad), aad]);
        return { ...r, serial, notBefore: new Date(new X509Certificate(r.certificate).validFrom), notAfter: info.notAfter };
      }, { lock: `${role}|${slug}` });
    })();
    this.#responders.set(slot, next);
    next.catch(() => this.#responders.delete(slot));
    return next;
  }

  /** The current service identity of a role and CA, or (with `serial`) that one, while not revoked. */
  async readService(c: pg.ClientBase | undefined, role: 'responder' | 'scep-ra', slug: string | undefined, serial?: string): Promise<ResponderIdentity | undefined> {
    const row = (await this.run<{ serial: string; certificate: Buffer; sealed_key: Sealed | null; key_aad: string }>(
      c,
      `SELECT serial, certificate, sealed_key, key_aad FROM ca_certs WHERE role = $1 AND ${serial ? 'serial = $2' : 'ca = $2 AND current'}
         AND NOT EXISTS (SELECT 1 FROM revocations v WHERE v.serial = ca_certs.serial AND v.kind = 'revoked') ORDER BY created DESC LIMIT 1`,
      [role, serial ?? slug],
    )).rows[0];
    if (!row?.sealed_key) return undefined;
    const x = new X509Certificate(row.certificate);
    return { certificate: row.certificate, privateKey: this.keys.open(row.sealed_key, row.key_aad), serial: row.serial, notBefore: new Date(x.validFrom), notAfter: new Date(x.validTo) };
  }

  /** The status of a serial among the certificates `ca` issued (for OCSP); a retired certificate is good. */
  async certificateStatus(ca: CaRef, serial: string): Promise<SerialStatus> {
    return (await this.certificateStatuses(ca, [serial]))[0]!;
  }

  /** The statuses of several serials in one query (an OCSP request names up to 16). */
  async certificateStatuses(ca: CaRef, serials: readonly string[]): Promise<SerialStatus[]> {
    const wanted = serials.map(normalizeSerial);
    const slug = caSlug(ca);
    // A user certificate this CA issued (by its issuer name), or one of the store's own it issued.
    const subject = ca === 'root' ? null : ((await this.caCertificates()).find((c) => c.ca === ca)?.subject ?? null);
    const r = await this.db.query<{ serial: string; issued: boolean; kind: string | null; date: Date | null; reason: string | null }>(
      `SELECT s.serial,
              (EXISTS (SELECT 1 FROM certificates WHERE serial = s.serial AND record->>'source' = 'issued' AND record->>'issuer' = $3)
            OR EXISTS (SELECT 1 FROM ca_certs WHERE serial = s.serial AND ca = $2)) AS issued,
              v.kind, v.date, v.reason
         FROM unnest($1::text[]) AS s(serial)
         LEFT JOIN revocations v ON v.serial = s.serial AND v.kind = 'revoked' AND COALESCE(v.ca, 'issuing') = $2`,
      [[...new Set(wanted)], slug, subject],
    );
    const bySerial = new Map(r.rows.map((row) => [row.serial, row]));
    return wanted.map((s): SerialStatus => {
      const row = bySerial.get(s);
      if (!row?.issued) return { status: 'unknown' };
      if (row.kind === 'revoked') return { status: 'revoked', date: row.date!, reason: row.reason as RevocationReason };
      return { status: 'good' };
    });
  }
}
