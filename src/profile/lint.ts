/**
 * Linting any profile, ours or from elsewhere (Apple Configurator, iMazing, other MDMs):
 * every finding with a stable rule id, a severity and a path.
 *
 * @module lint
 */
import type { KeyObject } from 'node:crypto';
import type { ProfileIssue } from '../errors.js';
import { verifySignedData } from '../cms/verify.js';
import { decryptProfile } from './decrypt.js';
import { parseProfile, type PlistFormat } from './parse.js';
import type { Target } from './rules-schema.js';
import { validateProfile } from './validate.js';
import type { KdfBudget } from '../certs/pkcs12-read.js';
import { openPkcs12Payloads } from './pkcs12-payloads.js';

/** Options of {@link lintProfile}. */
export interface LintOptions {
  /** Default: now (certificate expiry). */
  now?: Date;
  /** Rule ids to leave out (see LINT_RULES). */
  ignore?: string[];
  /** Decrypt an encrypted profile with the device's key (and certificate, to pick its recipient) and lint its payloads. */
  decrypt?: { key: KeyObject; certificate?: string | Uint8Array };
  /** The platform to judge availability for. Default: the profile's TargetDeviceType. */
  target?: Target;
  /**
   * The key-derivation work the profile's PKCS#12 payloads may cost together. Default: a fresh
   * {@link KdfBudget} (4,000,000 iteration-blocks). The derivations never block the event loop.
   */
  budget?: KdfBudget;
}

/** What {@link lintProfile} found: findings with stable rule ids. */
export interface LintResult {
  findings: ProfileIssue[];
  format: PlistFormat;
  signed: boolean;
  encrypted: boolean;
  /** True when the payloads of an encrypted profile were decrypted and checked. */
  decrypted: boolean;
  /** `ber` for a signature in BER (Apple's tools, openssl -stream). */
  encoding?: 'der' | 'ber';
}

/**
 * Lints profile bytes: XML or binary plist, signed or not.
 * @throws ERR_PROFILE_PARSE when the bytes are not a profile at all
 * @example
 * const { findings } = await lintProfile(readFileSync('wifi.mobileconfig'))
 */
export async function lintProfile(bytes: Uint8Array, options: LintOptions = {}): Promise<LintResult> {
  const parsed = parseProfile(bytes);
  const now = options.now ?? new Date();
  const top = parsed.plist as Record<string, unknown>;
  const encrypted = !!top && typeof top === 'object' && 'EncryptedPayloadContent' in top;
  let subject = parsed;
  if (encrypted && options.decrypt) subject = parseProfile(Buffer.from(decryptProfile(bytes, options.decrypt.key, options.decrypt.certificate), 'utf8'));
  // PKCS#12 payloads are opened first, asynchronously and under one budget: a server that lints
  // uploads keeps answering while it does, and a bomb costs at most the budget.
  const open = await openPkcs12Payloads(subject.plist, options.budget);
  const findings = validateProfile(subject.plist, {
    now,
    openPkcs12: open,
    ...(subject.xml ? { xml: subject.xml } : {}),
    ...(options.target ? { target: options.target } : {}),
  });
  for (const d of [...parsed.duplicateKeys, ...(subject !== parsed ? subject.duplicateKeys : [])]) {
    findings.push({ rule: 'duplicate-key', path: `line ${d.line}`, message: `The key "${d.key}" appears twice in one dictionary; the last value is used, the first is lost`, severity: 'warning' });
  }
  if (parsed.signedData?.trailingBytes) {
    findings.push({ rule: 'trailing-bytes', path: '(signature)', message: `${parsed.signedData.trailingBytes} byte(s) follow the signature; iOS and openssl ignore them`, severity: 'warning' });
  }
  if (parsed.signedData) {
    const v = await verifySignedData(parsed.signedData, { ca: [], now: () => now });
    for (const r of v.reasons) {
      if (r.code === 'untrusted') continue; // trust is verify's question, not lint's
      const expiry = r.code === 'signer-expired' || r.code === 'signer-not-yet-valid' || r.code === 'chain-expired' || r.code === 'chain-not-yet-valid' ? r.code : undefined;
      findings.push({ rule: expiry ?? 'signature', path: '(signature)', message: r.message, severity: expiry ? 'warning' : 'error' });
    }
  }
  const ignore = new Set(options.ignore ?? []);
  // Decrypted for lint only: the passwords inside were encrypted in the file.
  if (subject !== parsed) ignore.add('password-unencrypted');
  return {
    findings: findings.filter((f) => !ignore.has(f.rule)),
    format: parsed.format,
    signed: parsed.signed,
    encrypted,
    decrypted: subject !== parsed,
    ...(parsed.signedData ? { encoding: parsed.signedData.encoding } : {}),
  };
}
