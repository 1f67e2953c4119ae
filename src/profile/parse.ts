/**
 * Reading a profile in any of the forms iOS accepts: XML plist, binary plist, or either
 * inside a CMS SignedData.
 *
 * @module parse
 */
import { parseBinary } from 'plist';
import { ProfileParseError } from '../errors.js';
import { parseSignedData, type ParsedSignedData } from '../cms/verify.js';
import { parsePlistXml, type PlistValue } from './plist-xml.js';

/** How the plist was written: XML or binary. */
export type PlistFormat = 'xml' | 'binary';

/** A profile file taken apart: its format, whether it was signed, and the plist inside. */
export interface ParsedProfile {
  /** The plist's own format (inside the CMS when signed). */
  format: PlistFormat;
  signed: boolean;
  plist: PlistValue;
  /** The plist bytes (the signed content when signed). */
  content: Buffer;
  /** The XML text, for XML plists. */
  xml: string | undefined;
  /** Keys that appear twice in one dictionary of an XML plist (the last value is kept). */
  duplicateKeys: { key: string; line: number }[];
  /** The parsed SignedData of a signed profile, so that verifying does not parse it again. @internal */
  signedData?: ParsedSignedData;
}

/** At most this many bytes are parsed as a profile. */
export const MAX_PROFILE_BYTES = 16 * 1024 * 1024;

function parsePlistBytes(bytes: Buffer): { format: PlistFormat; plist: PlistValue; xml: string | undefined; duplicateKeys: { key: string; line: number }[] } {
  const duplicateKeys: { key: string; line: number }[] = [];
  if (bytes.subarray(0, 8).toString('latin1') === 'bplist00') {
    try {
      return { format: 'binary', plist: parseBinary(new Uint8Array(bytes)) as PlistValue, xml: undefined, duplicateKeys };
    } catch (cause) {
      throw new ProfileParseError(`Not a readable binary property list: ${(cause as Error).message}`, { cause });
    }
  }
  const xml = bytes.toString('utf8');
  try {
    return { format: 'xml', plist: parsePlistXml(xml, { duplicates: duplicateKeys }), xml, duplicateKeys };
  } catch (cause) {
    throw new ProfileParseError(`Not a well-formed property list: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Parses profile bytes.
 * @throws ERR_PROFILE_PARSE for anything that is not a plist or a signed plist
 * @example
 * const { format, signed, plist } = parseProfile(readFileSync('wifi.mobileconfig'))
 * console.log(format, signed, plist)
 */
export function parseProfile(bytes: Uint8Array): ParsedProfile {
  const buf = Buffer.from(bytes);
  if (buf.length > MAX_PROFILE_BYTES) throw new ProfileParseError(`The profile is larger than ${MAX_PROFILE_BYTES / 1048576} MiB`);
  const start = buf.subarray(0, 64).toString('latin1').replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart();
  if (buf[0] === 0x30) {
    const signedData = parseSignedData(buf);
    return { ...parsePlistBytes(signedData.content), signed: true, content: signedData.content, signedData };
  }
  if (start.startsWith('<') || start.startsWith('bplist00')) return { ...parsePlistBytes(buf), signed: false, content: buf };
  throw new ProfileParseError('Not a property list or a signed profile');
}
