import { X509Certificate, type KeyObject } from 'node:crypto';
import { child, parseDer, seq, TAG } from '../asn1/der.js';
import { CertificateInvalid } from '../errors.js';

/** The IssuerAndSerialNumber of a DER certificate, for a SignerInfo's sid. */
export function issuerAndSerial(certificate: Buffer): Buffer {
  try {
    const tbs = child(parseDer(certificate), 0, TAG.SEQUENCE);
    const first = child(tbs, 0);
    const offset = first.tag === 0xa0 ? 1 : 0; // [0] version is optional
    return seq(child(tbs, 2 + offset).raw, child(tbs, offset, TAG.INTEGER).raw);
  } catch (cause) {
    throw new CertificateInvalid('malformed', 'The signer certificate is not valid DER', { cause });
  }
}

/** The public key of a DER certificate. */
export function certificatePublicKey(certificate: Uint8Array): KeyObject {
  try {
    return new X509Certificate(certificate).publicKey;
  } catch (cause) {
    throw new CertificateInvalid('malformed', 'The data is not an X.509 certificate', { cause });
  }
}
