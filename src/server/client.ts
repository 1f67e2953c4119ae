/**
 * Who a request is from, behind reverse proxies: `X-Forwarded-For` and `Forwarded` are
 * believed only when the connection comes from a proxy named as trusted, and then the client
 * is the last address in the chain that is not itself a trusted proxy (RFC 7239 section 5.2).
 *
 * @module client
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { InputInvalid } from '../errors.js';

/** `::ffff:10.0.0.1` is 10.0.0.1. */
const plain = (a: string) => (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a);

/** A set of trusted proxies: addresses (`10.0.0.5`, `::1`) and CIDR ranges (`10.0.0.0/8`). */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** @throws ERR_INPUT_INVALID for a value that is not an address or a range */
  constructor(entries: readonly string[] = []) {
    for (const e of entries) {
      const [addr, bits, extra] = e.trim().split('/');
      const family = isIP(addr ?? '');
      const prefix = bits === undefined ? undefined : Number(bits);
      if (!family || extra !== undefined || (prefix !== undefined && (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)))) {
        throw new InputInvalid('trust-proxy', `"${e}" is not an IP address or a CIDR range (10.0.0.5, 10.0.0.0/8, ::1)`);
      }
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) this.#list.addAddress(addr!, type);
      else this.#list.addSubnet(addr!, prefix, type);
    }
    this.#empty = entries.length === 0;
  }

  /** True when `address` is a trusted proxy. */
  has(address: string): boolean {
    if (this.#empty) return false;
    const a = plain(address);
    const family = isIP(a);
    return family !== 0 && this.#list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** The addresses a `Forwarded` header names, in order (`for=` of each element). */
function forwardedFor(header: string): string[] {
  const out: string[] = [];
  for (const element of header.split(',')) {
    const m = /(?:^|;)\s*for\s*=\s*("?)\[?([^\]";,]+)\]?(?::\d+)?\1/i.exec(element);
    if (m?.[2]) out.push(m[2].trim());
  }
  return out;
}

/** The client's address: the socket's, or (from a trusted proxy) the last untrusted one it forwarded. */
export function clientAddress(req: IncomingMessage, trusted: TrustedProxies): string {
  const peer = plain(req.socket.remoteAddress ?? '?');
  if (!trusted.has(peer)) return peer;
  const header = req.headers.forwarded;
  const xff = req.headers['x-forwarded-for'];
  const chain = typeof header === 'string' ? forwardedFor(header) : typeof xff === 'string' ? xff.split(',').map((s) => s.trim()).filter(Boolean) : [];
  for (let i = chain.length - 1; i >= 0; i--) {
    const a = plain(chain[i]!);
    if (!isIP(a)) return peer; // an obfuscated or unknown hop: the proxy is the best we know
    if (!trusted.has(a)) return a;
  }
  return chain.length ? plain(chain[0]!) : peer;
}
