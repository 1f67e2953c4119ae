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
import type { LinkBookName, StoragePort } from '../store/port/port.js';

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

/**
 * `active`, `used`, `expired` or `revoked` at `now`.
 * @example
 * const { link } = await store.links.create('alice@example.com')
 * console.log(linkState(link, new Date())) // 'valid'
 */
export function linkState(l: LinkRecord, now: Date): LinkState {
  if (l.revoked) return 'revoked';
  if (l.usesLeft <= 0) return 'used';
  if (now.getTime() > Date.parse(l.expires)) return 'expired';
  return 'valid';
}

/**
 * A new link for `user` (1 to 1000 uses, 1 minute to 90 days; default one use for a day): a
 * 128-bit random token, returned once, and the record that keeps only its SHA-256. For stores
 * that keep links in their own storage.
 * @throws ERR_INPUT_INVALID for a bad address, use count or lifetime
 */
export function newLink(user: string, options: { ttlMs?: number; uses?: number }, now: Date): { token: string; link: LinkRecord } {
  assertEmail(user);
  const uses = options.uses ?? 1;
  const ttl = options.ttlMs ?? 86_400_000;
  if (!Number.isInteger(uses) || uses < 1 || uses > 1000) throw new InputInvalid('uses', 'A link takes 1 to 1000 uses');
  if (!(ttl >= 60_000 && ttl <= 90 * 86_400_000)) throw new InputInvalid('ttl', 'A link lives 1 minute to 90 days');
  const token = randomBytes(16).toString('base64url');
  const tokenHash = hash(token);
  const link: LinkRecord = { id: tokenHash.slice(0, 12), tokenHash, user, created: now.toISOString(), expires: new Date(now.getTime() + ttl).toISOString(), usesLeft: uses };
  return { token, link };
}

/**
 * One-time links as a store keeps them: part of the store contract (`LifecycleStore.links`),
 * so that a link is used exactly once whichever server receives it.
 */
export interface LinkStore {
  /** Creates a link; returns the token (shown once, never stored) and the record. */
  create(user: string, options?: { ttlMs?: number; uses?: number }): Promise<{ token: string; link: LinkRecord }>;
  /** Revokes a link by its id. @throws ERR_STORE_ENTRY_NOT_FOUND */
  revoke(id: string): Promise<LinkRecord>;
  /** The link of a token and its state, without using it. */
  peek(token: string): Promise<{ link: LinkRecord; state: LinkState } | undefined>;
  /** Spends one use of a valid link, atomically; returns its user, or why it cannot be used. */
  consume(token: string): Promise<{ user: string } | { state: LinkState | 'unknown' }>;
  /** Every link, newest last (tokens are never stored, so never listed). */
  list(): Promise<LinkRecord[]>;
  /**
   * Optional: creates a link for each user in one step (a batch mints a SCEP challenge per
   * profile). Without it, callers create them one by one.
   */
  createMany?(users: readonly string[], options?: { ttlMs?: number; uses?: number }): Promise<{ token: string; link: LinkRecord }[]>;
}

/**
 * The token logic of one-time links (128-bit random tokens kept as SHA-256 hashes, constant-time
 * lookup, TTL and uses), over a storage that a subclass provides: `list` reads the links, and
 * `transact` runs a change with nothing else changing them meanwhile (a lock, a database
 * transaction) and saves it. Extend it to keep links in your own database.
 * @example
 * import { LinkLedger, type LinkRecord } from 'profilesmith'
 *
 * // Links in your own database; here a Map behind one lock stands in for it.
 * class KvLinks extends LinkLedger {
 *   #rows = new Map<string, LinkRecord[]>()
 *   #lock: Promise<unknown> = Promise.resolve()
 *   async list(): Promise<LinkRecord[]> {
 *     return structuredClone(this.#rows.get('links') ?? []) // SELECT doc FROM links
 *   }
 *   protected transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
 *     const run = this.#lock.then(async () => {
 *       const links = await this.list() // BEGIN; SELECT ... FOR UPDATE
 *       const out = fn(links) // the change, made in place
 *       this.#rows.set('links', this.prune(links)) // UPDATE ...; COMMIT
 *       return out
 *     })
 *     this.#lock = run.catch(() => {})
 *     return run
 *   }
 * }
 * const { token } = await new KvLinks().create('alice@example.com')
 */
export abstract class LinkLedger implements LinkStore {
  /** @param now the clock that expiry is judged by. Default: `() => new Date()`. */
  constructor(now: () => Date = () => new Date()) {
    this.now = now;
  }

  /** The clock that expiry is judged by. */
  protected readonly now: () => Date;

  abstract list(): Promise<LinkRecord[]>;

  /** Runs `fn` over the current links with no other change in between, then saves them (as `fn` left them). */
  protected abstract transact<T>(fn: (links: LinkRecord[]) => T): Promise<T>;

  /** What is kept after a change: expired and used-up links older than a week are dropped. */
  protected prune(links: LinkRecord[]): LinkRecord[] {
    const cutoff = this.now().getTime() - 7 * 86_400_000;
    return links.filter((l) => linkState(l, this.now()) === 'valid' || Date.parse(l.expires) > cutoff);
  }

  async create(user: string, options: { ttlMs?: number; uses?: number } = {}): Promise<{ token: string; link: LinkRecord }> {
    const { token, link } = newLink(user, options, this.now());
    await this.transact((links) => links.push(link));
    return { token, link: { ...link } };
  }

  async createMany(users: readonly string[], options: { ttlMs?: number; uses?: number } = {}): Promise<{ token: string; link: LinkRecord }[]> {
    const made = users.map((user) => newLink(user, options, this.now()));
    if (made.length) await this.transact((links) => links.push(...made.map((m) => m.link)));
    return made.map(({ token, link }) => ({ token, link: { ...link } }));
  }

  async revoke(id: string): Promise<LinkRecord> {
    return this.transact((links) => {
      const l = links.find((x) => x.id === String(id).toLowerCase());
      if (!l) throw new StoreEntryNotFound(id, 'link', `No link "${id}"`);
      l.revoked ??= this.now().toISOString();
      return { ...l };
    });
  }

  private static match(links: LinkRecord[], token: string): LinkRecord | undefined {
    if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(token)) return undefined;
    const h = Buffer.from(hash(token), 'hex');
    // Constant-time comparison of the hashes; the lookup never branches on a token prefix.
    let found: LinkRecord | undefined;
    for (const l of links) if (timingSafeEqual(Buffer.from(l.tokenHash, 'hex'), h)) found = l;
    return found;
  }

  async peek(token: string): Promise<{ link: LinkRecord; state: LinkState } | undefined> {
    const l = LinkLedger.match(await this.list(), token);
    return l ? { link: l, state: linkState(l, this.now()) } : undefined;
  }

  async consume(token: string): Promise<{ user: string } | { state: LinkState | 'unknown' }> {
    return this.transact((links) => {
      const l = LinkLedger.match(links, token);
      if (!l) return { state: 'unknown' as const };
      const state = linkState(l, this.now());
      if (state !== 'valid') return { state };
      l.usesLeft--;
      return { user: l.user };
    });
  }
}

/**
 * The links of a file store: `links.json` in its directory, changed under the store lock. The
 * store's SCEP challenges are a second book of the same kind (`challenges.json`), so that a
 * challenge is never a download link nor a link a challenge.
 * @example
 * const links = new LinkBook('./links')
 * const { token } = await links.create('alice@example.com', { ttlMs: 7 * 86_400_000 })
 * const profiles = createProfileHandler({ store, links, template: 'exchange-smime', data: { exchange: { host: 'mail.example.com' } } })
 */
export class LinkBook extends LinkLedger {
  constructor(
    readonly dir: string,
    now: () => Date = () => new Date(),
    /** The file in `dir`. Default: `links.json`. */
    readonly file: string = 'links.json',
  ) {
    super(now);
  }

  private get path() {
    return join(this.dir, this.file);
  }

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

  protected async transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    return withLock(this.dir, async () => {
      const links = await this.list();
      const out = fn(links);
      await atomicWrite(this.path, JSON.stringify({ version: 1, links: this.prune(links) }, null, 2) + '\n', 0o600);
      return out;
    });
  }
}

/**
 * Links kept in memory (the memory store's): one process, so a change is atomic by itself.
 * @example
 * const links = new MemoryLinks()
 * const { token } = await links.create('alice@example.com')
 * const spent = await links.consume(token)
 */
export class MemoryLinks extends LinkLedger {
  #links: LinkRecord[] = [];

  async list(): Promise<LinkRecord[]> {
    return structuredClone(this.#links);
  }

  protected async transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    // No await between reading and writing: nothing else runs in between.
    const links = structuredClone(this.#links);
    const out = fn(links);
    this.#links = this.prune(links);
    return out;
  }
}

/**
 * One-time links kept by a storage port (the CA's links and SCEP challenges over a port without
 * a book of its own): each change is one port transaction, so a link is used exactly once
 * whichever process or node receives it.
 * @example
 * const links = new PortLinks(new MemoryPort(), 'links')
 * const { token } = await links.create('alice@example.com')
 */
export class PortLinks extends LinkLedger {
  constructor(
    private readonly port: StoragePort,
    private readonly book: LinkBookName,
    now: () => Date = () => new Date(),
  ) {
    super(now);
  }

  list(): Promise<LinkRecord[]> {
    return this.port.links(this.book);
  }

  protected transact<T>(fn: (links: LinkRecord[]) => T): Promise<T> {
    return this.port.transaction(async (tx) => {
      const before = await tx.links(this.book);
      const was = new Map(before.map((l) => [l.id, JSON.stringify(l)]));
      const links = structuredClone(before);
      const out = fn(links);
      const kept = this.prune(links);
      const ids = new Set(kept.map((l) => l.id));
      const changed = kept.filter((l) => was.get(l.id) !== JSON.stringify(l));
      const removed = before.filter((l) => !ids.has(l.id)).map((l) => l.id);
      if (changed.length || removed.length) await tx.putLinks(this.book, changed, removed);
      return out;
    });
  }
}

