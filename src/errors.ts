/**
 * Typed errors with stable codes. Every failure a user can cause throws a subclass of
 * {@link ProfilesmithError}; branch on `err.code`, never on the message.
 *
 * @module errors
 */
import type { LintRuleId } from './profile/rules.js';

/** One finding of profile validation. */
export interface ProfileIssue {
  /** Stable rule id, for example `empty-string` or `uuid-reference` (every id: `LINT_RULES`). */
  rule: LintRuleId;
  /** Where: payload identifier (or type) and key, for example `com.example.eas / Host`. */
  path: string;
  message: string;
  /**
   * `error`: iOS refuses the profile or the payload. `warning`: it installs, but does
   * something the admin probably did not intend. `info`: harmless, worth knowing.
   */
  severity: 'error' | 'warning' | 'info';
}

/**
 * Base class of every error profilesmith throws on purpose.
 * @example
 * import { ProfilesmithError } from 'profilesmith/errors'
 * try {
 *   await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } })
 * } catch (err) {
 *   if (!(err instanceof ProfilesmithError)) throw err
 *   console.error(err.code, err.message)
 * }
 */
export class ProfilesmithError extends Error {
  static code = 'ERR_PROFILESMITH';
  readonly code: string = ProfilesmithError.code;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A template name that is neither built in nor a readable file.
 * @example
 * import { TemplateNotFound } from 'profilesmith/errors'
 * try {
 *   loadTemplate('no-such-template')
 * } catch (err) {
 *   if (!(err instanceof TemplateNotFound)) throw err
 *   console.error(err.message, listTemplates().map((t) => t.name))
 * }
 */
export class TemplateNotFound extends ProfilesmithError {
  static override code = 'ERR_TEMPLATE_NOT_FOUND';
  override readonly code = 'ERR_TEMPLATE_NOT_FOUND';
  constructor(
    readonly template: string,
    readonly searched: string[],
  ) {
    super(`Template "${template}" was not found`);
  }
}

/**
 * Handlebars could not parse a template.
 * @example
 * import { TemplateSyntaxError } from 'profilesmith/errors'
 * try {
 *   loadTemplate({ source: '<plist>{{#if}}</plist>' })
 * } catch (err) {
 *   if (!(err instanceof TemplateSyntaxError)) throw err
 *   console.error(err.message)
 * }
 */
export class TemplateSyntaxError extends ProfilesmithError {
  static override code = 'ERR_TEMPLATE_SYNTAX';
  override readonly code = 'ERR_TEMPLATE_SYNTAX';
  constructor(
    readonly template: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`Template "${template}" has a syntax error: ${detail}`, options);
  }
}

/**
 * A template variable is missing, unknown to a typed helper, or of the wrong type.
 * @example
 * import { TemplateDataError } from 'profilesmith/errors'
 * try {
 *   await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: JSON.parse(readFileSync('data.json', 'utf8')) })
 * } catch (err) {
 *   if (!(err instanceof TemplateDataError)) throw err
 *   console.error(err.variable, err.message)
 * }
 */
export class TemplateDataError extends ProfilesmithError {
  static override code = 'ERR_TEMPLATE_DATA';
  override readonly code = 'ERR_TEMPLATE_DATA';
  constructor(
    readonly template: string,
    readonly variable: string,
    detail: string,
  ) {
    super(`Template "${template}": variable "${variable}" ${detail}`);
  }
}

/**
 * The rendered or given profile breaks a rule that would make iOS reject it.
 * @example
 * import { ProfileInvalid } from 'profilesmith/errors'
 * try {
 *   await generateProfile({ store, template: { path: './site.mobileconfig.hbs' }, data: {} })
 * } catch (err) {
 *   if (!(err instanceof ProfileInvalid)) throw err
 *   for (const issue of err.issues) console.error(issue.rule, issue.message)
 * }
 */
export class ProfileInvalid extends ProfilesmithError {
  static override code = 'ERR_PROFILE_INVALID';
  override readonly code = 'ERR_PROFILE_INVALID';
  constructor(readonly issues: ProfileIssue[]) {
    const first = issues.find((i) => i.severity === 'error') ?? issues[0];
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super(first ? `Profile is invalid: ${first.path}: ${first.message}${more}` : 'Profile is invalid');
  }
}

/**
 * Bytes that are not a property list nor a CMS-wrapped one.
 * @example
 * import { ProfileParseError } from 'profilesmith/errors'
 * try {
 *   await verifyProfile(upload)
 * } catch (err) {
 *   if (!(err instanceof ProfileParseError)) throw err
 *   console.error('not a signed profile:', err.message)
 * }
 */
export class ProfileParseError extends ProfilesmithError {
  static override code = 'ERR_PROFILE_PARSE';
  override readonly code = 'ERR_PROFILE_PARSE';
}

/**
 * A key type or size the operation does not accept.
 * @example
 * import { KeyUnsupported } from 'profilesmith/errors'
 * try {
 *   parseCertificateRequest(csrDer)
 * } catch (err) {
 *   if (!(err instanceof KeyUnsupported)) throw err
 *   console.error(err.message)
 * }
 */
export class KeyUnsupported extends ProfilesmithError {
  static override code = 'ERR_KEY_UNSUPPORTED';
  override readonly code = 'ERR_KEY_UNSUPPORTED';
  constructor(
    readonly keyType: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Wrong or missing passphrase for the store or a key.
 * @example
 * import { KeyPassphraseInvalid } from 'profilesmith/errors'
 * try {
 *   await openStore('./store', { passphrase: 'wrong' })
 * } catch (err) {
 *   if (!(err instanceof KeyPassphraseInvalid)) throw err
 *   console.error('The passphrase is wrong')
 * }
 */
export class KeyPassphraseInvalid extends ProfilesmithError {
  static override code = 'ERR_KEY_PASSPHRASE';
  override readonly code = 'ERR_KEY_PASSPHRASE';
  constructor(
    readonly entry: string,
    message = 'The passphrase is wrong',
  ) {
    super(message);
  }
}

/**
 * A certificate that cannot serve: malformed, expired, key mismatch, wrong address.
 * @example
 * import { CertificateInvalid } from 'profilesmith/errors'
 * try {
 *   await store.importIdentity(readIdentity(upload, { password }), { user: 'alice@example.com', purpose: 'smime-encryption' })
 * } catch (err) {
 *   if (!(err instanceof CertificateInvalid)) throw err
 *   console.error(err.message)
 * }
 */
export class CertificateInvalid extends ProfilesmithError {
  static override code = 'ERR_CERT_INVALID';
  override readonly code = 'ERR_CERT_INVALID';
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A signer that cannot sign profiles, found by the probe signature made the first time it is
 * used. `reason`: `algorithm` (keyType or padding/digest does not fit the certificate),
 * `key-mismatch` (the signature does not verify with the certificate's key), `bad-output`
 * (not bytes, the wrong length, or r||s instead of DER for ECDSA).
 * @example
 * import { SignerInvalid } from 'profilesmith/errors'
 * try {
 *   await signProfile(xml, keySigner({ key, certificate }))
 * } catch (err) {
 *   if (!(err instanceof SignerInvalid)) throw err
 *   console.error(err.message)
 * }
 */
export class SignerInvalid extends ProfilesmithError {
  static override code = 'ERR_SIGNER_INVALID';
  override readonly code = 'ERR_SIGNER_INVALID';
  constructor(
    readonly reason: 'algorithm' | 'key-mismatch' | 'bad-output',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Something unexpected failed while building CMS.
 * @example
 * import { SigningFailed } from 'profilesmith/errors'
 * try {
 *   await signProfile(xml, keySigner({ key, certificate }))
 * } catch (err) {
 *   if (!(err instanceof SigningFailed)) throw err
 *   console.error(err.message)
 * }
 */
export class SigningFailed extends ProfilesmithError {
  static override code = 'ERR_SIGNING_FAILED';
  override readonly code = 'ERR_SIGNING_FAILED';
}

/**
 * The store directory holds no store.
 * @example
 * import { StoreNotInitialized } from 'profilesmith/errors'
 * try {
 *   await openStore('./store', { passphrase })
 * } catch (err) {
 *   if (!(err instanceof StoreNotInitialized)) throw err
 *   console.error('run profilesmith init first')
 * }
 */
export class StoreNotInitialized extends ProfilesmithError {
  static override code = 'ERR_STORE_NOT_INITIALIZED';
  override readonly code = 'ERR_STORE_NOT_INITIALIZED';
  constructor(readonly dir: string) {
    super(`No certificate store at "${dir}"`);
  }
}

/**
 * A store already exists where one would be created.
 * @example
 * import { StoreExists } from 'profilesmith/errors'
 * try {
 *   await initStore('./store', { organization: 'Example Corp', passphrase })
 * } catch (err) {
 *   if (!(err instanceof StoreExists)) throw err
 *   console.error('a store is there already')
 * }
 */
export class StoreExists extends ProfilesmithError {
  static override code = 'ERR_STORE_EXISTS';
  override readonly code = 'ERR_STORE_EXISTS';
  constructor(readonly dir: string) {
    super(`A store or other files already exist at "${dir}"; it is left as it was`);
  }
}

/**
 * A user, serial or fingerprint the store does not hold.
 * @example
 * import { StoreEntryNotFound } from 'profilesmith/errors'
 * try {
 *   await generateProfile({ store, template: 'exchange-smime', user: 'nobody@example.com', data: { exchange: { host: 'mail.example.com' } } })
 * } catch (err) {
 *   if (!(err instanceof StoreEntryNotFound)) throw err
 *   console.error(err.kind, err.message)
 * }
 */
export class StoreEntryNotFound extends ProfilesmithError {
  static override code = 'ERR_STORE_ENTRY_NOT_FOUND';
  override readonly code = 'ERR_STORE_ENTRY_NOT_FOUND';
  constructor(
    readonly entry: string,
    readonly kind: 'user' | 'certificate' | 'identity' | 'link',
    message?: string,
    /** For a missing identity: the purpose it would serve (smime-signing, smime-encryption). */
    readonly purpose?: string,
  ) {
    super(message ?? `No ${kind} "${entry}" in the store`);
  }
}

/**
 * Filesystem trouble inside the store, or a store that is damaged or locked.
 * @example
 * import { StoreIOError } from 'profilesmith/errors'
 * try {
 *   await openStore('postgres://profilesmith@db.internal/pki', { passphrase })
 * } catch (err) {
 *   if (!(err instanceof StoreIOError)) throw err
 *   console.error(err.message)
 * }
 */
export class StoreIOError extends ProfilesmithError {
  static override code = 'ERR_STORE_IO';
  override readonly code = 'ERR_STORE_IO';
  constructor(
    readonly path: string,
    readonly op: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * A value from the user (an address, a duration, a file) that is not acceptable.
 * @example
 * import { InputInvalid } from 'profilesmith/errors'
 * try {
 *   assertEmail('alice@')
 * } catch (err) {
 *   if (!(err instanceof InputInvalid)) throw err
 *   console.error(err.field, err.message)
 * }
 */
export class InputInvalid extends ProfilesmithError {
  static override code = 'ERR_INPUT_INVALID';
  override readonly code = 'ERR_INPUT_INVALID';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A row names a user removed from the store (`removeUser`); batches skip such rows with `skipRemoved`.
 * @example
 * import { UserRemoved } from 'profilesmith/errors'
 * try {
 *   await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' })
 * } catch (err) {
 *   if (!(err instanceof UserRemoved)) throw err
 *   console.error(err.message)
 * }
 */
export class UserRemoved extends ProfilesmithError {
  static override code = 'ERR_USER_REMOVED';
  override readonly code = 'ERR_USER_REMOVED';
  constructor(readonly user: string) {
    super(`${user} was removed from the store (user remove); take the row out of the users file, or pass --skip-removed`);
  }
}

/**
 * A PKCS#11 module, token, key or operation failed. `reason` is one of `unavailable`
 * (pkcs11js is not installed), `module`, `token-not-found`, `pin-incorrect`, `pin-missing`,
 * `key-not-found`, `certificate-not-found`, `key-mismatch`, `mechanism`, `device`.
 * @example
 * import { Pkcs11Failed } from 'profilesmith/errors'
 * try {
 *   await pkcs11Signer({ uri: 'pkcs11:token=HSM;object=signer', pin: password, certificate: signerPem })
 * } catch (err) {
 *   if (!(err instanceof Pkcs11Failed)) throw err
 *   console.error(err.reason, err.message)
 * }
 */
export class Pkcs11Failed extends ProfilesmithError {
  static override code = 'ERR_PKCS11';
  override readonly code = 'ERR_PKCS11';
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Every error class, for `instanceof`-free narrowing on `code`. */
export type AnyProfilesmithError =
  | TemplateNotFound
  | TemplateSyntaxError
  | TemplateDataError
  | ProfileInvalid
  | ProfileParseError
  | KeyUnsupported
  | KeyPassphraseInvalid
  | CertificateInvalid
  | SigningFailed
  | SignerInvalid
  | StoreNotInitialized
  | StoreExists
  | StoreEntryNotFound
  | StoreIOError
  | InputInvalid
  | UserRemoved
  | Pkcs11Failed;

/** The stable codes. */
export type ErrorCode = AnyProfilesmithError['code'];

/**
 * True for errors thrown by any copy of profilesmith (works across duplicated installs).
 * @example
 * try {
 *   await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } })
 * } catch (e) {
 *   if (!isProfilesmithError(e)) throw e
 *   if (e.code === 'ERR_STORE_ENTRY_NOT_FOUND') console.error('no such user:', e.kind)
 *   else console.error(e.code, e.message)
 * }
 */
export function isProfilesmithError(err: unknown): err is AnyProfilesmithError {
  if (err instanceof ProfilesmithError) return true;
  // Another copy's error (a duplicated install, a worker): one of our codes, on one of our classes.
  // Node's own errors carry ERR_* codes too (ERR_INVALID_ARG_TYPE, ERR_OSSL_*): those are not ours.
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && CODES.has((err as unknown as { code: string }).code) && !BUILTIN_NAMES.has(err.name);
}

/**
 * Every code a {@link ProfilesmithError} subclass carries. A record keyed by ErrorCode, so a new
 * error class whose code is not listed here fails to compile (a Set would not notice).
 */
const CODE_RECORD: Record<ErrorCode | 'ERR_PROFILESMITH', true> = {
  ERR_CERT_INVALID: true,
  ERR_INPUT_INVALID: true,
  ERR_KEY_PASSPHRASE: true,
  ERR_KEY_UNSUPPORTED: true,
  ERR_PKCS11: true,
  ERR_PROFILE_INVALID: true,
  ERR_PROFILE_PARSE: true,
  ERR_SIGNER_INVALID: true,
  ERR_SIGNING_FAILED: true,
  ERR_STORE_ENTRY_NOT_FOUND: true,
  ERR_STORE_EXISTS: true,
  ERR_STORE_IO: true,
  ERR_STORE_NOT_INITIALIZED: true,
  ERR_TEMPLATE_DATA: true,
  ERR_TEMPLATE_NOT_FOUND: true,
  ERR_TEMPLATE_SYNTAX: true,
  ERR_USER_REMOVED: true,
  ERR_PROFILESMITH: true,
};
const CODES: ReadonlySet<string> = new Set(Object.keys(CODE_RECORD));
const BUILTIN_NAMES = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'AggregateError', 'SystemError', 'AbortError']);
