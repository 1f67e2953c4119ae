/**
 * Linting any profile, ours or from elsewhere (Apple Configurator, iMazing, other MDMs):
 * every finding with a stable rule id, a severity and a path.
 *
 * @module lint
 */
import type { ProfileIssue } from '../errors.js';
import { verifySignedData } from '../cms/verify.js';
import { parseProfile, type PlistFormat } from './parse.js';
import { validateProfile } from './validate.js';

/** Options of {@link lintProfile}. */
export interface LintOptions {
  /** Default: now (certificate expiry). */
  now?: Date;
}

/** What {@link lintProfile} found: findings with stable rule ids. */
export interface LintResult {
  findings: ProfileIssue[];
  format: PlistFormat;
  signed: boolean;
  encrypted: boolean;
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
  const findings = validateProfile(parsed.plist, { now, ...(parsed.xml ? { xml: parsed.xml } : {}) });
  if (parsed.signedData) {
    const v = await verifySignedData(parsed.signedData, { ca: [], now: () => now });
    for (const r of v.reasons) {
      if (r.code === 'untrusted') continue; // trust is verify's question, not lint's
      const expiry = r.code.endsWith('expired') || r.code.endsWith('not-yet-valid');
      findings.push({ rule: expiry ? r.code : 'signature', path: '(signature)', message: r.message, severity: expiry ? 'warning' : 'error' });
    }
  }
  const plist = parsed.plist as Record<string, unknown>;
  return { findings, format: parsed.format, signed: parsed.signed, encrypted: !!plist && typeof plist === 'object' && 'EncryptedPayloadContent' in plist };
}
