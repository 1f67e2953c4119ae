/**
 * Decrypting an encrypted profile back to its plain XML, for tests and support
 * (the counterpart of encrypt.ts).
 *
 * @module decrypt
 */
import { toCertificates } from '../certs/pem.js';
import type { KeyObject } from 'node:crypto';
import { build } from 'plist';
import { openEnvelope } from '../cms/envelope.js';
import { ProfileParseError } from '../errors.js';
import { spansOf } from './encrypt.js';
import { parseProfile } from './parse.js';

/**
 * Gives back the plain XML profile of an encrypted one (signed or not), for testing and support.
 * @throws ERR_PROFILE_PARSE, ERR_INPUT_INVALID (not encrypted to that key)
 * @example
 * const plain = decryptProfile(readFileSync('alice.mobileconfig'), key, pemCert)
 * console.log(plain) // the XML property list
 */
export function decryptProfile(bytes: Uint8Array, key: KeyObject, certificate?: string | Uint8Array): string {
  const parsed = parseProfile(bytes);
  const top = parsed.plist as Record<string, unknown>;
  const data = top?.EncryptedPayloadContent;
  if (!(data instanceof Uint8Array)) throw new ProfileParseError('The profile is not encrypted');
  const inner = openEnvelope(data, key, certificate === undefined ? undefined : toCertificates(certificate, 'certificate')[0]);
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
