/**
 * Verifying signed profiles. A negative answer is a result (`valid: false` with every
 * reason), not an exception; exceptions mean the bytes could not be checked at all.
 *
 * @module verify
 */
import { createHash, verify as cryptoVerify, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { child, children, DerError, parseDer, readOid, readTime, TAG, type DerNode } from '../asn1/der.js';
import { berToDer } from '../asn1/ber.js';
import { ProfileParseError } from '../errors.js';
import { fingerprint, normalizeSerial, toCertificates, type CertificateInput } from '../certs/pem.js';
import { issuerAndSerial } from './certificate.js';
import { OID } from './sign.js';

const HASHES: Record<string, string> = {
  [OID.sha256]: 'sha256',
  [OID.sha384]: 'sha384',
  [OID.sha512]: 'sha512',
  [OID.sha1]: 'sha1',
};

/** At most this many certificates are read from one SignedData. */
const MAX_CERTIFICATES = 64;

/** Why a profile is not valid, with a stable code. */
/** Why a profile does not verify. */
export type VerifyReasonCode =
  | 'signer-missing'
  | 'digest-mismatch'
  | 'signature-invalid'
  | 'untrusted'
  | 'signer-expired'
  | 'signer-not-yet-valid'
  | 'chain-expired'
  | 'chain-not-yet-valid'
  | 'signer-revoked'
  /** The signed content is not a property list (reported by the CLI's `verify`). */
  | 'content-not-plist'
  /** A warning: bytes after the SignedData, which iOS and openssl ignore. */
  | 'trailing-bytes';

/** One reason a profile does not verify. */
export interface VerifyReason {
  code: VerifyReasonCode;
  message: string;
}

/** A certificate as reports show it. */
export interface CertificateSummary {
  subject: string;
  issuer: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
  fingerprint: string;
}

/** What {@link verifyProfile} found. A tampered profile is `valid: false` with reasons, never an exception. */
export interface VerifyResult {
  /** True only when the signature is intact, the chain reaches a trust anchor and every certificate is in date. */
  valid: boolean;
  reasons: VerifyReason[];
  /** The signed content, exactly as signed. */
  content: Buffer;
  signer: CertificateSummary | undefined;
  signingTime: Date | undefined;
  /** Signer first, then each issuer found, up to the anchor when trusted. */
  chain: CertificateSummary[];
  /** `given` when `ca` was passed, `system` for Node's bundled Mozilla roots. */
  trustSource: 'given' | 'system';
  /** What is odd but harmless: `trailing-bytes` after the SignedData. */
  warnings: VerifyReason[];
  /** `ber` for a SignedData in BER (Apple's tools, openssl -stream), `der` otherwise. */
  encoding: 'der' | 'ber';
}

/** Options of {@link verifyProfile}. */
export interface VerifyProfileOptions {
  /**
   * Trust anchors, as Node's `tls.connect({ ca })` takes them: PEM text (any number of
   * certificates), DER or PEM bytes, or an array of those. Default: the Mozilla roots bundled with Node.
   */
  ca?: CertificateInput;
  /** Default: `() => new Date()`. */
  now?: () => Date;
  /** Serials (lower-case hex) revoked by an anchor's CA; a signer among them fails. */
  revokedSerials?: ReadonlySet<string>;
}

function summary(c: X509Certificate): CertificateSummary {
  return {
    subject: c.subject.replace(/\n/g, ', '),
    issuer: c.issuer.replace(/\n/g, ', '),
    serial: normalizeSerial(c.serialNumber),
    notBefore: new Date(c.validFrom),
    notAfter: new Date(c.validTo),
    fingerprint: fingerprint(c.raw),
  };
}

/** A SignedData taken apart once, for verifying without parsing it again. @internal */
export interface ParsedSignedData {
  content: Buffer;
  certificates: X509Certificate[];
  /** The SignerInfo's fields, parsed (a malformed SignerInfo is a parse error, not a crash later). */
  signerFields: DerNode[];
  /** `ber` when the file was BER (indefinite lengths, constructed strings), as Apple's tools and openssl -stream write. */
  encoding: 'der' | 'ber';
  /** How many bytes followed the SignedData (some tools append a CRLF). */
  trailingBytes: number;
}

/** Reads the SignedData; throws ProfileParseError when the bytes are not one. @internal */
export function parseSignedData(bytes: Uint8Array): ParsedSignedData {
  const start = Buffer.from(bytes.subarray(0, 16)).toString('latin1').replace(/^\uFEFF|^\xEF\xBB\xBF/, '').trimStart();
  if (start.startsWith('<')) throw new ProfileParseError('The profile is not signed: it is an unsigned XML property list');
  if (start.startsWith('bplist')) throw new ProfileParseError('The profile is not signed: it is an unsigned binary property list');
  try {
    // DER first (what we write, and the fast path); else BER, which is what real tools write.
    let ci: DerNode;
    let encoding: ParsedSignedData['encoding'] = 'der';
    let trailingBytes = 0;
    try {
      ci = parseDer(bytes);
    } catch {
      const ber = berToDer(bytes);
      ci = parseDer(ber.der);
      if (ber.converted) encoding = 'ber';
      trailingBytes = ber.trailing.length;
    }
    if (ci.tag !== TAG.SEQUENCE || readOid(child(ci, 0)) !== OID.signedData) {
      throw new DerError('not a CMS SignedData');
    }
    const sd = child(child(ci, 1, 0xa0), 0, TAG.SEQUENCE);
    const parts = children(sd);
    const encap = parts[2];
    if (!encap || readOid(child(encap, 0)) !== OID.data) throw new DerError('the content is not id-data');
    const eContent = child(child(encap, 1, 0xa0), 0);
    if (eContent.tag !== TAG.OCTET_STRING) throw new DerError('the content is not an OCTET STRING');
    const certNode = parts.find((p) => p.tag === 0xa0);
    const certDers = certNode ? children(certNode) : [];
    if (certDers.length > MAX_CERTIFICATES) throw new DerError(`more than ${MAX_CERTIFICATES} certificates`);
    const certificates = certDers.filter((c) => c.tag === TAG.SEQUENCE).map((c) => new X509Certificate(c.raw));
    const signerInfos = parts[parts.length - 1];
    if (!signerInfos || signerInfos.tag !== TAG.SET) throw new DerError('no SignerInfos');
    const infos = children(signerInfos);
    if (infos.length !== 1) throw new DerError(`expected one SignerInfo, found ${infos.length}`);
    const signerFields = children(infos[0] as DerNode);
    if (signerFields.length < 5) throw new DerError('the SignerInfo is incomplete');
    return { content: Buffer.from(eContent.value), certificates, signerFields, encoding, trailingBytes };
  } catch (cause) {
    if (cause instanceof ProfileParseError) throw cause;
    throw new ProfileParseError(`Not a signed profile: ${(cause as Error).message}`, { cause });
  }
}

/** What {@link checkSignerInfo} found: the signer, its signed attributes, and why the signature fails, if it does. @internal */
export interface SignerInfoCheck {
  signer: X509Certificate | undefined;
  /** The signed attributes by OID: the first value of each. */
  attributes: Map<string, DerNode>;
  /** node:crypto's name of the digest (`sha256`, `sha1`, …), when known. */
  hash: string | undefined;
  signingTime: Date | undefined;
  reasons: VerifyReason[];
}

/**
 * Checks the one SignerInfo of a parsed SignedData: finds the signer among its certificates,
 * checks the content against the signed messageDigest and the signature with the signer's
 * key. Trust is left to the caller. @internal
 */
export function checkSignerInfo(parsed: ParsedSignedData): SignerInfoCheck {
  const { content, certificates, signerFields: si } = parsed;
  const reasons: VerifyReason[] = [];
  const fail = (code: VerifyReasonCode, message: string) => reasons.push({ code, message });
  const attributes = new Map<string, DerNode>();
  const sid = si[1] as DerNode;
  const signer = certificates.find((c) => {
    try {
      return issuerAndSerial(c.raw).equals(sid.raw);
    } catch {
      return false;
    }
  });
  let signingTime: Date | undefined;
  let hash: string | undefined;
  if (!signer) {
    fail('signer-missing', 'The signer certificate is not in the profile');
  } else {
    try {
      hash = HASHES[readOid(child(si[2] as DerNode, 0))];
      const attrsNode = si[3]?.tag === 0xa0 ? (si[3] as DerNode) : undefined;
      const sigAlgNode = si[attrsNode ? 4 : 3] as DerNode;
      const sigNode = si[attrsNode ? 5 : 4] as DerNode;
      if (!hash) throw new DerError('unsupported digest algorithm');
      const contentDigest = createHash(hash).update(content).digest();
      let signedBytes: Buffer = content;
      if (attrsNode) {
        for (const attr of children(attrsNode)) {
          const type = readOid(child(attr, 0));
          const value = child(child(attr, 1, TAG.SET), 0);
          if (!attributes.has(type)) attributes.set(type, value);
          if (type === OID.signingTime) signingTime = readTime(value);
        }
        const digest = attributes.get(OID.messageDigest)?.value;
        if (!digest || !digest.equals(contentDigest)) {
          fail('digest-mismatch', 'The content does not match its signed digest: the profile was changed after signing');
        }
        signedBytes = Buffer.concat([Buffer.from([TAG.SET]), attrsNode.raw.subarray(1)]);
      }
      // rsaEncryption, sha256WithRSAEncryption and ecdsa-with-SHA256 all verify as `hash` with the key's own scheme.
      readOid(child(sigAlgNode, 0));
      const ok = cryptoVerify(hash, signedBytes, signer.publicKey, sigNode.value);
      if (!ok) fail('signature-invalid', 'The signature does not verify with the signer certificate');
    } catch (cause) {
      if (cause instanceof DerError || (cause as { code?: string }).code?.startsWith('ERR_OSSL')) {
        fail('signature-invalid', `The signature cannot be checked: ${(cause as Error).message}`);
      } else {
        throw cause;
      }
    }
  }
  return { signer, attributes, hash, signingTime, reasons };
}

let systemRoots: X509Certificate[] | undefined;

/**
 * Verifies a signed profile: the signature, the content digest, the chain to a trust
 * anchor, and the validity of every certificate on it.
 * @throws ERR_PROFILE_PARSE when the bytes are not a CMS SignedData
 * @example
 * const result = await verifyProfile(der, { ca: [rootPem] })
 * if (!result.valid) console.error(result.reasons)
 */
export async function verifyProfile(bytes: Uint8Array, options: VerifyProfileOptions = {}): Promise<VerifyResult> {
  return verifySignedData(parseSignedData(bytes), options);
}

/**
 * {@link verifyProfile} over a SignedData already parsed (lint and inspect have parsed it to read the profile).
 * @internal
 */
export async function verifySignedData(parsed: ParsedSignedData, options: VerifyProfileOptions = {}): Promise<VerifyResult> {
  const { content, certificates } = parsed;
  const now = (options.now ?? (() => new Date()))();
  const reasons: VerifyReason[] = [];
  const fail = (code: VerifyReasonCode, message: string) => reasons.push({ code, message });

  const checked = checkSignerInfo(parsed);
  const signerCert = checked.signer;
  const signingTime = checked.signingTime;
  for (const r of checked.reasons) fail(r.code, r.message);

  const chain: X509Certificate[] = [];
  const given = options.ca !== undefined;
  let anchors: X509Certificate[];
  if (given) {
    // An empty array trusts nothing, as `ca: []` does in Node's tls.
    anchors = toCertificates(options.ca, 'ca', { allowEmpty: true }).map((d) => new X509Certificate(d));
  } else {
    systemRoots ??= rootCertificates.map((pem) => new X509Certificate(pem));
    anchors = systemRoots;
  }
  if (signerCert) {
    let trusted = false;
    let current = signerCert;
    chain.push(current);
    for (let depth = 0; depth < 10 && !trusted; depth++) {
      const anchor = anchors.find(
        (a) => a.fingerprint256 === current.fingerprint256 || (current.checkIssued(a) && current.verify(a.publicKey)),
      );
      if (anchor) {
        if (anchor.fingerprint256 !== current.fingerprint256) chain.push(anchor);
        trusted = true;
        break;
      }
      const next = certificates.find(
        (c) => c !== current && !chain.includes(c) && current.checkIssued(c) && current.verify(c.publicKey),
      );
      if (!next) break;
      chain.push(next);
      current = next;
    }
    if (!trusted) {
      fail(
        'untrusted',
        given
          ? 'The signer does not chain to the given CA'
          : 'The signer does not chain to a public root; pass the CA that issued it',
      );
    }
    chain.forEach((c, i) => {
      const who = i === 0 ? 'signer' : 'chain';
      if (now > new Date(c.validTo)) fail(`${who}-expired`, `The ${i === 0 ? 'signer' : 'issuer'} certificate "${summary(c).subject}" expired on ${new Date(c.validTo).toISOString()}`);
      if (now < new Date(c.validFrom)) fail(`${who}-not-yet-valid`, `The ${i === 0 ? 'signer' : 'issuer'} certificate "${summary(c).subject}" is not valid before ${new Date(c.validFrom).toISOString()}`);
    });
    if (options.revokedSerials?.has(summary(signerCert).serial)) {
      fail('signer-revoked', 'The signer certificate has been revoked');
    }
  }
  return {
    valid: reasons.length === 0,
    reasons,
    content,
    signer: signerCert ? summary(signerCert) : undefined,
    signingTime,
    chain: chain.map(summary),
    trustSource: given ? 'given' : 'system',
    warnings: parsed.trailingBytes ? [{ code: 'trailing-bytes', message: `${parsed.trailingBytes} byte(s) follow the signature; iOS and openssl ignore them` }] : [],
    encoding: parsed.encoding,
  };
}
