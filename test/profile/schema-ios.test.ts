/**
 * Keys iOS reads beyond Apple's YAML (src/profile/schema-ios.ts): lint knows each with the type iOS
 * requires (no unknown-key for the right type, the wrong-type error for another), and each is
 * really missing from the generated schema, so an entry goes stale loudly when Apple adds the key.
 * The profiles are written by python3's plistlib, in XML and in binary, not by our own writer.
 */
import test from 'ava';
import { lintProfile } from '../../src/profile/lint.js';
import { IOS_EXTRA_KEYS, TOP_LEVEL_TYPE, type IosExtraKey } from '../../src/profile/schema-ios.js';
import { payloadKeys, payloadType as schemaOf, schemaIndex, topLevelKeys, type KeySchema } from '../../src/profile/schema.js';
import { need, pythonBytes } from '../helpers/tools.js';

type Json = string | number | boolean | Json[] | { [k: string]: Json };

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** What a payload of each type needs besides the keys under test, so that only those are judged. */
const BASE: Record<string, Record<string, Json>> = {
  'com.apple.eas.account': { Host: 'mail.example.com', EmailAddress: 'alice@example.com' },
  'com.apple.security.scep': { PayloadContent: { URL: 'https://scep.example.com/scep', Keysize: 2048 } },
};

/** A value iOS takes for the type, and one it refuses (with how lint names the refused one). */
const VALUES: Record<string, { right: Json; wrong: Json; wrongIs: string }> = {
  boolean: { right: true, wrong: 'true', wrongIs: 'a string' },
  array: { right: ['POSTPKIOperation', 'SHA-256'], wrong: 'POSTPKIOperation', wrongIs: 'a string' },
};

function withValue(dict: Record<string, Json>, path: readonly string[], key: string, value: Json): Record<string, Json> {
  const [head, ...rest] = path;
  if (head === undefined) return { ...dict, [key]: value };
  return { ...dict, [head]: withValue((dict[head] ?? {}) as Record<string, Json>, rest, key, value) };
}

/** The profile (as a JSON-able dictionary) carrying `extra`'s key with `value`, and the finding path lint gives that key. */
function profileWith(extra: IosExtraKey, value: Json): { profile: Record<string, Json>; where: string } {
  const top = extra.payloadType === TOP_LEVEL_TYPE;
  const type = top ? 'com.apple.eas.account' : extra.payloadType;
  let payload: Record<string, Json> = { PayloadType: type, PayloadVersion: 1, PayloadIdentifier: 'p1', PayloadUUID: U(1), ...BASE[type] };
  let profile: Record<string, Json> = { PayloadType: 'Configuration', PayloadVersion: 1, PayloadIdentifier: 'top', PayloadUUID: U(99) };
  if (top) profile = withValue(profile, extra.path, extra.schema.key, value);
  else payload = withValue(payload, extra.path, extra.schema.key, value);
  profile.PayloadContent = [payload];
  const keyPath = [...extra.path, extra.schema.key].join('.');
  return { profile, where: top ? keyPath : `p1 / ${keyPath}` };
}

/** The plist bytes python3's plistlib writes for `value` (binary or XML). */
function plist(value: Json, binary: boolean): Buffer {
  const fmt = binary ? 'plistlib.FMT_BINARY' : 'plistlib.FMT_XML';
  const r = pythonBytes(`import json,plistlib,sys; sys.stdout.buffer.write(plistlib.dumps(json.load(sys.stdin), fmt=${fmt}))`, Buffer.from(JSON.stringify(value)));
  if (r.status !== 0) throw new Error(r.stderr.toString());
  return r.stdout;
}

/** The generated (YAML) keys at `path` of a payload type, or of the top level; undefined when the path leads nowhere. */
function yamlKeysAt(payloadType: string, path: readonly string[]): KeySchema[] | undefined {
  let keys: KeySchema[] | undefined =
    payloadType === TOP_LEVEL_TYPE ? schemaIndex().topLevel : path.length === 0 ? [...(schemaOf(payloadType)?.keys ?? []), ...schemaIndex().common] : schemaOf(payloadType)?.keys;
  for (const head of path) keys = keys?.find((k) => k.key === head)?.subkeys;
  return keys;
}

const label = (e: IosExtraKey) => `${e.payloadType === TOP_LEVEL_TYPE ? 'the top level' : e.payloadType} ${[...e.path, e.schema.key].join('.')}`;

test('every entry names a payload type and a place Apple\'s schema has, and a key Apple\'s schema lacks there', (t) => {
  t.true(IOS_EXTRA_KEYS.length >= 3);
  for (const e of IOS_EXTRA_KEYS) {
    t.true(e.payloadType === TOP_LEVEL_TYPE || schemaOf(e.payloadType) !== undefined, `${label(e)}: a payload type of the schema`);
    const keys = yamlKeysAt(e.payloadType, e.path);
    t.truthy(keys, `${label(e)}: the path ${e.path.join('.')} is in the generated schema`);
    t.false(keys?.some((k) => k.key === e.schema.key) ?? true, `${label(e)}: Apple's YAML now has this key; take the entry out of schema-ios.ts`);
    t.regex(e.source, /^(MC|PD)\/\S+\.mm? \(/, `${label(e)}: the source names the file and the method`);
    t.truthy(VALUES[e.schema.type], `${label(e)}: this test has values for type ${e.schema.type}`);
  }
  const keys = IOS_EXTRA_KEYS.map(label);
  t.deepEqual(keys, [...new Set(keys)], 'no key twice');
});

test('lint\'s schema has every entry, with the type iOS requires, and leaves the generated arrays untouched', (t) => {
  for (const e of IOS_EXTRA_KEYS) {
    let keys: KeySchema[] | undefined = e.payloadType === TOP_LEVEL_TYPE ? topLevelKeys() : payloadKeys(e.payloadType);
    for (const head of e.path) keys = keys?.find((k) => k.key === head)?.subkeys;
    t.deepEqual(keys?.find((k) => k.key === e.schema.key), e.schema, label(e));
    t.false(yamlKeysAt(e.payloadType, e.path)?.some((k) => k.key === e.schema.key) ?? true, `${label(e)}: not written into the generated schema`);
  }
});

for (const e of IOS_EXTRA_KEYS) {
  for (const binary of [false, true]) {
    const form = binary ? 'binary' : 'XML';
    test(`lint: ${label(e)} (${e.schema.type}) is known; the right type passes, another is the wrong-type error (${form}, plistlib)`, async (t) => {
      if (!need(t, 'python3')) return;
      const values = VALUES[e.schema.type]!;
      const ok = profileWith(e, values.right);
      const okFindings = (await lintProfile(plist(ok.profile, binary))).findings;
      t.deepEqual(okFindings.filter((f) => f.path === ok.where), [], JSON.stringify(okFindings, null, 1));
      t.false(okFindings.some((f) => f.rule === 'unknown-key'), JSON.stringify(okFindings, null, 1));
      t.false(okFindings.some((f) => f.severity === 'error'), JSON.stringify(okFindings, null, 1));

      const bad = profileWith(e, values.wrong);
      const badFindings = (await lintProfile(plist(bad.profile, binary))).findings;
      t.deepEqual(
        badFindings.filter((f) => f.path === bad.where),
        [{ rule: 'wrong-type', severity: 'error', path: bad.where, message: `Must be ${/^[aeiou]/.test(e.schema.type) ? 'an' : 'a'} ${e.schema.type}, not ${values.wrongIs}` }],
      );
      t.false(badFindings.some((f) => f.rule === 'unknown-key'), JSON.stringify(badFindings, null, 1));
    });
  }
}

test('lint: a key iOS reads only from its own stored copies (MCProfileIsRemovalStub) is still unknown', async (t) => {
  if (!need(t, 'python3')) return;
  const profile = { PayloadType: 'Configuration', PayloadVersion: 1, PayloadIdentifier: 'top', PayloadUUID: U(99), MCProfileIsRemovalStub: true, PayloadContent: [{ PayloadType: 'com.apple.eas.account', PayloadVersion: 1, PayloadIdentifier: 'p1', PayloadUUID: U(1), Host: 'mail.example.com', EASAccountPersistentUUID: U(3) }] };
  const { findings } = await lintProfile(plist(profile, false));
  t.deepEqual(
    findings.filter((f) => f.rule === 'unknown-key').map((f) => f.path),
    ['MCProfileIsRemovalStub', 'p1 / EASAccountPersistentUUID'],
  );
});

test('types iOS accepts beyond the YAML: PayloadDescription as an array of strings (iOS joins them), SCEP Keysize as a string of digits (its intValue)', async (t) => {
  if (!need(t, 'python3')) return;
  const scep = { PayloadType: 'com.apple.security.scep', PayloadVersion: 1, PayloadIdentifier: 'p1', PayloadUUID: U(1), PayloadDescription: ['Signing', 'for mail'], PayloadContent: { URL: 'https://scep.example.com/scep', Keysize: '2048' } };
  const profile = { PayloadType: 'Configuration', PayloadVersion: 1, PayloadIdentifier: 'top', PayloadUUID: U(99), PayloadDescription: ['Mail', 'for Alice'], PayloadContent: [scep] };
  t.deepEqual((await lintProfile(plist(profile, false))).findings.filter((i) => i.rule === 'wrong-type'), []);
  const wrong = { ...profile, PayloadDescription: ['Mail', 3], PayloadContent: [{ ...scep, PayloadContent: { URL: 'https://scep.example.com/scep', Keysize: 'big' } }] };
  t.deepEqual((await lintProfile(plist(wrong, false))).findings.filter((i) => i.rule === 'wrong-type').map((i) => i.path).sort(), ['PayloadDescription', 'p1 / PayloadContent.Keysize']);
});
