import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate, SCHEMA_DIR } from '../../scripts/gen-schema.js';
import { payloadKeys, suggest } from '../../src/profile/schema.js';
import { ROOT } from '../helpers/tools.js';

const SCHEMAS = join(ROOT, '..', 'shared', 'apple-device-management', 'full', 'mdm', 'profiles');

test('the committed schema is what scripts/gen-schema.ts makes from Apple\'s YAML today', (t) => {
  if (!existsSync(SCHEMAS)) {
    t.log(`SKIPPED: Apple's schemas are not at ${SCHEMAS}`);
    t.pass();
    return;
  }
  const files = generate(SCHEMAS);
  t.true(files.size > 100, 'all of Apple\'s payload types');
  for (const [path, text] of files) t.is(readFileSync(join(ROOT, path), 'utf8'), text, `${path} is stale: run npx tsx scripts/gen-schema.ts`);
  const committed = readdirSync(join(ROOT, SCHEMA_DIR)).map((f) => `${SCHEMA_DIR}/${f}`);
  t.deepEqual(committed.filter((p) => !files.has(p)), [], 'no generated file is left over from a payload type that is gone');
});

test('the schema knows the S/MIME keys with their spellings and deprecations', (t) => {
  const eas = payloadKeys('com.apple.eas.account')!;
  const key = (k: string) => eas.find((x) => x.key === k);
  t.is(key('SMIMEEncryptByDefaultUserOverrideable')?.type, 'boolean');
  t.is(key('SMIMEEncryptionEnabled')?.deprecated, '12.0');
  t.is(key('MailNumberOfPastDaysToSync')?.values?.join(), '0,1,3,7,14,31');
  t.truthy(eas.find((x) => x.key === 'PayloadUUID' && x.required), 'common keys are merged in');
  t.is(suggest('SMIMESigningEnable', eas.map((x) => x.key)), 'SMIMESigningEnabled');
  t.is(suggest('Completely', eas.map((x) => x.key)), undefined);
});
