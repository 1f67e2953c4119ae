/**
 * A strict, bounded parser for XML property lists. Written here rather than taken from
 * `plist` because that one reports errors on the console through xmldom and gives no
 * bounds; profiles come from outside, so this parser:
 * - never reads a DTD, and refuses entity declarations (no external entities, no
 *   billion laughs); only the five XML entities and character references are expanded;
 * - bounds nesting depth and element count;
 * - rejects characters XML 1.0 forbids, and unknown or misplaced elements,
 * and reports every failure as one message with a line number.
 */
import { ProfileParseError } from '../errors.js';

/** A property-list value: string, number (integer or real), boolean, date, data, array or dictionary. */
export type PlistValue =
  | string
  | number
  | boolean
  | Date
  | Uint8Array
  | PlistValue[]
  | { [key: string]: PlistValue };

/**
 * An XML plist that is malformed or exceeds a bound (size, depth, entities), with its line and
 * column in the message. A {@link ProfileParseError}, so it carries the code `ERR_PROFILE_PARSE`.
 */
export class PlistSyntaxError extends ProfileParseError {}

/** True for a plist dictionary (not an array, date or data). */
export function isPlistDict(v: unknown): v is { [key: string]: PlistValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date) && !(v instanceof Uint8Array);
}

/** Options of {@link parsePlistXml}. */
export interface ParsePlistOptions {
  /**
   * Filled with the text span of each top-level dictionary entry, from its `<key>` to the end
   * of its value, so a caller can cut the exact rendered bytes (encryption moves
   * PayloadContent without re-serialising it).
   */
  spans?: Map<string, { start: number; end: number; valueStart: number }>;
  /** Default: 64. */
  maxDepth?: number;
  /** Default: 1,000,000. */
  maxElements?: number;
  /**
   * Filled with each dictionary key that appears twice in one dictionary (the last value is
   * kept, as CoreFoundation and plistlib keep it). Without it, a duplicate key is an error.
   */
  duplicates?: { key: string; line: number }[];
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
/** Base64 without whitespace: the alphabet, then at most two `=`. */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;

/** Parses XML plist text into plain values (`<data>` → Uint8Array, `<date>` → Date). */
export function parsePlistXml(text: string, options: ParsePlistOptions = {}): PlistValue {
  const maxDepth = options.maxDepth ?? 64;
  const maxElements = options.maxElements ?? 1_000_000;
  let pos = 0;
  let elements = 0;
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const shift = text.length - src.length;

  const line = () => src.slice(0, pos).split('\n').length;
  const fail = (msg: string): never => {
    throw new PlistSyntaxError(`${msg} at line ${line()}`);
  };
  if (FORBIDDEN.test(src)) {
    pos = src.search(FORBIDDEN);
    fail('forbidden control character');
  }

  // Char codes the scanner compares against.
  const LT = 0x3c;
  const GT = 0x3e;
  const SLASH = 0x2f;
  const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
  /** The first character of an element name: a letter. */
  const isNameStart = (c: number) => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a);
  /** A later character of an element name: letter, digit, `_`, `.` or `-`. */
  const isNameChar = (c: number) => isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2e || c === 0x2d;

  const skipMisc = () => {
    for (;;) {
      // XML's whitespace (S ::= #x20 | #x9 | #xD | #xA), by char code: no one-character string per step.
      for (let c = src.charCodeAt(pos); isSpace(c); c = src.charCodeAt(++pos));
      // Markup other than an element starts with <? or <!; anything else is the caller's.
      const next = src.charCodeAt(pos + 1);
      if (src.charCodeAt(pos) !== LT || (next !== 0x3f && next !== 0x21)) return;
      if (src.startsWith('<?', pos)) {
        const end = src.indexOf('?>', pos);
        if (end < 0) fail('unterminated processing instruction');
        pos = end + 2;
      } else if (src.startsWith('<!--', pos)) {
        const end = src.indexOf('-->', pos + 4);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else if (src.startsWith('<!DOCTYPE', pos)) {
        const end = src.indexOf('>', pos);
        if (end < 0) fail('unterminated DOCTYPE');
        const decl = src.slice(pos, end);
        if (decl.includes('[')) fail('a DOCTYPE with an internal subset is not allowed');
        pos = end + 1;
      } else if (!src.startsWith('<![CDATA[', pos)) {
        fail('declarations are not allowed');
      } else return;
    }
  };

  const decode = (raw: string): string =>
    raw.indexOf('&') < 0
      ? raw
      : raw.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-z]+);|&/g, (m, ref: string | undefined) => {
      if (!ref) return fail('bare "&" (write &amp;)');
      if (ref[0] === '#') {
        const cp = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
        if (!(cp === 9 || cp === 10 || cp === 13 || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff))) {
          return fail(`character reference ${m} is not allowed in XML`);
        }
        return String.fromCodePoint(cp);
      }
      return Object.hasOwn(ENTITIES, ref) ? (ENTITIES[ref] as string) : fail(`unknown entity ${m}`);
    });

  /**
   * At `</name`: moves past the closing tag, whose name may only be followed by XML
   * whitespace before `>`.
   */
  const closeTag = (name: string): void => {
    let i = pos + 2 + name.length;
    for (let c = src.charCodeAt(i); isSpace(c); c = src.charCodeAt(++i));
    if (src.charCodeAt(i) !== GT) fail(`bad closing tag for <${name}>`);
    pos = i + 1;
  };
  /** True when `</name` starts at `at`. */
  const closingAt = (at: number, name: string) => src.charCodeAt(at) === LT && src.charCodeAt(at + 1) === SLASH && src.startsWith(name, at + 2);

  /** Text up to the closing tag `</name>`, with CDATA sections and comments handled. */
  const readText = (name: string): string => {
    let lt = src.indexOf('<', pos);
    // The common case: plain text, then the closing tag.
    if (lt >= 0 && closingAt(lt, name) && src.charCodeAt(lt + 2 + name.length) === GT) {
      const text = decode(src.slice(pos, lt));
      pos = lt + 3 + name.length;
      return text;
    }
    let out = '';
    for (;;) {
      if (lt < 0) fail(`unterminated <${name}>`);
      out += decode(src.slice(pos, lt));
      pos = lt;
      if (src.startsWith('<![CDATA[', pos)) {
        const end = src.indexOf(']]>', pos);
        if (end < 0) fail('unterminated CDATA');
        out += src.slice(pos + 9, end);
        pos = end + 3;
      } else if (src.startsWith('<!--', pos)) {
        const end = src.indexOf('-->', pos);
        if (end < 0) fail('unterminated comment');
        pos = end + 3;
      } else if (closingAt(pos, name)) {
        closeTag(name);
        return out;
      } else {
        fail(`unexpected markup inside <${name}>`);
      }
      lt = src.indexOf('<', pos);
    }
  };

  // What readOpen found: the element's name and whether it closes itself (`<true/>`).
  let openName = '';
  let openEmpty = false;
  /** Reads `<name ...>` or `<name/>` into openName and openEmpty. */
  const readOpen = (): void => {
    skipMisc();
    if (src.charCodeAt(pos) !== LT) fail('expected an element');
    // The common case, a bare name: scanned by char code, no regular expression.
    let i = pos + 1;
    if (isNameStart(src.charCodeAt(i))) for (i++; isNameChar(src.charCodeAt(i)); i++);
    const c = src.charCodeAt(i);
    if (i > pos + 1 && (c === GT || (c === SLASH && src.charCodeAt(i + 1) === GT))) {
      openName = src.slice(pos + 1, i);
      openEmpty = c === SLASH;
      pos = c === GT ? i + 1 : i + 2;
    } else {
      // Attributes or whitespace in the tag.
      const end = src.indexOf('>', pos);
      if (end < 0) fail('unterminated tag');
      const body = src.slice(pos + 1, end);
      const m = /^([A-Za-z][A-Za-z0-9_.-]*)((?:[ \t\r\n]+[A-Za-z_:][\w:.-]*[ \t\r\n]*=[ \t\r\n]*(?:"[^"<]*"|'[^'<]*'))*)[ \t\r\n]*(\/?)$/.exec(body);
      if (!m) fail(`malformed tag <${body.slice(0, 40)}>`);
      openName = (m as RegExpExecArray)[1] as string;
      openEmpty = (m as RegExpExecArray)[3] === '/';
      pos = end + 1;
    }
    if (++elements > maxElements) fail(`more than ${maxElements} elements`);
  };

  const closes = (name: string): boolean => {
    skipMisc();
    if (!closingAt(pos, name)) return false;
    closeTag(name);
    return true;
  };

  const value = (depth: number): PlistValue => {
    if (depth > maxDepth) fail(`nesting deeper than ${maxDepth}`);
    readOpen();
    const name = openName;
    const empty = openEmpty;
    switch (name) {
      case 'dict': {
        const out: { [k: string]: PlistValue } = {};
        if (empty) return out;
        while (!closes('dict')) {
          const start = pos;
          readOpen();
          if (openName !== 'key') fail(`expected <key> in <dict>, found <${openName}>`);
          const key = openEmpty ? '' : readText('key');
          if (key === '__proto__') fail('the key "__proto__" is not allowed');
          if (Object.hasOwn(out, key)) {
            if (!options.duplicates) fail(`duplicate key "${key}"`);
            else if (options.duplicates.length < 1000) options.duplicates.push({ key, line: line() });
          }
          skipMisc();
          const valueStart = pos;
          out[key] = value(depth + 1);
          if (depth === 1) options.spans?.set(key, { start: start + shift, end: pos + shift, valueStart: valueStart + shift });
        }
        return out;
      }
      case 'array': {
        const out: PlistValue[] = [];
        if (empty) return out;
        while (!closes('array')) out.push(value(depth + 1));
        return out;
      }
      case 'string':
        return empty ? '' : readText('string');
      case 'key':
        return fail('<key> outside a <dict>');
      case 'integer': {
        const t = empty ? '' : readText('integer').trim();
        if (!/^[+-]?\d{1,19}$|^0x[0-9a-fA-F]{1,16}$/.test(t)) fail(`"${t.slice(0, 20)}" is not an integer`);
        const n = Number(t);
        if (!Number.isSafeInteger(n)) fail(`integer ${t} is out of range`);
        return n;
      }
      case 'real': {
        const t = empty ? '' : readText('real').trim();
        const n = Number(t);
        if (!t || Number.isNaN(n)) fail(`"${t.slice(0, 20)}" is not a real number`);
        return n;
      }
      case 'true':
      case 'false':
        if (!empty && !closes(name)) fail(`<${name}> must be empty`);
        return name === 'true';
      case 'date': {
        const t = empty ? '' : readText('date').trim();
        const d = new Date(t);
        if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(t) || Number.isNaN(d.getTime())) fail(`"${t.slice(0, 30)}" is not a date`);
        return d;
      }
      case 'data': {
        const raw = empty ? '' : readText('data');
        // Fast path: canonical base64 (what every encoder writes, one line) is exactly what
        // re-encoding its bytes gives back, and that is cheaper than a regular expression over
        // the text. Anything else takes the strict check, whitespace allowed.
        const bytes = Buffer.from(raw, 'base64');
        if (bytes.toString('base64') !== raw) {
          const t = raw.replace(/\s+/g, '');
          if (!BASE64.test(t) || t.length % 4 === 1) fail('<data> is not base64');
        }
        // A copy of its own: a decoded Buffer can share its memory with other small Buffers.
        return new Uint8Array(bytes);
      }
      default:
        return fail(`unknown element <${name}>`);
    }
  };

  skipMisc();
  readOpen();
  let result: PlistValue;
  if (openName === 'plist') {
    if (openEmpty) fail('empty <plist>');
    result = value(1);
    if (!closes('plist')) fail('expected </plist>');
  } else {
    pos = src.lastIndexOf('<', pos - 1);
    elements--;
    result = value(1);
  }
  skipMisc();
  if (pos < src.length) fail('content after the end of the property list');
  return result;
}
