/**
 * The text encodings of files from real offices: UTF-8 (with or without a BOM), UTF-16 with a
 * BOM (Excel's "Unicode text"), and Windows-1252 (Excel's default "CSV" on Windows in Western
 * Europe and the Americas). A file that is not valid UTF-8 and has no BOM is read as
 * Windows-1252 (converted, not refused: that is what such a file is); bytes that no text file
 * holds are refused with their line and value.
 *
 * @module text-encoding
 */
import { createReadStream } from 'node:fs';
import { InputInvalid } from '../errors.js';

/** An encoding we read. */
export type TextEncodingName = 'utf-8' | 'utf-16le' | 'utf-16be' | 'windows-1252';

/** Bytes Windows-1252 leaves undefined. */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** Calls `bad` with the line and offset of the first byte `isBad` picks, if any. */
async function scan(path: string, isBad: (byte: number) => boolean): Promise<{ line: number; offset: number; byte: number } | undefined> {
  let line = 1;
  let offset = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const b = chunk as Buffer;
    for (let i = 0; i < b.length; i++) {
      const c = b[i]!;
      if (isBad(c)) return { line, offset: offset + i, byte: c };
      if (c === 0x0a) line++;
    }
    offset += b.length;
  }
  return undefined;
}

const hex = (b: number) => `0x${b.toString(16).padStart(2, '0')}`;

/** Names the encoding of the file at `path`. */
export async function detectEncoding(path: string, field = 'users'): Promise<TextEncodingName> {
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let valid = true;
  let first = true;
  for await (const chunk of createReadStream(path, { highWaterMark: 64 * 1024 })) {
    const b = chunk as Buffer;
    if (first && b.length) {
      first = false;
      if (b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
      if (b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
    }
    try {
      utf8.decode(b, { stream: true });
    } catch {
      valid = false;
      break;
    }
  }
  if (valid) {
    try {
      utf8.decode();
    } catch {
      valid = false;
    }
  }
  // Control characters (a NUL most of all: UTF-16 without its BOM, or a binary file) are no text.
  const control = await scan(path, (c) => c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d);
  if (control) throw new InputInvalid(field, `Line ${control.line}: byte ${hex(control.byte)} at offset ${control.offset} is not text; save the file as CSV UTF-8, Unicode text (UTF-16) or Windows-1252 CSV`);
  if (valid) return 'utf-8';
  const undefinedByte = await scan(path, (c) => CP1252_UNDEFINED.has(c));
  if (undefinedByte) throw new InputInvalid(field, `Line ${undefinedByte.line}: byte ${hex(undefinedByte.byte)} at offset ${undefinedByte.offset} is neither UTF-8 nor Windows-1252`);
  return 'windows-1252';
}
