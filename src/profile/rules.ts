/**
 * Every lint rule: its stable id, the severity it is reported with, and the iOS behaviour
 * behind it (read from iOS's ManagedConfiguration). The README's rule table and the SARIF
 * output's rule metadata come from here.
 *
 * @module rules
 */
import type { ProfileIssue } from '../errors.js';

/** A lint rule's description. */
export interface LintRule {
  /** The severity it is reported with (some rules report a lower one where iOS is lenient, as the text says). */
  severity: ProfileIssue['severity'];
  /** What is checked, and what iOS does about it. */
  description: string;
}

/**
 * The lint rules by id. Ids are stable: CI configurations name them in `--ignore`.
 * @example
 * for (const [id, rule] of Object.entries(LINT_RULES)) console.log(id, rule.severity, rule.description)
 */
export const LINT_RULES = {
  malformed: { severity: 'error', description: 'Not a well-formed property list: iOS cannot read the profile.' },
  'unknown-variable': { severity: 'warning', description: 'generateProfile: a key of the template data that the template does not declare (a typo?). It is ignored.' },
  'duplicate-key': { severity: 'warning', description: 'A key appears twice in one dictionary; the last value is used (CoreFoundation, plistlib), the first is silently lost.' },
  'not-a-dictionary': { severity: 'error', description: 'The top level is not a dictionary: not a profile.' },
  'date-format': { severity: 'error', description: 'A <date> with fractional seconds or an offset: iOS rejects it.' },
  'payload-version': { severity: 'error', description: "The profile's PayloadVersion must be 1 or 2, every payload's exactly 1, as an <integer>: iOS refuses anything else (MCProfile, MCPayload)." },
  'missing-key': { severity: 'error', description: 'A required key is missing: iOS refuses the payload.' },
  'empty-required': { severity: 'error', description: 'A required string is empty: iOS reads an empty string as absent, so the key is missing and the payload refused.' },
  'empty-string': { severity: 'info', description: 'An empty optional string: iOS reads it as absent, which is harmless. Profiles profilesmith generates never hold one (an error there).' },
  'wrong-type': { severity: 'error', description: "A value of the wrong type: iOS refuses the payload. Booleans may be <true/>, <false/>, <integer> or <real> (iOS reads an NSNumber); a <string>true</string> is refused. A boolean where an integer is expected is read as 1 or 0 (both are NSNumbers), so it is a warning." },
  'value-not-allowed': { severity: 'warning', description: "A value outside the list Apple's schema gives: iOS may ignore the setting or refuse the payload." },
  'value-out-of-range': { severity: 'warning', description: "A number outside the range Apple's schema gives." },
  'unknown-key': { severity: 'warning', description: 'A key the schema does not have (a typo, with "did you mean"): iOS logs it and ignores it.' },
  'not-on-ios': { severity: 'warning', description: 'A key iOS does not have: ignored. A warning when the profile targets iOS (TargetDeviceType 1 or --target ios), else info.' },
  'deprecated-key': { severity: 'warning', description: 'A key Apple deprecated for iOS.' },
  'unknown-payload-type': { severity: 'warning', description: "A payload type that is not in Apple's schema: its keys are not checked." },
  'payload-not-on-ios': { severity: 'warning', description: 'A payload type iOS does not have. A warning when the profile targets iOS, else info.' },
  'encrypted-not-checked': { severity: 'info', description: 'The payloads are encrypted (EncryptedPayloadContent) and were not checked; --decrypt-key decrypts them for lint.' },
  'uuid-format': { severity: 'info', description: 'A PayloadUUID that is not a canonical UUID: iOS takes any string.' },
  'duplicate-uuid': { severity: 'error', description: 'Two payloads with one PayloadUUID: iOS refuses the profile (1007). A payload reusing the profile\'s own UUID is a warning.' },
  'duplicate-identifier': { severity: 'error', description: "Two payloads with one PayloadIdentifier: iOS refuses the profile (1008). A payload reusing the profile's identifier installs (cPanel does it) and is not reported." },
  'uuid-reference': { severity: 'error', description: 'A reference to another payload (*CertificateUUID, PayloadCertificateAnchorUUID, IdentityCertificateUUID, TLSTrustedCertificates, …, at any depth) that does not resolve. IMAP refuses the profile (7003); Exchange S/MIME installs the account without that identity (a warning); elsewhere the payload has no certificate to use. An empty UUID means none.' },
  'uuid-reference-kind': { severity: 'error', description: 'A reference that resolves to the wrong kind of payload: an identity (pkcs12, scep, acme) where one is needed, a certificate (root, pkcs1, pem) where an anchor is. IMAP refuses the profile (7004); Exchange drops the identity (a warning).' },
  'smime-implicit': { severity: 'warning', description: 'A signing certificate without SMIMESigningEnabled, or an encryption certificate without SMIMEEncryptByDefault: iOS switches the feature on. Profiles profilesmith generates write every S/MIME switch.' },
  'eas-host': { severity: 'error', description: 'An Exchange account without Host (other than OAuth discovery): iOS refuses the account.' },
  'eas-nothing-enabled': { severity: 'error', description: 'An Exchange account with mail, contacts, calendars, reminders and notes all off: iOS refuses it (21009).' },
  'scep-keysize': { severity: 'error', description: 'A SCEP payload without Keysize: iOS has no default (MCSCEPPayload).' },
  'profile-service': { severity: 'error', description: 'A "Profile Service" (over-the-air enrollment) profile without its URL or DeviceAttributes.' },
  'certificate-invalid': { severity: 'error', description: 'A root, pkcs1 or pem payload that holds no readable certificate.' },
  'pem-multiple': { severity: 'warning', description: 'A pem payload with several certificates: iOS reads only the first.' },
  'pem-in-der-payload': { severity: 'info', description: 'PEM in a root or pkcs1 payload, where Apple documents DER: devices install it (MicroMDM writes it so).' },
  'cert-expired': { severity: 'warning', description: 'A certificate in the profile has expired.' },
  'cert-expiring': { severity: 'warning', description: 'A certificate in the profile expires within 30 days.' },
  'password-unencrypted': { severity: 'warning', description: 'A password in a profile that is not encrypted: anyone holding the file can read it.' },
  'pkcs12-password': { severity: 'error', description: 'A PKCS#12 that does not open with its Password: install error 9000.' },
  'pkcs12-work': { severity: 'error', description: 'A PKCS#12 whose key derivations (with those of the profile\'s other PKCS#12 payloads) cost more than profilesmith spends on one input: left unopened, as a PKCS#12 bomb would be.' },
  'pkcs12-identities': { severity: 'error', description: 'A PKCS#12 that does not hold exactly one identity: install error 9001.' },
  'pkcs12-cipher': { severity: 'warning', description: 'A PKCS#12 in PBES2/AES or with a non-SHA-1 MAC: iOS 17 and older refuse it; 3DES with a SHA-1 MAC installs everywhere.' },
  signature: { severity: 'error', description: 'A broken CMS signature (digest mismatch, bad signature, missing signer): iOS refuses the profile as malformed.' },
  'signer-expired': { severity: 'warning', description: 'The signer certificate has expired: iOS shows the profile as not verified.' },
  'signer-not-yet-valid': { severity: 'warning', description: 'The signer certificate is not yet valid.' },
  'chain-expired': { severity: 'warning', description: 'An issuer certificate of the signer has expired.' },
  'chain-not-yet-valid': { severity: 'warning', description: 'An issuer certificate of the signer is not yet valid.' },
  'trailing-bytes': { severity: 'warning', description: 'Bytes after the CMS signature (some tools append a CRLF): iOS and openssl ignore them.' },
} satisfies Record<string, LintRule>;

/** The id of a lint rule: a key of {@link LINT_RULES}. */
export type LintRuleId = keyof typeof LINT_RULES;
