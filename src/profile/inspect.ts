/**
 * What a profile holds, for people and for support: signer and chain, each payload, the
 * graph of UUID references, and the certificates inside. Secrets are redacted unless asked.
 *
 * @module inspect
 */
import { X509Certificate } from 'node:crypto';
import { keysMatch } from '../certs/keys.js';
import { certificatesFrom } from '../certs/pem.js';
import type { KdfBudget } from '../certs/pkcs12-read.js';
import { openPkcs12Payloads, type Pkcs12Opener } from './pkcs12-payloads.js';
import { verifySignedData, type CertificateSummary } from '../cms/verify.js';
import { parseProfile, type PlistFormat } from './parse.js';
import { isPlistDict, type PlistValue } from './plist-xml.js';
import { IDENTITY_REFERENCES } from './validate.js';
import { child, children, readOid } from '../asn1/der.js';
import { parseBer } from '../asn1/ber.js';
import { envelopeRecipients } from '../cms/envelope.js';

const SECRET_KEYS = new Set(['Password', 'CertificatePassword', 'IncomingPassword', 'OutgoingPassword', 'RemovalPassword', 'Challenge']);
export const REDACTED = '<redacted>';

/** A certificate found in a payload. */
export interface InspectedCertificate {
  subject: string;
  issuer: string;
  emails: string[];
  extendedKeyUsage: string[];
  notBefore: string;
  notAfter: string;
  /** True for the certificate whose key is in a PKCS#12. */
  hasPrivateKey: boolean;
}

/** One payload as {@link inspectProfile} reports it. */
export interface InspectedPayload {
  type: string;
  identifier: string | undefined;
  uuid: string | undefined;
  displayName: string | undefined;
  /** Secret values, redacted unless `showSecrets`. */
  secrets: Record<string, string>;
  certificates: InspectedCertificate[];
  /** Why certificates could not be listed (a PKCS#12 without Password). */
  note?: string;
  /** base64 PKCS#12, only with `showSecrets`. */
  pkcs12?: string;
  /**
   * A mail account's settings as iOS applies them: host, address, user, SSL, and each S/MIME
   * switch with its effective value (`(default on)` / `(default off)` where left out).
   */
  settings?: Record<string, string>;
}

/** The mail-account keys shown, and what iOS does when each S/MIME switch is left out (as iOS's ManagedConfiguration does). */
const ACCOUNT_KEYS: Record<string, string[]> = {
  'com.apple.eas.account': ['Host', 'EmailAddress', 'UserName', 'SSL', 'OAuth'],
  'com.apple.mail.managed': ['EmailAccountType', 'EmailAddress', 'IncomingMailServerHostName', 'IncomingMailServerUseSSL', 'OutgoingMailServerHostName', 'OutgoingMailServerUseSSL'],
};
const SMIME_KEYS = [
  'SMIMESigningEnabled',
  'SMIMESigningUserOverrideable',
  'SMIMESigningCertificateUUID',
  'SMIMESigningCertificateUUIDUserOverrideable',
  'SMIMEEncryptionCertificateUUID',
  'SMIMEEncryptionCertificateUUIDUserOverrideable',
  'SMIMEEncryptByDefault',
  'SMIMEEncryptByDefaultUserOverrideable',
  'SMIMEEnableEncryptionPerMessageSwitch',
];

function accountSettings(p: Record<string, PlistValue>, type: string): Record<string, string> | undefined {
  const keys = ACCOUNT_KEYS[type];
  if (!keys) return undefined;
  const out: Record<string, string> = {};
  const show = (v: PlistValue) => (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v));
  for (const k of keys) if (p[k] !== undefined) out[k] = show(p[k] as PlistValue);
  const signing = typeof p.SMIMESigningCertificateUUID === 'string' && p.SMIMESigningCertificateUUID !== '';
  const encryption = typeof p.SMIMEEncryptionCertificateUUID === 'string' && p.SMIMEEncryptionCertificateUUID !== '';
  for (const k of SMIME_KEYS) {
    if (p[k] !== undefined) out[k] = show(p[k] as PlistValue);
    else if (k === 'SMIMESigningEnabled' && signing) out[k] = 'true (left out: iOS turns it on)';
    else if (k === 'SMIMEEncryptByDefault' && encryption && p.SMIMEEncryptionEnabled === undefined) out[k] = 'true (left out: iOS turns it on)';
    else if (!k.endsWith('UUID') && (signing || encryption)) out[k] = 'false (left out)';
  }
  return out;
}

/** What {@link inspectProfile} reports: signer, payloads, references and certificates. */
export interface InspectResult {
  format: PlistFormat;
  signed: boolean;
  signer: CertificateSummary | undefined;
  signingTime: Date | undefined;
  chain: CertificateSummary[];
  signatureIntact: boolean | undefined;
  encrypted: boolean;
  /** For an encrypted profile: the recipients' issuer and serial. */
  recipients: { issuer: string; serial: string }[];
  identifier: string | undefined;
  uuid: string | undefined;
  displayName: string | undefined;
  organization: string | undefined;
  payloads: InspectedPayload[];
  /** UUID references: from payload identifier and key to the target payload. */
  references: { from: string; key: string; to: string; target: string | undefined }[];
}

const str = (v: PlistValue | undefined) => (typeof v === 'string' ? v : undefined);

function describeCert(der: Buffer, hasPrivateKey: boolean): InspectedCertificate {
  const c = new X509Certificate(der);
  const emails = (c.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('email:')).map((s) => s.slice(6));
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    emails,
    extendedKeyUsage: c.keyUsage ?? [],
    notBefore: new Date(c.validFrom).toISOString(),
    notAfter: new Date(c.validTo).toISOString(),
    hasPrivateKey,
  };
}

function inspectPayload(p: Record<string, PlistValue>, showSecrets: boolean, open: Pkcs12Opener): InspectedPayload {
  const type = str(p.PayloadType) ?? '(no PayloadType)';
  const out: InspectedPayload = { type, identifier: str(p.PayloadIdentifier), uuid: str(p.PayloadUUID), displayName: str(p.PayloadDisplayName), secrets: {}, certificates: [] };
  const walk = (v: PlistValue, key: string) => {
    if (SECRET_KEYS.has(key) && typeof v === 'string') out.secrets[key] = showSecrets ? v : REDACTED;
    else if (v && typeof v === 'object' && !(v instanceof Uint8Array) && !(v instanceof Date) && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, k);
    }
  };
  for (const [k, v] of Object.entries(p)) walk(v, k);
  const settings = accountSettings(p, type);
  if (settings) out.settings = settings;
  const content = p.PayloadContent;
  try {
    if (content instanceof Uint8Array && ['com.apple.security.root', 'com.apple.security.pkcs1'].includes(type)) {
      out.certificates.push(describeCert(Buffer.from(content), false));
    } else if (content instanceof Uint8Array && type === 'com.apple.security.pem') {
      out.certificates.push(...certificatesFrom(Buffer.from(content).toString('latin1')).map((d) => describeCert(d, false)));
    } else if (content instanceof Uint8Array && type === 'com.apple.security.pkcs12') {
      if (showSecrets) out.pkcs12 = Buffer.from(content).toString('base64');
      const password = str(p.Password);
      if (password === undefined) out.note = 'no Password in the payload: the device asks for it, so the contents are not shown';
      else {
        const p12 = open(content, password);
        for (const c of p12.certificates) {
          const x = new X509Certificate(c.der);
          out.certificates.push(describeCert(c.der, p12.keys.some((k) => keysMatch(k.key, x.publicKey))));
        }
      }
    }
  } catch (err) {
    out.note = `cannot be read: ${(err as Error).message}`;
  }
  return out;
}

/** Who an EncryptedPayloadContent is encrypted to (issuer and serial of each recipient). */
export function recipientsOf(der: Uint8Array): { issuer: string; serial: string }[] {
  try {
    return envelopeRecipients(der).map((r) => ({ issuer: nameToString(r.issuer), serial: r.serial }));
  } catch {
    return [];
  }
}

/** A DER Name as `CN=…, O=…` (the attributes we print; others by OID). */
function nameToString(der: Buffer): string {
  const names: Record<string, string> = { '2.5.4.3': 'CN', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.6': 'C', '1.2.840.113549.1.9.1': 'E' };
  try {
    return children(parseBer(der))
      .flatMap((rdn) => children(rdn))
      .map((atv) => `${names[readOid(child(atv, 0))] ?? readOid(child(atv, 0))}=${child(atv, 1).value.toString('utf8')}`)
      .join(', ');
  } catch {
    return '(unreadable name)';
  }
}

/**
 * Describes a profile. Passwords are `<redacted>` and PKCS#12 bytes left out unless `showSecrets`.
 * @throws ERR_PROFILE_PARSE
 * @example
 * const result = await inspectProfile(readFileSync('alice.mobileconfig'))
 * console.log(JSON.stringify(result, null, 2))
 */
export async function inspectProfile(bytes: Uint8Array, options: { showSecrets?: boolean; budget?: KdfBudget } = {}): Promise<InspectResult> {
  const parsed = parseProfile(bytes);
  const top = isPlistDict(parsed.plist) ? parsed.plist : {};
  const verified = parsed.signedData ? await verifySignedData(parsed.signedData, { ca: [] }) : undefined;
  const raw = Array.isArray(top.PayloadContent) ? top.PayloadContent : [];
  const dicts = raw.filter(isPlistDict);
  // Opened first, without blocking the event loop and under one budget for the whole profile.
  const open = await openPkcs12Payloads(parsed.plist, options.budget);
  const payloads = dicts.map((p) => inspectPayload(p, !!options.showSecrets, open));
  const references: InspectResult['references'] = [];
  for (const p of dicts) {
    for (const key of IDENTITY_REFERENCES) {
      const to = str(p[key]);
      if (to) references.push({ from: str(p.PayloadIdentifier) ?? str(p.PayloadType) ?? '?', key, to, target: str(dicts.find((d) => d.PayloadUUID === to)?.PayloadIdentifier) });
    }
  }
  return {
    format: parsed.format,
    signed: parsed.signed,
    signer: verified?.signer,
    signingTime: verified?.signingTime,
    chain: verified?.chain ?? [],
    signatureIntact: verified ? !verified.reasons.some((r) => ['digest-mismatch', 'signature-invalid', 'signer-missing'].includes(r.code)) : undefined,
    encrypted: top.EncryptedPayloadContent !== undefined,
    recipients: top.EncryptedPayloadContent instanceof Uint8Array ? recipientsOf(top.EncryptedPayloadContent) : [],
    identifier: str(top.PayloadIdentifier),
    uuid: str(top.PayloadUUID),
    displayName: str(top.PayloadDisplayName),
    organization: str(top.PayloadOrganization),
    payloads,
    references,
  };
}
