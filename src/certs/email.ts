import { domainToASCII } from 'node:url';
import { InputInvalid } from '../errors.js';
import { hiddenCharacter, hiddenMessage } from './name.js';

/**
 * Checks an address for use as a store key and a profile's account address: one `@`, no
 * spaces, control, invisible or text-direction characters, at most 254 characters. Returns it
 * unchanged (case is kept: iOS compares the account address and the certificate's
 * case-sensitively). The local part may hold non-ASCII letters (an imported certificate's
 * owner); issuing a certificate takes ASCII only (an rfc822Name is an IA5String).
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

/**
 * Checks an address for a certificate's rfc822Name, an IA5String (RFC 5280): what
 * {@link assertEmail} accepts, in ASCII only. An internationalised address (RFC 8398
 * SmtpUTF8Mailbox) is refused, with one line; for a domain in Unicode the line names the
 * A-label form to use instead.
 * @throws ERR_INPUT_INVALID
 */
export function assertCertificateEmail(value: string): string {
  if (typeof value !== 'string' || hiddenCharacter(value, { joiners: false }) || !/[^\u0000-\u007f]/.test(value)) return assertEmail(value);
  const at = value.lastIndexOf('@');
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (at > 0 && !/[^\u0000-\u007f]/.test(local)) {
    const aLabel = domainToASCII(domain);
    if (aLabel) {
      assertEmail(`${local}@${aLabel}`);
      throw new InputInvalid('email', `"${printable(value)}" has a domain in Unicode, and a certificate's address is ASCII: give the domain as its A-label, "${local}@${aLabel}"`);
    }
  }
  throw new InputInvalid('email', `"${printable(value)}" has characters outside ASCII, and a certificate's address is ASCII (internationalised addresses, RFC 8398, are not supported): use an ASCII address of this mailbox`);
}

/** A value made safe to quote in a one-line message. */
export function printable(value: unknown): string {
  const s = String(value);
  // eslint-disable-next-line no-control-regex
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f\p{Cf}\u2028\u2029]/gu, '?');
  return clean.length > 80 ? clean.slice(0, 77) + '...' : clean;
}
