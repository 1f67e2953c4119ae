/**
 * Lint rules from Apple's schema: types, required keys, allowed values, unknown keys (with
 * "did you mean"), keys iOS does not have, deprecated keys. iOS ignores a misspelled key
 * without a word and fails the whole install for a wrong type.
 */
import type { ProfileIssue } from '../errors.js';
import type { LintRuleId } from './rules.js';
import { isPlistDict, type PlistValue } from './plist-xml.js';
import { payloadKeys, payloadType, suggest, topLevelKeys, type KeySchema } from './schema.js';

type Add = (rule: LintRuleId, path: string, message: string, severity?: ProfileIssue['severity']) => void;

/** The platform a profile is for: from its TargetDeviceType, or given. */
export type Target = 'ios' | 'macos' | 'other' | 'any';

/** What the schema rules need besides the dictionary. */
export interface SchemaContext {
  target: Target;
}

/** TargetDeviceType (TopLevel): 0 any, 1 iOS/iPadOS, 2 watchOS, 3 HomePod, 4 tvOS, 5 macOS, 6 visionOS. */
export function targetOf(profile: Record<string, PlistValue>): Target {
  const t = profile.TargetDeviceType;
  if (t === 1) return 'ios';
  if (t === 5) return 'macos';
  if (typeof t === 'number' && t !== 0) return 'other';
  return 'any';
}

/** Not on iOS: a warning for a profile that targets iOS, else worth knowing only. */
const notOnIosSeverity = (ctx: SchemaContext): ProfileIssue['severity'] => (ctx.target === 'ios' ? 'warning' : 'info');

const isDict = isPlistDict;

function typeOk(schema: KeySchema, v: PlistValue, parent: string): boolean {
  switch (schema.type) {
    case 'string':
      // SCEP's SubjectAltName values may be a string or an array of strings; so may PayloadDescription,
      // which iOS joins (MCPayload, MCProfile: MCStringFromArrayOfStrings).
      return typeof v === 'string' || ((parent === 'SubjectAltName' || schema.key === 'PayloadDescription') && Array.isArray(v) && v.every((x) => typeof x === 'string'));
    case 'boolean':
      // iOS reads booleans as NSNumber: <true/>, <false/>, <integer> and <real> all pass.
      return typeof v === 'boolean' || typeof v === 'number';
    case 'integer':
      // SCEP's Keysize may also be a string of digits: iOS takes its intValue (MCSCEPPayload).
      return (typeof v === 'number' && Number.isInteger(v)) || (schema.key === 'Keysize' && typeof v === 'string' && /^\d+$/.test(v));
    case 'real':
      return typeof v === 'number';
    case 'data':
      return v instanceof Uint8Array;
    case 'date':
      return v instanceof Date;
    case 'array':
      return Array.isArray(v);
    case 'dictionary':
      return isDict(v);
    default:
      return true;
  }
}

/** "a string", "an integer", "an array". */
const article = (type: string): string => `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;

const describe = (v: PlistValue): string =>
  typeof v === 'string' ? 'a string' : typeof v === 'boolean' ? 'a boolean' : typeof v === 'number' ? 'a number' : v instanceof Date ? 'a date' : v instanceof Uint8Array ? 'data' : Array.isArray(v) ? 'an array' : 'a dictionary';

/**
 * A dictionary with arbitrary key names: Apple's schema writes it as one subkey `ANY`, or
 * (ConsentText) as one `…Item` subkey that itself holds `ANY`. Returns the value schema.
 */
function anyKeySchema(schemas: KeySchema[]): KeySchema | undefined {
  const only = schemas.length === 1 ? schemas[0] : undefined;
  if (!only) return undefined;
  if (only.key === 'ANY') return only;
  if (only.key.endsWith('Item') && only.subkeys?.length === 1 && only.subkeys[0]?.key === 'ANY') return only.subkeys[0];
  return undefined;
}

/** What checkKeys needs of a schema list, worked out once per list (schemas are shared arrays). */
interface SchemaIndex {
  any: KeySchema | undefined;
  byKey: Map<string, KeySchema>;
  required: KeySchema[];
}
const indexes = new WeakMap<KeySchema[], SchemaIndex>();
function indexOf(schemas: KeySchema[]): SchemaIndex {
  let index = indexes.get(schemas);
  if (!index) {
    index = { any: anyKeySchema(schemas), byKey: new Map(schemas.map((s) => [s.key, s])), required: schemas.filter((s) => s.required) };
    indexes.set(schemas, index);
  }
  return index;
}

/** Checks `dict` against `schemas`; `path` prefixes each finding ("payload / "). */
export function checkKeys(dict: Record<string, PlistValue>, schemas: KeySchema[], path: string, add: Add, ctx: SchemaContext, parent = ''): void {
  const { any, byKey, required } = indexOf(schemas);
  if (any) {
    for (const key of Object.keys(dict)) {
      const value = dict[key] as PlistValue;
      if (!typeOk(any, value, parent)) add('wrong-type', `${path}${key}`, `Must be ${article(any.type)}, not ${describe(value)}`);
    }
    return;
  }
  for (const s of required) {
    if (dict[s.key] === undefined) {
      if (s.key === 'PayloadContent' && dict.EncryptedPayloadContent !== undefined) continue;
      add('missing-key', `${path}${s.key}`, 'Required key is missing');
    }
  }
  for (const key of Object.keys(dict)) {
    const value = dict[key] as PlistValue;
    const s = byKey.get(key);
    if (!s) {
      const hint = suggest(key, [...byKey.keys()]);
      add('unknown-key', `${path}${key}`, `Unknown key: iOS ignores it${hint ? `; did you mean ${hint}?` : ''}`, 'warning');
      continue;
    }
    const where = `${path}${key}`;
    if (s.type === 'integer' && typeof value === 'boolean') {
      // iOS reads integer keys as NSNumber, and <true/>/<false/> are NSNumbers too: 1 and 0, not a refusal.
      add('wrong-type', where, `A boolean where an integer is expected: iOS reads it as ${value ? 1 : 0}; write <integer>${value ? 1 : 0}</integer> if that is meant`, 'warning');
    } else if (!typeOk(s, value, parent)) {
      add('wrong-type', where, `Must be ${article(s.type)}, not ${describe(value)}`);
      continue;
    }
    if (value === '' && s.required) {
      add('empty-required', where, 'Required, and empty: iOS reads an empty string as missing and refuses the payload');
    }
    // PayloadVersion has a rule of its own (payload-version), with what iOS accepts.
    if (s.values && key !== 'PayloadVersion' && value !== '' && (typeof value === 'string' || typeof value === 'number') && !s.values.includes(value)) {
      add('value-not-allowed', where, `"${String(value)}" is not one of ${s.values.join(', ')}; iOS may ignore the setting or refuse the payload`, 'warning');
    }
    if (typeof value === 'number' && ((s.min !== undefined && value < s.min) || (s.max !== undefined && value > s.max))) {
      add('value-out-of-range', where, `${value} is outside ${s.min ?? '-∞'}..${s.max ?? '∞'}`, 'warning');
    }
    if (s.ios === 'n/a') add('not-on-ios', where, 'iOS does not have this key (macOS or other platforms only); it is ignored', notOnIosSeverity(ctx));
    if (s.deprecated) add('deprecated-key', where, `Deprecated since iOS ${s.deprecated}`, 'warning');
    if (s.subkeys?.length) {
      if (s.type === 'dictionary' && isDict(value)) checkKeys(value, s.subkeys, `${where}.`, add, ctx, key);
      if (s.type === 'array' && Array.isArray(value)) {
        const item = s.subkeys[0] as KeySchema;
        value.forEach((v, i) => {
          if (!typeOk(item, v, key)) add('wrong-type', `${where}[${i}]`, `Must be ${article(item.type)}, not ${describe(v)}`);
          else if (item.type === 'dictionary' && isDict(v) && item.subkeys?.length) checkKeys(v, item.subkeys, `${where}[${i}].`, add, ctx, key);
        });
      }
    }
  }
}

/** Schema rules for the top level (PayloadContent items are checked per payload). */
let topLevelSchemas: KeySchema[] | undefined;
export function checkTopLevel(profile: Record<string, PlistValue>, add: Add, ctx: SchemaContext): void {
  const { PayloadContent: _content, ...rest } = profile;
  topLevelSchemas ??= topLevelKeys().filter((s) => s.key !== 'PayloadContent');
  checkKeys(rest, topLevelSchemas, '', add, ctx);
}

/** Schema rules for one payload; unknown payload types get one warning. */
export function checkPayload(payload: Record<string, PlistValue>, path: string, add: Add, ctx: SchemaContext): void {
  const type = typeof payload.PayloadType === 'string' ? payload.PayloadType : undefined;
  if (!type) return;
  const schemas = payloadKeys(type);
  if (!schemas) {
    add('unknown-payload-type', `${path}PayloadType`, `"${type}" is not in Apple's schema; its keys are not checked`, 'warning');
    return;
  }
  if (payloadType(type)?.ios === 'n/a') {
    add('payload-not-on-ios', `${path}PayloadType`, `${type} is not available on iOS (macOS or other platforms only)`, notOnIosSeverity(ctx));
  }
  checkKeys(payload, schemas, path, add, ctx);
}
