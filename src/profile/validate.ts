/**
 * Validation of a profile: the structural rules whose failure makes iOS refuse the whole
 * profile (apple-spec section 15), Apple's schema, and the certificates inside. Findings
 * are a result, not an exception.
 *
 * @module validate
 */
import type { ProfileIssue } from '../errors.js';
import { isPlistDict, parsePlistXml, type PlistValue } from './plist-xml.js';
import { checkCertificates } from './rules-certs.js';
import { checkPayload, checkTopLevel } from './rules-schema.js';

export type { PlistValue };
/** A plist dictionary. */
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

/** Options of {@link validateProfile}. */
export interface ValidateOptions {
  /** The XML text, for the textual rules (dates with fractional seconds). */
  xml?: string;
  /** Default: now. Used for certificate expiry. */
  now?: Date;
  /** Open PKCS#12 payloads with their Password. Default: true. */
  openPkcs12?: boolean;
  /** Rule ids to leave out. */
  skip?: string[];
}

const isDict = isPlistDict;

/** Where an issue is: the payload's identifier (or type, or index) and the key. */
function prefix(payload: PlistDict, index: number): string {
  const id = typeof payload.PayloadIdentifier === 'string' && payload.PayloadIdentifier ? payload.PayloadIdentifier : undefined;
  const type = typeof payload.PayloadType === 'string' ? payload.PayloadType : undefined;
  return `${id ?? type ?? `PayloadContent[${index}]`} / `;
}

/** Validates a parsed profile. */
export function validateProfile(profile: PlistValue, options: ValidateOptions = {}): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const skip = new Set(options.skip ?? []);
  const add = (rule: string, path: string, message: string, severity: ProfileIssue['severity'] = 'error') => {
    if (!skip.has(rule)) issues.push({ rule, path, message, severity });
  };
  const now = options.now ?? new Date();

  if (options.xml) {
    for (const m of options.xml.matchAll(/<date>([^<]*)<\/date>/g)) {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test((m[1] as string).trim())) {
        add('date-format', 'date', `"${m[1]}" is not YYYY-MM-DDThh:mm:ssZ (iOS rejects fractional seconds and offsets)`);
      }
    }
  }
  if (!isDict(profile)) {
    add('not-a-dictionary', '(top level)', 'A profile must be a dictionary');
    return issues;
  }
  // The path to a value is kept as its keys and indexes, and only written out for an empty string.
  const at: (string | number)[] = [];
  const walkEmpty = (v: PlistValue, pre: string): void => {
    if (v === '') {
      const path = at.map((s, i) => (typeof s === 'number' ? `[${s}]` : i ? `.${s}` : s)).join('');
      add('empty-string', pre + path, 'Empty string: iOS rejects it; leave the key out instead');
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => {
        at.push(i);
        walkEmpty(x, pre);
        at.pop();
      });
    } else if (isDict(v)) {
      for (const k of Object.keys(v)) {
        at.push(k);
        walkEmpty(v[k] as PlistValue, pre);
        at.pop();
      }
    }
  };
  checkTopLevel(profile, add);
  for (const k of Object.keys(profile)) {
    if (k === 'PayloadContent') continue;
    at.push(k);
    walkEmpty(profile[k] as PlistValue, '');
    at.pop();
  }

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

  const uuids = new Map<string, PlistDict>();
  const identifiers = new Set<string>();
  if (typeof profile.PayloadUUID === 'string') uuids.set(profile.PayloadUUID, profile);
  if (typeof profile.PayloadIdentifier === 'string') identifiers.add(profile.PayloadIdentifier);
  const encrypted = profile.EncryptedPayloadContent !== undefined;
  const prefixes = payloads.map(prefix);
  payloads.forEach((p, i) => {
    const pre = prefixes[i] as string;
    checkPayload(p, pre, add);
    walkEmpty(p, pre);
    checkCertificates(p, pre, { now, encrypted, ...(options.openPkcs12 === false ? { openPkcs12: false } : {}) }, add);
    if (typeof p.PayloadUUID === 'string') {
      if (!UUID.test(p.PayloadUUID)) add('uuid-format', `${pre}PayloadUUID`, `"${p.PayloadUUID}" is not a canonical UUID`);
      if (uuids.has(p.PayloadUUID)) add('duplicate-uuid', `${pre}PayloadUUID`, `"${p.PayloadUUID}" is used twice`);
      uuids.set(p.PayloadUUID, p);
    }
    if (typeof p.PayloadIdentifier === 'string') {
      if (identifiers.has(p.PayloadIdentifier)) add('duplicate-identifier', `${pre}PayloadIdentifier`, `"${p.PayloadIdentifier}" is used twice`);
      identifiers.add(p.PayloadIdentifier);
    }
  });

  payloads.forEach((p, i) => {
    const pre = prefixes[i] as string;
    for (const key of IDENTITY_REFERENCES) {
      const ref = p[key];
      if (typeof ref !== 'string') continue;
      const target = uuids.get(ref);
      if (!target || target === profile) {
        add('uuid-reference', `${pre}${key}`, `"${ref}" is not the PayloadUUID of any payload in this profile`);
      } else if (!IDENTITY_PAYLOADS.has(String(target.PayloadType))) {
        add('uuid-reference', `${pre}${key}`, `"${ref}" points to a ${String(target.PayloadType)} payload, which has no private key`);
      }
    }
    for (const [ref, keys] of Object.entries(SMIME_BOOLEANS_FOR)) {
      if (p[ref] === undefined) continue;
      for (const k of keys) {
        if (p[k] === undefined) add('smime-implicit', `${pre}${k}`, 'Not set: iOS switches it on when the certificate UUID is present; write it explicitly', 'warning');
      }
    }
    if (p.PayloadType === 'com.apple.eas.account' && (typeof p.Host !== 'string' || !p.Host)) {
      add('eas-host', `${pre}Host`, 'Exchange needs a Host: iOS refuses the account without one');
    }
  });
  return issues;
}

/** Parses and validates XML; a parse failure is one `malformed` issue. */
export function validateXml(xml: string, options: Omit<ValidateOptions, 'xml'> = {}): { plist: PlistValue | undefined; issues: ProfileIssue[] } {
  let parsed: PlistValue;
  try {
    parsed = parsePlistXml(xml);
  } catch (err) {
    return {
      plist: undefined,
      issues: [{ rule: 'malformed', path: '(document)', message: `Not a well-formed property list: ${(err as Error).message.split('\n')[0]}`, severity: 'error' }],
    };
  }
  return { plist: parsed, issues: validateProfile(parsed, { ...options, xml }) };
}
