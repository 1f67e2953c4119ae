/**
 * A file port transaction ({@link PortTransaction}): reads go to the disk (under the lock, the
 * committed state); writes are buffered in a {@link Plan} and applied by commit.ts when the
 * transaction's function returns. Keys are sealed at the call, with the AAD of their file.
 *
 * @module file-port-transaction
 */
import { join } from 'node:path';
import { CertificateInvalid, InputInvalid } from '../../../errors.js';
import { fingerprint } from '../../../certs/pem.js';
import { parseCaSlug } from '../../../certs/publication.js';
import type { LinkRecord } from '../../../server/links.js';
import type { CertificateRecord } from '../../store.js';
import type { Amendment, Credential, CrlState, LinkBookName, PortTransaction, RecordQuery, Revocation, Sealer, SealedKey, StoreSettings } from '../../port/port.js';
import { issuingPaths } from '../../pki-files.js';
import type { Sealed } from '../../secret-box.js';
import { storeSettings } from '../../settings.js';
import { SERIAL } from '../record-index.js';
import { newPlan, type Plan } from './commit.js';
import { generationOf, serviceFiles, signerFiles, type HeldCredential } from './credentials.js';
import { exists, type PortContext } from './layout.js';
import { FileReads } from './reads.js';
import { keyFilesOf } from './rekey.js';

type Files = { certRel: string; keyRel: string; pointerRel?: string };

/** The facts of a record, as entry.json keeps them (revocation and amendments live in revocations.json). */
function facts(record: CertificateRecord): CertificateRecord {
  const { revoked: _r, retired: _t, addedChain: _a, alsoPurpose: _p, ...rest } = record;
  return structuredClone(rest);
}

/** A transaction of a file port. Made by FilePort.transaction, under the store lock. */
export class FileTransaction extends FileReads implements PortTransaction {
  /** @internal What commit writes. */
  readonly plan: Plan = newPlan();
  /** Credentials put in this transaction, by serial. */
  #put = new Map<string, HeldCredential>();

  constructor(ctx: PortContext) {
    super(ctx, true);
  }

  #rescanned = false;

  /**
   * Records as they are now: decisions under the lock do not trust certs/'s timestamps (two
   * entries renamed in within one tick leave one mtime), so the first read lists it again.
   */
  override async records(query?: RecordQuery): Promise<CertificateRecord[]> {
    if (!this.#rescanned) {
      this.#rescanned = true;
      this.ctx.index.rescan();
    }
    return super.records(query);
  }

  /** Replaces store.json's settings part at commit; the pointers are kept. */
  async putSettings(settings: StoreSettings): Promise<void> {
    this.plan.settings = storeSettings(structuredClone(settings));
  }

  /** certs/<serial>/ (cert.pem, key.<generation>, entry.json with the record's facts), written at commit. @throws ERR_CERT_INVALID (`duplicate`) at the call */
  async addCertificate(record: CertificateRecord, der: Buffer, key?: Sealer): Promise<void> {
    const serial = record.serial;
    if (!SERIAL.test(serial)) throw new InputInvalid('serial', `"${serial}" is not a normalized serial`);
    if (this.plan.entries.has(serial) || (await exists(join(this.ctx.dir, 'certs', serial)))) {
      throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
    }
    this.plan.entries.set(serial, { record: facts(record), der: Buffer.from(der), ...(key ? { key: key(`certs/${serial}/key`) } : {}) });
  }

  /** Replaces the serial's amendment in revocations.json at commit. */
  async amend(amendment: Amendment): Promise<void> {
    this.plan.amendments.set(amendment.serial, structuredClone(amendment));
  }

  /** chains/<sha256>.pem, those missing, at commit. */
  async putChains(ders: readonly Buffer[]): Promise<void> {
    for (const der of ders) this.plan.chains.set(fingerprint(der), Buffer.from(der));
  }

  /** The credential's certificate and key files (a new one's), and the pointer that makes it current (store.json's, or its CA's in ocsp/ or scep/). */
  async putCredential(credential: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<void> {
    const serial = credential.serial;
    if (!SERIAL.test(serial)) throw new InputInvalid('serial', `"${serial}" is not a normalized serial`);
    const held = this.#put.get(serial) ?? (await this.heldCredentials()).find((c) => c.serial === serial && c.role === credential.role);
    const files = this.filesOf(credential, held, await this.firstSigner(credential, key));
    if (!held) this.plan.certs.set(files.certRel, Buffer.from(credential.certificate));
    if (key) {
      this.plan.keys.set(files.keyRel, key(files.keyRel));
      this.plan.dropKeys.delete(files.keyRel);
    } else if (key === null) {
      this.plan.keys.delete(files.keyRel);
      this.plan.dropKeys.add(files.keyRel);
    }
    const p = this.plan;
    if (credential.role === 'issuing' && credential.current) p.issuing = credential.generation ?? held!.generation!;
    if (credential.role === 'signer' && credential.current) {
      const issuing = generationOf(credential.ca);
      p.signer = { stem: files.certRel === 'signer/cert.pem' ? null : serial, ...(issuing !== undefined ? { issuing } : {}) };
    }
    if (files.pointerRel) {
      if (credential.current) p.pointers.set(files.pointerRel, serial);
      // Not current any more: the pointer goes only while it still names this one (this transaction may have pointed it at another).
      else if (p.pointers.has(files.pointerRel) ? p.pointers.get(files.pointerRel) === serial : held?.current) p.pointers.set(files.pointerRel, null);
    }
    const { key: _k, ...kept } = held ?? ({} as Partial<HeldCredential>);
    this.#put.set(serial, { ...kept, ...credential, ...files } as HeldCredential);
  }

  /**
   * Whether a signer goes where a store's first signer lives (`signer/cert.pem`, key `signer/key`):
   * a store's first (as init lays it out, before store.json exists), or one sealed under that
   * associated data already (carried by a migration), while that place is free.
   */
  private async firstSigner(c: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<boolean> {
    if (c.role !== 'signer') return false;
    if ([...this.#put.values()].some((x) => x.certRel === 'signer/cert.pem') || (await exists(join(this.ctx.dir, 'signer', 'cert.pem')))) return false;
    if (key?.aad === 'signer/key') return true;
    return !(await exists(join(this.ctx.dir, 'store.json'))) && ![...this.#put.values()].some((x) => x.role === 'signer');
  }

  /** Where a credential's files are (those of the one held, for a credential changed). */
  private filesOf(c: Omit<Credential, 'key'>, held: HeldCredential | undefined, first = false): Files {
    if (held) return { certRel: held.certRel, keyRel: held.keyRel, ...(held.pointerRel ? { pointerRel: held.pointerRel } : {}) };
    switch (c.role) {
      case 'root':
        return { certRel: 'ca/root.pem', keyRel: 'ca/root.key' };
      case 'issuing': {
        if (!c.generation || !Number.isSafeInteger(c.generation) || c.generation < 1) throw new InputInvalid('generation', 'An issuing CA needs its generation (1, 2, ...)');
        const p = issuingPaths(c.generation);
        return { certRel: p.cert, keyRel: p.key };
      }
      case 'signer':
        return signerFiles(c.serial, first);
      default: {
        const files = c.ca === undefined ? undefined : serviceFiles(c.role, c.ca, c.serial);
        if (!files) throw new InputInvalid('ca', `A ${c.role} credential needs the slug of its CA, not "${c.ca}"`);
        return files;
      }
    }
  }

  /** Replaces the serial's line in revocations.json at commit. */
  async putRevocation(revocation: Revocation): Promise<void> {
    this.plan.revocations.set(revocation.serial, structuredClone(revocation));
  }

  /** crl/<ca>.json (and crl/<ca>.crl when published) at commit. */
  async putCrlState(ca: string, state: CrlState): Promise<void> {
    if (parseCaSlug(ca) === undefined) throw new InputInvalid('ca', `"${ca}" is not a CA of this store`);
    this.plan.crls.set(ca, { number: state.number, ...(state.published ? { published: { ...state.published, der: Buffer.from(state.published.der) } } : {}) });
  }

  /** Changes links.json or challenges.json at commit. */
  async putLinks(book: LinkBookName, links: readonly LinkRecord[], remove: readonly string[] = []): Promise<void> {
    this.plan.links.push({ book, links: structuredClone([...links]), remove: [...remove] });
  }

  /**
   * Reseals every key of the current generation now (and the keys this transaction puts); the
   * commit writes them under the next generation before store.json names it.
   */
  async rekey(reseal: (key: SealedKey) => Sealed, settings: StoreSettings): Promise<number> {
    const from = await this.ctx.keyGeneration();
    if (this.plan.rekey) throw new InputInvalid('keyGeneration', 'A transaction changes the passphrase once');
    if (settings.keyGeneration !== from + 1) throw new InputInvalid('keyGeneration', `The new settings must have key generation ${from + 1}, not ${settings.keyGeneration}`);
    const keys = new Map<string, Sealed>();
    for (const { rel, key } of await keyFilesOf(this.ctx.dir, from)) {
      if (this.plan.dropKeys.has(rel) || this.plan.keys.has(rel)) continue;
      keys.set(rel, reseal(key));
    }
    for (const [rel, sealed] of this.plan.keys) this.plan.keys.set(rel, reseal({ sealed, aad: rel }));
    let pending = this.plan.keys.size;
    for (const [serial, e] of this.plan.entries) {
      if (!e.key) continue;
      e.key = reseal({ sealed: e.key, aad: `certs/${serial}/key` });
      pending++;
    }
    this.plan.rekey = { from, to: from + 1, keys };
    this.plan.settings = storeSettings(structuredClone(settings));
    return keys.size + pending;
  }
}
