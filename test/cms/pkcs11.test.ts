/**
 * Signing with keys in a real PKCS#11 token (SoftHSM2), through the library and the CLI;
 * every signature checked by `openssl cms -verify`.
 */
import test, { type ExecutionContext } from 'ava';
import { createRequire } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { join } from 'node:path';
import { createCertificateAuthority, type CertificateAuthority } from '../../src/certs/ca.js';
import { toPem } from '../../src/certs/pem.js';
import { signProfile } from '../../src/cms/sign.js';
import { pkcs11Signer, ecdsaRawToDer } from '../../src/cms/pkcs11.js';
import { parsePkcs11Uri, redactPkcs11Uri } from '../../src/cms/pkcs11-uri.js';
import { verifyProfile } from '../../src/cms/verify.js';
import { isProfilesmithError } from '../../src/errors.js';
import { aliceStore, PASSPHRASE } from '../helpers/fixture.js';
import { softhsm } from '../helpers/softhsm.js';
import { BIN, cli, need, openssl, startServer, tmp } from '../helpers/tools.js';

const XML = `<?xml version="1.0" encoding="UTF-8"?>
<plist version="1.0"><dict>
<key>PayloadContent</key><array/>
<key>PayloadDisplayName</key><string>HSM test</string>
<key>PayloadIdentifier</key><string>com.example.hsm</string>
<key>PayloadType</key><string>Configuration</string>
<key>PayloadUUID</key><string>8E7D2B0C-1E50-4B59-9B3F-6C1A2D0E4F11</string>
<key>PayloadVersion</key><integer>1</integer>
</dict></plist>
`;
const PIN = { rsa: '4711-rsa', ec: '4711-ec' };

const hsm = softhsm();
let rsa: CertificateAuthority;
let ec: CertificateAuthority;
let dir: string;
let testModule: unknown;

function ready(t: ExecutionContext): boolean {
  if ('missing' in hsm) {
    t.log(`SKIPPED: ${hsm.missing}`);
    t.pass();
    return false;
  }
  return true;
}

const modulePath = 'missing' in hsm ? '' : hsm.module;
const uri = (token: string, extra = '') => `pkcs11:token=${token};object=profile-signer${extra}?module-path=${modulePath}`;

test.before(async () => {
  if ('missing' in hsm) return;
  [rsa, ec] = await Promise.all([
    createCertificateAuthority({ organization: 'HSM RSA' }),
    createCertificateAuthority({ organization: 'HSM EC', keyAlgorithm: 'ec-p256' }),
  ]);
  hsm.initToken('rsa-token', PIN.rsa);
  hsm.initToken('ec-token', PIN.ec);
  hsm.importKey('rsa-token', PIN.rsa, rsa.signer.privateKey, 'profile-signer', '01');
  hsm.importKey('ec-token', PIN.ec, ec.signer.privateKey, 'profile-signer', '02');
  // The RSA token also holds its certificate, for the "certificate from the token" path.
  const p = createRequire(import.meta.url)('pkcs11js');
  const m = new p.PKCS11();
  // Kept referenced for the whole file: a collected PKCS11 object dlcloses its handle. And
  // initialized with OS locking, as a library used from several threads must be (the signers'
  // C_Sign runs on libuv's threads); a bare C_Initialize() crashed SoftHSM under load in CI.
  testModule = m;
  m.load(hsm.module);
  m.C_Initialize({ flags: p.CKF_OS_LOCKING_OK });
  const slot = m.C_GetSlotList(true).find((s: Buffer) => m.C_GetTokenInfo(s).label.trim() === 'rsa-token');
  const session = m.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
  m.C_Login(session, p.CKU_USER, PIN.rsa);
  m.C_CreateObject(session, [
    { type: p.CKA_CLASS, value: p.CKO_CERTIFICATE },
    { type: p.CKA_CERTIFICATE_TYPE, value: p.CKC_X_509 },
    { type: p.CKA_TOKEN, value: true },
    { type: p.CKA_LABEL, value: 'profile-signer' },
    { type: p.CKA_ID, value: Buffer.from([1]) },
    { type: p.CKA_VALUE, value: rsa.signer.certificate },
    { type: p.CKA_SUBJECT, value: Buffer.from([0x30, 0]) },
  ]);
  m.C_Logout(session);
  m.C_CloseSession(session);
  // Left initialized on purpose: the library must cope with a module someone else initialized.
  dir = mkdtempSync(join(tmpdir(), 'profilesmith-pkcs11-'));
  writeFileSync(join(dir, 'rsa-root.pem'), toPem(rsa.root.certificate));
  writeFileSync(join(dir, 'rsa-signer.pem'), toPem(rsa.signer.certificate));
  writeFileSync(join(dir, 'rsa-chain.pem'), toPem(rsa.intermediate.certificate));
  writeFileSync(join(dir, 'ec-root.pem'), toPem(ec.root.certificate));
  writeFileSync(join(dir, 'ec-signer.pem'), toPem(ec.signer.certificate));
  writeFileSync(join(dir, 'ec-chain.pem'), toPem(ec.intermediate.certificate));
  writeFileSync(join(dir, 'rsa-pin'), PIN.rsa + '\n', { mode: 0o600 });
  writeFileSync(join(dir, 'profile.xml'), XML);
});

test.after.always(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function opensslVerifies(t: ExecutionContext, der: Uint8Array, root: string): void {
  if (!need(t, 'openssl')) return;
  const out = join(dir, `cms-${Math.random().toString(36).slice(2)}.der`);
  writeFileSync(out, der);
  const r = openssl(['cms', '-verify', '-inform', 'DER', '-in', out, '-CAfile', join(dir, root), '-purpose', 'any']);
  t.is(r.status, 0, r.stderr.toString());
}

test('URIs: RFC 7512 attributes, percent-encoding, and a PIN that never shows in messages', (t) => {
  const u = parsePkcs11Uri('pkcs11:token=My%20HSM;object=signer;id=%01%a0;type=private?module-path=/usr/lib/x.so&pin-value=s%3Dcret');
  t.is(u.token, 'My HSM');
  t.is(u.object, 'signer');
  t.deepEqual([...u.id!], [1, 0xa0]);
  t.is(u.modulePath, '/usr/lib/x.so');
  t.is(u.pinValue, 's=cret');
  t.is(redactPkcs11Uri('pkcs11:token=a?module-path=/x&pin-value=s%3Dcret'), 'pkcs11:token=a?module-path=/x&pin-value=***');
  for (const bad of ['token=a', 'pkcs11:token=%zz', 'pkcs11:token=a;token=b', 'pkcs11:object=x;type=public', 'pkcs11:=x']) {
    const e = t.throws(() => parsePkcs11Uri(bad));
    t.is((e as { code?: string }).code, 'ERR_INPUT_INVALID', bad);
  }
  const e = t.throws(() => parsePkcs11Uri('pkcs11:token=%zz?pin-value=hunter2'));
  t.false(e!.message.includes('hunter2'));
});

test('ECDSA r||s from a token becomes DER ECDSA-Sig-Value (high bits padded, leading zeros dropped)', (t) => {
  const raw = Buffer.concat([Buffer.from([0x80, ...Array(31).fill(1)]), Buffer.from([0, 0, ...Array(30).fill(2)])]);
  const der = ecdsaRawToDer(raw);
  t.is(der[0], 0x30);
  t.is(der[2], 0x02);
  t.is(der[3], 33); // 0x80… needs a zero byte
  t.is(der[4], 0);
  t.is(der[4 + 33], 0x02);
  t.is(der[4 + 34], 30); // two leading zeros dropped
});

test('RSA key in the token: signProfile output verifies in openssl and verifyProfile', async (t) => {
  if (!ready(t)) return;
  const signer = await pkcs11Signer({ uri: uri('rsa-token'), pin: PIN.rsa, certificate: toPem(rsa.signer.certificate), chain: [rsa.intermediate.certificate] });
  t.teardown(() => signer.close());
  t.is(signer.keyType, 'rsa');
  t.false(signer.description.includes(PIN.rsa));
  const der = await signProfile(XML, signer);
  const r = await verifyProfile(der, { ca: [rsa.root.certificate] });
  t.true(r.valid, JSON.stringify(r.reasons));
  t.is(r.chain.length, 3);
  opensslVerifies(t, der, 'rsa-root.pem');
});

test('ECDSA P-256 key in the token, by id, with the PIN from a pin-source file', async (t) => {
  if (!ready(t)) return;
  writeFileSync(join(dir, 'ec-pin'), PIN.ec + '\n', { mode: 0o600 });
  const signer = await pkcs11Signer({
    uri: `pkcs11:token=ec-token;id=%02?module-path=${modulePath}&pin-source=file:${join(dir, 'ec-pin')}`,
    certificate: ec.signer.certificate,
    chain: toPem(ec.intermediate.certificate),
  });
  t.teardown(() => signer.close());
  t.is(signer.keyType, 'ec');
  const der = await signProfile(XML, signer);
  t.true((await verifyProfile(der, { ca: [ec.root.certificate] })).valid);
  opensslVerifies(t, der, 'ec-root.pem');
});

test('the certificate can come from the token; 64 concurrent signatures through a pool of 2 sessions all verify', async (t) => {
  if (!ready(t)) return;
  const signer = await pkcs11Signer({ module: modulePath, token: 'rsa-token', label: 'profile-signer', pin: PIN.rsa, chain: [rsa.intermediate.certificate], sessions: 2 });
  t.teardown(() => signer.close());
  t.deepEqual(Buffer.from(signer.certificate), rsa.signer.certificate);
  const all = await Promise.all(Array.from({ length: 64 }, (_, i) => signProfile(XML.replace('Configuration', `Configuration${i}`), signer)));
  const results = await Promise.all(all.map((der) => verifyProfile(der, { ca: [rsa.root.certificate] })));
  t.true(results.every((r) => r.valid));
  await signer.close();
  await signer.close(); // idempotent
  const e = await t.throwsAsync(signProfile(XML, signer));
  t.is((e as { code?: string }).code, 'ERR_PKCS11');
});

// Serial, so it runs before the other tests: PKCS#11 login is per process, and once a signer has
// logged in, the token accepts any PIN (CKR_USER_ALREADY_LOGGED_IN) until logout.
test.serial('typed failures: wrong PIN, no PIN, unknown token, unknown key, wrong certificate, missing module', async (t) => {
  if (!ready(t)) return;
  const cases: [string, Parameters<typeof pkcs11Signer>[0], string][] = [
    ['wrong PIN', { uri: uri('rsa-token'), pin: 'nope-1234', certificate: rsa.signer.certificate }, 'pin-incorrect'],
    ['no PIN', { uri: uri('rsa-token'), certificate: rsa.signer.certificate }, 'pin-missing'],
    ['unknown token', { uri: uri('no-such-token'), pin: PIN.rsa }, 'token-not-found'],
    ['unknown key', { uri: `pkcs11:token=rsa-token;object=nobody?module-path=${modulePath}`, pin: PIN.rsa }, 'key-not-found'],
    ['certificate of another key', { uri: uri('rsa-token'), pin: PIN.rsa, certificate: ec.signer.certificate }, 'key-mismatch'],
    ['missing module', { uri: 'pkcs11:token=a;object=b?module-path=/nonexistent/libnothing.so', pin: 'x' }, 'module'],
  ];
  for (const [what, options, reason] of cases) {
    const e = await t.throwsAsync(pkcs11Signer(options), undefined, what);
    t.true(isProfilesmithError(e), what);
    t.is((e as { code?: string }).code, 'ERR_PKCS11', what);
    t.is((e as { reason?: string }).reason, reason, what);
    t.false(e!.message.includes(PIN.rsa), what);
  }
  // The token still works after all that (no lockout from one wrong PIN, sessions closed).
  const signer = await pkcs11Signer({ uri: uri('rsa-token'), pin: PIN.rsa });
  await signer.close();
  t.pass();
});

const hsmEnv = () => ({ SOFTHSM2_CONF: 'missing' in hsm ? '' : hsm.conf, PROFILESMITH_PASSPHRASE: PASSPHRASE });

test('CLI sign --signer --pin-file --signer-cert --chain: openssl verifies; the PIN appears nowhere', async (t) => {
  if (!ready(t)) return;
  const out = join(dir, 'cli-signed.mobileconfig');
  const r = cli(['sign', join(dir, 'profile.xml'), '--signer', uri('rsa-token'), '--pin-file', join(dir, 'rsa-pin'), '--signer-cert', join(dir, 'rsa-signer.pem'), '--chain', join(dir, 'rsa-chain.pem'), '-o', out], { env: hsmEnv() });
  t.is(r.status, 0, r.stderr);
  opensslVerifies(t, readFileSync(out), 'rsa-root.pem');
  t.false(r.stderr.includes(PIN.rsa) || r.stdout.includes(PIN.rsa));

  // PIN by environment; pin-value in the URI works but warns that argv is visible.
  const viaEnv = cli(['sign', join(dir, 'profile.xml'), '--signer', uri('rsa-token'), '--signer-cert', join(dir, 'rsa-signer.pem'), '-o', '-'], { env: { ...hsmEnv(), PROFILESMITH_PKCS11_PIN: PIN.rsa } });
  t.is(viaEnv.status, 0, viaEnv.stderr);
  const inArgv = cli(['sign', join(dir, 'profile.xml'), '--signer', `${uri('rsa-token')}&pin-value=${PIN.rsa}`, '-o', join(dir, 'argv.mobileconfig')], { env: hsmEnv() });
  t.is(inArgv.status, 0, inArgv.stderr);
  t.regex(inArgv.stderr, /visible to other users/);

  // A wrong PIN: one line, exit 1, no output file.
  writeFileSync(join(dir, 'bad-pin'), 'nope-0000\n', { mode: 0o600 });
  const bad = cli(['sign', join(dir, 'profile.xml'), '--signer', uri('rsa-token'), '--pin-file', join(dir, 'bad-pin'), '-o', join(dir, 'bad.mobileconfig')], { env: hsmEnv() });
  t.is(bad.status, 1);
  t.is(bad.stderr.trim().split('\n').filter((l) => l.startsWith('error')).length, 1, bad.stderr);
  t.regex(bad.stderr, /PIN .* is wrong/);
  t.false(bad.stderr.includes('    at '));
  t.false(existsSync(join(dir, 'bad.mobileconfig')));
  // --signer-cert without --signer is a usage error.
  t.is(cli(['sign', join(dir, 'profile.xml'), '--signer-cert', join(dir, 'rsa-signer.pem'), '-o', '-'], { env: hsmEnv() }).status, 2);
});

test('CLI generate and batch (2 workers) sign through the token: every profile verifies in openssl', async (t) => {
  if (!ready(t)) return;
  const work = tmp(t);
  const storeDir = join(work, 'store');
  const store = await aliceStore(storeDir);
  for (const u of ['bob', 'carol', 'dave']) {
    await store.issueCertificate({ user: `${u}@example.com`, name: u, purpose: 'smime-signing' });
    await store.issueCertificate({ user: `${u}@example.com`, name: u, purpose: 'smime-encryption' });
  }
  const signerArgs = ['--signer', uri('ec-token'), '--signer-cert', join(dir, 'ec-signer.pem'), '--chain', join(dir, 'ec-chain.pem')];
  const env = { ...hsmEnv(), PROFILESMITH_PKCS11_PIN: PIN.ec };
  const g = cli(['generate', 'exchange-smime', '--store', storeDir, '--user', 'alice@example.com', '--set', 'exchange.host=mail.example.com', '-o', join(work, 'alice.mobileconfig'), ...signerArgs], { env });
  t.is(g.status, 0, g.stderr);
  opensslVerifies(t, readFileSync(join(work, 'alice.mobileconfig')), 'ec-root.pem');

  writeFileSync(join(work, 'users.csv'), 'email\nalice@example.com\nbob@example.com\ncarol@example.com\ndave@example.com\n');
  const b = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', join(work, 'users.csv'), '--out', join(work, 'out'), '--set', 'exchange.host=mail.example.com', '--jobs', '2', '--json', ...signerArgs], { env });
  t.is(b.status, 0, b.stderr);
  t.is(JSON.parse(b.stdout).generated, 4);
  const files = readdirSync(join(work, 'out')).filter((f) => f.endsWith('.mobileconfig'));
  t.is(files.length, 4);
  for (const f of files) {
    const r = await verifyProfile(readFileSync(join(work, 'out', f)), { ca: [ec.root.certificate] });
    t.true(r.valid, f);
    t.is(r.signer?.subject.includes('HSM EC'), true);
  }
  opensslVerifies(t, readFileSync(join(work, 'out', files[0]!)), 'ec-root.pem');

  // A wrong PIN fails the batch once, before any worker starts, and writes nothing.
  const bad = cli(['batch', 'exchange-smime', '--store', storeDir, '--users', join(work, 'users.csv'), '--out', join(work, 'out2'), '--set', 'exchange.host=mail.example.com', ...signerArgs], { env: { ...env, PROFILESMITH_PKCS11_PIN: 'nope-0000' } });
  t.is(bad.status, 1);
  t.regex(bad.stderr, /PIN .* is wrong/);
  t.false(existsSync(join(work, 'out2')) && readdirSync(join(work, 'out2')).some((f) => f.endsWith('.mobileconfig')));
});

test('CLI serve --signer: the downloaded profile is signed by the token key', async (t) => {
  if (!ready(t)) return;
  const work = tmp(t);
  const storeDir = join(work, 'store');
  await aliceStore(storeDir);
  const env = { ...hsmEnv(), PROFILESMITH_PKCS11_PIN: PIN.rsa };
  const { base, proc, log } = await startServer(t, [BIN, 'serve', '--store', storeDir, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com', '--tls-from-store', '--port', '0', '--signer', uri('rsa-token'), '--chain', join(dir, 'rsa-chain.pem')], env);
  const storeCa = cli(['ca', 'export', '--store', storeDir]).stdout;
  const link = cli(['link', 'create', '--store', storeDir, '--user', 'alice@example.com', '--base-url', base, '--template', 'exchange-smime', '--set', 'exchange.host=mail.example.com'], { env: { PROFILESMITH_PASSPHRASE: PASSPHRASE } }).stdout.trim();
  const body = await new Promise<Buffer>((resolve, reject) => {
    request(`${link}/install`, { ca: storeCa, agent: false, method: 'POST' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
    })
      .on('error', reject)
      .end();
  });
  const r = await verifyProfile(body, { ca: [rsa.root.certificate] });
  t.true(r.valid, `${JSON.stringify(r.reasons)} ${log()}`);
  t.true(r.signer?.subject.includes('HSM RSA'));
  t.false(log().includes(PIN.rsa));
  proc.kill('SIGTERM');
});
