/**
 * The default PayloadDescription: the one paragraph iOS shows on the install sheet under
 * "Description". It names the organization, the user and what the profile installs, so the
 * person installing it (or an admin reading an MDM's list) knows what it is without opening it.
 */
import { getPath } from './template.js';

/** What a profile installs, as {@link describeProfile} reads it. */
export interface ProfileContents {
  /** The organization the profile is from. */
  organization: string;
  /** The user it is made for (none for the trust profile). */
  user?: { email: string; name?: string };
  /** The payload types the template declares (its `.json`'s `payloads`). */
  payloadTypes: readonly string[];
  /** The resolved template data (host names are read from it). */
  data: Record<string, unknown>;
  /** The common names of the certificate authorities the profile carries. */
  authorities: readonly string[];
  /** Whether a signing identity is embedded. */
  signing: boolean;
  /** How many encryption identities are embedded (the current one and the history). */
  encryption: number;
}

const list = (items: string[]): string =>
  items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;

const text = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function hostOf(url: unknown): string | undefined {
  try {
    return typeof url === 'string' ? new URL(url).host : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The default PayloadDescription of a profile, from what it installs; undefined when the
 * template declares no payload types (a custom template without metadata), which then has none.
 * @example
 * describeProfile({
 *   organization: 'Example Corp', user: { email: 'alice@example.com', name: 'Alice' },
 *   payloadTypes: ['com.apple.security.root', 'com.apple.security.pkcs12', 'com.apple.eas.account'],
 *   data: { exchange: { host: 'mail.example.com' } }, authorities: ['Example Corp Root CA'],
 *   signing: true, encryption: 2,
 * })
 * // 'Example Corp S/MIME mail for Alice <alice@example.com>. Installs the Exchange account on mail.example.com …'
 */
export function describeProfile(c: ProfileContents): string | undefined {
  if (c.payloadTypes.length === 0) return undefined;
  const has = (t: string) => c.payloadTypes.includes(t);
  const items: string[] = [];
  const smime = c.signing || c.encryption > 0 || has('com.apple.security.scep') ? ' with S/MIME signing and encryption' : '';
  if (has('com.apple.eas.account')) {
    const host = text(getPath(c.data, 'exchange.host'));
    items.push(`the Exchange account${host ? ` on ${host}` : ''}${smime}`);
  }
  if (has('com.apple.mail.managed')) {
    const host = text(getPath(c.data, 'imap.host'));
    items.push(`the mail account${host ? ` on ${host}` : ''}${smime}`);
  }
  if (has('com.apple.security.scep')) {
    const host = hostOf(getPath(c.data, 'scep.url'));
    items.push(`a signing identity the device makes itself and has certified${host ? ` by ${host}` : ''} (SCEP)`);
  }
  // What the template declares it carries: a template without CA payloads ships none of the store's CAs.
  const identities = has('com.apple.security.pkcs12');
  const authorities = has('com.apple.security.root') || has('com.apple.security.pkcs1') ? c.authorities : [];
  if (identities && c.signing) items.push('a signing identity');
  if (identities && c.encryption === 1) items.push('an encryption identity');
  if (identities && c.encryption > 1) {
    const earlier = c.encryption - 1;
    items.push(`${c.encryption} encryption identities (the current one and ${earlier} earlier ${earlier === 1 ? 'one' : 'ones'}, so older encrypted mail stays readable)`);
  }
  if (!c.user && authorities.length) {
    const which = authorities.length === 1 ? `The certificate authority of ${c.organization}: ${authorities[0]}.` : `The certificate authorities of ${c.organization}: ${list([...authorities])}.`;
    return `${which} Install this profile first: the S/MIME mail profiles of ${c.organization} rely on it.`;
  }
  if (authorities.length === 1) items.push(`the certificate authority ${authorities[0]}`);
  if (authorities.length > 1) items.push(`the certificate authorities ${list([...authorities])}`);
  const contents = items.length ? `Installs ${list(items)}.` : '';
  if (!c.user) return `${c.organization}.${contents ? ' ' + contents : ''}`;
  const who = c.user.name ? `${c.user.name} <${c.user.email}>` : c.user.email;
  return `${c.organization} S/MIME mail for ${who}.${contents ? ' ' + contents : ''}`;
}
