/**
 * Properties over hostile input, shared by the test suite (a short run in CI) and the campaign
 * (`npm run fuzz`, many more runs, failing inputs saved). Each property takes one generated
 * input and throws when profilesmith misbehaves on it: an untyped exception, a wrong result,
 * or too much time.
 */
import fc from 'fast-check';
import { createHash, createPublicKey } from 'node:crypto';
import { children, DerError, nul, octets, oid, parseDer, seq, tlv } from '../../src/asn1/der.js';
import { berToDer } from '../../src/asn1/ber.js';
import { buildOcspResponse, certIdMatcher, OcspMalformed, parseOcspRequest } from '../../src/pki/ocsp.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertCertificateEmail, assertEmail } from '../../src/certs/email.js';
import { readIdentity } from '../../src/certs/import.js';
import { toPem } from '../../src/certs/pem.js';
import { toPkcs12 } from '../../src/certs/pkcs12.js';
import { checkSignerInfo, parseSignedData, verifyProfile } from '../../src/cms/verify.js';
import { envelope } from '../../src/cms/envelope.js';
import { createScepService, type ScepHttpRequest, type ScepHttpResponse } from '../../src/scep/service.js';
import { initStore, type FileStore } from '../../src/store/fs-store.js';
import { pkiMessage, requester } from '../helpers/scep.js';
import { isProfilesmithError } from '../../src/errors.js';
import { profileFileName } from '../../src/profile/file-name.js';
import { generateProfile } from '../../src/profile/generate.js';
import { inspectProfile } from '../../src/profile/inspect.js';
import { lintProfile } from '../../src/profile/lint.js';
import { parseProfile } from '../../src/profile/parse.js';
import { isPlistDict, parsePlistXml, type PlistValue } from '../../src/profile/plist-xml.js';
import { createMemoryStore, type MemoryStore } from '../../src/store/memory-store.js';
import { CsvParser, csvField } from '../../src/util/csv.js';
import Handlebars from 'handlebars';
import { describeTemplateSyntax } from '../../src/profile/template-syntax.js';
import { BIN, snapshotDir } from '../helpers/tools.js';
import { createServer } from 'node:http';
import { connect as netConnect } from 'node:net';
import { KdfBudget, readPkcs12, readPkcs12Async } from '../../src/certs/pkcs12-read.js';
import { createPkiHandler } from '../../src/pki/handler.js';
import { createScepHandler } from '../../src/scep/handler.js';
import { createProfileHandler } from '../../src/server/handler.js';
import { requestTarget } from '../../src/server/request-target.js';
import { hostileTargets } from '../helpers/hostile-targets.js';
import { pkcs12Bomb } from '../helpers/pkcs12-bomb.js';

/**
 * Time one input may take before it counts as a hang: far above any honest run (the slowest
 * inputs take well under a second here), so a machine under load never fails it. Work bounds
 * are asserted as work (the KDF budget, bytes read), not as time.
 */
export const BOUND_MS = 60_000;

export interface Corpus {
  store: MemoryStore;
  /** A valid signed profile (DER CMS), its XML and, when python3 is here, its binary plist. */
  signed: Buffer;
  xml: Buffer;
  binary?: Buffer;
  /** One identity as a PKCS#12 (password `fuzz`), a PEM bundle (certificate + key) and a DER certificate. */
  p12: Buffer;
  pem: Buffer;
  der: Buffer;
  roots: Buffer[];
  /** An OCSP request (with a nonce) for the signing certificate, and an identity to sign answers with. */
  ocsp: Buffer;
  responder: { certificate: Buffer; privateKey: import('node:crypto').KeyObject };
  /** A SCEP service over a file store, with a valid PKCSReq for it and its parts (absent without openssl). */
  scep?: { service: (r: ScepHttpRequest) => Promise<ScepHttpResponse>; message: Buffer; csr: Buffer; ra: Buffer; requester: { key: import('node:crypto').KeyObject; certificate: Buffer }; store: FileStore };
}

/** The SCEP part of the corpus: a file store in a temporary directory (removed at exit) and a PKCSReq made by openssl. */
async function scepCorpus(): Promise<Corpus['scep']> {
  if (spawnSync('openssl', ['version']).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-fuzz-scep-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const store = await initStore(join(dir, 'store'), { organization: 'Fuzz Corp', passphrase: 'fuzz passphrase of length', kdfCost: 14 });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  const { token } = await store.challenges.create('alice@example.com');
  const who = requester(dir, 'device', { challenge: token });
  const ra = (await store.scepRa()).certificate;
  return { service: createScepService({ store }), message: pkiMessage(envelope(who.csr, ra), who), csr: who.csr, ra, requester: who, store };
}

export async function makeCorpus(): Promise<Corpus> {
  const store = await createMemoryStore({ organization: 'Fuzz Corp' });
  const sig = await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-signing' });
  await store.issueCertificate({ user: 'alice@example.com', name: 'Alice', purpose: 'smime-encryption' });
  const profile = await generateProfile({ store, template: 'exchange-smime', user: 'alice@example.com', data: { exchange: { host: 'mail.example.com' } } });
  const identity = await store.getIdentity(sig.serial);
  const p12 = toPkcs12(identity.certificate, identity.privateKey, { password: 'fuzz' });
  const pem = Buffer.from(toPem(identity.certificate) + identity.privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const py = spawnSync('python3', ['-c', 'import plistlib,sys; sys.stdout.buffer.write(plistlib.dumps(plistlib.loads(sys.stdin.buffer.read()), fmt=plistlib.FMT_BINARY))'], { input: profile.xml });
  const scep = await scepCorpus();
  return {
    store,
    signed: Buffer.from(profile.bytes),
    xml: Buffer.from(profile.xml),
    ...(py.status === 0 ? { binary: py.stdout } : {}),
    p12,
    pem,
    der: identity.certificate,
    roots: (await store.trustChain()).roots,
    ocsp: ocspRequestFor(identity.certificate, (await store.trustChain()).intermediates[0]!),
    responder: identity,
    ...(scep ? { scep } : {}),
  };
}

/** An RFC 6960 request for `leaf` (SHA-1 CertID, as openssl and iOS send) with a nonce. */
function ocspRequestFor(leaf: Buffer, issuer: Buffer): Buffer {
  const tbs = (d: Buffer) => children(children(parseDer(d))[0]!);
  const leafTbs = tbs(leaf);
  const o = leafTbs[0]?.tag === 0xa0 ? 1 : 0;
  const issuerTbs = tbs(issuer);
  const io = issuerTbs[0]?.tag === 0xa0 ? 1 : 0;
  const spki = children(issuerTbs[5 + io]!);
  const sha1 = (b: Buffer) => createHash('sha1').update(b).digest();
  const certId = seq(seq(oid('1.3.14.3.2.26'), nul()), octets(sha1(issuerTbs[4 + io]!.raw)), octets(sha1(spki[1]!.value.subarray(1))), leafTbs[o]!.raw);
  const nonce = seq(oid('1.3.6.1.5.5.7.48.1.2'), octets(octets(Buffer.alloc(16, 7))));
  return seq(seq(seq(seq(certId)), tlv(0xa2, seq(nonce))));
}

/** A byte-level mutation of a seed: flips, inserts, deletions, truncation, duplicated ranges. */
export const mutation = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ op: fc.constant('set' as const), at: fc.nat(), byte: fc.constantFrom(0x00, 0x7f, 0x80, 0xff, 0x30, 0x82, 0x3c, 0x26) }),
    fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
    fc.record({ op: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
    fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
    fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 256 }), times: fc.integer({ min: 2, max: 8 }) }),
  ),
  { minLength: 1, maxLength: 6 },
);
export type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

export function mutate(seed: Buffer, steps: Mutation): Buffer {
  let b = Buffer.from(seed);
  for (const m of steps) {
    const at = b.length ? m.at % (b.length + 1) : 0;
    switch (m.op) {
      case 'flip':
        if (b.length) b[at % b.length]! ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length) b[at % b.length] = m.byte;
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
        break;
      case 'delete':
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'repeat': {
        const part = b.subarray(at, at + m.length);
        b = Buffer.concat([b.subarray(0, at), ...Array<Buffer>(m.times).fill(part), b.subarray(at)]);
        break;
      }
    }
  }
  return b;
}

/** Runs `fn`; a typed error is a correct answer, anything else is a finding. Returns the result or undefined. */
export async function typedOrResult<T>(what: string, fn: () => T | Promise<T>): Promise<T | undefined> {
  const start = performance.now();
  try {
    return await fn();
  } catch (err) {
    if (!isProfilesmithError(err)) {
      throw new Error(`${what}: untyped ${(err as Error)?.constructor?.name ?? typeof err}: ${(err as Error)?.message ?? err}`, { cause: err });
    }
    return undefined;
  } finally {
    const ms = performance.now() - start;
    if (ms > BOUND_MS) throw new Error(`${what}: took ${ms.toFixed(0)} ms (bound ${BOUND_MS} ms)`);
  }
}

/** Strings that have broken XML, CSV, Handlebars and path handling elsewhere. */
export const NASTY = [
  ']]>', '</string>', '</string><key>PayloadType</key><string>x', '<![CDATA[x]]>', '&amp;', '&#0;', '&x;', '<!ENTITY',
  '{{', '}}', '{{user.email}}', '{{{x}}}', '{{> profile-head}}', '{{#each .}}', '\\{{x}}',
  '"', "'", ',', '\r\n', '\n', '\r', '\t', '\u0000', '\u0001', '\u001b[31m', '\u007f', '\u0085', '\u2028', '\ufeff', '\ufffe', '\uffff',
  '\u202e', '\u200b', '\u200d', '\u2066', '\u061c', '\u00ad', '\u{e0041}',
  '\ud800', '\udfff', '😀', 'é', 'e\u0301', '../', '..\\', '/', 'CON', 'nul', ' ', '.', '%00', '%2e%2e%2f', 'a'.repeat(300),
];
export const hostileString = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 3, arbitrary: fc.array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'grapheme', maxLength: 6 })), { maxLength: 6 }).map((a) => a.join('')) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: 200, maxLength: 2000 }) },
);

/** Every string value in a plist. */
function strings(v: PlistValue, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) v.forEach((x) => strings(x, out));
  else if (isPlistDict(v)) Object.values(v).forEach((x) => strings(x, out));
  return out;
}

export interface Property<T> {
  name: string;
  arbitrary: (c: Corpus) => fc.Arbitrary<T>;
  check: (c: Corpus, input: T) => Promise<void>;
  /** The bytes (or JSON) to keep of a failing input. */
  save: (c: Corpus, input: T) => Buffer;
}

function bytesOf(_c: Corpus, x: { bytes: Buffer }): Buffer {
  return x.bytes;
}

/** A mutation of one of the corpus's seeds, named by kind; the one way every property (and the campaign's saver) makes its bytes. */
export interface MutatedInput {
  kind: 'xml' | 'binary' | 'signed' | 'p12' | 'pem' | 'der' | 'random';
  m: Mutation;
  random?: Uint8Array;
}
export function mutatedBytes(c: Corpus, input: MutatedInput): Buffer {
  if (input.kind === 'random') return Buffer.from(input.random ?? []);
  const seed = { xml: c.xml, binary: c.binary ?? c.xml, signed: c.signed, p12: c.p12, pem: c.pem, der: c.der }[input.kind];
  return mutate(seed, input.m);
}


/** lint, inspect and verify over one profile file's bytes (the profile-bytes property, and corpus replay). */
export async function checkProfileBytes(c: Corpus, bytes: Buffer): Promise<void> {
  await typedOrResult('parseProfile', () => parseProfile(bytes));
  const lint = await typedOrResult('lintProfile', () => lintProfile(bytes));
  if (lint && !Array.isArray(lint.findings)) throw new Error('lintProfile: no findings array');
  await typedOrResult('inspectProfile', () => inspectProfile(bytes));
  const v = await typedOrResult('verifyProfile', () => verifyProfile(bytes, { ca: c.roots }));
  // A mutated profile that still verifies must carry exactly the content that was signed.
  if (v?.valid && !Buffer.from(v.content).equals(c.xml)) throw new Error('verifyProfile: valid, but with other content');
}


/** The composed handlers (SCEP, PKI, profiles) of a file store, on a loopback port: made once, for the http-target property. */
let targetServer: Promise<number> | undefined;
function handlersServer(c: Corpus): Promise<number> {
  return (targetServer ??= (async () => {
    const store = c.scep?.store;
    const profiles = createProfileHandler({ store: store ?? c.store, links: store?.links ?? c.store.links, template: 'exchange-smime', data: { exchange: { host: 'mail.example.com' } }, rateLimit: 1e9, guessLimit: 1e9 });
    const pki = store ? createPkiHandler({ store, rateLimit: 1e9 }) : undefined;
    const scep = store ? createScepHandler({ store, rateLimit: 1e9, failureLimit: 1e9 }) : undefined;
    const server = createServer((req, res) => {
      if (scep?.(req, res)) return;
      if (!pki?.(req, res)) profiles(req, res);
    });
    server.unref();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return (server.address() as { port: number }).port;
  })());
}

/** One request with `target` sent byte for byte: the status code, or 0 when the server closed without one. */
function rawRequest(port: number, target: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(BOUND_MS, () => socket.destroy(new Error('no answer')));
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from('GET '), target, Buffer.from(' HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')])));
    socket.on('data', (d: Buffer) => (data += d.toString('latin1')));
    const done = () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0));
    socket.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? done() : reject(err)));
    socket.on('close', done);
  });
}

/** Pieces request targets are made of: schemes, hosts, ports, paths, percent-escapes, controls. */
const targetPiece = fc.oneof(
  fc.constantFrom('http://', 'https://', '//', '/', 'ftp://', '*', ':', '@', '[', ']', '::1', '%', '%zz', '%00', '%2F', '%E0%A4', '?', '#', '&', '=', '..', '.'),
  fc.constantFrom('a', 'localhost', '127.0.0.1', '[::1]', 'xn--', '\u00ff', '\u202e', '\x00', '\r', '\n', '\t', ' ', '\x1b'),
  fc.constantFrom(':99999', ':-1', ':0', ':65536', ':abc', ':80'),
  fc.constantFrom('/p/', '/p/AAAAAAAAAAAAAAAAAAAAAA', '/ocsp/', '/ocsp', '/crl/root.crl', '/ca/issuing.cer', '/scep', '?operation=GetCACaps', '?operation=PKIOperation&message=', '/install', '/trust'),
  fc.string({ unit: 'binary-ascii', maxLength: 12 }),
);

/** A PKCS#12 structure around the bomb builder: how many safes, what KDF and how much of it, a MAC or none, then mutated. */
interface Pkcs12Shape {
  safes: number;
  iterations: number;
  kind: 'legacy' | 'pbes2';
  mac: number | null;
  m: Mutation | null;
}
const PKCS12_FUZZ_PASSWORD = 'fuzz';
/** The fuzz budget: small, so that the budget is reached often and quickly. */
const PKCS12_FUZZ_BUDGET = 60_000;

export const properties = {
  /** The XML plist parser: random and mutated text ends in a value or ERR_PROFILE_PARSE, within the bound. */
  plistXml: {
    name: 'plist-xml',
    arbitrary: (c) =>
      fc.oneof(
        fc.tuple(fc.constant(c.xml), mutation).map(([s, m]) => ({ bytes: mutate(s, m) })),
        fc.array(fc.oneof(fc.constantFrom('<plist>', '</plist>', '<dict>', '</dict>', '<key>', '</key>', '<array>', '<string>', '</string>', '<integer>', '<real>', '<date>', '<data>', '<true/>', '<!DOCTYPE x [<!ENTITY a "&a;&a;">]>', '&a;', '&#x10FFFF;', '<?xml version="1.0"?>', '<!--', '-->'), hostileString), { maxLength: 40 }).map((a) => ({ bytes: Buffer.from(a.join('')) })),
      ),
    check: async (_c, input) => {
      await typedOrResult('parsePlistXml', () => parsePlistXml(input.bytes.toString('utf8')));
    },
    save: bytesOf,
  } satisfies Property<{ bytes: Buffer }>,

  /** lint, inspect and verify over mutated XML, binary and signed profiles. */
  profileBytes: {
    name: 'profile-bytes',
    arbitrary: () => fc.record({ kind: fc.constantFrom('xml', 'binary', 'signed', 'signed', 'random') as fc.Arbitrary<MutatedInput['kind']>, m: mutation, random: fc.uint8Array({ maxLength: 512 }) }),
    check: (c, input) => checkProfileBytes(c, mutatedBytes(c, input)),
    save: mutatedBytes,
  } satisfies Property<MutatedInput>,

  /** OCSP: mutated and random requests parse or are malformed (never another error); what parses is answered with well-formed DER. */
  ocspRequest: {
    name: 'ocsp-request',
    arbitrary: () => fc.record({ random: fc.option(fc.uint8Array({ maxLength: 512 }), { freq: 4 }), m: mutation }),
    check: async (c, input) => {
      const bytes = input.random ? Buffer.from(input.random) : mutate(c.ocsp, input.m);
      let request;
      try {
        request = parseOcspRequest(bytes);
      } catch (err) {
        if (err instanceof OcspMalformed) return;
        throw new Error(`parseOcspRequest threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
      const ours = certIdMatcher(c.responder.certificate);
      for (const id of request.certIds) ours(id);
      const now = new Date(0);
      const der = buildOcspResponse({ responder: c.responder, answers: request.certIds.map((id) => ({ certId: id.raw, status: 'unknown' as const })), thisUpdate: now, nextUpdate: now, ...(request.nonce ? { nonce: request.nonce } : {}) });
      parseDer(der);
    },
    save: (c, input) => (input.random ? Buffer.from(input.random) : mutate(c.ocsp, input.m)),
  } satisfies Property<{ random: Uint8Array | null; m: Mutation }>,

  /** BER reading: mutated and random bytes end in DER or a DerError; DER comes back byte for byte; the DER written parses as DER. */
  ber: {
    name: 'ber',
    arbitrary: () => fc.record({ random: fc.option(fc.uint8Array({ maxLength: 512 }), { freq: 4 }), m: mutation }),
    check: async (c, input) => {
      const same = berToDer(c.signed);
      if (same.converted || !same.der.equals(c.signed)) throw new Error('berToDer changed DER input');
      const bytes = input.random ? Buffer.from(input.random) : mutate(c.signed, input.m);
      let out;
      try {
        out = berToDer(bytes);
      } catch (err) {
        if (err instanceof DerError) return;
        throw new Error(`berToDer threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
      }
      parseDer(out.der);
      // Converting again changes nothing: the output is DER.
      if (berToDer(out.der).converted) throw new Error('berToDer output is not DER');
    },
    save: (c, input) => (input.random ? Buffer.from(input.random) : mutate(c.signed, input.m)),
  } satisfies Property<{ random: Uint8Array | null; m: Mutation }>,

  /** Import of mutated PKCS#12, PEM and DER. */
  importBytes: {
    name: 'import',
    arbitrary: () => fc.record({ kind: fc.constantFrom('p12', 'pem', 'der') as fc.Arbitrary<MutatedInput['kind']>, m: mutation }),
    check: async (c, input) => {
      const bytes = mutatedBytes(c, input);
      const bundle = await typedOrResult('readIdentity', () => readIdentity(bytes, { password: 'fuzz' }));
      if (bundle) {
        // Whatever was read must be coherent: the key belongs to the certificate.
        const pub = createPublicKey(bundle.privateKey).export({ type: 'spki', format: 'der' });
        if (!bundle.certificate || pub.length === 0) throw new Error('readIdentity: an identity without certificate or key');
      }
    },
    save: mutatedBytes,
  } satisfies Property<MutatedInput>,

  /** CSV: any text parses the same whole or in any chunks, or fails typed; fields round-trip through csvField. */
  /** Handlebars' parse errors said for people: for any template text, one line (no newline), never a throw. */
  templateSyntax: {
    name: 'template-syntax',
    arbitrary: () =>
      fc
        .array(fc.oneof(fc.constantFrom('{{', '}}', '{{#if x}}', '{{/if}}', '{{#each items}}', '{{/each}}', '{{^x}}', '{{else}}', '{{!-- c --}}', '{{!', '{{> p}}', '{{#> p}}', '}}}', '{{{', '\n', '"'), hostileString), { maxLength: 30 })
        .map((a) => ({ bytes: Buffer.from(a.join('')) })),
    check: async (_c, input) => {
      const source = input.bytes.toString('utf8');
      let message: string;
      try {
        Handlebars.create().precompile(source, { strict: true });
        return;
      } catch (err) {
        message = (err as Error).message;
      }
      const line = describeTemplateSyntax(source, message);
      if (typeof line !== 'string' || line.includes('\n')) throw new Error(`not one line: ${JSON.stringify(line)}`);
    },
    save: bytesOf,
  } satisfies Property<{ bytes: Buffer }>,

  csv: {
    name: 'csv',
    arbitrary: () =>
      fc.record({
        text: fc.oneof(hostileString, fc.array(fc.array(hostileString, { minLength: 1, maxLength: 5 }), { maxLength: 6 }).map((rows) => rows.map((r) => r.map(csvField).join(',')).join('\r\n'))),
        cuts: fc.array(fc.nat(), { maxLength: 6 }),
        fields: fc.array(fc.array(hostileString, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
      }),
    check: async (_c, input) => {
      const whole = await typedOrResult('csv whole', () => {
        const p = new CsvParser();
        return JSON.stringify([...p.push(input.text), ...p.end()]);
      });
      const cuts = [...new Set(input.cuts.map((n) => n % (input.text.length + 1)))].sort((a, b) => a - b);
      const chunked = await typedOrResult('csv chunked', () => {
        const p = new CsvParser();
        const rows = [];
        let from = 0;
        for (const at of [...cuts, input.text.length]) {
          rows.push(...p.push(input.text.slice(from, at)));
          from = at;
        }
        return JSON.stringify([...rows, ...p.end()]);
      });
      if (whole !== chunked) throw new Error(`csv: chunking changed the result (${whole} vs ${chunked})`);
      // Round trip: rows written with csvField come back field for field; a field a spreadsheet
      // would take for a formula comes back with the ' csvField put before it.
      const text = 'h\n' + input.fields.map((r) => r.map(csvField).join(',')).join('\n') + '\n';
      const back = await typedOrResult('csv round trip', () => {
        const p = new CsvParser();
        return [...p.push(text), ...p.end()];
      });
      if (back) {
        const got = back.slice(1).map((r) => r.fields);
        // A row of one empty field is a blank line, which the parser skips by design.
        const want = input.fields.filter((r) => !(r.length === 1 && r[0] === '')).map((r) => r.map((f) => (/^[=+\-@\t\r]/.test(f) ? `'${f}` : f)));
        if (JSON.stringify(got) !== JSON.stringify(want) && input.fields.every((r) => r.every((f) => f.length <= CsvParser.MAX_FIELD))) {
          throw new Error(`csv: round trip changed ${JSON.stringify(want)} into ${JSON.stringify(got)}`);
        }
      }
    },
    save: (_c, input) => Buffer.from(JSON.stringify(input)),
  } satisfies Property<{ text: string; cuts: number[]; fields: string[][] }>,

  /** Template values are data: each comes back verbatim, or the profile is refused with a typed error; no key or payload is added. */
  templateValues: {
    name: 'template-values',
    arbitrary: () => fc.record({ displayName: hostileString, description: hostileString, consentText: hostileString, organization: hostileString }),
    check: async (c, values) => {
      const baseline = await generateProfile({ store: c.store, template: 'root-ca', data: { displayName: 'D', description: 'E', consentText: 'C', organization: 'O' }, sign: false });
      const p = await typedOrResult('generateProfile', () => generateProfile({ store: c.store, template: 'root-ca', data: values, sign: false }));
      if (!p) return;
      const plist = parsePlistXml(p.xml);
      const base = baseline.plist as Record<string, PlistValue>;
      if (!isPlistDict(plist)) throw new Error('not a dictionary');
      const extra = Object.keys(plist).filter((k) => !(k in base));
      if (extra.length) throw new Error(`template values added keys: ${extra.join(', ')}`);
      if ((plist.PayloadContent as PlistValue[]).length !== (base.PayloadContent as PlistValue[]).length) throw new Error('template values changed the payload count');
      const all = strings(plist);
      for (const [k, v] of Object.entries(values)) {
        if (v.trim() === '') continue; // empty values are left out (Apple: no empty strings)
        if (!all.includes(v)) throw new Error(`${k}: ${JSON.stringify(v)} did not come back verbatim`);
      }
    },
    save: (_c, input) => Buffer.from(JSON.stringify(input)),
  } satisfies Property<{ displayName: string; description: string; consentText: string; organization: string }>,

  /**
   * SCEP: mutated PKIMessages, and well-signed ones around a mutated PKCS#10, POSTed to the
   * service: a 200 CertRep (a signed SUCCESS or FAILURE), a 400 or a 413, within the bound;
   * never a 5xx or an exception.
   */
  scepMessage: {
    name: 'scep-message',
    arbitrary: () => fc.record({ inner: fc.boolean(), m: mutation, random: fc.option(fc.uint8Array({ maxLength: 512 }), { freq: 6 }) }),
    check: async (c, input) => {
      if (!c.scep) return;
      const body = input.random ? Buffer.from(input.random) : input.inner ? pkiMessage(envelope(mutate(c.scep.csr, input.m), c.scep.ra), c.scep.requester) : mutate(c.scep.message, input.m);
      const r = await typedOrResult('scep', () => c.scep!.service({ method: 'POST', operation: 'PKIOperation', body }));
      if (!r) throw new Error('scep: the service threw instead of answering');
      if (![200, 400, 413].includes(r.status)) throw new Error(`scep: answered ${r.status}: ${r.body.toString().slice(0, 80)}`);
      if (r.status === 200) {
        const parsed = parseSignedData(r.body);
        const checked = checkSignerInfo(parsed);
        if (checked.reasons.length) throw new Error(`scep: a CertRep whose signature fails: ${checked.reasons[0]!.message}`);
        const status = checked.attributes.get('2.16.840.1.113733.1.9.3')?.value.toString();
        if (status !== '0' && status !== '2') throw new Error(`scep: pkiStatus ${status}`);
      }
    },
    save: (c, input) => (input.random ? Buffer.from(input.random) : input.inner && c.scep ? mutate(c.scep.csr, input.m) : c.scep ? mutate(c.scep.message, input.m) : Buffer.alloc(0)),
  } satisfies Property<{ inner: boolean; m: Mutation; random: Uint8Array | null }>,

  /** Addresses: accepted ones are sane; the file name made from one is one safe path segment. */
  addresses: {
    name: 'addresses',
    arbitrary: () =>
      fc.oneof(
        hostileString,
        fc.tuple(hostileString, fc.constantFrom('@example.com', '@EXAMPLE.com', '@a.b', '@', '@@', '@example.com\u0000', '@../../x')).map(([a, b]) => a + b),
        fc.emailAddress(),
      ),
    check: async (_c, value) => {
      const ok = await typedOrResult('assertEmail', () => assertEmail(value));
      // A certificate's rfc822Name is an IA5String: never a byte above 0x7f (RFC 5280).
      const forCertificate = await typedOrResult('assertCertificateEmail', () => assertCertificateEmail(value));
      if (forCertificate !== undefined && (forCertificate !== value || /[^\u0000-\u007f]/.test(value) || ok === undefined)) throw new Error(`accepted ${JSON.stringify(value)} for a certificate`);
      if (ok !== undefined) {
        if (ok !== value) throw new Error('assertEmail changed the address');
        if (value.split('@').length !== 2) throw new Error(`accepted ${JSON.stringify(value)} without exactly one @`);
        // eslint-disable-next-line no-control-regex
        if (/[\u0000-\u001f\u007f\s]/.test(value) || value.length > 254) throw new Error(`accepted ${JSON.stringify(value)}`);
        // Nor anything invisible or that turns the text around (issue 28).
        if (/[\p{Cf}\u0080-\u009f\u2028\u2029]/u.test(value)) throw new Error(`accepted the hidden character in ${JSON.stringify(value)}`);
      }
      const name = profileFileName(value);
      // eslint-disable-next-line no-control-regex
      if (/[/\\\u0000-\u001f<>:"|?*]/.test(name) || name === '.' || name === '..' || name.startsWith('.') || Buffer.byteLength(name) > 255) {
        throw new Error(`unsafe file name ${JSON.stringify(name)} for ${JSON.stringify(value)}`);
      }
      if (/^(con|prn|aux|nul|com\d|lpt\d)(\..*)?$/i.test(name) || /[. ]$/.test(name)) throw new Error(`name ${JSON.stringify(name)} is not safe on Windows`);
    },
    save: (_c, input) => Buffer.from(input),
  } satisfies Property<string>,

  /**
   * Request targets (absolute forms, bad hosts and ports, percent-encoding, controls, long ones)
   * sent over a raw socket to the SCEP, PKI and profile handlers composed in one node:http
   * server: each is answered (or closed by node's parser) with a status below 500, and the
   * server then answers a normal request.
   */
  httpTarget: {
    name: 'http-target',
    arbitrary: () =>
      fc.oneof(
        { weight: 1, arbitrary: fc.constantFrom(...hostileTargets()) },
        { weight: 4, arbitrary: fc.array(targetPiece, { minLength: 1, maxLength: 10 }).map((a) => a.join('')) },
        { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 60 }) },
      ),
    check: async (c, target) => {
      if (requestTarget(target) && typeof requestTarget(target)!.path !== 'string') throw new Error('requestTarget: no path');
      const port = await handlersServer(c);
      const status = await rawRequest(port, Buffer.from(target, 'latin1'));
      if (status >= 500) throw new Error(`http-target: ${JSON.stringify(target.slice(0, 80))} answered ${status}`);
      const next = await rawRequest(port, Buffer.from(c.scep ? '/ca/root.cer' : '/p/AAAAAAAAAAAAAAAAAAAAAA'));
      if (next !== (c.scep ? 200 : 404)) throw new Error(`http-target: after ${JSON.stringify(target.slice(0, 80))} a normal request got ${next}`);
    },
    save: (_c, target) => Buffer.from(target, 'latin1'),
  } satisfies Property<string>,

  /**
   * PKCS#12 structure: files of 0-40 safes, legacy or PBES2, with or without a MAC, mutated or
   * not. Each opens or fails typed; the work charged never passes the budget; and the
   * synchronous and asynchronous readers agree (the same outcome, the same work).
   */
  pkcs12Structure: {
    name: 'pkcs12-structure',
    arbitrary: () =>
      fc.record({
        safes: fc.integer({ min: 0, max: 40 }),
        iterations: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1000, max: 40_000 })),
        kind: fc.constantFrom('legacy' as const, 'pbes2' as const),
        mac: fc.option(fc.integer({ min: 1, max: 30_000 })),
        m: fc.option(mutation, { freq: 2 }),
      }),
    check: async (_c, shape) => {
      const bytes = pkcs12ShapeBytes(shape);
      const sync = new KdfBudget(PKCS12_FUZZ_BUDGET);
      const async = new KdfBudget(PKCS12_FUZZ_BUDGET);
      const a = await typedOrResult('readPkcs12', () => readPkcs12(bytes, PKCS12_FUZZ_PASSWORD, { budget: sync }));
      const b = await typedOrResult('readPkcs12Async', () => readPkcs12Async(bytes, PKCS12_FUZZ_PASSWORD, { budget: async }));
      if (sync.spent > sync.total || async.spent > async.total) throw new Error(`pkcs12: spent ${sync.spent}/${async.spent} of ${PKCS12_FUZZ_BUDGET}`);
      if (sync.spent !== async.spent || (a === undefined) !== (b === undefined)) throw new Error(`pkcs12: the readers disagree (${sync.spent} vs ${async.spent})`);
    },
    save: (_c, shape) => pkcs12ShapeBytes(shape),
  } satisfies Property<Pkcs12Shape>,
};

/** The CLI over a mutated file: exit 0-3, one line on stderr when it fails, no stack, nothing written, the store unchanged. */
/** The bytes of a {@link Pkcs12Shape}. */
function pkcs12ShapeBytes(shape: Pkcs12Shape): Buffer {
  const bytes = pkcs12Bomb({ safes: shape.safes, iterations: shape.iterations, kind: shape.kind, password: PKCS12_FUZZ_PASSWORD, ...(shape.mac !== null ? { macIterations: shape.mac } : {}) });
  return shape.m ? mutate(bytes, shape.m) : bytes;
}

export interface CliCase extends MutatedInput {
  command: 'lint' | 'inspect' | 'verify' | 'sign' | 'import';
}
export const cliCase: fc.Arbitrary<CliCase> = fc.record({
  command: fc.constantFrom('lint', 'inspect', 'verify', 'sign', 'import') as fc.Arbitrary<CliCase['command']>,
  kind: fc.constantFrom('xml', 'binary', 'signed', 'p12', 'pem') as fc.Arbitrary<MutatedInput['kind']>,
  m: mutation,
});

export function checkCli(c: Corpus, storeDir: string, env: Record<string, string>, input: CliCase): void {
  const dir = mkdtempSync(join(tmpdir(), 'profilesmith-fuzz-'));
  try {
    const bytes = mutatedBytes(c, input);
    const file = join(dir, 'input');
    writeFileSync(file, bytes);
    const out = join(dir, 'out.mobileconfig');
    const args = {
      lint: ['lint', file],
      inspect: ['inspect', file],
      verify: ['verify', file, '--store', storeDir],
      sign: ['sign', file, '--store', storeDir, '-o', out],
      import: ['cert', 'import', file, '--store', storeDir, '--user', 'alice@example.com', '--purpose', 'smime-encryption', '--password-file', join(dir, 'pw')],
    }[input.command];
    writeFileSync(join(dir, 'pw'), 'fuzz', { mode: 0o600 });
    const before = snapshotDir(storeDir);
    const r = spawnSync(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', HOME: dir, ...env }, encoding: 'utf8', timeout: BOUND_MS * 4 });
    if (r.error) throw new Error(`${input.command}: ${r.error.message}`);
    if (r.status === null || r.status > 3) throw new Error(`${input.command}: exit ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
    if (/\n\s+at .+:\d+:\d+\)?\n/.test(r.stderr)) throw new Error(`${input.command}: a stack trace without --debug\n${r.stderr}`);
    if (r.status === 1 || r.status === 2) {
      const errors = r.stderr.split('\n').filter((l) => l.startsWith('error'));
      if (errors.length !== 1) throw new Error(`${input.command}: ${errors.length} error lines\n${r.stderr}`);
    }
    if (r.status !== 0) {
      if (input.command === 'sign' && existsSync(out)) throw new Error('sign failed but wrote its output');
      const after = snapshotDir(storeDir);
      if (JSON.stringify(before) !== JSON.stringify(after)) throw new Error(`${input.command} failed and changed the store`);
    }
    if (readdirSync(dir).some((f) => f.startsWith('.tmp') || (f !== 'input' && f !== 'pw' && f !== 'out.mobileconfig'))) throw new Error('a temporary file was left behind');
    if (existsSync(out) && statSync(out).size === 0) throw new Error('an empty output file');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
