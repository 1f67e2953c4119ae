/**
 * Encrypted profiles (apple-spec section 11): the PayloadContent array becomes a plist of
 * its own, encrypted as CMS EnvelopedData to a device certificate, stored as
 * EncryptedPayloadContent with IsEncrypted, and the outer profile is signed afterwards.
 * The array is cut from the rendered text, never re-serialised, so no value changes type.
 *
 * @module encrypt
 */
import type { KeyObject } from 'node:crypto';
import { build } from 'plist';
import { envelope, openEnvelope, type ContentCipher } from '../cms/envelope.js';
import { ProfileParseError } from '../errors.js';
import { parseProfile } from './parse.js';
import { parsePlistXml } from './plist-xml.js';

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';

function spansOf(xml: string) {
  const spans = new Map<string, { start: number; end: number; valueStart: number }>();
  parsePlistXml(xml, { spans });
  return spans;
}

/**
 * Moves PayloadContent of an XML profile into EncryptedPayloadContent, encrypted to `recipient` (DER).
 * @throws ERR_PROFILE_PARSE when the profile has no PayloadContent
 */
export function encryptProfileXml(xml: string, recipient: Buffer, cipher: ContentCipher = 'aes-256-cbc'): string {
  const span = spansOf(xml).get('PayloadContent');
  if (!span) throw new ProfileParseError('The profile has no PayloadContent to encrypt');
  const inner = `${HEADER}${xml.slice(span.valueStart, span.end)}\n</plist>\n`;
  const der = envelope(Buffer.from(inner, 'utf8'), recipient, cipher);
  const b64 = der.toString('base64').replace(/(.{68})/g, '$1\n\t');
  return `${xml.slice(0, span.start)}<key>EncryptedPayloadContent</key>\n\t<data>\n\t${b64}\n\t</data>\n\t<key>IsEncrypted</key>\n\t<true/>${xml.slice(span.end)}`;
}

/**
 * Gives back the plain XML profile of an encrypted one (signed or not), for testing and support.
 * @throws ERR_PROFILE_PARSE, ERR_INPUT_INVALID (not encrypted to that key)
 */
export function decryptProfile(bytes: Uint8Array, key: KeyObject, certificate?: Buffer): string {
  const parsed = parseProfile(bytes);
  const top = parsed.plist as Record<string, unknown>;
  const data = top?.EncryptedPayloadContent;
  if (!(data instanceof Uint8Array)) throw new ProfileParseError('The profile is not encrypted');
  const inner = openEnvelope(data, key, certificate);
  // The decrypted plist may be XML or binary; bring it to XML text.
  const innerXml = inner.subarray(0, 8).toString('latin1') === 'bplist00' ? build(parseProfile(inner).plist as never) : inner.toString('utf8');
  const array = /<plist[^>]*>([\s\S]*)<\/plist>/.exec(innerXml)?.[1]?.trim();
  if (!array?.startsWith('<array')) throw new ProfileParseError('The decrypted content is not a payload array');
  const xml = parsed.xml ?? build(top as never);
  const spans = spansOf(xml);
  const enc = spans.get('EncryptedPayloadContent');
  const flag = spans.get('IsEncrypted');
  if (!enc) throw new ProfileParseError('The profile is not encrypted');
  const cuts = [
    { ...enc, text: `<key>PayloadContent</key>\n\t${array}` },
    ...(flag ? [{ ...flag, text: '' }] : []),
  ].sort((a, b) => b.start - a.start);
  let out = xml;
  for (const c of cuts) out = out.slice(0, c.start) + c.text + out.slice(c.end);
  return out;
}
