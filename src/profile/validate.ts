/**
 * Validation of a profile: the rules whose failure makes iOS refuse the profile or a payload,
 * Apple's schema (every payload type, nested keys included), the references between payloads,
 * and the certificates inside. Findings are a result, not an exception.
 *
 * Severities follow what iOS itself does (read from iOS's ManagedConfiguration): `error` when
 * iOS refuses the profile or the payload, `warning` when it installs but does something the
 * admin probably did not intend, `info` when it is harmless. Profiles we generate are held to a
 * stricter standard (`strict`): no empty strings, every S/MIME switch written out.
 *
 * @module validate
 */
import type { ProfileIssue } from '../errors.js';
import type { LintRuleId } from './rules.js';
import { isPlistDict, parsePlistXml, type PlistValue } from './plist-xml.js';
import { checkCertificates } from './rules-certs.js';
import { KdfBudget, readPkcs12 } from '../certs/pkcs12-read.js';
import type { Pkcs12Opener } from './pkcs12-payloads.js';
import { checkIosRules, checkProfileService, checkSmimeSwitches } from './rules-ios.js';
import { checkReferences, IDENTITY_PAYLOADS as IDENTITY_TYPES } from './rules-references.js';
import { checkPayload, checkTopLevel, targetOf, type Target } from './rules-schema.js';

export type { PlistValue };
export type { Target };
/** A plist dictionary. */
export type PlistDict = { [k: string]: PlistValue };

/** Payload types that yield an identity (certificate + private key) on the device. */
export const IDENTITY_PAYLOADS: ReadonlySet<string> = IDENTITY_TYPES;
/** Keys of mail payloads whose value is the PayloadUUID of an identity payload in the same profile. */
export const IDENTITY_REFERENCES = ['PayloadCertificateUUID', 'SMIMESigningCertificateUUID', 'SMIMEEncryptionCertificateUUID'];

const UUID = /^[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}$/;

/** Options of {@link validateProfile}. */
export interface ValidateOptions {
  /** The XML text, for the textual rules (dates with fractional seconds, a `<real>` PayloadVersion). */
  xml?: string;
  /** Default: now. Used for certificate expiry. */
  now?: Date;
  /**
   * Open PKCS#12 payloads with their Password. Default: true, all of them under one
   * {@link KdfBudget}. A function opens each one (lintProfile hands one that opened them
   * asynchronously beforehand).
   */
  openPkcs12?: boolean | Pkcs12Opener;
  /** Rule ids to leave out. */
  skip?: string[];
  /**
   * Hold the profile to the standard of what we generate: an empty string is an error, and
   * every S/MIME switch must be written out. Default: false (lint judges by what iOS does).
   */
  strict?: boolean;
  /** The platform to judge availability for. Default: the profile's TargetDeviceType (none: any). */
  target?: Target;
}

const isDict = isPlistDict;

/** Where an issue is: the payload's identifier (or type, or index) and the key. */
function prefix(payload: PlistDict, index: number): string {
  const id = typeof payload.PayloadIdentifier === 'string' && payload.PayloadIdentifier ? payload.PayloadIdentifier : undefined;
  const type = typeof payload.PayloadType === 'string' ? payload.PayloadType : undefined;
  return `${id ?? type ?? `PayloadContent[${index}]`} / `;
}

/**
 * Validates a parsed profile.
 * @example
 * const { plist } = parseProfile(readFileSync('wifi.mobileconfig'))
 * const errors = validateProfile(plist).filter((issue) => issue.severity === 'error')
 * for (const e of errors) console.error(e.rule, e.path, e.message)
 */
export function validateProfile(profile: PlistValue, options: ValidateOptions = {}): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const skip = new Set(options.skip ?? []);
  const add = (rule: LintRuleId, path: string, message: string, severity: ProfileIssue['severity'] = 'error') => {
    if (!skip.has(rule)) issues.push({ rule, path, message, severity });
  };
  const now = options.now ?? new Date();
  const strict = options.strict === true;

  if (options.xml) {
    for (const m of options.xml.matchAll(/<date>([^<]*)<\/date>/g)) {
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test((m[1] as string).trim())) {
        add('date-format', 'date', `"${m[1]}" is not YYYY-MM-DDThh:mm:ssZ (iOS rejects fractional seconds and offsets)`);
      }
    }
    if (/<key>PayloadVersion<\/key>\s*<real>/.test(options.xml)) {
      add('payload-version', 'PayloadVersion', 'A PayloadVersion written as <real>: iOS needs an <integer> and refuses the payload');
    }
  }
  if (!isDict(profile)) {
    add('not-a-dictionary', '(top level)', 'A profile must be a dictionary');
    return issues;
  }
  const ctx = { target: options.target ?? targetOf(profile) };
  // One budget for every PKCS#12 in the profile, made on first use.
  let open: Pkcs12Opener | undefined = typeof options.openPkcs12 === 'function' ? options.openPkcs12 : undefined;
  const opener = (): Pkcs12Opener => {
    if (!open) {
      const budget = new KdfBudget();
      open = (content, password) => readPkcs12(content, password, { budget });
    }
    return open;
  };
  // The path to a value is kept as its keys and indexes, and only written out for an empty string.
  const at: (string | number)[] = [];
  const walkEmpty = (v: PlistValue, pre: string): void => {
    if (v === '') {
      const path = at.map((s, i) => (typeof s === 'number' ? `[${s}]` : i ? `.${s}` : s)).join('');
      if (strict) add('empty-string', pre + path, 'Empty string: iOS reads it as absent, and refuses an empty required key; leave the key out instead');
      else add('empty-string', pre + path, 'Empty string: iOS reads it as absent (harmless unless the key is required)', 'info');
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
  for (const k of Object.keys(profile)) {
    if (k === 'PayloadContent') continue;
    at.push(k);
    walkEmpty(profile[k] as PlistValue, '');
    at.pop();
  }
  // Apple's enrollment profile ("Profile Service", over-the-air enrollment) has a shape of its own.
  if (profile.PayloadType === 'Profile Service') {
    checkProfileService(profile, add);
    return issues;
  }
  checkTopLevel(profile, add, ctx);
  const version = profile.PayloadVersion;
  if (typeof version === 'number' && version !== 1 && version !== 2) {
    add('payload-version', 'PayloadVersion', `The profile's PayloadVersion is ${version}; iOS accepts 1 or 2 and refuses anything else`);
  }

  const content = profile.PayloadContent;
  const payloads: PlistDict[] = [];
  const encrypted = profile.EncryptedPayloadContent !== undefined;
  if (content === undefined) {
    if (!encrypted) add('missing-key', 'PayloadContent', 'Required key is missing');
    else add('encrypted-not-checked', 'EncryptedPayloadContent', 'The payloads are encrypted, so they were not checked; decrypt them to lint them (lint --decrypt-key KEY)', 'info');
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
  const prefixes = payloads.map(prefix);
  payloads.forEach((p, i) => {
    const pre = prefixes[i] as string;
    checkPayload(p, pre, add, ctx);
    walkEmpty(p, pre);
    checkIosRules(p, pre, add);
    checkCertificates(p, pre, { now, encrypted, ...(options.openPkcs12 === false ? { openPkcs12: false } : { open: opener() }) }, add);
    if (typeof p.PayloadUUID === 'string') {
      if (!UUID.test(p.PayloadUUID)) add('uuid-format', `${pre}PayloadUUID`, `"${p.PayloadUUID}" is not a canonical UUID (iOS takes any string)`, 'info');
      if (uuids.has(p.PayloadUUID)) add('duplicate-uuid', `${pre}PayloadUUID`, `"${p.PayloadUUID}" is the PayloadUUID of another payload: iOS refuses the profile (1007)`);
      else if (p.PayloadUUID === profile.PayloadUUID) add('duplicate-uuid', `${pre}PayloadUUID`, `"${p.PayloadUUID}" is the profile's own PayloadUUID; give the payload its own`, 'warning');
      uuids.set(p.PayloadUUID, p);
    }
    // A payload may reuse the profile's own identifier (cPanel does, and iOS installs it); two payloads may not.
    if (typeof p.PayloadIdentifier === 'string') {
      if (identifiers.has(p.PayloadIdentifier)) add('duplicate-identifier', `${pre}PayloadIdentifier`, `"${p.PayloadIdentifier}" is the PayloadIdentifier of another payload: iOS refuses the profile (1008)`);
      identifiers.add(p.PayloadIdentifier);
    }
  });

  payloads.forEach((p, i) => {
    const pre = prefixes[i] as string;
    checkReferences(p, pre, uuids, add);
    checkSmimeSwitches(p, pre, strict, add);
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
