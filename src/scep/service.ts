/**
 * The SCEP protocol (RFC 8894) in front of the store, so that a device makes its signing key
 * itself and the store certifies it (handler.ts puts it on node:http):
 * ```
 * GET  /scep?operation=GetCACaps               what the server supports (text)
 * GET  /scep?operation=GetCACert               the RA, the issuing CA and the root (certs-only PKCS#7)
 * GET  /scep?operation=PKIOperation&message=…  a PKCSReq or RenewalReq, base64
 * POST /scep?operation=PKIOperation            the same, DER in the body
 * ```
 * Who gets a certificate is decided here, not by the request: a PKCSReq must carry a
 * one-time challenge the store minted for one user, and the certificate's CN and only
 * rfc822Name are that user's, whatever the request asks for. A RenewalReq is signed with a
 * current certificate this server issued to a device (its key never left the device; an
 * identity shipped in a profile, whose password travels beside it, never renews), and the
 * certificate it renews is revoked as superseded. Anything wrong is a CertRep FAILURE with its
 * failInfo, or a 4xx when the message cannot be answered at all; never a crash.
 *
 * Algorithms: requests are read in DES, 3DES and AES-CBC envelopes and with SHA-1 or SHA-2
 * signatures (micromdm's scepclient sends DES and SHA-1 whatever GetCACaps says); the reply
 * uses the cipher and digest the client's own request used, which it has shown it reads
 * (SHA-2 beyond SHA-256 is answered with SHA-256).
 *
 * @module scep-service
 */
import { createHash, X509Certificate } from 'node:crypto';
import { parseCertificateRequest, type CertificateRequest } from '../certs/csr.js';
import { logSafe } from '../server/request-target.js';
import { assertSmimeKey } from '../certs/issue.js';
import { normalizeSerial } from '../certs/pem.js';
import { envelopeRecipients, openEnvelopeFor, type EnvelopeCipher } from '../cms/envelope.js';
import { tbsFields } from '../cms/certificate.js';
import { certificatesOnly } from '../cms/sign.js';
import { isProfilesmithError } from '../errors.js';
import { isRemovedUser, statusOf, type CertificateRecord, type EnrollingStore } from '../store/store.js';
import { certRep, MESSAGE_TYPE, parsePkiRequest, type FailInfo, type PkiRequest, type ReplySigner, type ReplyTo } from './message.js';

/**
 * What GetCACaps answers (RFC 8894 3.5.2): POST, SHA-256, AES, the standard, renewal.
 * @example
 * console.log(SCEP_CAPABILITIES.join('\n')) // what GetCACaps answers
 */
export const SCEP_CAPABILITIES = ['POSTPKIOperation', 'SHA-256', 'AES', 'SCEPStandard', 'Renewal'] as const;

/**
 * The largest PKIMessage taken: a 4096-bit request in a SignedData is under 8 KiB.
 * @example
 * // In your own HTTP layer for createScepService: refuse a larger body before reading on.
 * if (upload.length > MAX_SCEP_MESSAGE) throw new Error('The PKIMessage is too large')
 */
export const MAX_SCEP_MESSAGE = 64 * 1024;

/** Options of {@link createScepService}. */
export interface ScepServiceOptions {
  store: EnrollingStore;
  /** Validity of the certificates issued, in days. Default: 365 (clamped to the issuing CA's). */
  days?: number;
  /**
   * The most device certificates one user may hold live at once; an enrolment past it is
   * refused (badRequest) until one expires or is revoked. A renewal replaces the certificate it
   * renews, so it never counts against the limit. Default: no limit.
   */
  maxDeviceCertificates?: number;
  /** One line per operation, without challenges. */
  log?: (line: string) => void;
  /** Default: `() => new Date()`. */
  now?: () => Date;
}

/** A SCEP request as HTTP delivered it. */
export interface ScepHttpRequest {
  method: string;
  /** The `operation` query parameter. */
  operation: string | undefined;
  /** The `message` query parameter (GET PKIOperation), base64. */
  message?: string | undefined;
  /** The body (POST PKIOperation). */
  body?: Buffer | undefined;
  /** Who asked, for the log. */
  client?: string;
}

/** What to answer. */
export interface ScepHttpResponse {
  status: number;
  contentType: string;
  body: Buffer;
  /** Set when the answer is a CertRep FAILURE (or a 400 for an unreadable message): why. */
  failInfo?: FailInfo | 'unreadable';
}

/** What a PKIOperation came to, for the log and for callers. */
interface Outcome {
  /** Authorized by a current certificate rather than a challenge. */
  renewal?: boolean;
  failInfo?: FailInfo;
  reason?: string;
  record?: CertificateRecord;
}

/**
 * The SCEP protocol over a store, without HTTP: give it the operation and message, send what
 * it returns. For servers that are not node:http (see {@link createScepHandler} for those).
 * @example
 * const scep = createScepService({ store })
 * app.all('/scep', async (req, res) => {
 *   const r = await scep({ method: req.method, operation: req.query.operation, message: req.query.message, body: req.body })
 *   res.status(r.status).type(r.contentType).send(r.body)
 * })
 */
export function createScepService(options: ScepServiceOptions): (request: ScepHttpRequest) => Promise<ScepHttpResponse> {
  const { store } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => {});
  // A retried PKCSReq (the reply was lost) gets the certificate again, not a FAILURE for a spent challenge.
  const answered = new Map<string, Buffer>();
  const text = (status: number, body: string): ScepHttpResponse => ({ status, contentType: 'text/plain; charset=utf-8', body: Buffer.from(body + '\n') });

  /** The current RA with the chain to send beside it (worked out once per RA certificate). */
  let chained: { serial: string; chain: Promise<Buffer[]> } | undefined;
  const currentRa = async () => {
    const ra = await store.scepRa();
    if (chained?.serial !== ra.serial) chained = { serial: ra.serial, chain: issuersOf(ra.certificate) };
    const chain = await chained.chain;
    return { ra, signer: { key: ra.privateKey, certificate: ra.certificate, chain } as ReplySigner };
  };
  /** The issuers of `der` among the store's CA certificates, leaf-most first, the root included. */
  const issuersOf = async (der: Buffer): Promise<Buffer[]> => {
    const chain = await store.trustChain();
    const all = [...chain.intermediates, ...chain.roots].map((d) => new X509Certificate(d));
    const out: Buffer[] = [];
    let current = new X509Certificate(der);
    for (let i = 0; i < 8; i++) {
      const issuer = all.find((c) => current.checkIssued(c) && current.verify(c.publicKey) && !out.some((o) => o.equals(c.raw)));
      if (!issuer || issuer.raw.equals(current.raw)) break;
      out.push(issuer.raw);
      if (issuer.checkIssued(issuer)) break;
      current = issuer;
    }
    return out;
  };

  const pkiOperation = async (der: Buffer, client: string): Promise<ScepHttpResponse> => {
    let request: PkiRequest;
    try {
      request = parsePkiRequest(der);
    } catch (err) {
      log(`${client} SCEP PKIOperation unreadable: ${(err as Error).message}`);
      return { ...text(400, 'Not a SCEP PKIMessage'), failInfo: 'unreadable' };
    }
    const { ra: current, signer } = await currentRa();
    // The cipher is the request's, once its envelope is opened; a FAILURE is not encrypted.
    const to: ReplyTo = { transactionID: request.transactionID, senderNonce: request.senderNonce, recipient: request.signer.raw, cipher: 'aes-256-cbc', hash: request.hash };
    const reply = (body: Buffer): ScepHttpResponse => ({ status: 200, contentType: 'application/x-pki-message', body });
    const failure = (failInfo: FailInfo, reason: string) => {
      log(`${client} SCEP ${typeName(request.messageType)} ${logSafe(request.transactionID, 40)} FAILURE ${failInfo}: ${reason}`);
      return { ...reply(certRep(signer, to, { failInfo })), failInfo };
    };
    if (request.signer.publicKey.asymmetricKeyType !== 'rsa') return failure('badAlg', 'the request is signed with a key other than RSA, which a reply cannot be encrypted to');
    if (!['sha1', 'sha256', 'sha384', 'sha512'].includes(request.hash)) return failure('badAlg', 'the request is signed with an unsupported digest');
    if (request.signatureProblem) return failure('badMessageCheck', request.signatureProblem);
    if (request.messageType !== MESSAGE_TYPE.PKCSReq && request.messageType !== MESSAGE_TYPE.RenewalReq) {
      return failure('badRequest', `message type ${request.messageType} is not served (PKCSReq and RenewalReq are; nothing is ever pending)`);
    }
    // Which of our RA certificates the envelope is for: the current one, or one before it.
    let opened: { content: Buffer; cipher: EnvelopeCipher };
    let recipients: { issuer: Buffer; serial: string }[];
    try {
      // The store names serials by their DER bytes (even-length hex); an INTEGER read back drops a leading zero nibble.
      recipients = envelopeRecipients(request.envelope).map((r) => ({ issuer: r.issuer, serial: normalizeSerial(r.serial.length % 2 ? `0${r.serial}` : r.serial) }));
    } catch (err) {
      return failure('badMessageCheck', clientFault(err, 'the envelope cannot be read'));
    }
    const named = (x: { serial: string; certificate: Buffer }) => recipients.some((r) => r.serial === x.serial && r.issuer.equals(issuerName(x.certificate)));
    // A store fault here is the server's (503), not the request's.
    const ra = named(current) ? current : (await Promise.all(recipients.map((r) => store.scepRaBySerial(r.serial)))).find((x) => x !== undefined && named(x));
    if (!ra) return failure('badMessageCheck', 'the request is not encrypted to this server (wrong recipient; fetch GetCACert again)');
    try {
      opened = openEnvelopeFor(request.envelope, ra.privateKey, ra.certificate);
    } catch (err) {
      return failure('badMessageCheck', clientFault(err, 'the envelope cannot be opened'));
    }
    // What the request asks to certify: read (and its key checked) once, for an enrolment or a renewal.
    let csr: CertificateRequest;
    try {
      csr = parseCertificateRequest(opened.content);
      assertSmimeKey(csr.publicKey);
    } catch (err) {
      return failure('badRequest', clientFault(err, 'the certification request cannot be read'));
    }
    const answerTo = { ...to, cipher: opened.cipher };
    const key = createHash('sha256').update(request.transactionID).update(request.signer.raw).update(opened.content).digest('hex');
    const again = answered.get(key);
    if (again) {
      log(`${client} SCEP ${typeName(request.messageType)} ${logSafe(request.transactionID, 40)} SUCCESS again (a retried request)`);
      return reply(certRep(signer, answerTo, { certificate: again }));
    }
    let outcome: Outcome;
    try {
      // A PKCSReq signed with a current certificate of this store is a renewal the old way
      // (RFC 8894 2.4; certmonger's resubmit sends one): the certificate, not a challenge, says who.
      const held = await heldBy(request);
      const renewal = request.messageType === MESSAGE_TYPE.RenewalReq || (held !== undefined && renewable(held) === undefined);
      outcome = renewal ? { ...(await renew(csr, held)), renewal: true } : await enroll(csr);
    } catch (err) {
      // What the request got wrong is the client's failure; a store fault is the server's (503).
      if (!isProfilesmithError(err) || !REQUEST_ERRORS.has(err.code)) throw err;
      outcome = { failInfo: 'badRequest', reason: err.message };
    }
    if (outcome.failInfo || !outcome.record) return failure(outcome.failInfo ?? 'badRequest', outcome.reason ?? 'refused');
    const certificate = await store.getCertificate(outcome.record.serial);
    answered.set(key, certificate);
    if (answered.size > 1000) answered.delete(answered.keys().next().value as string);
    log(`${client} SCEP ${typeName(request.messageType)}${outcome.renewal && request.messageType === MESSAGE_TYPE.PKCSReq ? ' (renewal)' : ''} ${logSafe(request.transactionID, 40)} SUCCESS ${outcome.record.user} ${outcome.record.serial} (${opened.cipher}, ${request.hash})`);
    return reply(certRep(signer, answerTo, { certificate }));
  };

  /** A PKCSReq: the challenge names the user; the request gives only its key. */
  const enroll = async (csr: CertificateRequest): Promise<Outcome> => {
    if (!csr.challengePassword) return { failInfo: 'badRequest', reason: 'the request carries no challenge password' };
    const spent = await store.challenges.consume(csr.challengePassword);
    if (!('user' in spent)) return { failInfo: 'badRequest', reason: `the challenge is ${spent.state === 'unknown' ? 'unknown' : spent.state}` };
    const user = spent.user;
    const records = await store.listCertificates({ user });
    if (isRemovedUser(records)) return { failInfo: 'badRequest', reason: `${user} was removed from the store` };
    const limit = options.maxDeviceCertificates;
    if (limit !== undefined) {
      const live = records.filter((r) => r.keyOnDevice && statusOf(r, now()) === 'valid').length;
      if (live >= limit) return { failInfo: 'badRequest', reason: `${user} already holds ${live} live device certificate(s), the most allowed; revoke one first` };
    }
    const record = await store.issueDeviceCertificate({ user, name: nameOf(user, records), publicKey: csr.publicKey, ...(options.days ? { days: options.days } : {}) });
    return { record };
  };

  /** The store's record of the request's signer certificate, if it is one of the store's. */
  const heldBy = async (request: PkiRequest): Promise<CertificateRecord | undefined> => {
    const fp = createHash('sha256').update(request.signer.raw).digest('hex');
    const held = await store.findCertificate(fp).catch(() => undefined);
    return held?.fingerprint === fp ? held : undefined;
  };

  /**
   * Why `held` cannot authorize a renewal, or undefined when it can: a valid certificate this
   * server issued to a device over SCEP. A signing identity the store holds the key of is shipped
   * in profiles with its password beside it: whoever has a profile has that key, so it never renews.
   */
  const renewable = (held: CertificateRecord): string | undefined => {
    if (held.source !== 'issued' || held.purpose !== 'smime-signing') return `certificate ${held.serial} is not a signing certificate of this store's CA`;
    if (!held.keyOnDevice) return `certificate ${held.serial} was not enrolled by a device over SCEP (its key is shipped in profiles); only device certificates renew`;
    const status = statusOf(held, now());
    return status === 'valid' ? undefined : `certificate ${held.serial} is ${status}`;
  };

  /** A renewal: signed with a valid signing certificate this store issued; the new one is for the same user. */
  const renew = async (csr: CertificateRequest, held: CertificateRecord | undefined): Promise<Outcome> => {
    if (!held) return { failInfo: 'badCertId', reason: 'the renewal is signed with a certificate this store did not issue' };
    const why = renewable(held);
    if (why) return { failInfo: 'badCertId', reason: why };
    const records = await store.listCertificates({ user: held.user });
    if (isRemovedUser(records)) return { failInfo: 'badCertId', reason: `${held.user} was removed from the store` };
    // The renewed certificate is superseded in the same step (the store refuses a second renewal of it).
    const record = await store.issueDeviceCertificate({ user: held.user, name: held.name ?? nameOf(held.user, records), publicKey: csr.publicKey, renews: held.serial, ...(options.days ? { days: options.days } : {}) });
    return { record };
  };

  return async (request) => {
    const client = request.client ?? '-';
    const op = request.operation;
    try {
      if (op === 'GetCACaps') return text(200, SCEP_CAPABILITIES.join('\n'));
      if (op === 'GetCACert') {
        const { signer } = await currentRa();
        const certs = [signer.certificate, ...signer.chain];
        log(`${client} SCEP GetCACert`);
        return { status: 200, contentType: 'application/x-x509-ca-ra-cert', body: certificatesOnly(certs) };
      }
      if (op === 'PKIOperation') {
        let der: Buffer;
        if (request.method === 'POST') {
          der = request.body ?? Buffer.alloc(0);
          // Some clients POST base64 rather than DER.
          if (der.length && der[0] !== 0x30) der = Buffer.from(der.toString('latin1').replace(/\s+/g, ''), 'base64');
        } else if (request.method === 'GET') {
          der = Buffer.from((request.message ?? '').replace(/ /g, '+'), 'base64');
        } else return text(405, 'GET or POST');
        if (!der.length) return text(400, 'No PKIMessage');
        if (der.length > MAX_SCEP_MESSAGE) return text(413, 'The PKIMessage is too large');
        return await pkiOperation(der, client);
      }
      return text(400, op ? `Unknown operation "${op.slice(0, 40)}"` : 'No operation');
    } catch (err) {
      log(`${client} SCEP ${op ?? '-'} error ${isProfilesmithError(err) ? `${err.code}: ${err.message}` : 'ERR_INTERNAL'}`);
      return text(isProfilesmithError(err) ? 503 : 500, 'The SCEP server cannot answer now');
    }
  };
}

/** The DER of a certificate's issuer Name, as an IssuerAndSerialNumber names it. */
const issuerName = (der: Buffer) => tbsFields(der).issuer.raw;

/**
 * Why a request's own bytes could not be read, for the FAILURE's log line. Our typed errors say
 * it in words; anything else thrown while reading client input (Node's decoders refusing junk)
 * is still the request's fault, never the server's. A store fault never passes through here.
 */
function clientFault(err: unknown, fallback: string): string {
  return isProfilesmithError(err) && REQUEST_ERRORS.has(err.code) ? err.message : fallback;
}

/** Errors that mean the request is refused, not that the server is in trouble. */
const REQUEST_ERRORS = new Set(['ERR_KEY_UNSUPPORTED', 'ERR_INPUT_INVALID', 'ERR_CERT_INVALID', 'ERR_STORE_ENTRY_NOT_FOUND']);

function typeName(t: number): string {
  return t === MESSAGE_TYPE.PKCSReq ? 'PKCSReq' : t === MESSAGE_TYPE.RenewalReq ? 'RenewalReq' : `type-${t}`;
}

/** The user's name as the store has it: the newest record's CN, else the address. */
function nameOf(user: string, records: CertificateRecord[]): string {
  return [...records].reverse().find((r) => r.name)?.name ?? user;
}
