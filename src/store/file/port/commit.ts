/**
 * What a file port transaction writes, and its commit: applied under the store lock in an
 * order that a crash leaves consistent. Chains and certificate entries first (nothing names
 * them yet), then the credentials' keys and certificates, the CRLs before their states, the
 * revocations, the link books, and store.json last, since it holds the pointers (the current
 * issuing CA and signer) and the key generation; dropped keys are deleted after it.
 *
 * @module file-port-commit
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { StoreNotInitialized } from '../../../errors.js';
import { toPem } from '../../../certs/pem.js';
import { LinkBook, type LinkRecord } from '../../../server/links.js';
import type { CertificateRecord } from '../../store.js';
import type { Amendment, CrlState, LinkBookName, Revocation, StoreSettings } from '../../port/port.js';
import { atomicDir, atomicWrite } from '../../fs-util.js';
import type { Sealed } from '../../secret-box.js';
import { storeSettings } from '../../settings.js';
import { FORMAT, type StoreMeta } from '../meta.js';
import { PKCS12_CACHE } from './pkcs12.js';
import { BOOK_FILES, exists, listDir, readMeta, sealedText, type PortContext } from './layout.js';

/** A certificate entry to write: its facts, DER and sealed key. */
export interface EntryWrite {
  record: CertificateRecord;
  der: Buffer;
  key?: Sealed;
}

/** The writes a transaction has buffered. */
export interface Plan {
  /** store.json's settings part, replaced. */
  settings?: StoreSettings;
  /** The current issuing CA's generation. */
  issuing?: number;
  /** The current signer: its file stem (null: `signer/cert.pem`) and the generation that issued it (absent: an outside CA's, unchanged). */
  signer?: { stem: string | null; issuing?: number };
  chains: Map<string, Buffer>;
  entries: Map<string, EntryWrite>;
  /** Credential keys by key path without generation (the AAD). */
  keys: Map<string, Sealed>;
  /** Credential certificates by path. */
  certs: Map<string, Buffer>;
  /** Responder and RA pointer files: the serial, or null to delete it. */
  pointers: Map<string, string | null>;
  /** Keys deleted (key path without generation). */
  dropKeys: Set<string>;
  crls: Map<string, CrlState>;
  revocations: Map<string, Revocation>;
  amendments: Map<string, Amendment>;
  links: { book: LinkBookName; links: readonly LinkRecord[]; remove: readonly string[] }[];
  /** A new passphrase: every key held, resealed for generation `to`. */
  rekey?: { from: number; to: number; keys: Map<string, Sealed> };
}

/** An empty plan. */
export function newPlan(): Plan {
  return { chains: new Map(), entries: new Map(), keys: new Map(), certs: new Map(), pointers: new Map(), dropKeys: new Set(), crls: new Map(), revocations: new Map(), amendments: new Map(), links: [] };
}

const mkdir = (path: string, mode: number) => fs.mkdir(path, { recursive: true, mode });
const rm = (path: string) => fs.rm(path, { force: true }).catch(() => {});

/** True when the plan writes nothing. */
const empty = (p: Plan) =>
  !p.settings && p.issuing === undefined && !p.signer && !p.rekey && !p.links.length &&
  ![p.chains, p.entries, p.keys, p.certs, p.pointers, p.crls, p.revocations, p.amendments].some((m) => m.size) && !p.dropKeys.size;

/**
 * Applies a transaction's writes; the caller holds the store lock. Afterwards `ctx.generation`
 * is the key generation store.json names (the new one after a rekey).
 * @throws ERR_STORE_NOT_INITIALIZED when pointers change in a store without settings (before anything is written)
 */
export async function commit(ctx: PortContext, plan: Plan): Promise<void> {
  if (empty(plan)) return;
  const dir = ctx.dir;
  const disk = await readMeta(dir);
  const writesMeta = !!plan.settings || plan.issuing !== undefined || !!plan.signer || !!plan.rekey;
  if (writesMeta && !plan.settings && !disk) throw new StoreNotInitialized(dir);
  const g = plan.rekey?.to ?? plan.settings?.keyGeneration ?? ctx.generation ?? disk?.keyGeneration ?? 1;
  try {
    if (plan.chains.size) {
      await mkdir(join(dir, 'chains'), 0o700);
      for (const [fp, der] of plan.chains) {
        const path = join(dir, 'chains', `${fp}.pem`);
        if (!(await exists(path))) await atomicWrite(path, toPem(der), 0o644);
      }
    }
    if (plan.entries.size) await mkdir(join(dir, 'certs'), 0o700);
    for (const [serial, e] of plan.entries) {
      await atomicDir(join(dir, 'certs', serial), {
        'cert.pem': { data: toPem(e.der), mode: 0o644 },
        ...(e.key ? { [`key.${g}`]: { data: sealedText(e.key), mode: 0o600 } } : {}),
        'entry.json': { data: JSON.stringify(e.record, null, 2) + '\n', mode: 0o644 },
      }, ctx.durable);
    }
    // Keys of the next generation are nobody's until store.json says so: on failure they go.
    const fresh: string[] = [];
    try {
      for (const [rel, sealed] of [...(plan.rekey?.keys ?? []), ...plan.keys]) {
        const path = join(dir, `${rel}.${g}`);
        await mkdir(dirname(path), 0o700);
        await atomicWrite(path, sealedText(sealed), 0o600);
        if (plan.rekey) fresh.push(path);
      }
      for (const [rel, der] of plan.certs) {
        await mkdir(dirname(join(dir, rel)), 0o700);
        await atomicWrite(join(dir, rel), toPem(der), 0o644);
      }
      for (const [rel, serial] of plan.pointers) {
        if (serial === null) await rm(join(dir, rel));
        else await atomicWrite(join(dir, rel), JSON.stringify({ serial }) + '\n', 0o644);
      }
      if (plan.crls.size) await mkdir(join(dir, 'crl'), 0o755);
      for (const [slug, s] of plan.crls) if (s.published) await atomicWrite(join(dir, 'crl', `${slug}.crl`), s.published.der, 0o644);
      for (const [slug, s] of plan.crls) {
        const p = s.published;
        const file = p ? { number: s.number, thisUpdate: p.thisUpdate, nextUpdate: p.nextUpdate, digest: p.digest, sha256: createHash('sha256').update(p.der).digest('hex') } : { number: s.number };
        await atomicWrite(join(dir, 'crl', `${slug}.json`), JSON.stringify(file) + '\n', 0o644);
      }
      if (plan.revocations.size || plan.amendments.size) await writeOverlay(ctx, plan);
      await writeLinks(dir, plan);
      if (writesMeta) await writeMeta(dir, plan, disk, g);
    } catch (err) {
      await Promise.all(fresh.map(rm));
      throw err;
    }
    if (writesMeta) ctx.generation = g;
    else ctx.generation ??= disk?.keyGeneration;
    for (const rel of plan.dropKeys) await rm(join(dir, `${rel}.${g}`));
    if (plan.rekey) await dropGeneration(dir, plan.rekey.from, [...plan.rekey.keys.keys(), ...plan.dropKeys]);
  } finally {
    ctx.committed(plan.entries.size > 0);
  }
}

/** revocations.json with the plan's lines and amendments in place of those of the same serials. */
async function writeOverlay(ctx: PortContext, plan: Plan): Promise<void> {
  const file = await ctx.index.overlayFile();
  const replace = <T extends { serial: string }>(list: T[], items: Map<string, T>): T[] => {
    const out = list.map((x) => items.get(x.serial) ?? x);
    const had = new Set(list.map((x) => x.serial));
    for (const [serial, x] of items) if (!had.has(serial)) out.push(x);
    return out;
  };
  const entries = replace(file.entries, plan.revocations);
  const amendments = replace(file.amendments, plan.amendments);
  const body = { version: 1, entries, ...(amendments.length ? { amendments } : {}) };
  await atomicWrite(join(ctx.dir, 'revocations.json'), JSON.stringify(body, null, 2) + '\n', 0o644);
  ctx.index.invalidate();
}

/** The link books the plan changes, as LinkBook writes them. */
async function writeLinks(dir: string, plan: Plan): Promise<void> {
  for (const book of Object.keys(BOOK_FILES) as LinkBookName[]) {
    const ops = plan.links.filter((o) => o.book === book);
    if (!ops.length) continue;
    let links = await new LinkBook(dir, undefined, BOOK_FILES[book]).list();
    for (const op of ops) {
      for (const l of op.links) {
        const at = links.findIndex((x) => x.id === l.id);
        if (at >= 0) links[at] = { ...l };
        else links.push({ ...l });
      }
      if (op.remove.length) links = links.filter((l) => !op.remove.includes(l.id));
    }
    await atomicWrite(join(dir, BOOK_FILES[book]), JSON.stringify({ version: 1, links }, null, 2) + '\n', 0o600);
  }
}

/** store.json: the settings (the plan's, else those on disk) and the pointers (the plan's over those on disk). The commit point. */
async function writeMeta(dir: string, plan: Plan, disk: StoreMeta | undefined, generation: number): Promise<void> {
  const meta: StoreMeta = { format: FORMAT, version: 1, ...storeSettings(plan.settings ?? disk!), keyGeneration: generation };
  const issuing = plan.issuing ?? disk?.issuing;
  if (issuing !== undefined) meta.issuing = issuing;
  const signer = plan.signer ? plan.signer.stem : disk?.signer;
  if (signer) meta.signer = signer;
  const signerIssuing = plan.signer?.issuing ?? disk?.signerIssuing;
  if (signerIssuing !== undefined) meta.signerIssuing = signerIssuing;
  if (!disk) {
    // As initStore leaves a store: today's code lists certs/ and writes into chains/.
    await mkdir(join(dir, 'certs'), 0o700);
    await mkdir(join(dir, 'chains'), 0o700);
  }
  await atomicWrite(join(dir, 'store.json'), JSON.stringify(meta, null, 2) + '\n', 0o600);
}

/** After a rekey's commit: the old generation's keys and sealed PKCS#12 files are garbage (as changePassphrase in admin.ts leaves them). */
async function dropGeneration(dir: string, from: number, rels: readonly string[]): Promise<void> {
  await Promise.all(rels.map((rel) => rm(join(dir, `${rel}.${from}`))));
  const cached = await listDir(join(dir, PKCS12_CACHE));
  await Promise.all(cached.filter((f) => f.endsWith(`.${from}`)).map((f) => rm(join(dir, PKCS12_CACHE, f))));
  // Earlier versions kept the cache in each entry (certs/<serial>/p12.<generation>).
  await Promise.all(rels.filter((rel) => rel.startsWith('certs/')).map((rel) => rm(join(dir, `${dirname(rel)}/p12.${from}`))));
}
