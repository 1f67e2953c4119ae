/**
 * Apple's payload schema in a compact, typed form (generated into schema.gen.ts by
 * scripts/gen-schema.ts), and the lookups lint needs.
 *
 * @module schema
 */
import { COMMON_PAYLOAD_KEYS, PAYLOAD_TYPES, TOP_LEVEL_KEYS } from './schema.gen.js';
import { TOP_LEVEL_TYPE, withIosExtraKeys } from './schema-ios.js';

/** One key of a payload, as the schema describes it. */
export interface KeySchema {
  key: string;
  /** string, boolean, integer, real, data, date, array, dictionary, any */
  type: string;
  required?: true;
  /** Allowed values. */
  values?: (string | number)[];
  min?: number;
  max?: number;
  /** iOS version that introduced the key; `n/a` when iOS does not have it. */
  ios?: string;
  /** iOS version that deprecated it. */
  deprecated?: string;
  removed?: string;
  /** A dictionary's keys, or an array's item schema (one entry). */
  subkeys?: KeySchema[];
}

/** A payload type of the schema. */
export interface PayloadTypeSchema {
  /** iOS version that introduced it; `n/a` when iOS does not have it. */
  ios: string;
  keys: KeySchema[];
}

/** The payload type's entry, or undefined for a type the schema does not have. */
export function payloadType(type: string): PayloadTypeSchema | undefined {
  return Object.hasOwn(PAYLOAD_TYPES, type) ? PAYLOAD_TYPES[type] : undefined;
}

const payloadKeyCache = new Map<string, KeySchema[] | undefined>();

/**
 * Keys of a payload type (common keys included, and the keys iOS reads beyond Apple's schema:
 * schema-ios.ts), or undefined for an unknown type.
 */
export function payloadKeys(type: string): KeySchema[] | undefined {
  // The same array for the same type: lint runs this for every payload of every profile.
  if (payloadKeyCache.has(type)) return payloadKeyCache.get(type);
  const own = payloadType(type)?.keys;
  let keys: KeySchema[] | undefined;
  if (own) {
    const names = new Set(own.map((k) => k.key));
    keys = withIosExtraKeys(type, [...own, ...COMMON_PAYLOAD_KEYS.filter((k) => !names.has(k.key))]);
  }
  if (payloadKeyCache.size < 1024) payloadKeyCache.set(type, keys);
  return keys;
}

let topLevelCache: KeySchema[] | undefined;

/** Keys of the profile's own dictionary, with the keys iOS reads beyond Apple's schema (schema-ios.ts, payload type `Configuration`). */
export function topLevelKeys(): KeySchema[] {
  topLevelCache ??= withIosExtraKeys(TOP_LEVEL_TYPE, TOP_LEVEL_KEYS);
  return topLevelCache;
}

export { distance, suggest } from '../util/suggest.js';
