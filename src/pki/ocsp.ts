/**
 * OCSP (RFC 6960) in the profile of RFC 5019: reading a request, and writing a basic
 * response signed by a delegated responder, with node:crypto for the signature and our
 * DER writer for the structure.
 *
 * @module ocsp
 */
import { createHash, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { children, DerError, nul, octets, oid, parseDer, readOid, seq, tlv, type DerNode } from '../asn1/der.js';
import { REVOCATION_REASONS, type RevocationReason } from '../certs/crl.js';
import { normalizeSerial } from '../certs/pem.js';

/** OCSPResponseStatus values (RFC 6960 4.2.1). */
export const OCSP_STATUS = { successful: 0, malformedRequest: 1, internalError: 2, tryLater: 3, sigRequired: 5, unauthorized: 6 } as const;

const OID_NONCE = '1.3.6.1.5.5.7.48.1.2';
const OID_BASIC = '1.3.6.1.5.5.7.48.1.1';
const HASHES: Record<string, string> = {
  '1.3.14.3.2.26': 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** A request that is not an OCSPRequest we can answer. */
export class OcspMalformed extends Error {}

/** One CertID of a request. */
export interface OcspCertId {
  /** The CertID as the client sent it, echoed in the response. */
  raw: Buffer;
  /** node:crypto's name of its hash, or undefined for one we do not know. */
  hash: string | undefined;
  issuerNameHash: Buffer;
  issuerKeyHash: Buffer;
  /** Normalized hex. */
  serial: string;
}

/** What a request asks. */
export interface OcspRequestInfo {
  certIds: OcspCertId[];
  /** The nonce extension, whole, to echo. */
  nonce?: Buffer;
}

/** The most CertIDs one request may ask about. */
export const MAX_CERT_IDS = 16;

/**
 * Reads a DER OCSPRequest. The optional signature is not checked (RFC 5019 clients send none).
 * @throws OcspMalformed
 */
export function parseOcspRequest(der: Uint8Array): OcspRequestInfo {
  try {
    const [tbs] = children(parseDer(der));
    if (tbs?.tag !== 0x30) throw new DerError('no TBSRequest');
    let nonce: Buffer | undefined;
    let list: DerNode | undefined;
    for (const field of children(tbs)) {
      if (field.tag === 0x30) list = field;
      else if (field.tag === 0xa2) {
        const [exts] = children(field);
        for (const ext of exts ? children(exts) : []) {
          const [id, ...rest] = children(ext);
          if (id && readOid(id) === OID_NONCE) {
            const value = rest.at(-1);
            if (!value || value.tag !== 0x04 || value.value.length === 0 || value.value.length > 128) throw new DerError('bad nonce');
            nonce = Buffer.from(ext.raw);
          }
        }
      }
    }
    if (!list) throw new DerError('no requestList');
    const requests = children(list);
    if (!requests.length || requests.length > MAX_CERT_IDS) throw new DerError('requestList size');
    const certIds = requests.map((req) => {
      const [certId] = children(req);
      if (certId?.tag !== 0x30) throw new DerError('no CertID');
      const [alg, nameHash, keyHash, serial] = children(certId);
      if (alg?.tag !== 0x30 || nameHash?.tag !== 0x04 || keyHash?.tag !== 0x04 || serial?.tag !== 0x02) throw new DerError('bad CertID');
      const [algOid] = children(alg);
      if (!algOid || !serial.value.length || serial.value.length > 21) throw new DerError('bad CertID');
      return {
        raw: Buffer.from(certId.raw),
        hash: HASHES[readOid(algOid)],
        issuerNameHash: Buffer.from(nameHash.value),
        issuerKeyHash: Buffer.from(keyHash.value),
        serial: normalizeSerial(serial.value.toString('hex')),
      };
    });
    return { certIds, ...(nonce ? { nonce } : {}) };
  } catch (cause) {
    if (cause instanceof DerError || cause instanceof OcspMalformed) throw new OcspMalformed(cause.message);
    throw cause;
  }
}

/** The subject Name (DER) and public key bits of a certificate: what a CertID hashes. */
function nameAndKey(certificate: Buffer): { name: Buffer; key: Buffer } {
  const x = new X509Certificate(certificate);
  const spki = parseDer(x.publicKey.export({ type: 'spki', format: 'der' }));
  const bits = children(spki)[1];
  if (!bits) throw new DerError('no subjectPublicKey');
  const tbs = children(children(parseDer(certificate))[0]!);
  const o = tbs[0]?.tag === 0xa0 ? 1 : 0;
  return { name: Buffer.from(tbs[4 + o]!.raw), key: Buffer.from(bits.value.subarray(1)) };
}

/** A test of whether a CertID names `issuer` as its issuing CA. */
export function certIdMatcher(issuer: Buffer): (id: OcspCertId) => boolean {
  const { name, key } = nameAndKey(issuer);
  const memo = new Map<string, { name: Buffer; key: Buffer }>();
  return (id) => {
    if (!id.hash) return false;
    let h = memo.get(id.hash);
    if (!h) memo.set(id.hash, (h = { name: createHash(id.hash).update(name).digest(), key: createHash(id.hash).update(key).digest() }));
    return h.name.equals(id.issuerNameHash) && h.key.equals(id.issuerKeyHash);
  };
}

/** GeneralizedTime without fractions, as RFC 6960 (and 5280 4.1.2.5.2) write it. */
function generalizedTime(d: Date): Buffer {
  return tlv(0x18, Buffer.from(d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'));
}

/** One SingleResponse to write. */
export type OcspAnswer =
  | { certId: Buffer; status: 'good' | 'unknown' }
  | { certId: Buffer; status: 'revoked'; date: Date; reason: RevocationReason };

/** Options of {@link buildOcspResponse}. */
export interface BuildOcspResponseOptions {
  responder: { certificate: Buffer; privateKey: KeyObject };
  /** Further certificates to include (the CA that issued the responder). */
  chain?: Buffer[];
  answers: OcspAnswer[];
  thisUpdate: Date;
  nextUpdate: Date;
  /** The request's nonce extension, echoed. */
  nonce?: Buffer;
}

function signatureAlgorithm(key: KeyObject): { alg: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'ec') {
    const p384 = key.asymmetricKeyDetails?.namedCurve === 'secp384r1';
    return { alg: seq(oid(p384 ? '1.2.840.10045.4.3.3' : '1.2.840.10045.4.3.2')), hash: p384 ? 'sha384' : 'sha256' };
  }
  return { alg: seq(oid('1.2.840.113549.1.1.11'), nul()), hash: 'sha256' };
}

/** A successful OCSPResponse carrying a BasicOCSPResponse, DER. */
export function buildOcspResponse(options: BuildOcspResponseOptions): Buffer {
  const { key } = nameAndKey(options.responder.certificate);
  const responderId = tlv(0xa2, octets(createHash('sha1').update(key).digest()));
  const single = options.answers.map((a) => {
    let status: Buffer;
    if (a.status === 'revoked') status = tlv(0xa1, Buffer.concat([generalizedTime(a.date), tlv(0xa0, tlv(0x0a, Buffer.from([REVOCATION_REASONS[a.reason] ?? 0])))]));
    else status = Buffer.from([a.status === 'good' ? 0x80 : 0x82, 0x00]);
    return seq(a.certId, status, generalizedTime(options.thisUpdate), tlv(0xa0, generalizedTime(options.nextUpdate)));
  });
  const tbs = seq(
    responderId,
    generalizedTime(options.thisUpdate),
    seq(...single),
    ...(options.nonce ? [tlv(0xa1, seq(options.nonce))] : []),
  );
  const { alg, hash } = signatureAlgorithm(options.responder.privateKey);
  const signature = sign(hash, tbs, options.responder.privateKey);
  const certs = [options.responder.certificate, ...(options.chain ?? [])];
  const basic = seq(tbs, alg, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])), tlv(0xa0, seq(...certs)));
  return seq(tlv(0x0a, Buffer.from([OCSP_STATUS.successful])), tlv(0xa0, seq(oid(OID_BASIC), octets(basic))));
}

/** An unsuccessful OCSPResponse (no responseBytes). */
export function ocspErrorResponse(status: Exclude<keyof typeof OCSP_STATUS, 'successful'>): Buffer {
  return seq(tlv(0x0a, Buffer.from([OCSP_STATUS[status]])));
}
