/**
 * Templates are named explicitly, so that a value from a web request never reaches the file
 * system; the built-ins' data types are generated from their metadata; unknown data keys are
 * reported (issue "The library for MDM vendors").
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate, OUT } from '../../scripts/gen-template-types.js';
import { generateProfile } from '../../src/profile/generate.js';
import { loadTemplate } from '../../src/profile/template.js';
import { createMemoryStore } from '../../src/store/memory-store.js';
import { ROOT } from '../helpers/tools.js';

test('the committed template data types are what scripts/gen-template-types.ts makes from templates/*.json', (t) => {
  t.is(readFileSync(join(ROOT, OUT), 'utf8'), generate(), `${OUT} is stale: run npx tsx scripts/gen-template-types.ts`);
});

test('a template name is a built-in name only: ../, a path, an absolute path or a non-string is refused before any file is read', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-tpl-'));
  writeFileSync(join(dir, 'evil.mobileconfig.hbs'), '<plist version="1.0"><dict/></plist>');
  const names = ['../templates/exchange-smime', `${dir}/evil.mobileconfig.hbs`, 'exchange-smime/../../package', '..', 'Exchange-SMIME', '', 'a'.repeat(65), 'x\u0000'];
  for (const name of names) {
    t.throws(() => loadTemplate(name), { code: 'ERR_INPUT_INVALID', message: /is not the name of a built-in template; a file is \{ path \}, template text is \{ source \}$/ }, name);
    t.throws(() => loadTemplate({ builtin: name }), { code: 'ERR_INPUT_INVALID' }, name);
  }
  t.throws(() => loadTemplate({ builtin: 42 } as never), { code: 'ERR_INPUT_INVALID', message: /^42 is not the name/ });
  t.throws(() => loadTemplate({ file: 'x' } as never), { code: 'ERR_INPUT_INVALID', message: 'template must be a built-in name, { builtin }, { path } or { source }' });
  t.throws(() => loadTemplate('no-such-template'), { code: 'ERR_TEMPLATE_NOT_FOUND' });
  // Said explicitly, a file and source text are fine.
  t.is(loadTemplate({ path: join(dir, 'evil.mobileconfig.hbs') }).name, 'evil');
  t.is(loadTemplate({ source: '<plist version="1.0"><dict/></plist>', name: 'mine' }).name, 'mine');
  t.is(loadTemplate({ builtin: 'exchange-smime' }).name, 'exchange-smime');
});

test('generateProfile reports a data key the template does not declare as an unknown-variable issue', async (t) => {
  const store = await createMemoryStore({ organization: 'Typed Corp' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  const data = { exchange: { host: 'mail.example.com', hots: 'typo' }, smtp: { host: 'x' } } as Record<string, unknown>;
  const p = await generateProfile({ store, template: 'exchange-smime' as string, user: 'alice@example.com', data, sign: false });
  t.deepEqual(
    p.issues.filter((i) => i.rule === 'unknown-variable').map((i) => [i.path, i.severity]),
    [
      ['data / exchange.hots', 'warning'],
      ['data / smtp.host', 'warning'],
    ],
  );
  const clean = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } }, sign: false });
  t.deepEqual(clean.issues, []);
});
