/**
 * PEM framing and fingerprints.
 *
 * @module pem
 */
import { hash, X509Certificate } from 'node:crypto';
import { InputInvalid } from '../errors.js';
import { printable } from './email.js';

/**
 * Wraps DER in a PEM block with 64-character lines.
 * @example
 * writeFileSync('root.pem', toPem(certificateDer))
 */
export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Every PEM block in `text`, in order. */
export function pemBlocks(text: string): { label: string; der: Buffer }[] {
  const out: { label: string; der: Buffer }[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push({ label: m[1] as string, der: Buffer.from((m[2] as string).replace(/\s+/g, ''), 'base64') });
  }
  return out;
}

/** Certificates from PEM text (any number of blocks) or a single DER certificate. */
export function certificatesFrom(input: Uint8Array | string): Buffer[] {
  const text = typeof input === 'string' ? input : Buffer.from(input).toString('latin1');
  if (text.includes('-----BEGIN')) {
    return pemBlocks(text)
      .filter((b) => b.label === 'CERTIFICATE')
      .map((b) => b.der);
  }
  return typeof input === 'string' ? [] : [Buffer.from(input)];
}

/**
 * A certificate serial as the store names entries: lower-case hex, no separators, without
 * the leading zero octets DER adds to keep a number positive.
 * @throws ERR_INPUT_INVALID for anything that is not a serial
 */
export function normalizeSerial(serial: string): string {
  const s = serial.toLowerCase().replace(/[:\s]/g, '').replace(/^(00)+(?=..)/, '');
  if (!/^[0-9a-f]{1,64}$/.test(s)) throw new InputInvalid('serial', `"${printable(serial)}" is not a certificate serial number`);
  return s;
}

/**
 * One or more certificates, as Node's own APIs take them (`tls.connect({ ca })`): PEM text
 * (any number of CERTIFICATE blocks), DER or PEM bytes (`Buffer` or `Uint8Array`), or an
 * array of any of those.
 */
export type CertificateInput = string | Uint8Array | readonly (string | Uint8Array)[];

/**
 * The DER of every certificate in a {@link CertificateInput}, each checked to be an X.509
 * certificate. `option` names the option in errors.
 * @throws ERR_INPUT_INVALID naming `option`: a value of another shape, an element that is not a
 * certificate, or (unless `allowEmpty`) no certificate at all
 * @example
 * const chain = toCertificates(readFileSync('chain.pem', 'utf8'), 'chain') // the DER of each certificate
 */
export function toCertificates(input: unknown, option: string, options: { allowEmpty?: boolean } = {}): Buffer[] {
  const items = Array.isArray(input) ? input : [input];
  const out: Buffer[] = [];
  items.forEach((item, i) => {
    const where = Array.isArray(input) ? `${option}[${i}]` : option;
    if (typeof item !== 'string' && !(item instanceof Uint8Array)) {
      throw new InputInvalid(option, `${where} must be PEM text, DER bytes (Buffer or Uint8Array) or an array of those, not ${item === null ? 'null' : Array.isArray(item) ? 'a nested array' : typeof item}`);
    }
    const ders = certificatesFrom(item);
    if (!ders.length) throw new InputInvalid(option, `${where} holds no certificate (PEM "CERTIFICATE" blocks or DER)`);
    for (const der of ders) {
      try {
        new X509Certificate(der);
      } catch {
        throw new InputInvalid(option, `${where} is not an X.509 certificate`);
      }
      out.push(der);
    }
  });
  if (!out.length && !options.allowEmpty) throw new InputInvalid(option, `${option} holds no certificate`);
  return out;
}

/**
 * The issuers of a leaf gathered from several lists (the bundle's, the `chain` option's): each
 * certificate once, in the order first seen, and never the leaf itself.
 * @example
 * // The issuers of a leaf, each once and never the leaf itself, from several lists.
 * const chain = distinctIssuers(fingerprint(certificateDer), toCertificates(pemIntermediate, 'chain'), toCertificates(rootPem, 'ca'))
 */
export function distinctIssuers(leafFingerprint: string, ...lists: readonly (readonly Buffer[])[]): Buffer[] {
  const seen = new Set([leafFingerprint]);
  const out: Buffer[] = [];
  for (const der of lists.flat()) {
    const fp = fingerprint(der);
    if (!seen.has(fp)) (seen.add(fp), out.push(der));
  }
  return out;
}

/**
 * SHA-256 fingerprint of DER bytes, lower-case hex without separators.
 * @example
 * console.log(fingerprint(certificateDer)) // SHA-256 of the DER, lower-case hex
 */
export function fingerprint(der: Uint8Array): string {
  return hash('sha256', der, 'hex');
}
