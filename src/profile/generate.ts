/**
 * The main entry: template + store + user → a validated, signed profile.
 *
 * @module generate
 */
import { randomBytes } from 'node:crypto';
import { InputInvalid, ProfileInvalid, StoreEntryNotFound, TemplateDataError, type ProfileIssue } from '../errors.js';
import { profileFileName } from './file-name.js';
import { assertCertificateEmail, assertEmail } from '../certs/email.js';
import type { Identity } from '../certs/issue.js';
import { toCertificates } from '../certs/pem.js';
import type { ContentCipher } from '../cms/envelope.js';
import { encryptProfileXml } from './encrypt.js';
import { profilePkcs12 } from '../certs/pkcs12.js';
import { certificateBasics, describeCertificate, type CertificateBasics } from '../certs/x509.js';
import { signProfile, type Signer } from '../cms/sign.js';
import { servesPurpose, statusOf, type CertificateRecord, type CertificateStore } from '../store/store.js';
import { defaultIdentifierPrefix, isIdentifierPrefix, profileIdentifier, stableUuid } from './ids.js';
import { describeProfile } from './describe.js';
import { renderTemplate } from './render.js';
import { challengeToMint, getPath, loadTemplate, resolveData, SCEP_CHALLENGE_TTL_MS, unknownDataKeys, type IdentityUse, type Template, type TemplateRef } from './template.js';
import type { BuiltinTemplateData, BuiltinTemplateName } from './template-data.gen.js';
import { validateXml, type PlistValue } from './validate.js';

/**
 * The data type of a template reference: the generated type of a built-in named by a literal
 * (`'exchange-smime'` or `{ builtin: 'exchange-smime' }`), else any nested object.
 */
export type TemplateDataOf<T> = T extends BuiltinTemplateName
  ? BuiltinTemplateData[T]
  : T extends { builtin: infer N extends BuiltinTemplateName }
    ? BuiltinTemplateData[N]
    : Record<string, unknown>;

/** Options of {@link generateProfile}. */
export interface GenerateProfileOptions<T extends TemplateRef | Template = TemplateRef | Template> {
  store: CertificateStore;
  /**
   * Which template: a built-in name (`'exchange-smime'`, or `{ builtin }`), `{ path }` of a
   * `.hbs` file, `{ source }` text, or a loaded {@link Template}. A name is only ever a
   * built-in's: it never reaches the file system.
   */
  template: T;
  /** The user's address (matched case-insensitively). Not needed by templates without identities (root-ca). */
  user?: string;
  /**
   * Template variables, nested (`{ exchange: { host } }`), typed for a built-in named by a
   * literal. A key the template does not declare is reported in `issues` (`unknown-variable`).
   */
  data?: TemplateDataOf<T>;
  /** Sign the profile. Default: true. */
  sign?: boolean;
  /** Signer to use instead of the store's profile-signing identity. */
  signer?: Signer;
  /**
   * Put each PKCS#12 password in its payload's Password key. Default: true. That is
   * obfuscation, not encryption: anyone holding the profile can extract the keys.
   * With false, the device asks for the passwords, returned in `passwords`.
   */
  embedPkcs12Passwords?: boolean;
  /** Also ship revoked encryption certificates. Default: false. */
  includeRevoked?: boolean;
  /** Return a profile with validation errors instead of throwing. Default: false. */
  allowInvalid?: boolean;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Source of PKCS#12 salts and passwords. Default: crypto.randomBytes. Inject only for test vectors. */
  random?: (size: number) => Buffer;
  /**
   * Encrypt the payloads to this device certificate (PEM or DER, RSA): EncryptedPayloadContent,
   * then the outer profile is signed. The device must already hold the matching identity.
   */
  encryptTo?: string | Uint8Array;
  /** Content cipher for `encryptTo`. Default: `aes-256-cbc`; `des-ede3-cbc` for old devices. */
  cipher?: ContentCipher;
  /** The user's records, when the caller already has them (saves a store lookup). */
  records?: CertificateRecord[];
  /**
   * Reuse each identity's PKCS#12 (and its password) kept by the store, when the store
   * offers `cachedPkcs12`. Default: false. Batch runs turn it on.
   */
  pkcs12Cache?: boolean;
  /**
   * The SCEP challenge for a template that mints one (`scep-smime-signing`): a string minted
   * beforehand (a batch mints a chunk at once), or false to mint none (a dry run). Default:
   * one is minted from the store's `challenges` when the profile points at the store's own
   * SCEP server.
   */
  scepChallenge?: string | false;
  /** How long a minted SCEP challenge stays usable. Default: 14 days. */
  scepChallengeTtlMs?: number;
}


/** A store that mints SCEP challenges, and the URL of its SCEP server. */
interface ChallengeMinter {
  challenges?: { create(user: string, options?: { ttlMs?: number }): Promise<{ token: string }> };
  scepUrl?: string | undefined;
}

/**
 * The SCEP values of a profile: the store's SCEP URL (the default of `scep.url`), and a
 * challenge for the user when the profile points at the store's own server (see challengeToMint).
 */
async function scepValues(template: Template, data: Record<string, unknown>, store: CertificateStore, user: string | undefined, options: GenerateProfileOptions): Promise<{ scepUrl?: string; scepChallenge?: string }> {
  const minter = store as CertificateStore & ChallengeMinter;
  const storeUrl = typeof minter.scepUrl === 'string' ? minter.scepUrl : undefined;
  const out: { scepUrl?: string; scepChallenge?: string } = storeUrl ? { scepUrl: storeUrl } : {};
  if (!user || !challengeToMint(template, (k) => getPath(data, k), storeUrl) || options.scepChallenge === false) return out;
  // The store's SCEP server will certify this address: refused now, not at the device's enrolment.
  assertCertificateEmail(user);
  if (typeof options.scepChallenge === 'string') return { ...out, scepChallenge: options.scepChallenge };
  if (!minter.challenges) return out;
  const { token } = await minter.challenges.create(user, { ttlMs: options.scepChallengeTtlMs ?? SCEP_CHALLENGE_TTL_MS });
  return { ...out, scepChallenge: token };
}

/** One PKCS#12 password, for delivery apart from the profile. */
export interface Pkcs12Password {
  payloadIdentifier: string;
  /** The PayloadCertificateFileName: iOS names the identity by it when it asks for the password. */
  fileName: string;
  serial: string;
  purpose: CertificateRecord['purpose'];
  password: string;
}

/**
 * What tells apart identities whose names would be the same: a prefix of each one's
 * fingerprint (never of the serial: a CA's sequential serials share theirs), 8 hex digits or
 * as many more as it takes. Empty for a name no other identity has.
 */
function distinguishers(bases: string[], fingerprints: string[]): string[] {
  return bases.map((b, i) => {
    const own = fingerprints[i] ?? '';
    const twins = bases.flatMap((x, j) => (j !== i && x === b ? [fingerprints[j] ?? ''] : []));
    if (!twins.length) return '';
    let n = 8;
    while (n < own.length && twins.some((f) => f.slice(0, n) === own.slice(0, n))) n += 2;
    return own.slice(0, n);
  });
}

/**
 * The PayloadCertificateFileName of each identity, as the iPhone shows it when it asks for
 * a password: `Alice Example (signing).p12`, `Alice Example (encryption, 2025-03).p12`; a
 * fingerprint prefix tells apart two of one month.
 */
export function identityFileNames(records: { record: CertificateRecord; role: 'signing' | 'encryption' }[], fallbackName: string): string[] {
  // A name recorded before such characters were refused may still hold them: never in a file name.
  const clean = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f\p{Cf}\u2028\u2029/\\:]+/gu, '-').trim() || 'user';
  const base = records.map(({ record, role }) => `${clean(record.name ?? fallbackName)} (${role}${role === 'encryption' ? `, ${record.notBefore.slice(0, 7)}` : ''}`);
  const extra = distinguishers(base, records.map((r) => r.record.fingerprint));
  return base.map((b, i) => `${b}${extra[i] ? `, ${extra[i]}` : ''}).p12`);
}

/** The PayloadDisplayName of each identity: `S/MIME encryption alice@example.com (until 2026-12-01)`, a fingerprint prefix added to tell apart two that end on one day. */
function identityDisplayNames(records: { record: CertificateRecord; role: 'signing' | 'encryption' }[], email: string): string[] {
  const base = records.map(({ record, role }) => `S/MIME ${role} ${email} (until ${record.notAfter.slice(0, 10)}`);
  const extra = distinguishers(base, records.map((r) => r.record.fingerprint));
  return base.map((b, i) => `${b}${extra[i] ? `, ${extra[i]}` : ''})`);
}

/** What {@link generateProfile} returns: the profile file and what went into it. */
export interface GeneratedProfile {
  /** The rendered XML plist: exactly the bytes that are signed. */
  xml: string;
  /** The parsed plist, for inspection. */
  plist: PlistValue;
  /** Validation findings (warnings; errors only with `allowInvalid`). */
  issues: ProfileIssue[];
  /** The profile file: signed DER, or the XML bytes with `sign: false`. */
  bytes: Uint8Array;
  signed: boolean;
  /** The profile's PayloadIdentifier (see the `identifierPrefix` and `identifier` template data). */
  identifier: string;
  uuid: string;
  /**
   * The file name every part of profilesmith gives this profile (`generate`, `batch`, the
   * server's download): the address for a user's profile (`alice@example.com.mobileconfig`),
   * the identifier for the trust profile.
   */
  fileName: string;
  passwords: Pkcs12Password[];
  /** Serials of the identities shipped. */
  signingSerial: string | undefined;
  encryptionSerials: string[];
  /** True when the payloads are in EncryptedPayloadContent. `plist` is then the plain one. */
  encrypted: boolean;
}

const newestFirst = (a: CertificateRecord, b: CertificateRecord) =>
  b.notBefore.localeCompare(a.notBefore) || b.notAfter.localeCompare(a.notAfter) || b.created.localeCompare(a.created);

/**
 * The identities a profile ships for a user: newest valid signing, the non-revoked encryption
 * history. A certificate a device enrolled over SCEP is never shipped: its key is on the device.
 */
export function selectIdentities(records: CertificateRecord[], now: Date, includeRevoked = false) {
  const signing = records
    .filter((r) => servesPurpose(r, 'smime-signing') && !r.keyOnDevice && statusOf(r, now) === 'valid')
    .sort(newestFirst)[0];
  const history = records
    .filter((r) => servesPurpose(r, 'smime-encryption') && !r.retired && (includeRevoked || !r.revoked))
    .sort(newestFirst);
  const current = history.find((r) => statusOf(r, now) === 'valid');
  return { signing, current, history };
}

interface ResolvedUser {
  email: string;
  name: string;
  signing: CertificateRecord | undefined;
  current: CertificateRecord | undefined;
  history: CertificateRecord[];
}

async function resolveUser(
  store: CertificateStore,
  user: string,
  uses: { signing?: IdentityUse; encryption?: IdentityUse },
  now: Date,
  includeRevoked: boolean,
  given?: CertificateRecord[],
): Promise<ResolvedUser> {
  assertEmail(user);
  const records = given ?? (await store.listCertificates({ user }));
  if (!records.length) throw new StoreEntryNotFound(user, 'user', `No certificates for user "${user}" in the store`);
  if (records.every((r) => r.revoked || r.retired)) {
    throw new StoreEntryNotFound(user, 'user', `User "${user}" was removed: every certificate is revoked or retired`);
  }
  const { signing, current, history } = selectIdentities(records, now, includeRevoked);
  if (uses.signing === 'required' && !signing) {
    throw new StoreEntryNotFound(user, 'identity', `User "${user}" has no valid smime-signing certificate`, 'smime-signing');
  }
  if (uses.encryption === 'required' && !current) {
    throw new StoreEntryNotFound(user, 'identity', `User "${user}" has no valid smime-encryption certificate`, 'smime-encryption');
  }
  const useSigning = uses.signing === 'none' ? undefined : signing;
  const useHistory = uses.encryption === 'none' ? [] : history;
  if (!useSigning && !useHistory.length && (uses.signing !== 'none' || uses.encryption !== 'none')) {
    throw new StoreEntryNotFound(user, 'identity', `User "${user}" has no usable S/MIME identity`);
  }
  // The address exactly as the certificates carry it: iOS compares it case-sensitively.
  const newest = useSigning ?? current ?? records[records.length - 1]!;
  const name = newest.name ?? (await describeCertificate(await store.getCertificate(newest.serial))).commonName ?? newest.user;
  return { email: newest.user, name, signing: useSigning, current: uses.encryption === 'none' ? undefined : current, history: useHistory };
}

/** The CA certificates to ship: the store CA plus the issuers of `records`, once each, roots apart. */
async function caPayloads(store: CertificateStore, records: CertificateRecord[], identifier: string) {
  const chain = await store.trustChain();
  const issuers = await Promise.all(records.map((r) => store.issuerChain(r.serial)));
  // Stores hand out the same Buffer for the same CA certificate: drop those repeats first, then
  // equal certificates by the fingerprint certificateBasics computed.
  const described = new Map<string, CertificateBasics>();
  for (const der of new Set([...chain.roots, ...chain.intermediates, ...issuers.flat()])) {
    const info = certificateBasics(der);
    described.set(info.fingerprint, info);
  }
  const payload = (info: CertificateBasics, role: 'root' | 'intermediate') => ({
    identifier: `${identifier}.${role}.${info.fingerprint.slice(0, 16)}`,
    uuid: stableUuid(identifier, role, info.fingerprint),
    content: info.der,
    fileName: `${role}-${info.fingerprint.slice(0, 8)}.cer`,
    displayName: info.commonName ?? (role === 'root' ? 'Root CA' : 'Intermediate CA'),
  });
  return {
    roots: [...described.values()].filter((i) => i.selfSigned).map((i) => payload(i, 'root')),
    intermediates: [...described.values()].filter((i) => !i.selfSigned).map((i) => payload(i, 'intermediate')),
  };
}

/**
 * Renders a template for one user of the store, validates it, and signs it.
 * @throws ERR_STORE_ENTRY_NOT_FOUND (unknown user, no valid identity), ERR_TEMPLATE_*,
 * ERR_PROFILE_INVALID, ERR_KEY_PASSPHRASE, ERR_SIGNING_FAILED
 * @example
 * const store = await openStore('./store', { passphrase })
 * const profile = await generateProfile({
 *   store, template: 'exchange-smime', user: 'alice@example.com',
 *   data: { exchange: { host: 'mail.example.com' } },
 * })
 * await writeFile('alice.mobileconfig', profile.bytes)
 */
export async function generateProfile<T extends TemplateRef | Template>(options: GenerateProfileOptions<T>): Promise<GeneratedProfile> {
  const now = (options.now ?? (() => new Date()))();
  const random = options.random ?? randomBytes;
  const template = loadTemplate(options.template);
  const unknownKeys = unknownDataKeys(template, (options.data ?? {}) as Record<string, unknown>);
  const { store } = options;
  const uses = template.meta.identities ?? { signing: 'optional', encryption: 'optional' };
  const needsUser = uses.signing !== 'none' || uses.encryption !== 'none';
  if (needsUser && options.user === undefined) throw new InputInvalid('user', `Template "${template.name}" needs a user`);
  const user =
    options.user !== undefined && needsUser
      ? await resolveUser(store, options.user, uses, now, !!options.includeRevoked, options.records)
      : undefined;

  const scep = await scepValues(template, (options.data ?? {}) as Record<string, unknown>, store, user?.email, options);
  const builtins = { user: user ? { email: user.email, name: user.name } : undefined, store: { organization: store.organization, ...scep } };
  const data = resolveData(template, { ...((options.data ?? {}) as Record<string, unknown>) }, builtins);
  const organization = typeof data.organization === 'string' ? data.organization : store.organization;
  const prefix = typeof data.identifierPrefix === 'string' ? data.identifierPrefix : defaultIdentifierPrefix(organization);
  if (!isIdentifierPrefix(prefix)) {
    throw new TemplateDataError(template.name, 'identifierPrefix', 'must be dot-separated words of letters, digits and hyphens (com.example.mail)');
  }
  const identifier = typeof data.identifier === 'string' ? data.identifier : profileIdentifier(prefix, template.name, user?.email);

  const shipped = user ? [...(user.signing ? [user.signing] : []), ...user.history] : [];
  // Without a user (the trust profile), every outside CA an active import came with.
  const chainSources = user
    ? shipped
    : (await store.listCertificates()).filter((r) => r.source === 'imported' && !r.revoked && !r.retired);
  const certificates = await caPayloads(store, chainSources, identifier);

  const embed = options.embedPkcs12Passwords ?? true;
  const passwords: Pkcs12Password[] = [];
  const email = user?.email ?? '';
  const local = email.slice(0, email.lastIndexOf('@')).replace(/[^A-Za-z0-9._-]+/g, '-') || 'user';
  const build = (identity: Identity, record: CertificateRecord) => profilePkcs12(identity, { user: email, purpose: record.purpose }, random);
  const order = [...(user?.signing ? [{ record: user.signing, role: 'signing' as const }] : []), ...(user?.history ?? []).map((record) => ({ record, role: 'encryption' as const }))];
  const names = identityFileNames(order, user?.name ?? email);
  const displayNames = identityDisplayNames(order, email);
  const fileNameOf = (record: CertificateRecord, role: 'signing' | 'encryption') => names[order.findIndex((o) => o.record === record && o.role === role)] ?? `${local}-${role}.p12`;
  const identityPayload = async (record: CertificateRecord, role: 'signing' | 'encryption') => {
    const { password, pkcs12 } =
      options.pkcs12Cache && store.cachedPkcs12
        ? await store.cachedPkcs12(record.serial, (identity) => build(identity, record))
        : build(await store.getIdentity(record.serial), record);
    const payloadIdentifier = `${identifier}.${role}.${record.serial}`;
    const fileName = fileNameOf(record, role);
    passwords.push({ payloadIdentifier, fileName, serial: record.serial, purpose: record.purpose, password });
    return {
      identifier: payloadIdentifier,
      uuid: stableUuid(identifier, role, record.fingerprint),
      displayName: displayNames[order.findIndex((o) => o.record === record && o.role === role)] ?? `S/MIME ${role} ${email}`,
      fileName,
      content: pkcs12,
      password: embed ? password : undefined,
      serial: record.serial,
    };
  };
  // A dual-use certificate that is both the signing identity and in the encryption history
  // goes in once: both S/MIME UUIDs then point at the one PKCS#12 payload.
  const shared = user?.signing && user.history.includes(user.signing) ? user.signing : undefined;
  const [signingPayload, ...historyPayloads] = await Promise.all([
    user?.signing ? identityPayload(user.signing, 'signing') : undefined,
    ...(user?.history ?? []).map((r) => (r === shared ? undefined : identityPayload(r, 'encryption'))),
  ]);
  if (shared) historyPayloads[user!.history.indexOf(shared)] = signingPayload;
  const encryptionPayload = user?.current ? historyPayloads[user.history.indexOf(user.current)] : undefined;
  const handle = (role: string) => ({ identifier: `${identifier}.${role}`, uuid: stableUuid(identifier, role) });
  if (typeof data.description !== 'string' || !data.description) {
    const description = describeProfile({
      organization,
      ...(user ? { user: { email: user.email, name: user.name } } : {}),
      payloadTypes: template.meta.payloads ?? [],
      data,
      authorities: [...certificates.roots, ...certificates.intermediates].map((c) => c.displayName),
      signing: !!signingPayload,
      encryption: new Set(historyPayloads).size,
    });
    if (description !== undefined) data.description = description;
  }

  const context = {
    ...data,
    profile: { identifier, uuid: stableUuid(identifier) },
    certificates,
    identities: {
      signing: signingPayload,
      encryption: encryptionPayload,
      history: historyPayloads,
      all: [...new Set([...(signingPayload ? [signingPayload] : []), ...historyPayloads])],
    },
    payloads: { account: handle('account'), mail: handle('mail'), scep: handle('scep'), removalPassword: handle('removal-password') },
    ...builtins,
  };
  let xml = renderTemplate(template, context);
  // The PKCS#12 payloads were just built here, so opening them again would only cost time;
  // embedded passwords are the admin's documented choice (or encrypted), so that warning is left out.
  const skip = embed || options.encryptTo ? ['password-unencrypted'] : [];
  const { plist, issues } = validateXml(xml, { now, openPkcs12: false, skip, strict: true });
  // A data key the template does not declare is ignored by the template: say so (a typo?).
  for (const key of unknownKeys) {
    issues.push({ rule: 'unknown-variable', path: `data / ${key}`, message: `"${key}" is not a variable of template "${template.name}"; it is ignored`, severity: 'warning' });
  }
  if (issues.some((i) => i.severity === 'error') && !options.allowInvalid) throw new ProfileInvalid(issues);
  if (options.encryptTo !== undefined) {
    const recipient = toCertificates(options.encryptTo, 'encryptTo')[0]!;
    xml = encryptProfileXml(xml, recipient, options.cipher);
    const outer = validateXml(xml, { now, openPkcs12: false, strict: true });
    if (outer.issues.some((i) => i.severity === 'error')) throw new ProfileInvalid(outer.issues);
  }

  const sign = options.sign ?? true;
  const bytes = sign
    ? await signProfile(xml, options.signer ?? (await store.profileSigner()), { now: () => now })
    : Buffer.from(xml, 'utf8');
  return {
    xml,
    plist: plist as PlistValue,
    issues,
    bytes,
    signed: sign,
    identifier,
    uuid: context.profile.uuid,
    fileName: user ? profileFileName(user.email) : profileFileName(identifier),
    passwords,
    signingSerial: signingPayload?.serial,
    encryptionSerials: historyPayloads.map((p) => p!.serial),
    encrypted: options.encryptTo !== undefined,
  };
}
