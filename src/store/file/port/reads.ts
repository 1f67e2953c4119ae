/**
 * The file port's reads ({@link PortReads}) over today's layout: store.json, the record index
 * (certs/ and revocations.json), the credentials, chains/, crl/ and the link books.
 *
 * @module file-port-reads
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { StoreEntryNotFound, StoreIOError } from '../../../errors.js';
import { parseCaSlug } from '../../../certs/publication.js';
import { LinkBook, type LinkRecord } from '../../../server/links.js';
import type { CertificateRecord } from '../../store.js';
import type { CrlState, Credential, LinkBookName, PortReads, RecordQuery, Revocation, StoredCertificate, StoreSettings } from '../../port/port.js';
import { storeSettings } from '../../settings.js';
import { SERIAL } from '../record-index.js';
import type { HeldCredential } from './credentials.js';

// The credentials need the certificate code: loaded when first read, not to list records.
const credentials = () => import('./credentials.js');
import { BOOK_FILES, errnoOf, readMeta, readSealed, type PortContext } from './layout.js';

const FINGERPRINT = /^[0-9a-f]{64}$/;

/** crl/<slug>.json as pki-files.ts writes it. */
export interface CrlFile {
  number: number;
  thisUpdate?: string;
  nextUpdate?: string;
  digest?: string;
  sha256?: string;
}

/** The reads of a file port; a transaction's (`fresh`) read the disk as it is under the lock. */
export class FileReads implements PortReads {
  /** @internal */
  constructor(
    /** @internal */ protected readonly ctx: PortContext,
    /** @internal In a transaction: no cached store.json. */ protected readonly fresh: boolean,
  ) {}

  /** Outside a transaction, what another port of this process committed is read again. */
  protected sync(): void {
    if (!this.fresh) this.ctx.sync();
  }

  /** store.json's settings part (no format, version or pointers). @throws ERR_STORE_NOT_INITIALIZED */
  async settings(): Promise<StoreSettings> {
    this.sync();
    return storeSettings(await this.ctx.readMeta(this.fresh));
  }

  /** From the record index (certs/ with revocations.json applied); a damaged entry among those asked for fails it. */
  async records(query: RecordQuery = {}): Promise<CertificateRecord[]> {
    this.sync();
    const index = this.ctx.index;
    try {
      const q = query as { user?: string; serial?: string; fingerprint?: string; prefix?: string };
      if (q.serial !== undefined) {
        if (!SERIAL.test(q.serial)) return [];
        return [await index.get(q.serial)];
      }
      if (q.user !== undefined) return await index.list({ user: q.user });
      const all = await index.list();
      if (q.fingerprint !== undefined) return all.filter((r) => r.fingerprint === q.fingerprint);
      if (q.prefix !== undefined) {
        const p = q.prefix;
        return all.filter((r) => r.serial.startsWith(p) || r.fingerprint.startsWith(p));
      }
      return all;
    } catch (err) {
      if (err instanceof StoreEntryNotFound) return [];
      // A store made through the port before its first certificate, or not made yet: no certs/.
      if (err instanceof StoreIOError && err.path === join(this.ctx.dir, 'certs') && errnoOf(err.cause) === 'ENOENT') return [];
      throw err;
    }
  }

  /** certs/<serial>/cert.pem, and key.<generation> with its AAD `certs/<serial>/key`. */
  async certificate(serial: string): Promise<StoredCertificate | undefined> {
    if (!SERIAL.test(serial)) return undefined;
    const der = this.ctx.readCert(`certs/${serial}/cert.pem`);
    if (!der) return undefined;
    const rel = `certs/${serial}/key`;
    const key = await readSealed(this.ctx.dir, rel, await this.ctx.keyGeneration());
    return key ? { der, key } : { der };
  }

  /** @internal The credentials with where their files are. */
  async heldCredentials(): Promise<HeldCredential[]> {
    this.sync();
    // Listing four directories anyway, store.json is read with them: the pointers are as fresh as the files.
    const meta = await readMeta(this.ctx.dir);
    if (meta) this.ctx.meta = { value: meta, at: Date.now() };
    await this.ctx.keyGeneration();
    return (await credentials()).readCredentials(this.ctx, meta);
  }

  /** ca/, signer/, ocsp/ and scep/, with store.json's pointers (see credentials.ts). */
  async credentials(): Promise<Credential[]> {
    const { publicCredential } = await credentials();
    return (await this.heldCredentials()).map(publicCredential);
  }

  /** chains/<sha256>.pem. */
  async chains(fingerprints: readonly string[]): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    for (const fp of fingerprints) {
      if (!FINGERPRINT.test(fp)) continue;
      const der = this.ctx.readCert(`chains/${fp}.pem`);
      if (der) out.set(fp, der);
    }
    return out;
  }

  /** revocations.json's lines. */
  async revocations(): Promise<Revocation[]> {
    return this.ctx.index.revocations();
  }

  /** crl/<ca>.json; `published` only while crl/<ca>.crl is there and matches its SHA-256. */
  async crlState(ca: string): Promise<CrlState | undefined> {
    if (parseCaSlug(ca) === undefined) return undefined;
    let file: CrlFile;
    try {
      file = JSON.parse(await fs.readFile(join(this.ctx.dir, 'crl', `${ca}.json`), 'utf8')) as CrlFile;
    } catch {
      // As pki-files.ts reads it: a missing or damaged state is no state.
      return undefined;
    }
    if (!Number.isSafeInteger(file.number)) return undefined;
    const state: CrlState = { number: file.number };
    if (file.thisUpdate && file.nextUpdate && file.digest) {
      const der = await fs.readFile(join(this.ctx.dir, 'crl', `${ca}.crl`)).catch(() => undefined);
      if (der && (!file.sha256 || createHash('sha256').update(der).digest('hex') === file.sha256)) {
        state.published = { thisUpdate: file.thisUpdate, nextUpdate: file.nextUpdate, digest: file.digest, der };
      }
    }
    return state;
  }

  /** links.json or challenges.json, in file order (oldest first). */
  async links(book: LinkBookName, tokenHash?: string): Promise<LinkRecord[]> {
    const all = await new LinkBook(this.ctx.dir, undefined, BOOK_FILES[book]).list();
    return tokenHash === undefined ? all : all.filter((l) => l.tokenHash === tokenHash);
  }
}
