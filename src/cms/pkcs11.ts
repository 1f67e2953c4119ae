/**
 * A {@link Signer} whose private key stays in a PKCS#11 token (an HSM, a cloud KMS's PKCS#11
 * library, SoftHSM). Uses the optional dependency `pkcs11js`, loaded only when a PKCS#11 signer
 * is asked for, so importing profilesmith never loads a native module.
 *
 * Concurrency: a small pool of sessions, each signing one thing at a time, with the
 * signature itself computed off the JavaScript thread (pkcs11js's async C_Sign), so the module
 * is called from several threads. profilesmith initializes it with CKF_OS_LOCKING_OK; if your
 * process initialized it first without locking, open the signer with `sessions: 1`. Many
 * processes or worker threads may each open their own signer on the same token: the login is
 * shared per process (PKCS#11 section 5.6), so a signer never logs out, and finalizes the module
 * only from the main thread and only if it was the one that initialized it.
 *
 * @module pkcs11
 */
import { createHash, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { isMainThread } from 'node:worker_threads';
import { int, seq } from '../asn1/der.js';
import { InputInvalid, Pkcs11Failed } from '../errors.js';
import { certificatesFrom } from '../certs/pem.js';
import { certificatePublicKey } from './certificate.js';
import { markChecked, type Signer } from './sign.js';
import { parsePkcs11Uri, redactPkcs11Uri, type Pkcs11Uri } from './pkcs11-uri.js';
import { assertSecretFileMode } from '../util/secret-file.js';

/** Options of {@link pkcs11Signer}: a URI, or the same fields one by one (fields win). */
export interface Pkcs11SignerOptions {
  /** RFC 7512 URI, for example `pkcs11:token=HSM;object=signer?module-path=/usr/lib/softhsm/libsofthsm2.so`. */
  uri?: string;
  /** Path of the PKCS#11 module (.so / .dylib / .dll). */
  module?: string;
  /** Token label. When neither token nor slot is given, the only token present is used. */
  token?: string;
  /** Slot id, instead of the token label. */
  slot?: number;
  /** Label (CKA_LABEL) of the private key, and of its certificate when that is read from the token. */
  label?: string;
  /** CKA_ID of the key, as hex or bytes. */
  id?: string | Uint8Array;
  /** User PIN. Prefer this (from your secret manager) over `pin-value` in a URI. */
  pin?: string;
  /** The signer certificate, PEM or DER. Default: the certificate object on the token with the key's label or id. */
  certificate?: string | Uint8Array;
  /** Intermediates, leaf-most first (PEM, any number of blocks, or DER). */
  chain?: (string | Uint8Array)[] | string;
  /** Sessions opened for signing in parallel. Default: 4. */
  sessions?: number;
}

/** A signer backed by a token. Call {@link Pkcs11Signer.close} when done with it. */
export interface Pkcs11Signer extends Signer {
  /** Token label, key label and module path (never the PIN), for messages. */
  readonly description: string;
  /** Closes the sessions (and the module, if this signer initialized it). Idempotent. */
  close(): Promise<void>;
}

/* The slice of pkcs11js used here, typed locally so that the public types never name the optional dependency. */
type Handle = Buffer;
interface Attr { type: number; value?: number | boolean | string | Buffer }
interface Pkcs11Module {
  load(path: string): void;
  C_Initialize(options?: object): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetSlotInfo(slot: Handle): { slotDescription: string };
  C_GetTokenInfo(slot: Handle): { label: string; serialNumber: string; flags: number };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_FindObjectsInit(session: Handle, template: Attr[]): void;
  C_FindObjects(session: Handle, max: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GetAttributeValue(session: Handle, object: Handle, template: Attr[]): { type: number; value?: Buffer }[];
  C_SignInit(session: Handle, mechanism: { mechanism: number; parameter?: Buffer }, key: Handle): void;
  C_Sign(session: Handle, data: Buffer, out: Buffer, cb: (error: Error | null, data: Buffer) => void): void;
}
type Pkcs11Lib = Record<string, number> & { PKCS11: new () => Pkcs11Module };

let lib: Pkcs11Lib | undefined;
function loadLib(): Pkcs11Lib {
  if (lib) return lib;
  try {
    lib = createRequire(import.meta.url)('pkcs11js') as Pkcs11Lib;
    return lib;
  } catch (cause) {
    throw new Pkcs11Failed('unavailable', 'PKCS#11 signing needs the optional package pkcs11js: npm install pkcs11js', { cause });
  }
}

/* One loaded module per path in this thread; `owned` when this thread's C_Initialize succeeded. */
const modules = new Map<string, { module: Pkcs11Module; users: number; owned: boolean }>();

function openModule(path: string): { module: Pkcs11Module; release: () => void } {
  const c = loadLib();
  let entry = modules.get(path);
  if (!entry) {
    const module = new c.PKCS11();
    try {
      module.load(path);
    } catch (cause) {
      throw new Pkcs11Failed('module', `The PKCS#11 module ${path} could not be loaded`, { cause });
    }
    let owned = true;
    try {
      module.C_Initialize({ flags: c.CKF_OS_LOCKING_OK });
    } catch (cause) {
      if (rv(cause) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
        throw new Pkcs11Failed('module', `The PKCS#11 module ${path} failed to initialize (${rv(cause) ?? 'error'})`, { cause });
      }
      owned = false;
    }
    entry = { module, users: 0, owned };
    modules.set(path, entry);
  }
  entry.users++;
  const e = entry;
  let released = false;
  return {
    module: e.module,
    release: () => {
      if (released) return;
      released = true;
      if (--e.users > 0) return;
      modules.delete(path);
      // Worker threads share the process's module: only the main thread may finalize it, or one
      // worker finishing would pull the token from under the others.
      if (e.owned && isMainThread) {
        try {
          e.module.C_Finalize();
        } catch {
          /* already finalized */
        }
      }
    },
  };
}

/** The CKR_ name of a pkcs11js error, if any. */
function rv(err: unknown): string | undefined {
  const m = err instanceof Error ? /CKR_[A-Z_]+/.exec(err.message) : null;
  return m?.[0];
}

function hexId(id: string | Uint8Array | undefined): Buffer | undefined {
  if (id === undefined) return undefined;
  if (typeof id !== 'string') return Buffer.from(id);
  const clean = id.replace(/[:\s]/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(clean)) throw new InputInvalid('pkcs11-id', 'The PKCS#11 key id must be hex');
  return Buffer.from(clean, 'hex');
}

async function readPin(source: string): Promise<string> {
  const path = source.startsWith('file:') ? fileURLToPath(source) : source;
  try {
    const st = await stat(path);
    if (st.isFile()) assertSecretFileMode(path, st.mode, 'PIN', 'pin-source');
    return (await readFile(path, 'utf8')).replace(/\r?\n$/, '');
  } catch (err) {
    if (err instanceof InputInvalid) throw err;
    throw new InputInvalid('pin-source', `The PIN file ${path} could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** r || s (as a token returns it) to DER ECDSA-Sig-Value (as CMS wants it). */
export function ecdsaRawToDer(raw: Uint8Array): Buffer {
  if (raw.length % 2 !== 0 || raw.length === 0) throw new Pkcs11Failed('device', 'The token returned a malformed ECDSA signature');
  const half = raw.length / 2;
  return seq(int(raw.subarray(0, half)), int(raw.subarray(half)));
}

/**
 * Opens a signer on a PKCS#11 token. The key never leaves the token; one test signature is
 * checked against the certificate before the signer is returned, so a wrong key, label or
 * certificate fails here, not in the middle of a batch.
 * @throws ERR_PKCS11 (`reason`: unavailable, module, token-not-found, pin-missing, pin-incorrect,
 *   key-not-found, certificate-not-found, key-mismatch, mechanism, device); ERR_INPUT_INVALID for a bad URI
 * @example
 * const signer = await pkcs11Signer({
 *   module: '/usr/lib/softhsm/libsofthsm2.so', token: 'Signing', label: 'profile-signer',
 *   pin: process.env.HSM_PIN, certificate: signerPem, chain: [intermediatePem],
 * })
 * try { const der = await signProfile(xml, signer) } finally { await signer.close() }
 */
export async function pkcs11Signer(options: Pkcs11SignerOptions): Promise<Pkcs11Signer> {
  // A token that several processes open at once (batch workers, SoftHSM's file store) may answer
  // CKR_GENERAL_ERROR or CKR_DEVICE_ERROR once: that is tried again, twice, before it fails.
  for (let attempt = 1; ; attempt++) {
    try {
      return await openPkcs11Signer(options);
    } catch (err) {
      const code = rv(err) ?? rv((err as { cause?: unknown })?.cause);
      const transient = code === 'CKR_GENERAL_ERROR' || code === 'CKR_DEVICE_ERROR';
      if (!transient) throw err;
      if (attempt >= 3) throw err instanceof Pkcs11Failed ? err : new Pkcs11Failed('device', `The token failed (${code})`, { cause: err });
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
}

async function openPkcs11Signer(options: Pkcs11SignerOptions): Promise<Pkcs11Signer> {
  const uri: Pkcs11Uri = options.uri ? parsePkcs11Uri(options.uri) : { other: {} };
  const modulePath = options.module ?? uri.modulePath;
  if (!modulePath) throw new InputInvalid('pkcs11-module', 'Name the PKCS#11 module: module-path in the URI, or the module option');
  const tokenLabel = options.token ?? uri.token;
  const slotId = options.slot ?? uri.slotId;
  const label = options.label ?? uri.object;
  const id = hexId(options.id) ?? (uri.id ? Buffer.from(uri.id) : undefined);
  if (label === undefined && id === undefined) {
    throw new InputInvalid('pkcs11-object', 'Name the signing key: object= or id= in the URI, or the label or id option');
  }
  const pin = options.pin ?? uri.pinValue ?? (uri.pinSource ? await readPin(uri.pinSource) : undefined);
  const poolSize = options.sessions ?? 4;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 64) throw new InputInvalid('sessions', 'sessions must be 1 to 64');

  const c = loadLib();
  const { module, release } = openModule(modulePath);
  const sessions: Handle[] = [];
  const closeAll = (): void => {
    for (const s of sessions.splice(0)) {
      try {
        module.C_CloseSession(s);
      } catch {
        /* gone with the token */
      }
    }
    release();
  };
  try {
    // The slot.
    let slots: Handle[];
    try {
      slots = module.C_GetSlotList(true);
    } catch (cause) {
      throw new Pkcs11Failed('device', `The PKCS#11 module listed no slots (${rv(cause) ?? 'error'})`, { cause });
    }
    const candidates = slots.filter((s) => {
      const info = module.C_GetTokenInfo(s);
      if (tokenLabel !== undefined && info.label.trim() !== tokenLabel) return false;
      if (uri.serial !== undefined && info.serialNumber.trim() !== uri.serial) return false;
      if (slotId !== undefined && s.readUIntLE(0, Math.min(6, s.length)) !== slotId) return false;
      return true;
    });
    const what = tokenLabel !== undefined ? `token "${tokenLabel}"` : slotId !== undefined ? `slot ${slotId}` : 'a token';
    if (candidates.length === 0) throw new Pkcs11Failed('token-not-found', `The PKCS#11 module has no ${what}`);
    if (candidates.length > 1) throw new Pkcs11Failed('token-not-found', `More than one token matches; name it with token= or slot-id=`);
    const slot = candidates[0]!;
    const tokenInfo = module.C_GetTokenInfo(slot);

    // Sessions and login (shared by every session of this process).
    for (let i = 0; i < poolSize; i++) sessions.push(module.C_OpenSession(slot, c.CKF_SERIAL_SESSION!));
    const first = sessions[0]!;
    if (tokenInfo.flags & c.CKF_LOGIN_REQUIRED!) {
      if (pin === undefined || pin === '') {
        throw new Pkcs11Failed('pin-missing', `The token "${tokenInfo.label.trim()}" needs a PIN (--pin-file, PROFILESMITH_PKCS11_PIN, or the pin option)`);
      }
      try {
        module.C_Login(first, c.CKU_USER!, pin);
      } catch (cause) {
        const code = rv(cause);
        if (code === 'CKR_PIN_INCORRECT' || code === 'CKR_PIN_LEN_RANGE') {
          throw new Pkcs11Failed('pin-incorrect', `The PIN for token "${tokenInfo.label.trim()}" is wrong`);
        }
        if (code === 'CKR_PIN_LOCKED') throw new Pkcs11Failed('pin-incorrect', `The PIN of token "${tokenInfo.label.trim()}" is locked`);
        if (code !== 'CKR_USER_ALREADY_LOGGED_IN') {
          throw new Pkcs11Failed('device', `Login to token "${tokenInfo.label.trim()}" failed (${code ?? 'error'})`, { cause });
        }
      }
    }

    // The key, and its certificate.
    const find = (cls: number): Handle[] => {
      const template: Attr[] = [{ type: c.CKA_CLASS!, value: cls }];
      if (label !== undefined) template.push({ type: c.CKA_LABEL!, value: label });
      if (id !== undefined) template.push({ type: c.CKA_ID!, value: id });
      module.C_FindObjectsInit(first, template);
      try {
        return module.C_FindObjects(first, 2);
      } finally {
        module.C_FindObjectsFinal(first);
      }
    };
    const keyName = label !== undefined ? `"${label}"` : `id ${id!.toString('hex')}`;
    const keys = find(c.CKO_PRIVATE_KEY!);
    if (keys.length === 0) throw new Pkcs11Failed('key-not-found', `The token "${tokenInfo.label.trim()}" has no private key ${keyName} (or the PIN is needed to see it)`);
    if (keys.length > 1) throw new Pkcs11Failed('key-not-found', `More than one private key matches ${keyName}; add id= to the URI`);
    const key = keys[0]!;
    const kt = module.C_GetAttributeValue(first, key, [{ type: c.CKA_KEY_TYPE! }])[0]?.value;
    const keyTypeCode = kt ? kt.readUIntLE(0, Math.min(kt.length, 6)) : -1;
    const keyType = keyTypeCode === c.CKK_RSA ? 'rsa' : keyTypeCode === c.CKK_EC ? 'ec' : undefined;
    if (!keyType) throw new Pkcs11Failed('mechanism', `The key ${keyName} is neither RSA nor EC; profiles are signed with RSA or ECDSA`);

    let certificate: Buffer | undefined = options.certificate !== undefined ? certificatesFrom(options.certificate)[0] : undefined;
    if (!certificate) {
      const certs = find(c.CKO_CERTIFICATE!);
      const value = certs[0] ? module.C_GetAttributeValue(first, certs[0], [{ type: c.CKA_VALUE! }])[0]?.value : undefined;
      if (!value) throw new Pkcs11Failed('certificate-not-found', `No certificate ${keyName} on the token; pass the signer certificate`);
      certificate = Buffer.from(value);
    }
    const chainInput = typeof options.chain === 'string' ? [options.chain] : (options.chain ?? []);
    const chain = chainInput.flatMap((x) => certificatesFrom(x));

    // The pool.
    const idle = [...sessions];
    const waiting: ((s: Handle) => void)[] = [];
    const acquire = (): Promise<Handle> => {
      const s = idle.pop();
      return s ? Promise.resolve(s) : new Promise((resolve) => waiting.push(resolve));
    };
    const giveBack = (s: Handle): void => {
      const next = waiting.shift();
      if (next) next(s);
      else idle.push(s);
    };
    let closed = false;
    const outSize = keyType === 'rsa' ? 1024 : 256;
    const signRaw = async (data: Uint8Array): Promise<Uint8Array> => {
      if (closed) throw new Pkcs11Failed('device', 'The PKCS#11 signer is closed');
      const session = await acquire();
      try {
        const mechanism = keyType === 'rsa' ? { mechanism: c.CKM_SHA256_RSA_PKCS! } : { mechanism: c.CKM_ECDSA! };
        const input = keyType === 'rsa' ? Buffer.from(data) : createHash('sha256').update(data).digest();
        try {
          module.C_SignInit(session, mechanism, key);
        } catch (cause) {
          throw new Pkcs11Failed('mechanism', `The token refused to start signing (${rv(cause) ?? 'error'})`, { cause });
        }
        const raw = await new Promise<Buffer>((resolve, reject) => {
          module.C_Sign(session, input, Buffer.alloc(outSize), (error, out) => (error ? reject(error) : resolve(out)));
        }).catch((cause: unknown) => {
          throw new Pkcs11Failed('device', `The token failed to sign (${rv(cause) ?? 'error'})`, { cause });
        });
        return keyType === 'rsa' ? raw : ecdsaRawToDer(raw);
      } finally {
        giveBack(session);
      }
    };

    // One signature, checked against the certificate.
    const probe = randomBytes(32);
    const signature = await signRaw(probe);
    if (!cryptoVerify('sha256', probe, certificatePublicKey(certificate), signature)) {
      throw new Pkcs11Failed('key-mismatch', `The key ${keyName} on the token does not belong to the signer certificate`);
    }

    const description = `${redactPkcs11Uri(options.uri ?? `pkcs11:token=${tokenInfo.label.trim()}`)} (module ${modulePath})`;
    const signer: Pkcs11Signer = {
      certificate,
      chain,
      keyType,
      description,
      sign: signRaw,
      close: async () => {
        if (closed) return;
        closed = true;
        // Let in-flight signatures finish before the sessions go.
        while (idle.length < sessions.length) await new Promise<Handle>((r) => waiting.push(r)).then((s) => idle.push(s));
        closeAll();
      },
    };
    // The probe above was this check.
    markChecked(signer);
    return signer;
  } catch (err) {
    closeAll();
    throw err;
  }
}
