/**
 * The file port's PKCS#12 cache ({@link PortCache}): one sealed bundle per user in
 * `pkcs12-cache/<hash>.<generation>` (the format and AAD stores have had since the cache began),
 * sealed and opened by the {@link SealingBox} the CA gives, never the store key. Reads are synchronous and small (one open, read, close into
 * a reused buffer; the user read last is kept), and a profile's writes of one user's bundle join
 * into one file write.
 *
 * @module file-port-pkcs12
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, promises as fs, readSync } from 'node:fs';
import { join } from 'node:path';
import type { CertificateRecord } from '../../store.js';
import type { BuiltPkcs12, PortCache, SealingBox } from '../../port/port.js';
import { atomicWrite } from '../../fs-util.js';

/** One user's cached PKCS#12 files, by serial. */
type Pkcs12Bundle = Map<string, { fingerprint: string; password: string; pkcs12: Buffer }>;

/** Folder of the PKCS#12 cache: one sealed file per user, `<hash of the address>.<key generation>`. */
export const PKCS12_CACHE = 'pkcs12-cache';

/** serial, fingerprint, password, PKCS#12, each length-prefixed (the format stores written since the cache began). */
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

/** The PKCS#12 cache of a file port: `pkcs12-cache/` in the store's directory. */
export class FilePortCache implements PortCache {
  /** Reused for the reads, which are synchronous. */
  #readBuffer: Buffer | undefined;
  #last: { user: string; generation: number; bundle: Pkcs12Bundle } | undefined;
  #writes = new Map<string, Promise<void>>();
  /** The write of a user's file not started yet, which further puts join. */
  #pending = new Map<string, { entries: Pkcs12Bundle; settled: Promise<void> }>();

  constructor(private readonly dir: string) {}

  /** Forgets the bundle read last (after a rekey). */
  forget(): void {
    this.#last = undefined;
  }

  async get(record: CertificateRecord, box: SealingBox): Promise<BuiltPkcs12 | undefined> {
    const hit = this.read(record.user.toLowerCase(), box).get(record.serial);
    return hit && hit.fingerprint === record.fingerprint ? { password: hit.password, pkcs12: hit.pkcs12 } : undefined;
  }

  /**
   * Keeps a built PKCS#12 in its user's file. A profile builds its identities concurrently:
   * the puts of one user's file that are waiting join into one write, and writes go one after
   * another. Across processes the last rename wins, which costs at most a rebuild.
   */
  async put(record: CertificateRecord, built: BuiltPkcs12, box: SealingBox): Promise<void> {
    const user = record.user.toLowerCase();
    const path = this.path(user, box.generation);
    let pending = this.#pending.get(path);
    if (!pending) {
      const entries: Pkcs12Bundle = new Map();
      const previous = this.#writes.get(path) ?? Promise.resolve();
      // setImmediate: the other identities of the profile, built in this turn, join this write.
      const write = previous.then(() => new Promise<void>((r) => setImmediate(r))).then(async () => {
        this.#pending.delete(path);
        const bundle = this.read(user, box, true);
        for (const [k, v] of entries) bundle.set(k, v);
        // A cache: atomic but not fsynced (losing it costs one rebuild).
        await fs.mkdir(join(this.dir, PKCS12_CACHE), { recursive: true, mode: 0o700 });
        await atomicWrite(path, box.seal(encodeBundle(bundle), this.aad(user, box.generation)), 0o600, false);
      });
      const settled = write.catch(() => {});
      pending = { entries, settled };
      this.#pending.set(path, pending);
      this.#writes.set(path, settled);
    }
    pending.entries.set(record.serial, { fingerprint: record.fingerprint, password: built.password, pkcs12: built.pkcs12 });
    const { settled } = pending;
    await settled;
    if (this.#writes.get(path) === settled) this.#writes.delete(path);
  }

  private path(user: string, generation: number): string {
    const name = createHash('sha256').update(user).digest('hex').slice(0, 32);
    return join(this.dir, PKCS12_CACHE, `${name}.${generation}`);
  }

  /** The address and the key generation are bound to the file: another user's file does not open. */
  private aad(user: string, generation: number): string {
    return `${PKCS12_CACHE}|${generation}|${user}`;
  }

  /** One user's bundle (empty when there is none or it does not open); the one read last is kept. */
  private read(user: string, box: SealingBox, fresh = false): Pkcs12Bundle {
    const generation = box.generation;
    // Kept by address and generation: a hit needs no hash.
    if (!fresh && this.#last?.user === user && this.#last.generation === generation) return this.#last.bundle;
    let bundle: Pkcs12Bundle = new Map();
    const path = this.path(user, generation);
    const plain = box.open(readSmall(path, (this.#readBuffer ??= Buffer.allocUnsafe(1024 * 1024))), this.aad(user, box.generation));
    if (plain) {
      try {
        bundle = decodeBundle(plain);
      } catch {
        bundle = new Map();
      }
    }
    this.#last = { user, generation, bundle };
    return bundle;
  }
}
