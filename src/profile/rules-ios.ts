/**
 * Lint rules that come from what iOS's own profile parser does, beyond Apple's schema
 * (read from iOS 26.1's ManagedConfiguration):
 * payload versions, the Exchange account's own refusals, SCEP's key size, the S/MIME switches
 * that iOS turns on when they are left out, and Apple's enrollment ("Profile Service") profile.
 */
import type { ProfileIssue } from '../errors.js';
import type { LintRuleId } from './rules.js';
import { isPlistDict, type PlistValue } from './plist-xml.js';
import { payloadKeys } from './schema.js';

type Add = (rule: LintRuleId, path: string, message: string, severity?: ProfileIssue['severity']) => void;
type Dict = { [k: string]: PlistValue };

const EAS_SERVICES = ['EnableMail', 'EnableContacts', 'EnableCalendars', 'EnableReminders', 'EnableNotes'];

/** Payload version, Exchange and SCEP rules for one payload. */
export function checkIosRules(p: Dict, pre: string, add: Add): void {
  const type = typeof p.PayloadType === 'string' ? p.PayloadType : '';
  // Every payload's PayloadVersion must be exactly 1 (MCPayload); the schema checks it only for types it has.
  if (p.PayloadVersion === undefined) {
    if (!payloadKeys(type)) add('missing-key', `${pre}PayloadVersion`, 'Required key is missing: iOS refuses a payload without a PayloadVersion');
  } else if (p.PayloadVersion !== 1) {
    add('payload-version', `${pre}PayloadVersion`, `A payload's PayloadVersion must be 1; iOS refuses ${JSON.stringify(p.PayloadVersion)}`);
  }
  if (type === 'com.apple.eas.account') {
    // Host may be left out only for OAuth without an OAuthSignInURL (MCEASAccountPayload).
    const oauthDiscovery = p.OAuth === true && p.OAuthSignInURL === undefined;
    if ((typeof p.Host !== 'string' || !p.Host) && !oauthDiscovery) {
      add('eas-host', `${pre}Host`, 'Exchange needs a Host (unless OAuth finds it): iOS refuses the account without one');
    }
    if (EAS_SERVICES.every((k) => p[k] === false)) {
      add('eas-nothing-enabled', `${pre}EnableMail`, 'Every service (mail, contacts, calendars, reminders, notes) is switched off: iOS refuses the account (21009)');
    }
  }
  if (type === 'com.apple.security.scep' && isPlistDict(p.PayloadContent) && p.PayloadContent.Keysize === undefined) {
    add('scep-keysize', `${pre}PayloadContent.Keysize`, 'iOS has no default key size for SCEP (MCSCEPPayload): give Keysize (2048)');
  }
}

/**
 * The S/MIME switches: a signing UUID without `SMIMESigningEnabled` turns signing on, and an
 * encryption UUID without `SMIMEEncryptByDefault` (or the older `SMIMEEncryptionEnabled`)
 * turns encrypt-by-default on. `strict` (our own output) wants every switch written out.
 */
export function checkSmimeSwitches(p: Dict, pre: string, strict: boolean, add: Add): void {
  const signing = typeof p.SMIMESigningCertificateUUID === 'string' && p.SMIMESigningCertificateUUID !== '';
  const encryption = typeof p.SMIMEEncryptionCertificateUUID === 'string' && p.SMIMEEncryptionCertificateUUID !== '';
  const implicit = (k: string, what: string) => add('smime-implicit', `${pre}${k}`, `Not set: ${what}; write it explicitly`, 'warning');
  if (signing && p.SMIMESigningEnabled === undefined) implicit('SMIMESigningEnabled', 'iOS switches signing on because a signing certificate is given');
  if (encryption && p.SMIMEEncryptByDefault === undefined && p.SMIMEEncryptionEnabled === undefined) {
    implicit('SMIMEEncryptByDefault', 'iOS switches encrypt-by-default on because an encryption certificate is given');
  }
  if (!strict) return;
  const rest = [
    ...(signing ? ['SMIMESigningUserOverrideable', 'SMIMESigningCertificateUUIDUserOverrideable'] : []),
    ...(encryption ? ['SMIMEEncryptByDefaultUserOverrideable', 'SMIMEEncryptionCertificateUUIDUserOverrideable', 'SMIMEEnableEncryptionPerMessageSwitch'] : []),
  ];
  for (const k of rest) if (p[k] === undefined) implicit(k, 'iOS takes it as off');
}

/**
 * Apple's over-the-air enrollment profile: PayloadType "Profile Service", and PayloadContent
 * a dictionary with the URL to post device attributes to (not an array of payloads).
 */
export function checkProfileService(profile: Dict, add: Add): void {
  for (const k of ['PayloadIdentifier', 'PayloadUUID', 'PayloadVersion']) {
    if (profile[k] === undefined) add('missing-key', k, 'Required key is missing');
  }
  const c = profile.PayloadContent;
  if (!isPlistDict(c)) {
    add('wrong-type', 'PayloadContent', 'A Profile Service profile needs a dictionary here (URL, DeviceAttributes, Challenge)');
    return;
  }
  if (typeof c.URL !== 'string' || !/^https?:\/\//.test(c.URL)) add('profile-service', 'PayloadContent.URL', 'Needs the http(s) URL the device posts its attributes to');
  if (!Array.isArray(c.DeviceAttributes) || !c.DeviceAttributes.every((x) => typeof x === 'string')) {
    add('profile-service', 'PayloadContent.DeviceAttributes', 'Needs an array of attribute names (UDID, IMEI, …)');
  }
  if (c.Challenge !== undefined && typeof c.Challenge !== 'string') add('wrong-type', 'PayloadContent.Challenge', 'Must be a string');
}
