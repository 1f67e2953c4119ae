/**
 * BER in, DER out: what Apple Configurator, iPhone Configuration Utility, `openssl smime
 * -sign` and `openssl cms -stream` write for a signed profile is BER (indefinite lengths,
 * constructed OCTET STRINGs), and the rest of our reader speaks DER. The conversion keeps every
 * element that already is DER byte for byte (certificates, signed attributes), so signatures
 * over them still verify; a constructed string becomes the primitive string of its pieces.
 *
 * @module ber
 */
import { DerError, parseDer, type DerNode } from './der.js';

/** How deep constructed elements may nest, and how many elements one input may hold. */
const MAX_DEPTH = 64;
const MAX_NODES = 200_000;

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Universal string types whose constructed form (tag | 0x20) BER allows: X.690 8.21. */
const STRING_TAGS = new Set([0x03, 0x04, 0x0c, 0x12, 0x13, 0x14, 0x15, 0x16, 0x19, 0x1a, 0x1b, 0x1c, 0x1e]);

interface State {
  nodes: number;
  /** True once anything was not DER already. */
  changed: boolean;
}

/** Reads one element at `offset`; returns its DER and where it ended. */
function convert(buf: Buffer, offset: number, depth: number, state: State, inString: number | undefined): { der: Buffer; end: number; strings?: Buffer[] } {
  if (++state.nodes > MAX_NODES) throw new DerError('too many elements');
  if (depth > MAX_DEPTH) throw new DerError('nested too deeply');
  if (offset + 2 > buf.length) throw new DerError('truncated BER');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
  const constructed = (tag & 0x20) !== 0;
  let len = buf[offset + 1] as number;
  let pos = offset + 2;
  let indefinite = false;
  if (len === 0x80) {
    if (!constructed) throw new DerError('indefinite length on a primitive element');
    indefinite = true;
    state.changed = true;
  } else if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4) throw new DerError('BER length too large');
    if (pos + n > buf.length) throw new DerError('truncated BER');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos + i] as number);
    // DER writes the shortest length form; a longer one is BER.
    if (len < 0x80 || (n > 1 && buf[pos] === 0)) state.changed = true;
    pos += n;
  }
  if (!constructed) {
    const end = pos + len;
    if (end > buf.length) throw new DerError('truncated BER');
    const value = buf.subarray(pos, end);
    if (inString !== undefined) {
      if ((tag & ~0x20) !== inString) throw new DerError('a constructed string holds another type');
      return { der: value, end, strings: [value] };
    }
    return { der: Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]), end };
  }
  const universalString = (tag & 0xc0) === 0 && STRING_TAGS.has(tag & 0x1f);
  if (universalString) state.changed = true;
  const parts: Buffer[] = [];
  const limit = indefinite ? buf.length : pos + len;
  if (limit > buf.length) throw new DerError('truncated BER');
  for (;;) {
    if (indefinite) {
      if (pos + 2 > buf.length) throw new DerError('indefinite length without end-of-contents');
      if (buf[pos] === 0 && buf[pos + 1] === 0) {
        pos += 2;
        break;
      }
    } else if (pos >= limit) break;
    const inner = convert(buf, pos, depth + 1, state, universalString ? tag & 0x1f : inString);
    if (!indefinite && inner.end > limit) throw new DerError('an element runs past its parent');
    parts.push(...(inner.strings ?? [inner.der]));
    pos = inner.end;
  }
  if (inString !== undefined) return { der: Buffer.concat(parts), end: pos, strings: parts };
  const body = Buffer.concat(parts);
  const outTag = universalString ? tag & ~0x20 : tag;
  return { der: Buffer.concat([Buffer.from([outTag]), lengthBytes(body.length), body]), end: pos };
}

/** One element read with BER rules and written as DER, and what followed it. */
export interface BerResult {
  der: Buffer;
  /** The bytes after the element (a CRLF some tools append). */
  trailing: Buffer;
  /** False when the input already was DER. */
  converted: boolean;
}

/**
 * Reads the element at the start of `bytes` by BER rules and re-encodes it as DER.
 * @throws DerError when it is not BER
 */
export function berToDer(bytes: Uint8Array): BerResult {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state: State = { nodes: 0, changed: false };
  const { der, end } = convert(buf, 0, 0, state, undefined);
  return { der: state.changed ? der : buf.subarray(0, end), trailing: buf.subarray(end), converted: state.changed };
}

/**
 * Parses one element that may be BER or DER (nothing may follow it).
 * @throws DerError
 */
export function parseBer(bytes: Uint8Array): DerNode {
  try {
    return parseDer(bytes);
  } catch {
    const r = berToDer(bytes);
    if (r.trailing.length) throw new DerError('trailing bytes after the element');
    return parseDer(r.der);
  }
}
