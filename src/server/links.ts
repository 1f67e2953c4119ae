/**
 * One-time download links: 128-bit random tokens, kept only as SHA-256 hashes in the store
 * (`links.json`), each for one user, with an expiry and a number of uses. Using a link up
 * happens under the store lock, so two servers on one store cannot both spend the last use.
 *
 * @module links
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { assertEmail } from '../certs/email.js';
import { InputInvalid, StoreEntryNotFound, StoreIOError } from '../errors.js';
import { atomicWrite, ioError } from '../store/fs-util.js';
import { withLock } from '../store/lock.js';

/** A one-time download link as stored (the token itself is kept only as a hash). */
export interface LinkRecord {
  /** Public id (the first 12 hex digits of the token hash), for list and revoke. */
  id: string;
  /** SHA-256 of the token, hex. The token itself is never stored. */
  tokenHash: string;
  user: string;
  created: string;
  expires: string;
  usesLeft: number;
  revoked?: string;
}

/** Whether a link can still be used. */
export type LinkState = 'valid' | 'expired' | 'used' | 'revoked';

const hash = (token: string) => createHash('sha256').update(token).digest('hex');

/** `active`, `used`, `expired` or `revoked` at `now`. */
export function linkState(l: LinkRecord, now: Date): LinkState {
  if (l.revoked) return 'revoked';
  if (l.usesLeft <= 0) return 'used';
  if (now.getTime() > Date.parse(l.expires)) return 'expired';
  return 'valid';
}

/** The links of a file store (its directory). */
export class LinkBook {
  constructor(
    readonly dir: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  private get path() {
    return join(this.dir, 'links.json');
  }

  /** Every link, newest last. */
  async list(): Promise<LinkRecord[]> {
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw ioError(this.path, 'read', err);
    }
    try {
      const links = (JSON.parse(text) as { links: LinkRecord[] }).links;
      if (!Array.isArray(links)) throw new Error('links');
      return links;
    } catch (cause) {
      throw new StoreIOError(this.path, 'read', `"${this.path}" is damaged`, { cause });
    }
  }

  private async update<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    return withLock(this.dir, async () => {
      const links = await this.list();
      const out = fn(links);
      // Expired and used-up links older than a week are dropped, so the file stays small.
      const cutoff = this.now().getTime() - 7 * 86_400_000;
      const kept = links.filter((l) => linkState(l, this.now()) === 'valid' || Date.parse(l.expires) > cutoff);
      await atomicWrite(this.path, JSON.stringify({ version: 1, links: kept }, null, 2) + '\n', 0o600);
      return out;
    });
  }

  /** Creates a link; returns the token (shown once) and the record. */
  async create(user: string, options: { ttlMs?: number; uses?: number } = {}): Promise<{ token: string; link: LinkRecord }> {
    assertEmail(user);
    const uses = options.uses ?? 1;
    const ttl = options.ttlMs ?? 86_400_000;
    if (!Number.isInteger(uses) || uses < 1 || uses > 1000) throw new InputInvalid('uses', 'A link takes 1 to 1000 uses');
    if (ttl < 60_000 || ttl > 90 * 86_400_000) throw new InputInvalid('ttl', 'A link lives 1 minute to 90 days');
    const token = randomBytes(16).toString('base64url');
    const tokenHash = hash(token);
    const now = this.now();
    const link: LinkRecord = { id: tokenHash.slice(0, 12), tokenHash, user, created: now.toISOString(), expires: new Date(now.getTime() + ttl).toISOString(), usesLeft: uses };
    await this.update((links) => links.push(link));
    return { token, link };
  }

  /**
   * Revokes a link by its id.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown id
   */
  async revoke(id: string): Promise<LinkRecord> {
    return this.update((links) => {
      const l = links.find((x) => x.id === id.toLowerCase());
      if (!l) throw new StoreEntryNotFound(id, 'link', `No link "${id}"`);
      l.revoked ??= this.now().toISOString();
      return l;
    });
  }

  private static match(links: LinkRecord[], token: string): LinkRecord | undefined {
    if (!/^[A-Za-z0-9_-]{22}$/.test(token)) return undefined;
    const h = Buffer.from(hash(token), 'hex');
    // Constant-time comparison of the hashes; the lookup never branches on a token prefix.
    let found: LinkRecord | undefined;
    for (const l of links) if (timingSafeEqual(Buffer.from(l.tokenHash, 'hex'), h)) found = l;
    return found;
  }

  /** The link of a token and its state, without using it. */
  async peek(token: string): Promise<{ link: LinkRecord; state: LinkState } | undefined> {
    const l = LinkBook.match(await this.list(), token);
    return l ? { link: l, state: linkState(l, this.now()) } : undefined;
  }

  /** Spends one use of a valid link; returns its user, or the reason it cannot be used. */
  async consume(token: string): Promise<{ user: string } | { state: LinkState | 'unknown' }> {
    return this.update((links) => {
      const l = LinkBook.match(links, token);
      if (!l) return { state: 'unknown' as const };
      const state = linkState(l, this.now());
      if (state !== 'valid') return { state };
      l.usesLeft--;
      return { user: l.user };
    });
  }
}
