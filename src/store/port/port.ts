/**
 * The storage port: what the CA keeps, and nothing of what a CA is. The CA (src/store/ca/)
 * is written once over it; a backend (the file port, the PostgreSQL port, the memory port, or
 * a vendor's own database) implements it and passes the port contract suite
 * (test/helpers/port-contract.ts, run by test/store/port-*.test.ts for each).
 *
 * What a port keeps:
 * - **settings**: one JSON document (organization, key derivation, the passphrase check, URLs);
 * - **certificates**: the user certificates, each a {@link CertificateRecord} (facts that never
 *   change), the DER, and a sealed private key (or none: a device holds it);
 * - **credentials**: the store's own certificates (its root, its issuing CA generations, its
 *   profile signers, its OCSP responders and SCEP RAs), each with a role, the slug of the CA
 *   that issued it, and a sealed key while it has one;
 * - **chains**: issuer certificates of imported identities, by SHA-256;
 * - **revocations**: one line per serial (revoked or retired);
 * - **CRL states**: one small document per CA (the last CRL number, the CRL last published);
 * - **links**: two books of one-time tokens (download links and SCEP challenges), kept as hashes.
 *
 * Keys are sealed by the CA before they reach the port, and opened by the CA after they leave
 * it: a port never holds a passphrase or a clear key. The port chooses each key's associated
 * data (its AAD: the file port uses the key file's path), so a port's layout stays its own.
 *
 * **Atomicity: one transaction kind, mutual exclusion.** {@link StoragePort.transaction} runs a
 * function with every other transaction on the same store (in any process, on any node)
 * excluded, and commits all its writes or none. The CA's decisions read several things and
 * write several (issue only what is missing; take the next CRL number; spend a renewal once;
 * rotate a CA and its signer together), and exclusion is what the backends already have: the
 * file store's lock file, PostgreSQL's advisory locks, SQLite's `BEGIN IMMEDIATE`. A
 * compare-and-set with retry would need a version on every kind of row in every port, and a
 * vendor would have to get each one right; a lock is one thing to get right. The cost, one
 * writer at a time per store, is small because the slow work (key generation, signing) is done
 * before the transaction begins: a transaction only reads and writes rows.
 *
 * Reads outside a transaction see committed state. Inside one, the CA never reads what it
 * wrote in the same transaction, so a port may or may not show its own uncommitted writes.
 * A transaction's function never begins another transaction (on a port that locks, it would
 * wait for itself). A record given to addCertificate holds the certificate's facts only: its
 * revocation, retirement and amendments are the port's to apply when it is read.
 *
 * @module storage-port
 */
import type { CertificatePurpose } from '../../certs/issue.js';
import type { RevocationReason } from '../../certs/crl.js';
import type { LinkRecord, LinkStore } from '../../server/links.js';
import type { Sealed } from '../secret-box.js';
import type { StoreSettings } from '../settings.js';
import type { CertificateRecord } from '../store.js';

export type { StoreSettings };

/** A private key sealed by the CA (AES-256-GCM under the store key), with the associated data it was sealed with. */
export interface SealedKey {
  sealed: Sealed;
  /** The associated data: where the key belongs. The port chose it when the key was written. */
  aad: string;
}

/**
 * Seals a key for the port: the port calls it once, with the associated data it keeps the key
 * under, and stores what it returns. A key that is sealed already (a migration between ports)
 * says the AAD it was sealed under in `aad`: a port that keeps each key's AAD beside it may use
 * that one, so the key travels without being opened; any other AAD needs the store key.
 */
export type Sealer = ((aad: string) => Sealed) & { readonly aad?: string };

/** One line of the revocation list: a serial revoked (on a CRL) or retired (out of generation only). */
export interface Revocation {
  serial: string;
  /** ISO-8601. */
  date: string;
  reason: RevocationReason | 'retired';
  kind: 'revoked' | 'retired';
  /** The CA whose CRL lists it (`root`, `issuing`, `issuing-2`, ...). Absent: `issuing`. */
  ca?: string;
}

/** What a later import added to a certificate, applied to its record as `alsoPurpose` and `addedChain`. */
export interface Amendment {
  serial: string;
  /** ISO-8601: when it was first amended. */
  date: string;
  alsoPurpose?: CertificatePurpose;
  /** Issuer fingerprints (SHA-256) added. */
  chain?: string[];
}

/** What {@link PortReads.records} is asked for: everything (nothing set), or by one of these. */
export interface RecordQuery {
  /** Case-insensitive address: that user's records. */
  user?: string;
  /** A normalized serial (lower-case hex, no leading zeros): that record. */
  serial?: string;
  /** A SHA-256 fingerprint, lower-case hex: that record. */
  fingerprint?: string;
  /** Records whose serial or fingerprint starts with these lower-case hex digits (6 or more): at most 4 (enough to tell one from several). */
  prefix?: string;
}

/** A user certificate as the port keeps it. */
export interface StoredCertificate {
  der: Buffer;
  /** Absent: the key is on a device (SCEP), or was never given. */
  key?: SealedKey;
}

/** The role of one of the store's own certificates. */
export type CredentialRole = 'root' | 'issuing' | 'signer' | 'responder' | 'scep-ra';

/** One of the store's own certificates. */
export interface Credential {
  /** Normalized serial. */
  serial: string;
  role: CredentialRole;
  /** The slug of the CA that issued it (`root`, `issuing`, `issuing-2`, ...); absent for the root and for a signer from an outside CA. */
  ca?: string;
  /** An issuing CA's generation (1, 2, ...). */
  generation?: number;
  /**
   * The one in use: the current issuing CA, the current signer, the current responder or RA of
   * its CA. The root is always current.
   */
  current: boolean;
  certificate: Buffer;
  /** Absent once the key was deleted (a replaced signer or responder). */
  key?: SealedKey;
}

/** The CRL state of one CA. */
export interface CrlState {
  /** The last CRL number handed out: never handed out again. */
  number: number;
  /** When the CRL numbered `number` was published (the PKI server's copy): its times, the digest of what it lists, and the CRL. */
  published?: { thisUpdate: string; nextUpdate: string; digest: string; der: Buffer };
}

/** The two books of one-time tokens: download links and SCEP enrollment challenges. */
export type LinkBookName = 'links' | 'challenges';

/** What a port reads, in a transaction and out of one. */
export interface PortReads {
  /** The settings document. @throws ERR_STORE_NOT_INITIALIZED when there is none */
  settings(): Promise<StoreSettings>;
  /** Certificate records with their revocation, retirement and amendments applied, oldest first (see compareRecords). */
  records(query?: RecordQuery): Promise<CertificateRecord[]>;
  /** A user certificate's DER and sealed key; undefined when there is no such serial. */
  certificate(serial: string): Promise<StoredCertificate | undefined>;
  /** The store's own certificates, every role and generation. */
  credentials(): Promise<Credential[]>;
  /** Issuer certificates by SHA-256 fingerprint; those the port does not hold are left out. */
  chains(fingerprints: readonly string[]): Promise<Map<string, Buffer>>;
  /** Every revocation and retirement. */
  revocations(): Promise<Revocation[]>;
  /** A CA's CRL state; undefined before its first CRL. */
  crlState(ca: string): Promise<CrlState | undefined>;
  /** The links of a book (or the one whose token has this SHA-256 hash), oldest first. */
  links(book: LinkBookName, tokenHash?: string): Promise<LinkRecord[]>;
}

/** The writes of a transaction; they take effect together when the transaction's function returns. */
export interface PortTransaction extends PortReads {
  /** Replaces the settings document (the key generation changes only through {@link PortTransaction.rekey}). */
  putSettings(settings: StoreSettings): Promise<void>;
  /**
   * Adds a user certificate. Its key, when given, is sealed by `key` with the port's AAD.
   * @throws ERR_CERT_INVALID (`duplicate`) when a certificate with that serial is held
   */
  addCertificate(record: CertificateRecord, der: Buffer, key?: Sealer): Promise<void>;
  /** Sets a certificate's amendment (replacing the one before, if any). */
  amend(amendment: Amendment): Promise<void>;
  /** Adds issuer certificates (those held already are left as they are). */
  putChains(ders: readonly Buffer[]): Promise<void>;
  /**
   * Adds one of the store's own certificates, or changes one held (by serial): its `current`
   * flag, or its key dropped (`key: null`). Making one current makes the others of the same
   * role (and CA, for responders and RAs) not current.
   */
  putCredential(credential: Omit<Credential, 'key'>, key: Sealer | null | undefined): Promise<void>;
  /** Sets the revocation line of a serial, replacing any before. */
  putRevocation(revocation: Revocation): Promise<void>;
  /** Replaces a CA's CRL state. */
  putCrlState(ca: string, state: CrlState): Promise<void>;
  /** Adds or replaces links (by id) and deletes those whose ids are in `remove`. */
  putLinks(book: LinkBookName, links: readonly LinkRecord[], remove?: readonly string[]): Promise<void>;
  /**
   * A new passphrase: every sealed key the port holds is passed through `reseal` and written
   * back, with `settings` (the new key derivation, check and key generation), all at once.
   * Each key keeps its AAD. Anything a port keeps sealed besides keys (a cache) is dropped.
   * Returns how many keys.
   */
  rekey(reseal: (key: SealedKey) => Sealed, settings: StoreSettings): Promise<number>;
}

/** What a backend implements: the reads, and transactions. */
export interface StoragePort extends PortReads {
  /** Where the store is, as messages name it (a directory, a URL without its password). */
  readonly location: string;
  /**
   * Runs `fn` with every other transaction on the store excluded, in every process and on
   * every node, and commits its writes when it returns; when it throws, nothing is written.
   */
  transaction<T>(fn: (tx: PortTransaction) => Promise<T>): Promise<T>;
  /** Optional: how messages name another writer of the store, such as `on another node`. Default: `by another process`. */
  readonly elsewhere?: string;
  /** Optional: a cache of sealed PKCS#12 files (see {@link PortCache}). */
  readonly cache?: PortCache;
  /** Optional: the port's own link book, when it spends a use better than a transaction would (one conditional UPDATE). */
  linkStore?(book: LinkBookName, now: () => Date): LinkStore;
  /** Optional: hints from a batch, which reads every record once and then each user's. */
  preload?(): Promise<void>;
  /** Optional: records the caller holds already (a batch worker's), so lookups of them need no read. */
  remember?(records: readonly CertificateRecord[]): void;
  /** Optional: releases what the port holds open (a connection pool). */
  close?(): Promise<void>;
}

/**
 * Seals and opens bytes under the store key, without handing the key over: what the CA gives
 * a {@link PortCache}. `generation` is the store's key generation (a new passphrase makes a new one).
 */
export interface SealingBox {
  readonly generation: number;
  /** Seals `plain` under the store key with `aad`. */
  seal(plain: Buffer, aad: string): Buffer;
  /** Undefined when the bytes do not open (another key, another AAD, damage). */
  open(sealed: Buffer, aad: string): Buffer | undefined;
}

/** A PKCS#12 and its password, as a profile ships an identity. */
export interface BuiltPkcs12 {
  password: string;
  pkcs12: Buffer;
}

/**
 * A cache a port may keep of what is costly to build and safe to lose: each identity's
 * iOS-form PKCS#12 and its password, sealed with the box the CA gives. A hit must be for the
 * record's fingerprint and the box's generation; anything else is a miss. Dropped by
 * {@link PortTransaction.rekey}.
 */
export interface PortCache {
  /** The cached PKCS#12 of the record's certificate, if one for its fingerprint opens with the box. */
  get(record: CertificateRecord, box: SealingBox): Promise<BuiltPkcs12 | undefined>;
  /** Keeps one (losing it later costs a rebuild). */
  put(record: CertificateRecord, built: BuiltPkcs12, box: SealingBox): Promise<void>;
}
