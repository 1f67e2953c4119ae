import { X509Certificate, type KeyObject } from 'node:crypto';
import { child, children, DerError, parseDer, seq, TAG, type DerNode } from '../asn1/der.js';
import { CertificateInvalid } from '../errors.js';

/**
 * The serial, issuer and subject elements of a DER certificate's TBSCertificate.
 * @throws DerError when it is not one
 */
export function tbsFields(certificate: Uint8Array): { serial: DerNode; issuer: DerNode; subject: DerNode } {
  const fields = children(child(parseDer(certificate), 0, TAG.SEQUENCE));
  const o = fields[0]?.tag === 0xa0 ? 1 : 0; // [0] version is optional
  const [serial, issuer, subject] = [fields[o], fields[2 + o], fields[4 + o]];
  if (serial?.tag !== TAG.INTEGER || issuer?.tag !== TAG.SEQUENCE || subject?.tag !== TAG.SEQUENCE) throw new DerError('not a TBSCertificate');
  return { serial, issuer, subject };
}

/** The IssuerAndSerialNumber of a DER certificate, for a SignerInfo's sid. */
export function issuerAndSerial(certificate: Buffer): Buffer {
  try {
    const { serial, issuer } = tbsFields(certificate);
    return seq(issuer.raw, serial.raw);
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
