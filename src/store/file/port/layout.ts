/**
 * What the file port's parts share: the state of one {@link FilePort} (its directory, its key
 * generation, the record index and the caches), and the small reads of today's layout (store.json,
 * a certificate file, a sealed key file). The layout itself is the file store's (file-store.ts,
 * pki-files.ts); nothing here changes it.
 *
 * @module file-port-layout
 */
import { promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StoreIOError, StoreNotInitialized } from '../../../errors.js';
import { certificatesFrom } from '../../../certs/pem.js';
import type { LinkBookName, SealedKey } from '../../port/port.js';
import { ioError } from '../../fs-util.js';
import type { Sealed } from '../../secret-box.js';
import { parseMeta, type StoreMeta } from '../meta.js';
import { RecordIndex } from '../record-index.js';

/** Commits made through the FilePorts of this process, by directory: another port on the same directory sees them at once. */
const commits = new Map<string, number>();

/** The file of a link book. */
export const BOOK_FILES: Record<LinkBookName, string> = { links: 'links.json', challenges: 'challenges.json' };

/** An errno code, if `err` has one. */
export const errnoOf = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** A missing file or folder on the way: the file is not there (any other failure is one). */
const absent = (err: unknown): boolean => errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR';

/** True when the path exists. */
export const exists = (path: string): Promise<boolean> => fs.stat(path).then(() => true, () => false);

/** A directory's names; none when it is missing. */
export async function listDir(path: string): Promise<string[]> {
  try {
    return await fs.readdir(path);
  } catch (err) {
    if (absent(err)) return [];
    throw ioError(path, 'read', err);
  }
}

/** A text file, or undefined when it is not there. @throws ERR_STORE_IO when it cannot be read */
async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    if (absent(err)) return undefined;
    throw ioError(path, 'read', err);
  }
}

/** store.json, or undefined when the store has none yet. @throws ERR_STORE_IO when it is damaged */
export async function readMeta(dir: string): Promise<StoreMeta | undefined> {
  const path = join(dir, 'store.json');
  const text = await readIfPresent(path);
  return text === undefined ? undefined : parseMeta(text, path);
}

/** A sealed key file `<rel>.<generation>` with its AAD (`rel`), or undefined when there is none. */
export async function readSealed(dir: string, rel: string, generation: number): Promise<SealedKey | undefined> {
  const path = join(dir, `${rel}.${generation}`);
  const text = await readIfPresent(path);
  if (text === undefined) return undefined;
  try {
    return { sealed: JSON.parse(text) as Sealed, aad: rel };
  } catch (cause) {
    throw new StoreIOError(path, 'read', `The key file "${path}" is damaged`, { cause });
  }
}

/** What a key file holds. */
export const sealedText = (sealed: Sealed): string => JSON.stringify(sealed) + '\n';

/**
 * The state of one file port: its directory, its key generation (read at open, changed by a
 * rekey), the record index, and caches that a commit through any port of this process drops.
 */
export class PortContext {
  /** The record index of today's file store, over the same directory. */
  readonly index: RecordIndex;
  /** The key generation key files are named with; undefined while the store has no store.json. */
  generation: number | undefined;
  /** credentials()'s last answer and the listing it was made from. */
  credentials: { key: string; value: unknown } | undefined;
  /** store.json as read last, and when (a read outside a transaction re-reads it at most once a second). */
  meta: { value: StoreMeta; at: number } | undefined;
  #seen: number;
  /** Certificate files never change in place: read once. */
  #certs = new Map<string, Buffer>();

  constructor(
    readonly dir: string,
    readonly durable: boolean,
    generation: number | undefined,
  ) {
    this.index = new RecordIndex(dir);
    this.generation = generation;
    this.#seen = commits.get(dir) ?? 0;
  }

  /** Before a read outside a transaction: drops what a commit through another port of this process changed. */
  sync(): void {
    const n = commits.get(this.dir) ?? 0;
    if (n === this.#seen) return;
    this.#seen = n;
    this.index.rescan();
    this.meta = undefined;
    this.credentials = undefined;
  }

  /** After a commit through this port (`entries`: certificate entries were added). */
  committed(entries: boolean): void {
    const n = (commits.get(this.dir) ?? 0) + 1;
    commits.set(this.dir, n);
    this.#seen = n;
    // Two entries renamed in within one tick of the file system's clock leave certs/ one mtime.
    if (entries) this.index.rescan();
    else this.index.invalidate();
    this.meta = undefined;
    this.credentials = undefined;
  }

  /** store.json: from disk when `fresh` (in a transaction), else at most a second old. @throws ERR_STORE_NOT_INITIALIZED */
  async readMeta(fresh: boolean): Promise<StoreMeta> {
    if (!fresh && this.meta && Date.now() - this.meta.at < 1000) return this.meta.value;
    const value = await readMeta(this.dir);
    if (!value) throw new StoreNotInitialized(this.dir);
    this.meta = { value, at: Date.now() };
    this.generation ??= value.keyGeneration;
    return value;
  }

  /** The key generation for a read: the port's, else store.json's, else 1. */
  async keyGeneration(): Promise<number> {
    if (this.generation === undefined) this.generation = (await readMeta(this.dir))?.keyGeneration;
    return this.generation ?? 1;
  }

  /** The first certificate of a PEM file under the store, or undefined when the file is missing. */
  readCert(rel: string): Buffer | undefined {
    const hit = this.#certs.get(rel);
    if (hit) return hit;
    const path = join(this.dir, rel);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (absent(err)) return undefined;
      throw ioError(path, 'read', err);
    }
    const der = certificatesFrom(text)[0];
    if (!der) throw new StoreIOError(path, 'read', `"${path}" holds no certificate`);
    if (this.#certs.size > 4096) this.#certs.clear();
    this.#certs.set(rel, der);
    return der;
  }
}
