/**
 * The file store's half of `store check`: modes, files, keys, the record index, leftovers of
 * interrupted writes, all read from the layout; and `store check --quarantine`, which moves
 * damaged entries aside, whole, into `quarantine/`. It never changes or deletes anything else.
 *
 * @module file-check
 */
import { X509Certificate } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { keysMatch } from '../../certs/keys.js';
import { certificatesFrom, fingerprint, normalizeSerial } from '../../certs/pem.js';
import type { FileStore } from './file-store.js';
import { lockState, withLock } from '../lock.js';
import { ioError } from '../fs-util.js';
import type { CertificateRecord } from '../store.js';
import { parseIndex } from './index-format.js';
import type { StoreMeta } from './meta.js';
import { issuingPaths, OCSP_DIR, SCEP_DIR, signerPaths } from '../pki-files.js';
import type { StoreFinding } from '../findings.js';

/** The file store's check: modes, files, keys, the index, leftovers of interrupted writes. */
export async function checkFileStore(store: FileStore): Promise<StoreFinding[]> {
  const findings: StoreFinding[] = [];
  // Each problem once, however many checks meet it.
  const add = (severity: StoreFinding['severity'], path: string, message: string, entry?: string) => {
    if (!findings.some((f) => f.path === path && f.message === message)) findings.push({ severity, path, message, ...(entry ? { entry } : {}) });
  };
  // store.json with the layout's pointers; a store.json that cannot be read is reported below.
  const meta: StoreMeta = await store.fileMeta().catch(() => ({ ...store.meta, format: 'profilesmith-store', version: 1 }) as StoreMeta);
  const gen = meta.keyGeneration;
  const rel = (p: string) => join(store.dir, p);

  const mode = async (p: string, max: number, what: string) => {
    const st = await fs.stat(rel(p)).catch(() => undefined);
    if (!st) return add('error', rel(p), `${what} is missing`);
    if (st.mode & 0o077 & ~max) add('error', rel(p), `${what} has mode ${(st.mode & 0o777).toString(8)}; it must not be readable by others (chmod ${max === 0o044 ? '644' : '600'})`);
  };
  const cert = async (p: string, entry?: string): Promise<X509Certificate | undefined> => {
    try {
      const der = certificatesFrom(await fs.readFile(rel(p), 'utf8'))[0];
      if (!der) throw new Error('no certificate');
      return new X509Certificate(der);
    } catch {
      add('error', rel(p), 'is missing, truncated or not a certificate', entry);
      return undefined;
    }
  };
  const key = async (p: string, c: X509Certificate | undefined) => {
    await mode(`${p}.${gen}`, 0, 'key file');
    if (!store.unlocked) return;
    try {
      const k = await store.checkKey(p);
      if (c && !keysMatch(k, c.publicKey)) add('error', rel(`${p}.${gen}`), 'the key does not belong to its certificate');
    } catch (err) {
      add('error', rel(`${p}.${gen}`), (err as Error).message);
    }
  };

  const st = await fs.stat(store.dir);
  if (st.mode & 0o077) add('error', store.dir, `the store directory has mode ${(st.mode & 0o777).toString(8)}; it must be 700`);
  await mode('store.json', 0, 'store.json');

  const root = await cert('ca/root.pem');
  if (root && !(root.checkIssued(root) && root.verify(root.publicKey))) add('error', rel('ca/root.pem'), 'the root is not self-signed');
  await key('ca/root.key', root);
  const issuing: X509Certificate[] = [];
  for (let g = 1; g <= (meta.issuing ?? 1); g++) {
    const paths = issuingPaths(g);
    const c = await cert(paths.cert);
    if (root && c && !c.verify(root.publicKey)) add('error', rel(paths.cert), 'the issuing CA does not chain to the root');
    await key(paths.key, c);
    if (c) issuing.push(c);
  }
  const inter = issuing.at(-1);
  const signerAt = signerPaths(meta);
  const signer = await cert(signerAt.cert);
  const signerIssuer = issuing[(meta.signerIssuing ?? 1) - 1];
  if (meta.signerChain) {
    const first = meta.signerChain[0] ? await cert(`chains/${meta.signerChain[0]}.pem`) : undefined;
    if (first && signer && !signer.verify(first.publicKey)) add('error', rel(signerAt.cert), 'the imported signer does not chain to its stored issuer');
  } else if (signerIssuer && signer && !signer.verify(signerIssuer.publicKey)) add('error', rel(signerAt.cert), 'the signer does not chain to the issuing CA that issued it');
  await key(signerAt.key, signer);
  for (const dir of [OCSP_DIR, SCEP_DIR]) {
    const names = await fs.readdir(rel(dir)).catch(() => [] as string[]);
    for (const n of names) {
      if (!n.endsWith('.pem')) continue;
      const c = await cert(`${dir}/${n}`);
      // A replaced OCSP responder keeps its certificate (its serial stays ours for OCSP status) without its key.
      const stem = n.slice(0, -4);
      const slug = stem.slice(0, stem.lastIndexOf('-'));
      const current = await fs.readFile(rel(`${dir}/${slug}.json`), 'utf8').then((t) => (JSON.parse(t) as { serial?: string }).serial === stem.slice(slug.length + 1), () => false);
      if (current || names.includes(`${stem}.key.${gen}`)) await key(`${dir}/${stem}.key`, c);
    }
  }

  try {
    const text = await fs.readFile(rel('revocations.json'), 'utf8');
    if (!Array.isArray((JSON.parse(text) as { entries?: unknown }).entries)) throw new Error('entries');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') add('error', rel('revocations.json'), 'is truncated or corrupted');
  }

  /**
   * A new entry is written whole into certs/.tmp-… and then renamed to its serial (atomicDir):
   * a folder left there is an issue or import stopped (killed) before the rename that records
   * it. Once it holds a certificate, that certificate exists, signed, with no record: which one
   * and what to do is said. Not damage: the store's records are whole.
   */
  const unrecorded = async (p: string) => {
    let c: X509Certificate | undefined;
    try {
      const der = certificatesFrom(await fs.readFile(join(p, 'cert.pem'), 'utf8'))[0];
      if (der) c = new X509Certificate(der);
    } catch {
      // stopped before its certificate was written whole
    }
    if (!c) return add('info', p, 'left over from an interrupted write, with no certificate in it; safe to delete');
    const serial = normalizeSerial(c.serialNumber);
    const user = /email:([^,\s]+)/.exec(c.subjectAltName ?? '')?.[1] ?? c.subject.replace(/\n/g, ', ');
    if (issuing.some((i) => c.verify(i.publicKey))) {
      add('warning', p, `holds certificate ${serial} for ${user}, signed by the store's CA but never recorded: an issue was stopped before it finished. It was never handed out: delete this folder, and issue again if ${user} still needs one`);
    } else {
      add('warning', p, `holds certificate ${serial} for ${user}, never recorded: an import was stopped before it finished. Delete this folder and import it again`);
    }
  };
  // A writer holding the lock may be writing these now: they are not called leftovers then.
  const writing = (await lockState(store.dir, store.now())) === 'held';
  const scanLeftovers = async (dir: string) => {
    for (const n of await fs.readdir(rel(dir)).catch(() => [] as string[])) {
      if (!n.startsWith('.tmp-')) continue;
      const p = rel(join(dir, n));
      if (writing) add('info', p, 'being written by the process that holds the store lock (if that process was killed, run store check again once the lock is stale, after 15 s)');
      else if (dir === 'certs' && (await fs.stat(p).catch(() => undefined))?.isDirectory()) await unrecorded(p);
      else add('info', p, 'left over from an interrupted write; safe to delete');
    }
  };
  await scanLeftovers('.');
  await scanLeftovers('certs');
  await scanLeftovers('chains');
  await scanLeftovers('pkcs12-cache');
  for (const n of await fs.readdir(rel('pkcs12-cache')).catch(() => [] as string[])) {
    if (/\.\d+$/.test(n) && !n.endsWith(`.${gen}`)) add('info', rel(`pkcs12-cache/${n}`), 'cached PKCS#12 files of another passphrase generation, which no longer open; safe to delete');
  }
  const lock = await lockState(store.dir, store.now());
  if (lock === 'held') add('info', rel('store.lock'), 'a writer holds the lock, or one was killed (the lock goes stale after 15 s)');
  if (lock === 'stale') add('info', rel('store.lock'), 'left by a writer that was killed; the next writer takes it over');

  let index = new Map<string, CertificateRecord>();
  try {
    const idx = parseIndex(await fs.readFile(rel('index.json'), 'utf8'));
    index = new Map(idx.records.map((r) => [r.serial, r]));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') add('warning', rel('index.json'), 'the index cache is unreadable; it is rebuilt from the entries on the next read');
  }

  for (const name of await fs.readdir(rel('certs')).catch(() => [] as string[])) {
    if (name.startsWith('.')) continue;
    const dir = `certs/${name}`;
    let record: CertificateRecord;
    try {
      record = JSON.parse(await fs.readFile(rel(`${dir}/entry.json`), 'utf8')) as CertificateRecord;
      if (record.serial !== name) throw new Error('serial');
    } catch {
      // Whose it is, from its certificate when that is whole: the one user whose lookups it stops.
      const c = await fs.readFile(rel(`${dir}/cert.pem`), 'utf8').then((t) => certificatesFrom(t)[0], () => undefined).catch(() => undefined);
      const owner = c ? /(?:^|, )email:([^,\s]+)/.exec(new X509Certificate(c).subjectAltName ?? '')?.[1] : undefined;
      add('error', rel(`${dir}/entry.json`), `is missing, truncated or corrupted: certificate ${name}${owner ? ` of ${owner}` : ''} is left out of listings, and ${owner ?? 'every user'}'s profiles fail until it is repaired or moved aside`, dir);
      continue;
    }
    const indexed = index.get(name);
    if (indexed && (indexed.user !== record.user || indexed.fingerprint !== record.fingerprint || indexed.purpose !== record.purpose)) {
      add('error', rel('index.json'), `disagrees with the entry ${name}; delete index.json and it is rebuilt from the entries`);
    }
    const c = await cert(`${dir}/cert.pem`, dir);
    if (!c) continue;
    if (fingerprint(c.raw) !== record.fingerprint) add('error', rel(`${dir}/cert.pem`), 'does not match the fingerprint its entry records', dir);
    // A device's certificate (SCEP) has its key on the device: one here would be out of place.
    if (!record.keyOnDevice) await key(`${dir}/key`, c);
    else if (await fs.stat(rel(`${dir}/key.${gen}`)).catch(() => undefined)) add('error', rel(`${dir}/key.${gen}`), 'a key beside a certificate enrolled by a device (its key is on the device)');
    for (const n of await fs.readdir(rel(dir))) {
      if (/^key\.\d+$/.test(n) && n !== `key.${gen}`) add('info', rel(`${dir}/${n}`), 'a key of another passphrase generation, left by an interrupted passphrase change; safe to delete');
      if (/^p12\.\d+$/.test(n)) add('info', rel(`${dir}/${n}`), 'a cached PKCS#12 in the layout of earlier versions (now pkcs12-cache/), no longer read; safe to delete');
    }
    if (record.source === 'issued') {
      if (inter && !issuing.some((i) => c.verify(i.publicKey))) add('error', rel(`${dir}/cert.pem`), 'does not chain to any issuing CA of the store');
    } else if (record.chain?.length) {
      const issuer = await cert(`chains/${record.chain[0]}.pem`);
      if (issuer && !c.verify(issuer.publicKey)) add('error', rel(`${dir}/cert.pem`), 'does not chain to its stored issuer');
    }
  }
  return findings;
}

/** An entry {@link quarantineEntries} moved: from `certs/<serial>` to `quarantine/<serial>…`, relative to the store. */
export interface QuarantinedEntry {
  from: string;
  to: string;
}

/**
 * Moves the entries that findings name as damaged (their `entry`) out of `certs/` into
 * `quarantine/`, whole and under the store lock, so that listings and profiles no longer meet
 * them. Nothing is deleted: moving a folder back restores it. An entry already gone is skipped.
 * @throws ERR_STORE_IO when a folder cannot be moved (those moved before stay moved)
 */
export async function quarantineEntries(store: FileStore, findings: readonly StoreFinding[]): Promise<QuarantinedEntry[]> {
  const entries = [...new Set(findings.flatMap((f) => (f.entry && /^certs\/[0-9a-f]+$/.test(f.entry) ? [f.entry] : [])))];
  if (!entries.length) return [];
  return withLock(store.dir, async () => {
    const moved: QuarantinedEntry[] = [];
    await fs.mkdir(join(store.dir, 'quarantine'), { recursive: true, mode: 0o700 });
    for (const from of entries) {
      const serial = from.slice('certs/'.length);
      const taken = new Set(await fs.readdir(join(store.dir, 'quarantine')));
      let to = `quarantine/${serial}`;
      for (let i = 2; taken.has(to.slice('quarantine/'.length)); i++) to = `quarantine/${serial}-${i}`;
      try {
        await fs.rename(join(store.dir, from), join(store.dir, to));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw ioError(join(store.dir, from), 'move', err);
      }
      moved.push({ from, to });
    }
    return moved;
  });
}
