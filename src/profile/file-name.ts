/**
 * A file name from an address that is safe on every OS: lower-case (case-insensitive
 * filesystems would otherwise merge two users), only [a-z0-9@._+-], no leading dot, no
 * Windows device names, bounded length; anything changed gets a short hash so two
 * addresses never share a file.
 */
import { createHash } from 'node:crypto';

const RESERVED = /^(con|prn|aux|nul|com\d|lpt\d)(\.|$)/i;

export function profileFileName(email: string, extension = '.mobileconfig'): string {
  const lower = email.toLowerCase();
  let base = lower.replace(/[^a-z0-9@._+-]/g, '_').replace(/^\.+/, '_').slice(0, 120);
  if (RESERVED.test(base) || base === '') base = `_${base}`;
  if (base !== lower) base += `-${createHash('sha256').update(lower).digest('hex').slice(0, 8)}`;
  return base + extension;
}
