/**
 * The memory port: a {@link StoragePort} that keeps everything in this process's memory, for
 * tests and for embedders that bring nothing to store in. Transactions run one at a time (a
 * promise chain); a transaction's writes go to a write-set that is applied when its function
 * returns, and dropped when it throws. Every value handed in or out is a copy.
 *
 * @module memory-port
 */
import { fingerprint } from '../../certs/pem.js';
import { CertificateInvalid, StoreNotInitialized } from '../../errors.js';
import type { LinkRecord } from '../../server/links.js';
import type { Amendment, BuiltPkcs12, Credential, CrlState, LinkBookName, PortCache, PortReads, PortTransaction, RecordQuery, Revocation } from '../port/port.js';
import type { SealedKey, Sealer, SealingBox, StoragePort, StoredCertificate, StoreSettings } from '../port/port.js';
import type { Sealed } from '../secret-box.js';
import { compareRecords, type CertificateRecord } from '../store.js';

/** A user certificate as kept: its record (without what revocations and amendments add), DER and key. */
interface CertEntry {
  record: CertificateRecord;
  der: Buffer;
  key?: SealedKey;
}

/** Everything a memory store holds; committed state and a transaction's write-set have this shape. */
interface Tables {
  settings?: StoreSettings;
  certs: Map<string, CertEntry>;
  amendments: Map<string, Amendment>;
  credentials: Map<string, Credential>;
  chains: Map<string, Buffer>;
  revocations: Map<string, Revocation>;
  crl: Map<string, CrlState>;
  /** A `null` in a write-set deletes the link. */
  links: Record<LinkBookName, Map<string, LinkRecord | null>>;
}

/** What instances of one memory store share: the tables, the transaction queue and the cache. */
interface Core {
  state: Tables;
  tail: Promise<unknown>;
  cache: Map<string, { fingerprint: string; generation: number; sealed: Buffer }>;
}

const emptyTables = (): Tables => ({
  certs: new Map(), amendments: new Map(), credentials: new Map(), chains: new Map(), revocations: new Map(), crl: new Map(),
  links: { links: new Map(), challenges: new Map() },
});

/** The fields a port derives (from revocations and amendments), never kept on a record. */
function baseRecord(record: CertificateRecord): CertificateRecord {
  const { revoked: _r, retired: _t, alsoPurpose: _a, addedChain: _c, ...rest } = structuredClone(record);
  return rest;
}

const copyKey = (key: SealedKey | undefined): { key?: SealedKey } => (key ? { key: structuredClone(key) } : {});

function copyCredential(c: Credential): Credential {
  const { certificate, key, ...rest } = c;
  return { ...structuredClone(rest), certificate: Buffer.from(certificate), ...copyKey(key) };
}

function copyCrlState(s: CrlState): CrlState {
  const { published, ...rest } = s;
  if (!published) return structuredClone(rest);
  const { der, ...times } = published;
  return { ...structuredClone(rest), published: { ...structuredClone(times), der: Buffer.from(der) } };
}

/** The reads of committed state, shared by the port and its transactions. */
class MemoryReads implements PortReads {
  /** @internal */
  constructor(
    /** @internal */ protected readonly core: Core,
    readonly location: string,
  ) {}

  async settings(): Promise<StoreSettings> {
    const s = this.core.state.settings;
    if (!s) throw new StoreNotInitialized(this.location);
    return structuredClone(s);
  }

  async records(query: RecordQuery = {}): Promise<CertificateRecord[]> {
    const q = query as { user?: string; serial?: string; fingerprint?: string; prefix?: string };
    const { certs, revocations, amendments } = this.core.state;
    const [user, fp, prefix] = [q.user, q.fingerprint, q.prefix].map((v) => v?.toLowerCase());
    const one = q.serial !== undefined ? certs.get(q.serial.toLowerCase()) : undefined;
    const entries = q.serial !== undefined ? (one ? [one] : []) : [...certs.values()].filter(({ record: r }) =>
      (user === undefined || r.user.toLowerCase() === user) && (fp === undefined || r.fingerprint === fp) &&
      (prefix === undefined || r.serial.startsWith(prefix) || r.fingerprint.startsWith(prefix)));
    const out = entries.map(({ record }) => {
      const r = structuredClone(record);
      const rev = revocations.get(r.serial);
      if (rev?.kind === 'revoked') r.revoked = { date: rev.date, reason: rev.reason };
      if (rev?.kind === 'retired') r.retired = { date: rev.date };
      const am = amendments.get(r.serial);
      if (am?.alsoPurpose) r.alsoPurpose = am.alsoPurpose;
      if (am?.chain?.length) r.addedChain = [...am.chain];
      return r;
    });
    out.sort(compareRecords);
    return q.prefix !== undefined ? out.slice(0, 4) /* at most a few */ : out;
  }

  async certificate(serial: string): Promise<StoredCertificate | undefined> {
    const e = this.core.state.certs.get(serial.toLowerCase());
    return e && { der: Buffer.from(e.der), ...copyKey(e.key) };
  }

  async credentials(): Promise<Credential[]> {
    return [...this.core.state.credentials.values()].map(copyCredential);
  }

  async chains(fingerprints: readonly string[]): Promise<Map<string, Buffer>> {
    const held = fingerprints.map((f) => [f, this.core.state.chains.get(f.toLowerCase())] as const);
    return new Map(held.flatMap(([f, der]) => (der ? [[f, Buffer.from(der)] as const] : [])));
  }

  async revocations(): Promise<Revocation[]> {
    return [...this.core.state.revocations.values()].map((r) => structuredClone(r));
  }

  async crlState(ca: string): Promise<CrlState | undefined> {
    const s = this.core.state.crl.get(ca);
    return s && copyCrlState(s);
  }

  async links(book: LinkBookName, tokenHash?: string): Promise<LinkRecord[]> {
    const all = [...this.core.state.links[book].values()].filter((l): l is LinkRecord => l !== null);
    const picked = tokenHash === undefined ? all : all.filter((l) => l.tokenHash === tokenHash.toLowerCase());
    return picked.map((l) => structuredClone(l)).sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
  }
}

/** One transaction: reads see committed state; writes go to `ws` until {@link MemoryTransaction.commit}. */
class MemoryTransaction extends MemoryReads implements PortTransaction {
  readonly ws = emptyTables();
  dropCache = false;

  /** The current value of a keyed table: the write-set's, else the committed one's. */
  #view<K, V>(table: (t: Tables) => Map<K, V>): Map<K, V> {
    return new Map([...table(this.core.state), ...table(this.ws)]);
  }

  async putSettings(settings: StoreSettings): Promise<void> {
    this.ws.settings = structuredClone(settings);
  }

  async addCertificate(record: CertificateRecord, der: Buffer, key?: Sealer): Promise<void> {
    const serial = record.serial;
    if (this.core.state.certs.has(serial) || this.ws.certs.has(serial)) {
      throw new CertificateInvalid('duplicate', `A different certificate with serial ${serial} is already in the store`);
    }
    const aad = `certs/${serial}/key`;
    this.ws.certs.set(serial, { record: baseRecord(record), der: Buffer.from(der), ...(key ? { key: { sealed: key(aad), aad } } : {}) });
  }

  async amend(amendment: Amendment): Promise<void> {
    this.ws.amendments.set(amendment.serial, structuredClone(amendment));
  }

  async putChains(ders: readonly Buffer[]): Promise<void> {
    for (const der of ders) {
      const f = fingerprint(der);
      if (!this.core.state.chains.has(f) && !this.ws.chains.has(f)) this.ws.chains.set(f, Buffer.from(der));
    }
  }

  async putCredential(credential: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<void> {
    const { key: _ignored, ...given } = credential as Credential;
    const held = this.#view((t) => t.credentials);
    const [before, aad] = [held.get(given.serial), (key && key.aad) ?? `${given.role}/${given.serial}.key`];
    const sealed = key === null ? undefined : key === undefined ? before?.key : { sealed: key(aad), aad };
    this.ws.credentials.set(given.serial, { ...copyCredential(given), ...copyKey(sealed) });
    if (!given.current) return;
    const perCa = given.role === 'responder' || given.role === 'scep-ra';
    for (const c of held.values()) {
      if (c.serial !== given.serial && c.current && c.role === given.role && (!perCa || c.ca === given.ca)) {
        this.ws.credentials.set(c.serial, { ...copyCredential(c), current: false });
      }
    }
  }

  async putRevocation(revocation: Revocation): Promise<void> {
    this.ws.revocations.set(revocation.serial, structuredClone(revocation));
  }

  async putCrlState(ca: string, state: CrlState): Promise<void> {
    this.ws.crl.set(ca, copyCrlState(state));
  }

  async putLinks(book: LinkBookName, links: readonly LinkRecord[], remove: readonly string[] = []): Promise<void> {
    for (const l of links) this.ws.links[book].set(l.id, structuredClone(l));
    for (const id of remove) this.ws.links[book].set(id, null);
  }

  async rekey(reseal: (key: SealedKey) => Sealed, settings: StoreSettings): Promise<number> {
    let count = 0;
    const resealed = (key: SealedKey): SealedKey => (count++, { sealed: reseal(structuredClone(key)), aad: key.aad });
    const certs = [...this.#view((t) => t.certs)].map(([serial, e]) => [serial, e.key ? { ...e, key: resealed(e.key) } : e] as const);
    const creds = [...this.#view((t) => t.credentials)].map(([serial, c]) => [serial, c.key ? { ...c, key: resealed(c.key) } : c] as const);
    for (const [serial, e] of certs) this.ws.certs.set(serial, e);
    for (const [serial, c] of creds) this.ws.credentials.set(serial, c);
    this.ws.settings = structuredClone(settings);
    this.dropCache = true;
    return count;
  }

  /** Applies the write-set to the committed state: only Map writes, which do not fail. */
  commit(): void {
    const s = this.core.state;
    const ws = this.ws;
    if (ws.settings) s.settings = ws.settings;
    for (const k of ['certs', 'amendments', 'credentials', 'chains', 'revocations', 'crl'] as const) {
      const into = s[k] as Map<string, unknown>;
      for (const [key, v] of ws[k] as Map<string, unknown>) into.set(key, v);
    }
    for (const book of ['links', 'challenges'] as const) {
      for (const [id, l] of ws.links[book]) l === null ? s.links[book].delete(id) : s.links[book].set(id, l);
    }
    if (this.dropCache) this.core.cache.clear();
  }
}

/** The length-prefixed password, then the PKCS#12. */
function encodeBuilt(built: BuiltPkcs12): Buffer {
  const password = Buffer.from(built.password, 'utf8');
  const n = Buffer.alloc(4);
  n.writeUInt32BE(password.length);
  return Buffer.concat([n, password, built.pkcs12]);
}

function decodeBuilt(plain: Buffer): BuiltPkcs12 | undefined {
  const n = plain.length < 4 ? Infinity : plain.readUInt32BE(0);
  if (4 + n > plain.length) return undefined;
  return { password: plain.subarray(4, 4 + n).toString('utf8'), pkcs12: Buffer.from(plain.subarray(4 + n)) };
}

/**
 * A {@link StoragePort} over this process's memory: one transaction at a time, writes applied
 * at commit only, copies in and out, and a PKCS#12 {@link PortCache}. {@link MemoryPort.reopen}
 * gives another instance over the same memory, as a second process would open the same store.
 * @example
 * const port = new MemoryPort()
 * await initializeCa(port, { organization: 'Example Corp', passphrase })
 * const store = await CaStore.open(port, { passphrase })
 * console.log((await port.settings()).organization, (await store.trustChain()).roots.length)
 */
export class MemoryPort extends MemoryReads implements StoragePort {
  /** The cache of sealed PKCS#12 files, by serial; dropped by a rekey. */
  readonly cache: PortCache;

  /** @param sharing an instance whose memory this one shares (see {@link MemoryPort.reopen}); default: a new, empty store */
  constructor(sharing?: MemoryPort) {
    const shared: Core = sharing?.core ?? { state: emptyTables(), tail: Promise.resolve(), cache: new Map() };
    super(shared, 'memory');
    this.cache = {
      get: async (record: CertificateRecord, box: SealingBox) => {
        const e = shared.cache.get(record.serial);
        if (!e || e.fingerprint !== record.fingerprint || e.generation !== box.generation) return undefined;
        const plain = box.open(e.sealed, `pkcs12|${e.generation}|${record.serial}`);
        return plain && decodeBuilt(plain);
      },
      put: async (record: CertificateRecord, built: BuiltPkcs12, box: SealingBox) => {
        const sealed = box.seal(encodeBuilt(built), `pkcs12|${box.generation}|${record.serial}`);
        shared.cache.set(record.serial, { fingerprint: record.fingerprint, generation: box.generation, sealed });
      },
    };
  }

  /** Another instance over the same memory: the same tables, the same transaction queue. */
  reopen(): MemoryPort {
    return new MemoryPort(this);
  }

  /**
   * Runs `fn` once every transaction begun before it has ended, and commits its writes when it
   * resolves. Do not begin another transaction of the same store inside `fn`: it would wait for
   * this one, which waits for `fn`.
   */
  transaction<T>(fn: (tx: PortTransaction) => Promise<T>): Promise<T> {
    const run = this.core.tail.then(async () => {
      const tx = new MemoryTransaction(this.core, this.location);
      let open = true;
      // The object `fn` holds refuses calls once the transaction has ended (they would be lost).
      const guarded = new Proxy(tx, {
        get: (target, prop) => {
          const v = Reflect.get(target, prop, target) as unknown;
          if (typeof v !== 'function') return v;
          return (...args: unknown[]) => (open ? v.apply(target, args) : Promise.reject(new Error('This transaction has ended')));
        },
      });
      try {
        const out = await fn(guarded);
        tx.commit();
        return out;
      } finally {
        open = false;
      }
    });
    this.core.tail = run.catch(() => undefined);
    return run;
  }
}
