/**
 * Keys iOS reads that Apple's device-management YAML does not list, with the type iOS requires
 * of them (read from iOS 26.1's ManagedConfiguration, as the lint rules are). {@link payloadKeys}
 * merges them into the generated schema, so lint knows them like
 * any other key: a wrong type is the error iOS makes of it, never an "unknown key".
 *
 * A key belongs here only when iOS's own parser reads it from a profile being installed; cite where.
 * Keys iOS reads only from its own stored copies of installed profiles (the `isStub` branches:
 * `EASAccountPersistentUUID`, `SMIMESigningIdentityPersistentID`, `PERSISTENT_REF`, …) and the
 * bookkeeping keys it writes into those copies (`MCProfileIsRemovalStub`, `ProfileWasEncrypted`,
 * `ProductVersion`, `ProductBuildVersion`) are left out: no profile should carry them, and
 * `unknown-key` is the finding that says so. Keys of Apple's YAML stay in the generated files
 * (scripts/gen-schema.ts), which this list never edits. The profile's own dictionary is
 * {@link TOP_LEVEL_TYPE}.
 *
 * @module schema-ios
 */
import type { KeySchema } from './schema.js';

/** The `payloadType` of an entry for the profile's own (top-level) dictionary. */
export const TOP_LEVEL_TYPE = 'Configuration';

/** One key iOS reads beyond Apple's schema. */
export interface IosExtraKey {
  /** The payload type it belongs to ({@link TOP_LEVEL_TYPE} for the profile's own dictionary). */
  payloadType: string;
  /** The dictionary keys leading to it (`['PayloadContent']` for a key of SCEP's inner dictionary). */
  path: readonly string[];
  /** The key and the type iOS requires. */
  schema: KeySchema;
  /** Where iOS reads it. */
  source: string;
}

/** Every key iOS reads that Apple's YAML leaves out. */
export const IOS_EXTRA_KEYS: readonly IosExtraKey[] = [
  {
    payloadType: 'com.apple.security.scep',
    path: ['PayloadContent'],
    // The SCEP server's capabilities, given up front; iOS takes an array (CACaps is an NSArray) and
    // refuses the payload (2003) for any other type. Its items are not type-checked by iOS.
    schema: { key: 'GetCACaps', type: 'array' },
    source: 'MC/MCSCEPPayload.mm (initWithDictionary: removeOptionalObjectInDictionary "GetCACaps")',
  },
  {
    payloadType: 'com.apple.eas.account',
    path: [],
    // Sync only the default folders (Inbox, Sent, …). Read as an NSNumber (BOOLValue); any other
    // type refuses the payload.
    schema: { key: 'SyncDefaultFoldersOnly', type: 'boolean' },
    source: 'MC/MCEASAccountPayload.mm (initWithDictionary: MCValidateAndRemoveObjectOfClass "SyncDefaultFoldersOnly", then BOOLValue)',
  },
  {
    payloadType: TOP_LEVEL_TYPE,
    path: [],
    // Suggest a restart after the install. Read as an NSNumber (BOOLValue) from every profile;
    // any other type refuses the profile (1003, "field invalid").
    schema: { key: 'PayloadRebootSuggested', type: 'boolean' },
    source: 'MC/MCProfile.mm (initWithDictionary:signerCerts:allowEmptyPayload:outError: removeOptionalObjectInDictionary "PayloadRebootSuggested", then BOOLValue)',
  },
];

function withKey(keys: KeySchema[], path: readonly string[], schema: KeySchema): KeySchema[] {
  const [head, ...rest] = path;
  if (head === undefined) return keys.some((k) => k.key === schema.key) ? keys : [...keys, schema];
  return keys.map((k) => (k.key === head ? { ...k, subkeys: withKey(k.subkeys ?? [], rest, schema) } : k));
}

/** `keys` (a payload type's schema) with the keys iOS reads beyond it; new arrays, the generated ones untouched. */
export function withIosExtraKeys(type: string, keys: KeySchema[]): KeySchema[] {
  let out = keys;
  for (const extra of IOS_EXTRA_KEYS) if (extra.payloadType === type) out = withKey(out, extra.path, extra.schema);
  return out;
}
