/**
 * Distinguished names built as ASN.1 values, never by parsing a DN string: a name holds
 * exactly the text given, whatever quotes, commas, `+`, `=`, `#` or backslashes it has.
 *
 * @module name
 */
import { oid, seq, tlv } from '../asn1/der.js';
import { InputInvalid } from '../errors.js';

/** A distinguished name as ordered attribute/value pairs, e.g. `[['CN', 'Alice']]`. */
export type NameSpec = [attribute: 'CN' | 'O' | 'OU' | 'E' | 'C', value: string][];

const ATTRIBUTES: Record<NameSpec[number][0], { oid: string; tag: number; max: number; label: string }> = {
  // X.520 upper bounds (RFC 5280 appendix A.1): ub-common-name 64, ub-organization-name 64, ...
  CN: { oid: '2.5.4.3', tag: 0x0c, max: 64, label: 'common name' },
  O: { oid: '2.5.4.10', tag: 0x0c, max: 64, label: 'organization' },
  OU: { oid: '2.5.4.11', tag: 0x0c, max: 64, label: 'organizational unit' },
  // emailAddress is an IA5String (PKCS#9), countryName a two-letter PrintableString.
  E: { oid: '1.2.840.113549.1.9.1', tag: 0x16, max: 255, label: 'email address' },
  C: { oid: '2.5.4.6', tag: 0x13, max: 2, label: 'country' },
};

/** X.520's ub-common-name: a CN holds at most 64 characters. */
export const MAX_COMMON_NAME = 64;

/**
 * Characters that show nothing or change the direction of the text around them: every Unicode
 * format character (Cf: zero-width U+200B-U+200F, bidi embeddings and overrides U+202A-U+202E,
 * isolates U+2066-U+2069, U+FEFF, U+061C, tags...), the C1 controls and the line and paragraph
 * separators. In a name or an address they make it read as something it is not
 * (`Alice\u202Egnp.exe` shows as `Aliceexe.png`).
 */
const HIDDEN = /[\p{Cf}\u0080-\u009f\u2028\u2029]/gu;

/**
 * The first character of `text` that {@link HIDDEN} refuses, as `U+202E`; undefined when none.
 * The zero-width non-joiner and joiner (U+200C, U+200D) are spelling inside a word in Persian,
 * Kurdish and the Indic scripts (می‌خواهم): between a letter (or a combining mark, as a virama)
 * and a letter they pass; anywhere else (leading, trailing, between emoji or spaces) they are refused.
 * With `joiners: false` (addresses: no mail system spells one with them) they are always refused.
 */
export function hiddenCharacter(text: string, options: { joiners?: boolean } = {}): string | undefined {
  for (const m of text.matchAll(HIDDEN)) {
    const c = m[0];
    const at = m.index ?? 0;
    if (options.joiners !== false && (c === '\u200c' || c === '\u200d') && /[\p{L}\p{M}]$/u.test(text.slice(0, at)) && /^\p{L}/u.test(text.slice(at + 1))) continue;
    return `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  }
  return undefined;
}

/** The message refusing `char` (from {@link hiddenCharacter}) in `what`. */
export const hiddenMessage = (what: string, char: string): string => `The ${what} must not hold ${char}, an invisible or text-direction character`;

/** The length of `text` in characters (code points), as X.520's upper bounds count. */
export const characters = (text: string): number => [...text].length;

/**
 * Checks one attribute value: not empty, no control, invisible or text-direction characters
 * ({@link hiddenCharacter}), within the X.520 bound.
 * @throws ERR_INPUT_INVALID naming the field and the limit
 */
export function checkNameValue(field: string, value: string, attribute: NameSpec[number][0] = 'CN'): string {
  const spec = ATTRIBUTES[attribute];
  if (!value) throw new InputInvalid(field, `The ${spec.label} must not be empty`);
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new InputInvalid(field, `The ${spec.label} must not hold control characters`);
  const hidden = hiddenCharacter(value);
  if (hidden) throw new InputInvalid(field, hiddenMessage(spec.label, hidden));
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) throw new InputInvalid(field, `The ${spec.label} is not valid Unicode`);
  const n = characters(value);
  if (n > spec.max) {
    throw new InputInvalid(field, `The ${spec.label} "${value}" has ${n} characters; X.509 allows at most ${spec.max} (ub-${attribute === 'CN' ? 'common-name' : attribute === 'O' ? 'organization-name' : 'name'})`);
  }
  if (spec.tag !== 0x0c && !/^[\u0020-\u007e]*$/.test(value)) throw new InputInvalid(field, `The ${spec.label} must be ASCII`);
  return value;
}

/** The DER Name (RDNSequence, one attribute per RDN) of `name`, values as given. */
export function encodeName(name: NameSpec): Buffer {
  return seq(
    ...name.map(([attribute, value]) => {
      const spec = ATTRIBUTES[attribute];
      checkNameValue(attribute, value, attribute);
      const bytes = Buffer.from(value, spec.tag === 0x0c ? 'utf8' : 'latin1');
      return tlv(0x31, seq(oid(spec.oid), tlv(spec.tag, bytes)));
    }),
  );
}
