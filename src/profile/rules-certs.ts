/**
 * Lint rules about the certificates inside a profile: PKCS#12 payloads that do not open
 * with their Password or hold other than one identity, ciphers older iOS refuses,
 * certificates expired or about to, and passwords in a profile that is not encrypted.
 */
import { X509Certificate } from 'node:crypto';
import type { ProfileIssue } from '../errors.js';
import type { LintRuleId } from './rules.js';
import { keysMatch } from '../certs/keys.js';
import { certificatesFrom } from '../certs/pem.js';
import { certificateBasics } from '../certs/x509.js';
import { KdfBudgetExceeded, readPkcs12 } from '../certs/pkcs12-read.js';
import type { Pkcs12Opener } from './pkcs12-payloads.js';
import type { PlistValue } from './plist-xml.js';

type Add = (rule: LintRuleId, path: string, message: string, severity?: ProfileIssue['severity']) => void;

const DAY = 86_400_000;
const CERT_PAYLOADS = new Set(['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pem']);
/** Keys that hold secrets in clear text, by payload type. */
const SECRET_KEYS: Record<string, string[]> = {
  'com.apple.security.pkcs12': ['Password'],
  'com.apple.eas.account': ['Password', 'CertificatePassword'],
  'com.apple.mail.managed': ['IncomingPassword', 'OutgoingPassword'],
  'com.apple.profileRemovalPassword': ['RemovalPassword'],
  'com.apple.security.scep': [],
};

export interface CertRuleOptions {
  now: Date;
  /** Open each PKCS#12 with its Password. Default: true (costs a KDF per payload). */
  openPkcs12?: boolean;
  /** How to open one: by default readPkcs12 under the caller's budget. */
  open?: Pkcs12Opener;
  /** The profile is encrypted (EncryptedPayloadContent): passwords in it are protected. */
  encrypted?: boolean;
}

/** Expiry and name: certificateBasics keeps them, so a batch lints its CA certificates once. */
function certFacts(der: Uint8Array): { notAfter: Date; name: string } {
  const { subject, notAfter } = certificateBasics(der);
  const name = subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3) ?? subject.replace(/\n/g, ', ');
  return { notAfter, name };
}

function checkValidity(der: Uint8Array, path: string, now: Date, add: Add): void {
  const { notAfter, name } = certFacts(der);
  if (notAfter < now) add('cert-expired', path, `Certificate "${name}" expired on ${notAfter.toISOString().slice(0, 10)}`, 'warning');
  else if (notAfter.getTime() - now.getTime() < 30 * DAY) {
    add('cert-expiring', path, `Certificate "${name}" expires on ${notAfter.toISOString().slice(0, 10)}, within 30 days`, 'warning');
  }
}

export function checkCertificates(payload: Record<string, PlistValue>, path: string, options: CertRuleOptions, add: Add): void {
  const type = String(payload.PayloadType);
  for (const key of (Object.hasOwn(SECRET_KEYS, type) ? SECRET_KEYS[type] : undefined) ?? []) {
    if (typeof payload[key] === 'string' && payload[key] && !options.encrypted) {
      add('password-unencrypted', `${path}${key}`, 'A password in a profile that is not encrypted is only obfuscated: anyone holding the file can read it', 'warning');
    }
  }
  const content = payload.PayloadContent;
  if (CERT_PAYLOADS.has(type) && content instanceof Uint8Array) {
    // DER is the documented form of root and pkcs1 payloads; MicroMDM writes PEM there, and devices install it.
    const text = Buffer.from(content.subarray(0, 64)).toString('latin1').trimStart();
    const pem = type === 'com.apple.security.pem' || text.startsWith('-----BEGIN');
    const ders = pem ? certificatesFrom(Buffer.from(content).toString('latin1')) : [Buffer.from(content)];
    if (pem && type !== 'com.apple.security.pem') {
      add('pem-in-der-payload', `${path}PayloadContent`, 'PEM where Apple documents DER; iOS installs it (MicroMDM writes it so)', 'info');
    }
    if (type === 'com.apple.security.pem' && ders.length > 1) {
      add('pem-multiple', `${path}PayloadContent`, 'iOS reads only the first certificate of a PEM payload; use one payload per certificate', 'warning');
    }
    try {
      if (!ders[0]) throw new Error('none');
      checkValidity(ders[0], `${path}PayloadContent`, options.now, add);
    } catch {
      add('certificate-invalid', `${path}PayloadContent`, 'Is not a certificate iOS can read');
    }
  }
  if (type === 'com.apple.security.pkcs12' && content instanceof Uint8Array && options.openPkcs12 !== false) {
    const password = payload.Password;
    if (typeof password !== 'string') return; // the device will ask; nothing to open with
    let p12;
    try {
      p12 = (options.open ?? ((c: Uint8Array, pw: string) => readPkcs12(c, pw)))(content, password);
    } catch (err) {
      if (err instanceof KdfBudgetExceeded) {
        add('pkcs12-work', `${path}PayloadContent`, `Not opened: ${err.message}`);
        return;
      }
      add('pkcs12-password', `${path}PayloadContent`, `Does not open with its Password: ${(err as Error).message}`);
      return;
    }
    const identities = p12.keys.filter((k) => p12.certificates.some((c) => keysMatch(k.key, new X509Certificate(c.der).publicKey)));
    if (p12.keys.length !== 1 || identities.length !== 1) {
      add('pkcs12-identities', `${path}PayloadContent`, `Holds ${p12.keys.length} private keys and ${identities.length} identities; iOS needs exactly one`);
    }
    if (p12.algorithms.has('pbes2') || (p12.macDigest && p12.macDigest !== 'sha1')) {
      add('pkcs12-cipher', `${path}PayloadContent`, `Uses ${[...p12.algorithms].join(', ')} with a ${p12.macDigest} MAC: iOS 17 and older refuse it ("wrong password"); use 3DES with a SHA-1 MAC`, 'warning');
    }
    for (const k of identities) {
      const c = p12.certificates.find((x) => keysMatch(k.key, new X509Certificate(x.der).publicKey));
      if (c) checkValidity(c.der, `${path}PayloadContent`, options.now, add);
    }
  }
}
