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

/**
 * Default reverse-DNS identifier for a user's profile: `com.example.profilesmith.<template>.<local part>`.
 * The local part is reduced to [a-z0-9-]; when that changed it, a short hash keeps two users apart.
 */
export function defaultProfileIdentifier(email: string, template: string): string {
  const [local = '', domain = ''] = [email.slice(0, email.lastIndexOf('@')), email.slice(email.lastIndexOf('@') + 1)];
  const rev = domain.toLowerCase().split('.').filter(Boolean).reverse().join('.');
  const clean = local.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'user';
  const tag = clean === local ? '' : '-' + createHash('sha256').update(email.toLowerCase()).digest('hex').slice(0, 8);
  const tpl = template.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return `${rev}.profilesmith.${tpl}.${clean}${tag}`;
}
