/**
 * Lint rules for references between payloads: every key that names another payload's
 * PayloadUUID, at any depth inside a payload (Wi-Fi's EAPClientConfiguration, VPN's IKEv2,
 * MDM's IdentityCertificateUUID, …), must resolve, and to the right kind of payload.
 *
 * What iOS does with one that does not (read from iOS's ManagedConfiguration): Exchange
 * installs the account without that S/MIME identity (a warning); IMAP refuses the whole profile
 * (7003 dangling, 7004 not an identity); an empty UUID string means "none". Elsewhere the payload
 * has no certificate to use and cannot do its job: an error.
 */
import type { ProfileIssue } from '../errors.js';
import type { LintRuleId } from './rules.js';
import { isPlistDict, type PlistValue } from './plist-xml.js';

type Add = (rule: LintRuleId, path: string, message: string, severity?: ProfileIssue['severity']) => void;
type Dict = { [k: string]: PlistValue };

/** Payload types that yield an identity (certificate + private key) on the device. */
export const IDENTITY_PAYLOADS = new Set(['com.apple.security.pkcs12', 'com.apple.security.scep', 'com.apple.security.acme']);
/** Payload types that install a certificate without a key: trust anchors and intermediates. */
export const ANCHOR_PAYLOADS = new Set(['com.apple.security.root', 'com.apple.security.pkcs1', 'com.apple.security.pem']);

/** What a reference must point at. */
type Kind = 'identity' | 'anchor' | 'certificate';

/** Keys whose value (a string, or an array of strings) names PayloadUUIDs, with the kind of payload they need. */
export const REFERENCE_KEYS: Record<string, Kind> = {
  PayloadCertificateUUID: 'identity',
  IdentityCertificateUUID: 'identity',
  SMIMESigningCertificateUUID: 'identity',
  SMIMEEncryptionCertificateUUID: 'identity',
  AuthenticationCertificateUUID: 'identity',
  ResourcePayloadCertificateUUID: 'identity',
  DeviceCertificateUUID: 'identity',
  ControllerCertificateUUID: 'identity',
  certificateUUID: 'identity',
  PayloadCertificateAnchorUUID: 'anchor',
  MemberPayloadCertificateAnchorUUID: 'anchor',
  LeaderPayloadCertificateAnchorUUID: 'anchor',
  DeviceCACertificateUUIDs: 'anchor',
  ControllerCACertificateUUIDs: 'anchor',
  ServerURLPinningCertificateUUIDs: 'certificate',
  CheckInURLPinningCertificateUUIDs: 'certificate',
  EncryptCertPayloadUUID: 'certificate',
  TLSTrustedCertificates: 'certificate',
};

/** Payload types whose PayloadCertificateUUID names a plain certificate, not an identity. */
const CERTIFICATE_NOT_IDENTITY = new Set(['com.apple.MCX.FileVault2', 'com.apple.MCX', 'com.apple.security.certificatepreference']);

const KIND_TEXT: Record<Kind, string> = {
  identity: 'an identity (pkcs12, scep or acme payload)',
  anchor: 'a certificate (root, pkcs1 or pem payload)',
  certificate: 'a certificate payload',
};

function fits(kind: Kind, type: string): boolean {
  if (kind === 'identity') return IDENTITY_PAYLOADS.has(type);
  if (kind === 'anchor') return ANCHOR_PAYLOADS.has(type);
  return IDENTITY_PAYLOADS.has(type) || ANCHOR_PAYLOADS.has(type);
}

/** How bad an unresolved reference is, by where it is (see the module comment). */
function severityFor(payloadType: string, key: string): ProfileIssue['severity'] {
  if (payloadType === 'com.apple.eas.account' && key.startsWith('SMIME')) return 'warning';
  return 'error';
}

const consequence = (payloadType: string, key: string) =>
  payloadType === 'com.apple.eas.account' && key.startsWith('SMIME')
    ? 'iOS installs the account without that identity'
    : payloadType === 'com.apple.mail.managed'
      ? 'iOS refuses the profile'
      : 'the payload has no certificate to use';

/**
 * Checks every reference inside `payload` against `payloads` (by PayloadUUID). The profile's
 * own dictionary is not a payload: a reference to its UUID does not resolve.
 */
export function checkReferences(payload: Dict, pre: string, byUuid: Map<string, Dict>, add: Add): void {
  const type = typeof payload.PayloadType === 'string' ? payload.PayloadType : '';
  const check = (key: string, value: string, where: string) => {
    if (value === '') return; // an empty UUID means "none" (and is reported as an empty string)
    let kind = REFERENCE_KEYS[key] as Kind;
    if (key === 'PayloadCertificateUUID' && CERTIFICATE_NOT_IDENTITY.has(type)) kind = 'certificate';
    const target = byUuid.get(value);
    if (!target) {
      add('uuid-reference', where, `"${value}" is not the PayloadUUID of any payload in this profile: ${consequence(type, key)}`, severityFor(type, key));
    } else if (!fits(kind, String(target.PayloadType))) {
      add('uuid-reference-kind', where, `"${value}" is a ${String(target.PayloadType)} payload, not ${KIND_TEXT[kind]}: ${consequence(type, key)}`, severityFor(type, key));
    }
  };
  const walk = (v: PlistValue, where: string) => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${where}[${i}]`));
    else if (isPlistDict(v)) {
      for (const key of Object.keys(v)) {
        const value = v[key] as PlistValue;
        const path = where ? `${where}.${key}` : key;
        if (Object.hasOwn(REFERENCE_KEYS, key)) {
          if (typeof value === 'string') check(key, value, pre + path);
          else if (Array.isArray(value)) value.forEach((x, i) => typeof x === 'string' && check(key, x, `${pre}${path}[${i}]`));
          continue;
        }
        if (typeof value === 'object' && value !== null && !(value instanceof Date) && !(value instanceof Uint8Array)) walk(value, path);
      }
    }
  };
  walk(payload, '');
}
