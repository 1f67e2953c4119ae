import { createHash, hash } from 'node:crypto';

/**
 * A UUID derived from names (RFC 4122 version 5 layout over SHA-1), upper-case canonical.
 * The same user, template and certificates give the same UUIDs, so a regenerated profile
 * replaces the installed one in place.
 */
export function stableUuid(...parts: string[]): string {
  // One-shot hash(): a profile derives about ten of these, and a Hash object each cost more than the digest.
  const h = hash('sha1', 'profilesmith:v1' + JSON.stringify(parts), 'buffer');
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex').toUpperCase();
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** `organization` reduced to a lower-case [a-z0-9-] word ("store" when nothing is left). */
export function organizationSlug(organization: string): string {
  return organization.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '') || 'store';
}

/** The identifiers' namespace when template data names none: `profilesmith.<organization>`. */
export function defaultIdentifierPrefix(organization: string): string {
  return `profilesmith.${organizationSlug(organization)}`;
}

/**
 * A profile's PayloadIdentifier, one scheme for every profile of a store:
 * `<prefix>.<template>` for the trust profile and `<prefix>.<template>.<local part>.<domain>`
 * for a user's (`profilesmith.example-corp.root-ca`, `profilesmith.example-corp.exchange-smime.alice.example.com`).
 * The local part is reduced to [a-z0-9-]; when that changed it, a short hash of the address
 * keeps two users apart. The same inputs always give the same identifier, so a profile made
 * again replaces the installed one.
 */
export function profileIdentifier(prefix: string, template: string, email?: string): string {
  const tpl = template.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'profile';
  if (email === undefined) return `${prefix}.${tpl}`;
  const at = email.lastIndexOf('@');
  const local = email.slice(0, at);
  const domain = email.slice(at + 1).toLowerCase().replace(/[^a-z0-9.-]+/g, '-').replace(/^\.+|\.+$/g, '');
  const clean = local.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'user';
  const tag = clean === local ? '' : '-' + createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 8);
  return `${prefix}.${tpl}.${clean}${tag}.${domain || 'local'}`;
}

/** Whether `prefix` can start a PayloadIdentifier: dot-separated words of [A-Za-z0-9-]. */
export function isIdentifierPrefix(prefix: string): boolean {
  return /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$/.test(prefix) && prefix.length <= 200;
}
