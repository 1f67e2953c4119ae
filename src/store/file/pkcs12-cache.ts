/**
 * The file store's PKCS#12 cache: each user's identities as iOS-form PKCS#12 with their
 * passwords, one file per user in `pkcs12-cache/`, sealed like the keys (the address and the key
 * generation are its associated data), built when an identity enters the store.
 *
 * @module file-pkcs12-cache
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, promises as fs, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Identity } from '../../certs/issue.js';
import { normalizeSerial } from '../../certs/pem.js';
import { atomicWrite } from '../fs-util.js';
import { sealBytes, unsealBytes } from '../secret-box.js';
import type { CertificateRecord } from '../store.js';
import type { FileStore } from './file-store.js';

/** Folder of the PKCS#12 cache: one sealed file per user, `<hash of the address>.<key generation>`. */
export const PKCS12_CACHE = 'pkcs12-cache';

/** One user's cached PKCS#12 files, by serial. */
type Pkcs12Bundle = Map<string, { fingerprint: string; password: string; pkcs12: Buffer }>;

/** serial, fingerprint, password, PKCS#12, each length-prefixed. */
function encodeBundle(bundle: Pkcs12Bundle): Buffer {
  const parts: Buffer[] = [];
  const field = (b: Buffer) => {
    const n = Buffer.alloc(4);
    n.writeUInt32BE(b.length);
    parts.push(n, b);
  };
  for (const [serial, e] of bundle) {
    field(Buffer.from(serial, 'latin1'));
    field(Buffer.from(e.fingerprint, 'latin1'));
    field(Buffer.from(e.password, 'utf8'));
    field(e.pkcs12);
  }
  return Buffer.concat(parts);
}

function decodeBundle(plain: Buffer): Pkcs12Bundle {
  const out: Pkcs12Bundle = new Map();
  let pos = 0;
  const field = () => {
    if (pos + 4 > plain.length) throw new Error('truncated');
    const n = plain.readUInt32BE(pos);
    if (pos + 4 + n > plain.length) throw new Error('truncated');
    pos += 4 + n;
    return plain.subarray(pos - n, pos);
  };
  while (pos < plain.length) {
    const serial = field().toString('latin1');
    const fingerprint = field().toString('latin1');
    const password = field().toString('utf8');
    out.set(serial, { fingerprint, password, pkcs12: Buffer.from(field()) });
  }
  return out;
}

/** The whole of a small file read into `buffer` (open, one read, close); empty when missing or larger. */
function readSmall(path: string, buffer: Buffer): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return Buffer.alloc(0);
  }
  try {
    const n = readSync(fd, buffer, 0, buffer.length, 0);
    return n < buffer.length ? buffer.subarray(0, n) : Buffer.alloc(0);
  } catch {
    return Buffer.alloc(0);
  } finally {
    closeSync(fd);
  }
}

/** The PKCS#12 cache of one file store instance. */
export class FilePkcs12Cache {
  /** Reused for cached PKCS#12 reads, which are synchronous. */
  #readBuffer: Buffer | undefined;
  #lastBundle: { user: string; bundle: Pkcs12Bundle } | undefined;
  #bundleWrites = new Map<string, Promise<void>>();
  /** The write of a user's PKCS#12 file not started yet, which further updates join. */
  #bundlePending = new Map<string, { entries: Pkcs12Bundle; settled: Promise<void> }>();

  constructor(private readonly owner: FileStore) {}

  /** Forgets the user read last (after a passphrase change). */
  forget(): void {
    this.#lastBundle = undefined;
  }

  /**
   * The identity as an iOS-form PKCS#12, built once and kept in the store, sealed like the
   * keys (AES-256-GCM under the store key). A user's identities share one file, so a profile
   * costs one read however many identities it ships. Each is kept with its certificate's
   * fingerprint and used only while that matches; a new passphrase (new key generation) makes
   * the old files unreadable, and they are deleted with the old keys.
   * Batch runs use it: the PKCS#12 key derivation is the per-user cost once signing is native.
   */
  async get(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }> {
    const s = normalizeSerial(serial);
    this.owner.requireKey('use private keys');
    const record = await this.owner.index.get(s);
    const hit = this.readBundle(record.user.toLowerCase()).get(s);
    if (hit && hit.fingerprint === record.fingerprint) return { password: hit.password, pkcs12: hit.pkcs12 };
    const built = build(await this.owner.getIdentity(s));
    await this.store(record, built);
    return built;
  }

  /**
   * Keeps a built PKCS#12 in its user's cache file. A profile builds its identities
   * concurrently: the updates of one user's file that are waiting join into one write (one file
   * created instead of one per identity), and writes go one after another. Across processes the
   * last rename wins, which costs at most a rebuild.
   */
  async store(record: CertificateRecord, built: { password: string; pkcs12: Buffer }): Promise<void> {
    const user = record.user.toLowerCase();
    const path = this.bundlePath(user);
    let pending = this.#bundlePending.get(path);
    if (!pending) {
      const entries: Pkcs12Bundle = new Map();
      const previous = this.#bundleWrites.get(path) ?? Promise.resolve();
      // setImmediate: the other identities of the profile, built in this turn, join this write.
      const write = previous.then(() => new Promise<void>((r) => setImmediate(r))).then(async () => {
        this.#bundlePending.delete(path);
        const bundle = this.readBundle(user, true);
        for (const [k, v] of entries) bundle.set(k, v);
        // A cache: atomic but not fsynced (losing it costs one rebuild).
        await fs.mkdir(join(this.owner.dir, PKCS12_CACHE), { recursive: true, mode: 0o700 });
        await atomicWrite(path, sealBytes(this.owner.requireKey('use private keys'), encodeBundle(bundle), this.bundleAad(user)), 0o600, false);
      });
      const settled = write.catch(() => {});
      pending = { entries, settled };
      this.#bundlePending.set(path, pending);
      this.#bundleWrites.set(path, settled);
    }
    pending.entries.set(record.serial, { fingerprint: record.fingerprint, password: built.password, pkcs12: built.pkcs12 });
    const { settled } = pending;
    await settled;
    if (this.#bundleWrites.get(path) === settled) this.#bundleWrites.delete(path);
  }

  private bundlePath(user: string): string {
    const name = createHash('sha256').update(user).digest('hex').slice(0, 32);
    return join(this.owner.dir, PKCS12_CACHE, `${name}.${this.owner.meta.keyGeneration}`);
  }

  /** The address and the key generation are bound to the file: another user's file does not open. */
  private bundleAad(user: string): string {
    return `${PKCS12_CACHE}|${this.owner.meta.keyGeneration}|${user}`;
  }

  /**
   * One user's cached PKCS#12 files (empty when there are none or they do not open), read
   * with one open/read/close. The last one read is kept: a profile asks for each identity.
   */
  private readBundle(user: string, fresh = false): Pkcs12Bundle {
    // Kept by address (a hit needs no hash); a passphrase change clears it.
    if (!fresh && this.#lastBundle?.user === user) return this.#lastBundle.bundle;
    let bundle: Pkcs12Bundle = new Map();
    const plain = unsealBytes(this.owner.requireKey('use private keys'), readSmall(this.bundlePath(user), (this.#readBuffer ??= Buffer.allocUnsafe(1024 * 1024))), this.bundleAad(user));
    if (plain) {
      try {
        bundle = decodeBundle(plain);
      } catch {
        bundle = new Map();
      }
    }
    this.#lastBundle = { user, bundle };
    return bundle;
  }
}
