/**
 * Encrypted profiles: the PayloadContent array becomes a plist of
 * its own, encrypted as CMS EnvelopedData to a device certificate, stored as
 * EncryptedPayloadContent with IsEncrypted, and the outer profile is signed afterwards.
 * The array is cut from the rendered text, never re-serialised, so no value changes type.
 * Decryption is in decrypt.ts: it needs the `plist` package (binary plists), which a batch
 * worker, encrypting only, would otherwise load for nothing (70 ms per thread).
 *
 * @module encrypt
 */
import { envelope, type ContentCipher } from '../cms/envelope.js';
import { ProfileParseError } from '../errors.js';
import { parsePlistXml } from './plist-xml.js';

const HEADER =
  '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';

/** The text span of each top-level key of an XML profile. @internal */
export function spansOf(xml: string) {
  const spans = new Map<string, { start: number; end: number; valueStart: number }>();
  parsePlistXml(xml, { spans });
  return spans;
}

/**
 * Moves PayloadContent of an XML profile into EncryptedPayloadContent, encrypted to `recipient` (DER).
 * @throws ERR_PROFILE_PARSE when the profile has no PayloadContent
 * @example
 * // Only the device holding the recipient's key reads the payloads; then sign as usual.
 * const encrypted = encryptProfileXml(xml, toCertificates(pemCert, 'recipient')[0]!)
 * const signed = await signProfile(encrypted, keySigner({ key, certificate }))
 */
export function encryptProfileXml(xml: string, recipient: Buffer, cipher: ContentCipher = 'aes-256-cbc'): string {
  const span = spansOf(xml).get('PayloadContent');
  if (!span) throw new ProfileParseError('The profile has no PayloadContent to encrypt');
  const inner = `${HEADER}${xml.slice(span.valueStart, span.end)}\n</plist>\n`;
  const der = envelope(Buffer.from(inner, 'utf8'), recipient, cipher);
  const b64 = der.toString('base64').replace(/(.{68})/g, '$1\n\t');
  return `${xml.slice(0, span.start)}<key>EncryptedPayloadContent</key>\n\t<data>\n\t${b64}\n\t</data>\n\t<key>IsEncrypted</key>\n\t<true/>${xml.slice(span.end)}`;
}
