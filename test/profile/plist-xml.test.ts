import test from 'ava';
import { parsePlistXml, PlistSyntaxError } from '../../src/profile/plist-xml.js';
import { need, python } from '../helpers/tools.js';

test('parses what python plistlib writes, value for value', (t) => {
  if (!need(t, 'python3')) return;
  const r = python(`import plistlib,sys,datetime
v={'s':'a&b<c>"d\\'', 'u':'ünï \\U0001F600', 'i':-42, 'big':2**53-1, 'r':1.5, 't':True, 'f':False,
 'd':datetime.datetime(2026,1,2,3,4,5), 'b':bytes(range(256)), 'a':[1,'x',{'n':[]}], 'e':{}, 'empty':''}
sys.stdout.buffer.write(plistlib.dumps(v))`);
  t.is(r.status, 0, r.stderr);
  const v = parsePlistXml(r.stdout) as Record<string, unknown>;
  t.is(v.s, 'a&b<c>"d\'');
  t.is(v.u, 'ünï 😀');
  t.is(v.i, -42);
  t.is(v.big, 2 ** 53 - 1);
  t.is(v.r, 1.5);
  t.is(v.t, true);
  t.is(v.f, false);
  t.deepEqual(v.d, new Date('2026-01-02T03:04:05Z'));
  t.deepEqual(Buffer.from(v.b as Uint8Array), Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
  t.deepEqual(v.a, [1, 'x', { n: [] }]);
  t.deepEqual(v.e, {});
  t.is(v.empty, '');
});

const hostile: [string, string][] = [
  ['external entity', '<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY x SYSTEM "file:///etc/passwd">]><plist><string>&x;</string></plist>'],
  ['billion laughs', '<!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><plist><string>&b;</string></plist>'],
  ['unknown entity', '<plist><string>&nbsp;</string></plist>'],
  ['entity named like an Object property', '<plist><string>&constructor;</string></plist>'],
  ['deep nesting', '<plist>' + '<array>'.repeat(100) + '</array>'.repeat(100) + '</plist>'],
  ['NUL character reference', '<plist><string>&#0;</string></plist>'],
  ['raw control character', '<plist><string>\u0001</string></plist>'],
  ['mismatched tags', '<plist><dict><key>a</key><string>b</dict></plist>'],
  ['trailing content', '<plist><true/></plist><plist/>'],
  ['duplicate key', '<plist><dict><key>a</key><true/><key>a</key><false/></dict></plist>'],
  ['__proto__ key', '<plist><dict><key>__proto__</key><dict/></dict></plist>'],
  ['integer out of range', '<plist><integer>99999999999999999999</integer></plist>'],
];
for (const [name, xml] of hostile) {
  test(`refuses ${name} with a PlistSyntaxError`, (t) => {
    t.throws(() => parsePlistXml(xml), { instanceOf: PlistSyntaxError });
  });
}
