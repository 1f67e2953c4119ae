import test from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPkcs12 } from '../../src/certs/pkcs12-read.js';
import { randomPassword, toPkcs12 } from '../../src/certs/pkcs12.js';
import { sha1Repeat } from '../../src/certs/sha1-loop.js';
import { fixture } from '../helpers/fixture-store.js';
import { need, openssl, tmp } from '../helpers/tools.js';

test('the unrolled SHA-1 loop equals node:crypto applied n times', (t) => {
  for (const n of [0, 1, 2, 63, 64, 2047]) {
    const x = randomBytes(20);
    let a = x;
    for (let i = 0; i < n; i++) a = createHash('sha1').update(a).digest();
    t.deepEqual(sha1Repeat(x, n), a, `n=${n}`);
  }
});

test('our PKCS#12 opens in openssl with a non-ASCII password, in the iOS form, and round-trips through our reader', (t) => {
  const id = fixture('alice-signing');
  const password = 'pässwörd ✓';
  const der = toPkcs12(id.certificate, id.privateKey, { password, friendlyName: 'Alice' });
  const back = readPkcs12(der, password);
  t.is(back.keys.length, 1);
  t.is(back.certificates.length, 1);
  t.deepEqual([...back.algorithms], ['pbeWithSHAAnd3-KeyTripleDES-CBC']);
  t.is(back.macDigest, 'sha1');
  t.throws(() => readPkcs12(der, 'wrong'), { code: 'ERR_INPUT_INVALID', message: 'The PKCS#12 password is wrong, or the file is damaged' });
  t.throws(() => toPkcs12(id.certificate, id.privateKey, { password: '' }), { code: 'ERR_INPUT_INVALID' });
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'a.p12'), der);
  const r = openssl(['pkcs12', '-in', join(dir, 'a.p12'), '-info', '-nodes', '-passin', `pass:${password}`]);
  t.is(r.status, 0, r.stderr.toString());
  t.regex(r.stderr.toString(), /MAC: sha1, Iteration 2048/);
  t.regex(r.stderr.toString(), /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2048/);
});

test('a profile\'s PKCS#12 (a random password) uses 16 iterations and opens in openssl; a chosen password keeps 2048; out-of-range counts are refused', async (t) => {
  const { createMemoryStore } = await import('../../src/store/memory-store.js');
  const { generateProfile } = await import('../../src/profile/generate.js');
  const store = await createMemoryStore();
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  const p = await generateProfile({ store, template: 'smime-identities', user: 'alice@example.com', sign: false, embedPkcs12Passwords: false });
  const payload = (p.plist as { PayloadContent: { PayloadType: string; PayloadContent: Uint8Array }[] }).PayloadContent.find((x) => x.PayloadType === 'com.apple.security.pkcs12')!;
  const password = p.passwords[0]!.password;
  const back = readPkcs12(Buffer.from(payload.PayloadContent), password);
  t.is(back.keys.length, 1);
  const id = fixture('alice-signing');
  for (const bad of [0, 1.5, 100_001]) t.throws(() => toPkcs12(id.certificate, id.privateKey, { password: 'x', iterations: bad }), { code: 'ERR_INPUT_INVALID' });
  if (!need(t, 'openssl')) return;
  const dir = tmp(t);
  writeFileSync(join(dir, 'p.p12'), payload.PayloadContent);
  writeFileSync(join(dir, 'pw'), password);
  const r = openssl(['pkcs12', '-in', join(dir, 'p.p12'), '-info', '-nodes', '-passin', `file:${join(dir, 'pw')}`]);
  t.is(r.status, 0, r.stderr.toString());
  t.regex(r.stderr.toString(), /MAC: sha1, Iteration 16\n/);
  t.regex(r.stderr.toString(), /Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 16\n/);
  t.regex(r.stdout.toString(), /BEGIN PRIVATE KEY/);
});

test('random passwords are 24 characters from the unambiguous alphabet', (t) => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = randomPassword();
    t.regex(p, /^[A-HJ-NP-Za-km-z2-9]{24}$/);
    seen.add(p);
  }
  t.is(seen.size, 200);
});
