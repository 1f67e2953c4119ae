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
  ['no-break space in a tag (XML allows only its four whitespace characters)', '<plist><dict\u00a0></dict></plist>'],
  ['no-break space in a closing tag', '<plist><string>a</string\u00a0></plist>'],
  ['integer out of range', '<plist><integer>99999999999999999999</integer></plist>'],
];
for (const [name, xml] of hostile) {
  test(`refuses ${name} with a PlistSyntaxError`, (t) => {
    t.throws(() => parsePlistXml(xml), { instanceOf: PlistSyntaxError });
  });
}

test('agrees with python plistlib on 300 random property lists', (t) => {
  if (!need(t, 'python3')) return;
  // plistlib writes random plists (seeded) and a tagged JSON form of each value; every one
  // must parse to exactly that value.
  const r = python(`import plistlib,random,json,datetime,base64
rng=random.Random(20261128)
chars='ab <>&"\\'\\t\\n]]>é😀\\u00a0\\u2028'
def s(): return ''.join(rng.choice(chars) for _ in range(rng.randint(0,12)))
def v(d):
    k=rng.randint(0,8 if d<4 else 5)
    if k==0: return s()
    if k==1: return rng.randint(-2**63,2**63-1) if rng.random()<.3 else rng.randint(-999,999)
    if k==2: return rng.choice([True,False])
    if k==3: return rng.uniform(-1e9,1e9)
    if k==4: return datetime.datetime(rng.randint(1901,2099),rng.randint(1,12),rng.randint(1,28),rng.randint(0,23),rng.randint(0,59),rng.randint(0,59))
    if k==5: return bytes(rng.randrange(256) for _ in range(rng.randint(0,80)))
    if k==6: return [v(d+1) for _ in range(rng.randint(0,4))]
    return {s() or 'k'+str(i): v(d+1) for i in range(rng.randint(0,4))}
def tag(x):
    if isinstance(x,bool): return ['b',x]
    if isinstance(x,int): return ['i',str(x)]
    if isinstance(x,float): return ['r',x]
    if isinstance(x,str): return ['s',x]
    if isinstance(x,bytes): return ['d',base64.b64encode(x).decode()]
    if isinstance(x,datetime.datetime): return ['t',x.strftime('%Y-%m-%dT%H:%M:%SZ')]
    if isinstance(x,list): return ['a',[tag(y) for y in x]]
    return ['o',[[k,tag(y)] for k,y in x.items()]]
for _ in range(300):
    x={'root':v(0)}
    print(json.dumps([plistlib.dumps(x).decode(), tag(x)]))`);
  t.is(r.status, 0, r.stderr);
  type Tagged = [string, unknown];
  const untag = (x: Tagged): unknown => {
    const [k, v] = x;
    if (k === 'i') return Number(v) <= Number.MAX_SAFE_INTEGER && Number(v) >= Number.MIN_SAFE_INTEGER ? Number(v) : `big:${v as string}`;
    if (k === 'd') return Buffer.from(v as string, 'base64').toString('hex');
    if (k === 't') return new Date(v as string).toISOString();
    if (k === 'a') return (v as Tagged[]).map(untag);
    if (k === 'o') return Object.fromEntries((v as [string, Tagged][]).map(([key, y]) => [key, untag(y)]));
    return v;
  };
  const plain = (x: unknown): unknown =>
    x instanceof Uint8Array ? Buffer.from(x).toString('hex') : x instanceof Date ? x.toISOString() : Array.isArray(x) ? x.map(plain) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).map(([k, y]) => [k, plain(y)])) : x;
  const lines = r.stdout.trim().split('\n');
  t.is(lines.length, 300);
  let big = 0;
  for (const line of lines) {
    const [xml, expected] = JSON.parse(line) as [string, Tagged];
    const want = untag(expected);
    if (JSON.stringify(want).includes('"big:')) {
      // Beyond 2^53: refused (never rounded), as the parser promises.
      t.throws(() => parsePlistXml(xml), { instanceOf: PlistSyntaxError });
      big++;
      continue;
    }
    t.deepEqual(plain(parsePlistXml(xml)), want, xml);
  }
  t.true(big < 300);
});
