import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { validateXml } from '../../src/profile/validate.js';
import { BUILTIN_DIR } from '../../src/profile/template.js';

const U = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;
const payload = (type: string, n: number, extra = '') =>
  `<dict><key>PayloadType</key><string>${type}</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>p${n}</string><key>PayloadUUID</key><string>${U(n)}</string>${extra}</dict>`;
const profile = (...payloads: string[]) =>
  `<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string><key>PayloadVersion</key><integer>1</integer><key>PayloadIdentifier</key><string>top</string><key>PayloadUUID</key><string>${U(99)}</string><key>PayloadContent</key><array>${payloads.join('')}</array></dict></plist>`;
const smimeBools =
  '<key>SMIMESigningEnabled</key><true/><key>SMIMESigningUserOverrideable</key><false/><key>SMIMESigningCertificateUUIDUserOverrideable</key><false/>';

const cases: [string, string, string, string][] = [
  ['uuid reference to nothing', profile(payload('com.apple.eas.account', 1, `<key>Host</key><string>h</string><key>SMIMESigningCertificateUUID</key><string>${U(7)}</string>${smimeBools}`)), 'uuid-reference', 'p1 / SMIMESigningCertificateUUID'],
  ['uuid reference to a root payload', profile(payload('com.apple.security.root', 2), payload('com.apple.eas.account', 1, `<key>Host</key><string>h</string><key>SMIMESigningCertificateUUID</key><string>${U(2)}</string>${smimeBools}`)), 'uuid-reference-kind', 'p1 / SMIMESigningCertificateUUID'],
  ['empty string', profile(payload('com.apple.eas.account', 1, '<key>Host</key><string>h</string><key>UserName</key><string></string>')), 'empty-string', 'p1 / UserName'],
  ['exchange without host', profile(payload('com.apple.eas.account', 1)), 'eas-host', 'p1 / Host'],
  ['date with milliseconds', profile(payload('com.apple.security.root', 1, '<key>X</key><date>2026-01-01T00:00:00.000Z</date>')), 'date-format', 'date'],
  ['duplicate uuid', profile(payload('com.apple.security.root', 1), payload('com.apple.security.pkcs1', 1).replace('p1', 'p2')), 'duplicate-uuid', 'p2 / PayloadUUID'],
  ['malformed xml', '<plist><dict><key>a</dict>', 'malformed', '(document)'],
  ['empty string deep inside', profile(payload('com.apple.eas.account', 1, '<key>Host</key><string>h</string><key>X</key><dict><key>Y</key><array><string>a</string><string></string></array></dict>')), 'empty-string', 'p1 / X.Y[1]'],
  ['payload type named like an Object property', profile(payload('constructor', 1)), 'unknown-payload-type', 'p1 / PayloadType'],
  ['implicit smime boolean', profile(payload('com.apple.security.pkcs12', 2), payload('com.apple.eas.account', 1, `<key>Host</key><string>h</string><key>SMIMESigningCertificateUUID</key><string>${U(2)}</string>`)), 'smime-implicit', 'p1 / SMIMESigningEnabled'],
];

for (const [name, xml, rule, path] of cases) {
  test(`validation: ${name} → ${rule} at ${path}`, (t) => {
    const { issues } = validateXml(xml);
    t.true(issues.some((i) => i.rule === rule && i.path === path), JSON.stringify(issues));
  });
}

test('a clean profile has no issues', (t) => {
  const xml = profile(payload('com.apple.security.pkcs12', 2, '<key>PayloadContent</key><data>AAAA</data>'), payload('com.apple.eas.account', 1, `<key>Host</key><string>h</string><key>SMIMESigningCertificateUUID</key><string>${U(2)}</string>${smimeBools}`));
  t.deepEqual(validateXml(xml).issues, []);
});

test('built-in templates never use triple-stash (unescaped) output', (t) => {
  for (const f of readdirSync(BUILTIN_DIR).filter((n) => n.endsWith('.hbs'))) {
    t.notRegex(readFileSync(join(BUILTIN_DIR, f), 'utf8'), /\{\{\{/, f);
  }
});
