/**
 * Apple's payload schema in a compact, typed form (generated into schema.gen.ts by
 * scripts/gen-schema.ts), and the lookups lint needs.
 *
 * @module schema
 */
import { COMMON_PAYLOAD_KEYS, PAYLOAD_TYPES, TOP_LEVEL_KEYS } from './schema.gen.js';
import { withIosExtraKeys } from './schema-ios.js';

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

export function topLevelKeys(): KeySchema[] {
  return TOP_LEVEL_KEYS;
}

/** Levenshtein distance, for "did you mean". */
export function distance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0] as number;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j] as number;
      dp[j] = Math.min((dp[j] as number) + 1, (dp[j - 1] as number) + 1, prev + (a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length] as number;
}

/** The closest known key, when close enough to be a likely typo. */
export function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 5)) ? best : undefined;
}
