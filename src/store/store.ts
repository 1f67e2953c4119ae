/**
 * The certificate store contract: what the generator needs from wherever certificates and
 * keys live. The file store implements it; embedders may bring their own.
 *
 * @module store
 */
import type { KeyObject } from 'node:crypto';
import type { RevocationReason } from '../certs/crl.js';
import type { IdentityBundle } from '../certs/import.js';
import type { CertificatePurpose, Identity } from '../certs/issue.js';
import type { CertificateInput } from '../certs/pem.js';
import type { Signer } from '../cms/sign.js';
import type { LinkStore } from '../server/links.js';
import type { CertificateRecord } from './record.js';

export * from './record.js';

/** Filters of {@link CertificateStore.listCertificates}. */
export interface ListCertificatesOptions {
  /** Case-insensitive address. */
  user?: string;
  purpose?: CertificatePurpose;
}

/** Options of {@link CertificateStore.issueCertificate}. */
export interface IssueUserCertificateOptions {
  user: string;
  name: string;
  purpose: CertificatePurpose;
  /** Default: 365. */
  days?: number;
  /** Certify this key instead of generating one. */
  privateKey?: KeyObject;
}

/** Options of {@link EnrollingStore.issueDeviceCertificate}. */
export interface IssueDeviceCertificateOptions {
  user: string;
  /** Subject CN. */
  name: string;
  /** The device's public key (RSA of 2048 bits or more); its private key never leaves the device. */
  publicKey: KeyObject;
  /** Default: 365. */
  days?: number;
  /**
   * The serial of the device certificate this one renews: recorded as `renewedFrom`, and that
   * certificate is revoked as `superseded` in the same step, so a renewal never leaves two live
   * certificates behind. Refused (ERR_CERT_INVALID) when it was revoked meanwhile.
   */
  renews?: string;
}

/** The CA certificates a device needs to trust the user identities. */
export interface TrustChain {
  /** DER of each root. */
  roots: Buffer[];
  /** DER of each intermediate. */
  intermediates: Buffer[];
}

/** The contract every store implements. */
export interface CertificateStore {
  /** The organization the store was created for. */
  readonly organization: string;
  /** Every user certificate record, oldest first. */
  listCertificates(options?: ListCertificatesOptions): Promise<CertificateRecord[]>;
  /** DER of one user certificate. */
  getCertificate(serial: string): Promise<Buffer>;
  /** A certificate with its private key; needs the passphrase. */
  getIdentity(serial: string): Promise<Identity>;
  /** Issues and records a user certificate from the store's CA. */
  issueCertificate(options: IssueUserCertificateOptions): Promise<CertificateRecord>;
  /**
   * Optional: issues unless the user already holds a valid certificate of the purpose, with
   * the check and the write in one atomic step (the file store holds its lock), so that
   * concurrent batch runs issue one certificate per user and purpose. `issued` is false when
   * the held one is returned.
   */
  issueCertificateIfMissing?(options: IssueUserCertificateOptions): Promise<{ record: CertificateRecord; issued: boolean }>;
  /**
   * Optional: what {@link CertificateStore.issueCertificate} would refuse, checked without
   * issuing (the address, the name, any policy of the CA such as permitted domains): a dry run
   * of issue-batch asks it. Without it, the dry run checks the address and the name only.
   * @throws what issueCertificate throws for the same options, before any key is made
   */
  checkIssuance?(options: IssueUserCertificateOptions): Promise<void>;
  /** The store CA's roots and intermediates, shipped in every profile. */
  trustChain(): Promise<TrustChain>;
  /** The issuers (DER, leaf-most first) of one stored certificate, as far as the store knows them. */
  issuerChain(serial: string): Promise<Buffer[]>;
  /** The identity that signs profiles. */
  profileSigner(): Promise<Signer>;
  /**
   * Optional: a PKCS#12 of the identity built once and kept (encrypted) by the store, so
   * batch runs skip the key derivation. `build` makes it when there is none.
   */
  cachedPkcs12?(serial: string, build: (identity: Identity) => { password: string; pkcs12: Buffer }): Promise<{ password: string; pkcs12: Buffer }>;
}

/** Options of {@link LifecycleStore.importIdentity}. */
export interface ImportIdentityOptions {
  user: string;
  purpose: CertificatePurpose;
  /** Issuer certificates to keep with it (besides those in the bundle): PEM text, bytes, or an array of those. */
  chain?: CertificateInput;
  /** Refuse what would otherwise be a warning. */
  strict?: boolean;
}

/** What an import recorded, with its warnings. */
export interface ImportIdentityResult {
  record: CertificateRecord;
  /** True when the same certificate was already in the store (see `added` for what this import added to it). */
  duplicate: boolean;
  /**
   * For a duplicate: what the import added to the stored certificate, the other purpose of a
   * dual-use certificate and issuer certificates it did not have. Absent or empty: nothing changed.
   */
  added?: { purpose?: CertificatePurpose; chain: number };
  warnings: string[];
}

/** What {@link LifecycleStore.revokeCertificate} did. */
export interface RevokeResult {
  serial: string;
  kind: 'user' | 'signer' | 'responder' | 'scep-ra' | 'issuing-ca';
  /** The CA whose CRL lists it: `root`, `issuing`, `issuing-2`, ... */
  ca: string;
  /** True when it was revoked before: nothing changed. */
  already: boolean;
  revoked: { date: string; reason: string };
  /** The user certificate's record. */
  record?: CertificateRecord;
  /**
   * With reason keyCompromise: the certificates renewed from this one (a SCEP renewal chain),
   * revoked with it for keyCompromise, or whose earlier revocation (superseded) now says so.
   */
  renewals?: string[];
}

/** What removing a user did: serials revoked (our CA) and retired (outside CAs). */
export interface RemoveUserResult {
  revoked: CertificateRecord[];
  retired: CertificateRecord[];
}

/**
 * A store that takes part in the whole lifecycle, not only in generation: import, lookup,
 * revocation with a reason, unenrollment, CRLs and one-time links. The file store, the memory
 * store and the SQLite example implement it, and the contract suite (test/store/contract.test.ts)
 * checks every property of it against each. `generateProfile` needs only {@link CertificateStore}.
 */
export interface LifecycleStore extends CertificateStore {
  /**
   * A record by serial (any case, with or without colons), SHA-256 fingerprint, or a unique
   * serial prefix of 6 or more hex digits.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_INPUT_INVALID for an ambiguous prefix
   */
  findCertificate(serialOrFingerprint: string): Promise<CertificateRecord>;
  /**
   * Takes in an identity issued elsewhere, after `checkImport`. The same certificate again is a
   * no-op (`duplicate`), unless it adds the other purpose of a dual-use certificate or issuers
   * the entry lacks (`added`; see {@link planReimport}).
   */
  importIdentity(bundle: IdentityBundle, options: ImportIdentityOptions): Promise<ImportIdentityResult>;
  /**
   * Revokes a certificate this store's CA issued; revoking it again changes nothing
   * (`already`). It leaves the profiles generated next and is on the next CRL.
   * @throws ERR_STORE_ENTRY_NOT_FOUND; ERR_CERT_INVALID (`outside-ca`) for an outside CA's certificate
   */
  revokeCertificate(serial: string, reason?: RevocationReason): Promise<RevokeResult>;
  /**
   * Unenrolls a user: every certificate leaves generation; with `revoke`, those of this
   * store's CA are revoked (cessationOfOperation) and outside ones retired.
   * @throws ERR_STORE_ENTRY_NOT_FOUND for an unknown user
   */
  removeUser(user: string, options?: { revoke?: boolean }): Promise<RemoveUserResult>;
  /** A DER CRL of the issuing CA listing every revocation, with a CRL number above the last one. */
  createCrl(options?: { nextUpdateMs?: number }): Promise<Buffer>;
  /** The store's one-time download links: a link is used exactly once, whichever server asks. */
  readonly links: LinkStore;
  /** The base URL its CRLs and OCSP are published under (CDP and AIA of what it issues), if any. */
  readonly pkiUrl: string | undefined;
}

/**
 * A store a SCEP server can stand in front of (see `createScepHandler`): it certifies keys
 * that devices make, keeps one-time enrollment challenges bound to users, and has an RA
 * identity that devices encrypt their requests to. The file store and the PostgreSQL store
 * implement it.
 */
export interface EnrollingStore extends LifecycleStore {
  /** Issues and records a signing certificate for a device's key (`keyOnDevice`, no key kept). */
  issueDeviceCertificate(options: IssueDeviceCertificateOptions): Promise<CertificateRecord>;
  /** One-time challenges, each bound to a user, kept as hashes; a ledger of their own, apart from {@link LifecycleStore.links}. */
  readonly challenges: LinkStore;
  /** The current RA identity (RSA, keyUsage digitalSignature and keyEncipherment), issued by the current issuing CA. */
  scepRa(): Promise<Identity & { serial: string }>;
  /** An RA identity the store issued, by serial, while it still holds its key (a request may be encrypted to the one before). */
  scepRaBySerial(serial: string): Promise<(Identity & { serial: string }) | undefined>;
  /** The URL of the store's SCEP server, written into SCEP profiles, if set. */
  readonly scepUrl: string | undefined;
  /** Sets (or clears) {@link EnrollingStore.scepUrl}. */
  setScepUrl(url: string | undefined): Promise<string | undefined>;
}

