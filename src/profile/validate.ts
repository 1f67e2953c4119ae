/**
 * Validation of a rendered profile before it is signed: the checks whose failure makes
 * iOS refuse the whole profile (apple-spec section 15). Issues are a result, not an
 * exception.
 *
 * @module validate
 */
import type { ProfileIssue } from '../errors.js';
import { parsePlistXml, type PlistValue } from './plist-xml.js';

export type { PlistValue };
export type PlistDict = { [k: string]: PlistValue };

/** Payload types that yield an identity (certificate + private key) on the device. */
export const IDENTITY_PAYLOADS = new Set(['com.apple.security.pkcs12', 'com.apple.security.scep', 'com.apple.security.acme']);
/** Keys whose value is the PayloadUUID of an identity payload in the same profile. */
export const IDENTITY_REFERENCES = ['PayloadCertificateUUID', 'SMIMESigningCertificateUUID', 'SMIMEEncryptionCertificateUUID'];

const SMIME_BOOLEANS_FOR = {
  SMIMESigningCertificateUUID: ['SMIMESigningEnabled', 'SMIMESigningUserOverrideable', 'SMIMESigningCertificateUUIDUserOverrideable'],
  SMIMEEncryptionCertificateUUID: [
    'SMIMEEncryptByDefault',
    'SMIMEEncryptByDefaultUserOverrideable',
    'SMIMEEncryptionCertificateUUIDUserOverrideable',
    'SMIMEEnableEncryptionPerMessageSwitch',
  ],
} as const;

const UUID = /^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$/;

const isDict = (v: unknown): v is PlistDict =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);

/** Parses XML plist text. Throws PlistSyntaxError for malformed XML. */
export function parseXmlPlist(xml: string): PlistValue {
  return parsePlistXml(xml);
}

/** Where an issue is: the payload's identifier (or type, or index) and the key. */
function at(payload: PlistDict | undefined, index: number, key: string): string {
  if (!payload) return key;
  const id = typeof payload.PayloadIdentifier === 'string' && payload.PayloadIdentifier ? payload.PayloadIdentifier : undefined;
  const type = typeof payload.PayloadType === 'string' ? payload.PayloadType : undefined;
  return `${id ?? type ?? `PayloadContent[${index}]`} / ${key}`;
}

/**
 * Validates a profile. `xml`, when given, is also checked for the textual rules that a
 * parsed plist cannot show (dates with fractional seconds).
 */
export function validateProfile(profile: PlistValue, xml?: string): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const add = (rule: string, path: string, message: string, severity: ProfileIssue['severity'] = 'error') =>
    issues.push({ rule, path, message, severity });

  if (xml) {
    for (const m of xml.matchAll(/<date>([^<]*)<\/date>/g)) {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(m[1] as string)) {
        add('date-format', 'date', `"${m[1]}" is not YYYY-MM-DDThh:mm:ssZ (iOS rejects fractional seconds and offsets)`);
      }
    }
  }
  if (!isDict(profile)) {
    add('not-a-dictionary', '(top level)', 'A profile must be a dictionary');
    return issues;
  }
  const requireString = (d: PlistDict, key: string, path: string) => {
    if (d[key] === undefined) add('missing-key', path, 'Required key is missing');
    else if (typeof d[key] !== 'string') add('wrong-type', path, 'Must be a string');
  };
  requireString(profile, 'PayloadIdentifier', 'PayloadIdentifier');
  requireString(profile, 'PayloadUUID', 'PayloadUUID');
  if (profile.PayloadType !== 'Configuration') add('top-level-type', 'PayloadType', 'Must be "Configuration"');
  if (profile.PayloadVersion !== 1) add('payload-version', 'PayloadVersion', 'Must be the integer 1');

  const walkEmpty = (v: PlistValue, path: string, prefix = ''): void => {
    if (v === '') add('empty-string', prefix + path, 'Empty string: iOS rejects it; leave the key out instead');
    else if (Array.isArray(v)) v.forEach((x, i) => walkEmpty(x, `${path}[${i}]`, prefix));
    else if (isDict(v)) for (const [k, x] of Object.entries(v)) walkEmpty(x, path ? `${path}.${k}` : k, prefix);
  };

  const content = profile.PayloadContent;
  const payloads: PlistDict[] = [];
  if (content === undefined) {
    if (profile.EncryptedPayloadContent === undefined) add('missing-key', 'PayloadContent', 'Required key is missing');
  } else if (!Array.isArray(content)) {
    add('wrong-type', 'PayloadContent', 'Must be an array of dictionaries');
  } else {
    content.forEach((p, i) => {
      if (isDict(p)) payloads.push(p);
      else add('wrong-type', `PayloadContent[${i}]`, 'Must be a dictionary');
    });
  }
  for (const [k, v] of Object.entries(profile)) if (k !== 'PayloadContent') walkEmpty(v, k);

  const uuids = new Map<string, PlistDict>();
  const identifiers = new Set<string>();
  if (typeof profile.PayloadUUID === 'string') uuids.set(profile.PayloadUUID, profile);
  payloads.forEach((p, i) => {
    for (const key of ['PayloadType', 'PayloadIdentifier', 'PayloadUUID']) requireString(p, key, at(p, i, key));
    if (p.PayloadVersion !== 1) add('payload-version', at(p, i, 'PayloadVersion'), 'Must be the integer 1');
    walkEmpty(p, '', at(p, i, ''));
    if (typeof p.PayloadUUID === 'string') {
      if (!UUID.test(p.PayloadUUID)) add('uuid-format', at(p, i, 'PayloadUUID'), `"${p.PayloadUUID}" is not a canonical UUID`);
      if (uuids.has(p.PayloadUUID)) add('duplicate-uuid', at(p, i, 'PayloadUUID'), `"${p.PayloadUUID}" is used twice`);
      uuids.set(p.PayloadUUID, p);
    }
    if (typeof p.PayloadIdentifier === 'string') {
      if (identifiers.has(p.PayloadIdentifier)) add('duplicate-identifier', at(p, i, 'PayloadIdentifier'), `"${p.PayloadIdentifier}" is used twice`);
      identifiers.add(p.PayloadIdentifier);
    }
  });

  payloads.forEach((p, i) => {
    for (const key of IDENTITY_REFERENCES) {
      const ref = p[key];
      if (ref === undefined) continue;
      if (typeof ref !== 'string') {
        add('wrong-type', at(p, i, key), 'Must be a string');
        continue;
      }
      const target = uuids.get(ref);
      if (!target || target === profile) {
        add('uuid-reference', at(p, i, key), `"${ref}" is not the PayloadUUID of any payload in this profile`);
      } else if (!IDENTITY_PAYLOADS.has(String(target.PayloadType))) {
        add('uuid-reference', at(p, i, key), `"${ref}" points to a ${String(target.PayloadType)} payload, which has no private key`);
      }
    }
    for (const [ref, keys] of Object.entries(SMIME_BOOLEANS_FOR)) {
      if (p[ref] === undefined) continue;
      for (const k of keys) {
        if (p[k] === undefined) add('smime-implicit', at(p, i, k), 'Not set: iOS switches it on when the certificate UUID is present', 'warning');
        else if (typeof p[k] !== 'boolean') add('wrong-type', at(p, i, k), 'Must be a boolean');
      }
    }
    if (p.PayloadType === 'com.apple.eas.account' && (typeof p.Host !== 'string' || !p.Host)) {
      add('eas-host', at(p, i, 'Host'), 'Exchange needs a Host: iOS refuses the account without one');
    }
  });
  return issues;
}

/** Parses and validates XML; a parse failure is one `malformed` issue. */
export function validateXml(xml: string): { plist: PlistValue | undefined; issues: ProfileIssue[] } {
  let parsed: PlistValue;
  try {
    parsed = parseXmlPlist(xml);
  } catch (err) {
    return {
      plist: undefined,
      issues: [{ rule: 'malformed', path: '(document)', message: `Not a well-formed property list: ${(err as Error).message.split('\n')[0]}`, severity: 'error' }],
    };
  }
  return { plist: parsed, issues: validateProfile(parsed, xml) };
}
