/**
 * PKCS#11 URIs (RFC 7512): `pkcs11:token=Signing;object=profile-signer?module-path=/usr/lib/softhsm/libsofthsm2.so`.
 * Path attributes are separated by `;`, query attributes by `&`, values are percent-encoded.
 *
 * @module pkcs11-uri
 */
import { InputInvalid } from '../errors.js';

/** The parts of a PKCS#11 URI profilesmith uses. Unknown attributes are kept in `other`. */
export interface Pkcs11Uri {
  /** Token label. */
  token?: string;
  /** Token serial number. */
  serial?: string;
  /** Slot id (`slot-id`, RFC 7512 section 2.3). */
  slotId?: number;
  /** Object label (CKA_LABEL). */
  object?: string;
  /** Object id (CKA_ID), raw bytes. */
  id?: Uint8Array;
  /** `private`, `cert`, `public`… */
  type?: string;
  /** Path of the PKCS#11 module (query `module-path`). */
  modulePath?: string;
  /** The PIN given in the URI (query `pin-value`). Visible to other users when on a command line. */
  pinValue?: string;
  /** Where to read the PIN (query `pin-source`: a path or `file:` URI). */
  pinSource?: string;
  other: Record<string, string>;
}

function decode(value: string, attribute: string): Uint8Array {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) {
        throw new InputInvalid('pkcs11-uri', `The PKCS#11 URI attribute "${attribute}" has a bad percent escape`);
      }
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
    }
  }
  return Uint8Array.from(bytes);
}

function text(value: string, attribute: string): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(decode(value, attribute));
}

/**
 * Parses a PKCS#11 URI. Error messages name attributes, never values (a URI may hold a PIN).
 * @throws ERR_INPUT_INVALID when it is not a `pkcs11:` URI or an attribute is malformed
 * @example
 * parsePkcs11Uri('pkcs11:token=HSM;object=signer?module-path=/usr/lib/softhsm/libsofthsm2.so')
 */
export function parsePkcs11Uri(uri: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(uri)) throw new InputInvalid('pkcs11-uri', 'A PKCS#11 URI starts with "pkcs11:"');
  if (uri.length > 4096) throw new InputInvalid('pkcs11-uri', 'The PKCS#11 URI is longer than 4096 characters');
  const rest = uri.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const query = q < 0 ? '' : rest.slice(q + 1);
  const out: Pkcs11Uri = { other: {} };
  const seen = new Set<string>();
  const each = (part: string, sep: string, fn: (k: string, v: string) => void): void => {
    for (const pair of part.split(sep)) {
      if (!pair) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new InputInvalid('pkcs11-uri', `The PKCS#11 URI has an attribute without a value`);
      const key = pair.slice(0, eq).toLowerCase();
      if (!/^[a-z][a-z0-9-]*$/.test(key)) throw new InputInvalid('pkcs11-uri', 'The PKCS#11 URI has a malformed attribute name');
      if (seen.has(key)) throw new InputInvalid('pkcs11-uri', `The PKCS#11 URI names "${key}" twice`);
      seen.add(key);
      fn(key, pair.slice(eq + 1));
    }
  };
  each(path, ';', (k, v) => {
    switch (k) {
      case 'token': out.token = text(v, k); break;
      case 'serial': out.serial = text(v, k); break;
      case 'object': out.object = text(v, k); break;
      case 'id': out.id = decode(v, k); break;
      case 'type': out.type = text(v, k); break;
      case 'slot-id': {
        const n = Number(text(v, k));
        if (!Number.isSafeInteger(n) || n < 0) throw new InputInvalid('pkcs11-uri', 'The PKCS#11 URI slot-id is not a number');
        out.slotId = n;
        break;
      }
      default: out.other[k] = text(v, k);
    }
  });
  each(query, '&', (k, v) => {
    switch (k) {
      case 'module-path': out.modulePath = text(v, k); break;
      case 'pin-value': out.pinValue = text(v, k); break;
      case 'pin-source': out.pinSource = text(v, k); break;
      default: out.other[k] = text(v, k);
    }
  });
  if (out.type && out.type !== 'private' && out.type !== 'cert') {
    throw new InputInvalid('pkcs11-uri', `A signer URI names the private key (type=private), not type=${out.type}`);
  }
  return out;
}

/** The URI with any `pin-value` replaced, for messages and logs. */
export function redactPkcs11Uri(uri: string): string {
  return uri.replace(/([?&]pin-value=)[^&]*/gi, '$1***');
}
