/**
 * The file port: a {@link StoragePort} over exactly the file store's directory layout (see
 * file-store.ts and pki-files.ts), so that a store made by `initStore` opens through it as it
 * is, and a store written through it opens with `openStore`. Transactions run under the store
 * lock (lock.ts), which today's file store takes for its writes too.
 *
 * @module file-port
 */
import { promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import { StoreIOError, StoreNotInitialized } from '../../../errors.js';
import { LinkBook, type LinkStore } from '../../../server/links.js';
import type { CertificateRecord, ListCertificatesOptions } from '../../store.js';
import type { StoreMeta } from '../meta.js';
import type { DamagedEntry } from '../record-index.js';
import type { LinkBookName, PortCache, PortTransaction, StoragePort } from '../../port/port.js';
import { ioError } from '../../fs-util.js';
import { withLock } from '../../lock.js';
import { BOOK_FILES, PortContext, readMeta } from './layout.js';
import type { FilePortCache } from './pkcs12.js';
import { FileReads } from './reads.js';

/** Options of {@link openFilePort}. */
export interface FilePortOptions {
  /** fsync each certificate entry written. Default: true. False suits bulk loads: entries stay atomic, but a power cut may lose the newest. */
  durable?: boolean;
  /** Make the directory (mode 0700) when it is missing; a directory without store.json is then a store not written yet. */
  create?: boolean;
}

/** The file port. Open it with {@link openFilePort}. */
export class FilePort extends FileReads implements StoragePort {
  /** The store's directory (absolute). */
  readonly location: string;
  /** The PKCS#12 cache: `pkcs12-cache/`, as today's file store keeps it (its code loads with its first use). */
  readonly cache: PortCache;
  #cache: FilePortCache | undefined;

  /** @internal Use {@link openFilePort}. */
  constructor(ctx: PortContext) {
    super(ctx, false);
    this.location = ctx.dir;
    const impl = async () => (this.#cache ??= new (await import('./pkcs12.js')).FilePortCache(ctx.dir));
    this.cache = {
      get: async (record, box) => (this.#cache ?? (await impl())).get(record, box),
      put: async (record, built, box) => (this.#cache ?? (await impl())).put(record, built, box),
    };
  }

  /**
   * Runs `fn` under the store lock and commits its writes when it returns; when it throws,
   * nothing is written.
   * @throws ERR_STORE_IO when another process changed the passphrase since this port read the key generation
   */
  transaction<T>(fn: (tx: PortTransaction) => Promise<T>): Promise<T> {
    const ctx = this.ctx;
    return withLock(ctx.dir, async () => {
      const disk = await readMeta(ctx.dir);
      if (disk && ctx.generation !== undefined && disk.keyGeneration !== ctx.generation) {
        throw new StoreIOError(join(ctx.dir, 'store.json'), 'write', 'The store passphrase was changed while this ran; run it again');
      }
      if (disk) ctx.generation = disk.keyGeneration;
      ctx.sync();
      // The writing code loads with the first write: listing a store needs none of it.
      const [{ FileTransaction }, { commit }] = await Promise.all([import('./transaction.js'), import('./commit.js')]);
      const tx = new FileTransaction(ctx);
      const out = await fn(tx);
      await commit(ctx, tx.plan);
      if (tx.plan.rekey) this.#cache?.forget();
      return out;
    });
  }

  /** The store's own link book (`links.json` or `challenges.json`), as today's file store keeps it: a use is spent under the store lock. */
  linkStore(book: LinkBookName, now: () => Date): LinkStore {
    return new LinkBook(this.ctx.dir, now, BOOK_FILES[book]);
  }

  /** fsync each certificate entry written. */
  get durable(): boolean {
    return this.ctx.durable;
  }

  /** store.json as it is now, with the layout's pointers (what store check reads). @throws ERR_STORE_NOT_INITIALIZED */
  storeMeta(): Promise<StoreMeta> {
    this.ctx.sync();
    return this.ctx.readMeta(true);
  }

  /** The records that can be read, and the damaged entries among those asked for (cert list names them). */
  listReadable(options: ListCertificatesOptions = {}): Promise<{ records: CertificateRecord[]; damaged: DamagedEntry[] }> {
    this.ctx.sync();
    return this.ctx.index.listReadable(options);
  }

  /** Reads the record index now (a batch does it while scrypt runs). */
  preload(): Promise<void> {
    return this.ctx.index.load();
  }

  /** Records the caller holds already (a batch worker's), so that lookups of them need no read. */
  remember(records: readonly CertificateRecord[]): void {
    this.ctx.index.remember([...records]);
  }
}

/**
 * Opens the file store at `dir` as a {@link StoragePort}. With `create`, a missing directory is
 * made (mode 0700) and an empty one is fine: the store is then written through the port.
 * @throws ERR_STORE_NOT_INITIALIZED without `create`, when there is no directory or no store.json; ERR_STORE_IO
 * @example
 * const port = await openFilePort('./store')
 * const settings = await port.settings()
 */
export async function openFilePort(dir: string, options: FilePortOptions = {}): Promise<FilePort> {
  const root = resolve(dir);
  if (options.create) {
    try {
      await fs.mkdir(root, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw ioError(root, 'create', err);
    }
  }
  const meta = await readMeta(root);
  if (!meta && !options.create) throw new StoreNotInitialized(root);
  if (!meta) {
    // With `create`, the path must be a directory.
    const stat = await fs.stat(root).catch((err: unknown) => Promise.reject(ioError(root, 'read', err)));
    if (!stat.isDirectory()) throw new StoreIOError(root, 'create', `"${root}" is not a directory`);
  }
  return new FilePort(new PortContext(root, options.durable ?? true, meta?.keyGeneration));
}
