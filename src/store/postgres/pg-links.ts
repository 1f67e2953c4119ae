/**
 * One-time links in PostgreSQL. Spending a use is one conditional UPDATE … RETURNING: the row
 * lock it takes serializes two servers that receive the same token at the same moment, and
 * only one of them sees a use left. Tokens are kept as SHA-256 hashes and looked up by hash
 * (an index lookup on a hash leaks nothing an attacker can steer, unlike a prefix compare).
 *
 * @module postgres-links
 */
import { createHash } from 'node:crypto';
import { StoreEntryNotFound } from '../../errors.js';
import { linkState, newLink, type LinkRecord, type LinkState, type LinkStore } from '../../server/links.js';
import type { Database } from './db.js';
import { linkOf, type LinkRow } from './port/sql.js';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');
const TOKEN = /^[A-Za-z0-9_-]{22}$/;

/** The links of a PostgreSQL store; its SCEP challenges are a second table of the same shape. */
export class PgLinks implements LinkStore {
  constructor(
    private readonly db: Database,
    private readonly now: () => Date,
    /** `links` or `scep_challenges`: a name of ours, never input. */
    private readonly table: 'links' | 'scep_challenges' = 'links',
  ) {}

  async createMany(users: readonly string[], options: { ttlMs?: number; uses?: number } = {}): Promise<{ token: string; link: LinkRecord }[]> {
    const now = this.now();
    const made = users.map((user) => newLink(user, options, now));
    if (!made.length) return [];
    await this.db.tx(async (c) => {
      const ls = made.map((m) => m.link);
      await c.query(
        `INSERT INTO ${this.table} (token_hash, id, user_email, created, expires, uses_left)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[], $6::int[])`,
        [ls.map((l) => l.tokenHash), ls.map((l) => l.id), ls.map((l) => l.user), ls.map((l) => l.created), ls.map((l) => l.expires), ls.map((l) => l.usesLeft)],
      );
      await this.prune(c, now);
    });
    return made;
  }

  private prune(c: { query: (text: string, values: unknown[]) => Promise<unknown> }, now: Date): Promise<unknown> {
    // Expired and used-up links older than a week are dropped, as the file store does.
    return c.query(`DELETE FROM ${this.table} WHERE (uses_left <= 0 OR revoked IS NOT NULL OR expires < $1) AND expires < $2`, [now, new Date(now.getTime() - 7 * 86_400_000)]);
  }

  async create(user: string, options: { ttlMs?: number; uses?: number } = {}): Promise<{ token: string; link: LinkRecord }> {
    const now = this.now();
    const { token, link } = newLink(user, options, now);
    const tokenHash = link.tokenHash;
    const uses = link.usesLeft;
    await this.db.tx(async (c) => {
      await c.query(`INSERT INTO ${this.table} (token_hash, id, user_email, created, expires, uses_left) VALUES ($1, $2, $3, $4, $5, $6)`, [tokenHash, link.id, user, link.created, link.expires, uses]);
      await this.prune(c, now);
    });
    return { token, link };
  }

  async revoke(id: string): Promise<LinkRecord> {
    const r = await this.db.query<LinkRow>(`UPDATE ${this.table} SET revoked = COALESCE(revoked, $2) WHERE id = $1 RETURNING *`, [String(id).toLowerCase(), this.now()], 'write');
    if (!r.rows[0]) throw new StoreEntryNotFound(id, 'link', `No link "${id}"`);
    return linkOf(r.rows[0]);
  }

  async peek(token: string): Promise<{ link: LinkRecord; state: LinkState } | undefined> {
    if (typeof token !== 'string' || !TOKEN.test(token)) return undefined;
    const r = await this.db.query<LinkRow>(`SELECT * FROM ${this.table} WHERE token_hash = $1`, [hash(token)]);
    if (!r.rows[0]) return undefined;
    const link = linkOf(r.rows[0]);
    return { link, state: linkState(link, this.now()) };
  }

  async consume(token: string): Promise<{ user: string } | { state: LinkState | 'unknown' }> {
    if (typeof token !== 'string' || !TOKEN.test(token)) return { state: 'unknown' };
    const h = hash(token);
    const now = this.now();
    const spent = await this.db.query<{ user_email: string }>(
      `UPDATE ${this.table} SET uses_left = uses_left - 1 WHERE token_hash = $1 AND uses_left > 0 AND revoked IS NULL AND expires >= $2 RETURNING user_email`,
      [h, now],
      'write',
    );
    if (spent.rows[0]) return { user: spent.rows[0].user_email };
    const r = await this.db.query<LinkRow>(`SELECT * FROM ${this.table} WHERE token_hash = $1`, [h]);
    return r.rows[0] ? { state: linkState(linkOf(r.rows[0]), now) } : { state: 'unknown' };
  }

  async list(): Promise<LinkRecord[]> {
    return (await this.db.query<LinkRow>(`SELECT * FROM ${this.table} ORDER BY seq`)).rows.map(linkOf);
  }
}
