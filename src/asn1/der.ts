/**
 * A minimal DER writer and a bounded DER reader: enough for the fixed shapes of CMS
 * SignedData and PKCS#12 that we build ourselves. Hand-written because the library ASN.1
 * layers cost 2-8x in the signing hot path (measured).
 */

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8: 0x0c,
  PRINTABLE: 0x13,
  SEQUENCE: 0x30,
  SET: 0x31,
  BMP: 0x1e,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
} as const;

function lengthBytes(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  for (let n = len; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** The tag and length bytes of an element whose contents are written separately. */
export function header(tag: number, length: number): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(length)]);
}

/** Tag-length-value. */
export function tlv(tag: number, value: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([tag]), lengthBytes(value.length), value]);
}

export const seq = (...items: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(items));

/** A DER SET OF: members sorted by their encodings, as X.690 11.6 requires. */
export const setOf = (...items: Uint8Array[]): Buffer =>
  tlv(TAG.SET, Buffer.concat([...items].sort((a, b) => Buffer.compare(a, b))));

export const octets = (value: Uint8Array): Buffer => tlv(TAG.OCTET_STRING, value);
export const nul = (): Buffer => Buffer.from([0x05, 0x00]);
/** `[n] EXPLICIT` wrapper. */
export const explicit = (n: number, inner: Uint8Array): Buffer => tlv(0xa0 | n, inner);
export const bmpString = (s: string): Buffer => tlv(TAG.BMP, Buffer.from(s, 'utf16le').swap16());

/** INTEGER from a non-negative bigint, a number, or unsigned big-endian bytes. */
export function int(v: bigint | number | Uint8Array): Buffer {
  let bytes: Buffer;
  if (typeof v === 'number' || typeof v === 'bigint') {
    let hex = BigInt(v).toString(16);
    if (hex.length % 2) hex = '0' + hex;
    bytes = Buffer.from(hex, 'hex');
  } else {
    bytes = Buffer.from(v);
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0 && (bytes[i + 1] ?? 0) < 0x80) i++;
    bytes = bytes.subarray(i);
  }
  if ((bytes[0] ?? 0) & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(TAG.INTEGER, bytes);
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => BigInt(p));
  const [a = 0n, b = 0n, ...rest] = parts;
  const out: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const chunk: number[] = [];
    let n = arc;
    do {
      chunk.unshift(Number(n & 0x7fn));
      n >>= 7n;
    } while (n > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i] = (chunk[i] ?? 0) | 0x80;
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

/** UTCTime through 2049, GeneralizedTime after, as RFC 5280 4.1.2.5 and RFC 5652 require. */
export function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14); // YYYYMMDDhhmmss
  const year = d.getUTCFullYear();
  if (year >= 1950 && year < 2050) return tlv(TAG.UTC_TIME, Buffer.from(iso.slice(2) + 'Z'));
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(iso + 'Z'));
}

/** A parsed DER element. `raw` is the full TLV, `value` its contents. */
export interface DerNode {
  tag: number;
  raw: Buffer;
  value: Buffer;
}

export class DerError extends Error {}

/** Reads one element at `offset`. Rejects indefinite and over-long lengths. */
export function readNode(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high-tag-number form is not supported');
  let len = buf[offset + 1] as number;
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0) throw new DerError('indefinite length is not DER');
    if (n > 4) throw new DerError('DER length too large');
    if (offset + 2 + n > buf.length) throw new DerError('truncated DER');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[offset + 2 + i] as number);
    header += n;
  }
  const end = offset + header + len;
  if (end > buf.length) throw new DerError('truncated DER');
  return { tag, raw: buf.subarray(offset, end), value: buf.subarray(offset + header, end) };
}

/** The children of a constructed element. */
export function children(node: DerNode): DerNode[] {
  if (!(node.tag & 0x20)) throw new DerError(`tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  for (let off = 0; off < node.value.length; ) {
    const child = readNode(node.value, off);
    out.push(child);
    off += child.raw.length;
    if (out.length > 10_000) throw new DerError('too many elements');
  }
  return out;
}

/** Parses a whole buffer as one element; trailing bytes are an error. */
export function parseDer(buf: Uint8Array): DerNode {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const node = readNode(b, 0);
  if (node.raw.length !== b.length) throw new DerError('trailing bytes after DER');
  return node;
}

/** Child `i` of a constructed element, with its tag checked when `tag` is given. */
export function child(node: DerNode, i: number, tag?: number): DerNode {
  const c = children(node)[i];
  if (!c) throw new DerError(`missing element ${i}`);
  if (tag !== undefined && c.tag !== tag) {
    throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${c.tag.toString(16)}`);
  }
  return c;
}

export function readOid(node: DerNode): string {
  if (node.tag !== TAG.OID) throw new DerError('expected an OID');
  const v = node.value;
  const arcs: bigint[] = [];
  let n = 0n;
  for (const byte of v) {
    n = (n << 7n) | BigInt(byte & 0x7f);
    if (!(byte & 0x80)) {
      arcs.push(n);
      n = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const a = first < 80n ? first / 40n : 2n;
  return [a, first - a * 40n, ...arcs].join('.');
}

export function readInt(node: DerNode): bigint {
  if (node.tag !== TAG.INTEGER) throw new DerError('expected an INTEGER');
  return node.value.length ? BigInt('0x' + node.value.toString('hex')) : 0n;
}

export function readTime(node: DerNode): Date {
  const s = node.value.toString('latin1');
  const m =
    node.tag === TAG.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s)
      : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new DerError('bad time');
  let year = Number(m[1]);
  if (node.tag === TAG.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}
