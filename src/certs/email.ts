import { InputInvalid } from '../errors.js';
import { hiddenCharacter, hiddenMessage } from './name.js';

/**
 * Checks an address for use as an rfc822Name and as a store key: one `@`, no spaces,
 * control, invisible or text-direction characters, at most 254 characters. Returns it
 * unchanged (case is kept: iOS compares the account address and the certificate's
 * case-sensitively).
 * @throws ERR_INPUT_INVALID
 * @example
 * const email = assertEmail('alice@example.com') // the address, checked
 * try { assertEmail('alice@') } catch (err) { if (isProfilesmithError(err)) console.error(err.code) } // ERR_INPUT_INVALID
 */
export function assertEmail(value: string): string {
  const hidden = typeof value === 'string' ? hiddenCharacter(value, { joiners: false }) : undefined;
  if (hidden) throw new InputInvalid('email', hiddenMessage('email address', hidden));
  const ok =
    typeof value === 'string' &&
    value.length <= 254 &&
    /^[^\s@\u0000-\u001f\u007f"<>()[\]\\,;:]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/.test(
      value,
    );
  if (!ok) throw new InputInvalid('email', `"${printable(value)}" is not an email address`);
  return value;
}

/** A value made safe to quote in a one-line message. */
export function printable(value: unknown): string {
  const s = String(value);
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]/gu, '?');
  return clean.length > 80 ? clean.slice(0, 77) + '...' : clean;
}
