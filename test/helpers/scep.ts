/**
 * A SCEP client for the tests, made of openssl where it can be: openssl makes the key, the
 * PKCS#10 request (with its challengePassword) and the self-signed certificate, and
 * encrypts the request to the RA (`openssl cms -encrypt`); only SCEP's outer SignedData,
 * whose signed attributes openssl cannot write, is ours. Replies are read back by openssl.
 */
import { createPrivateKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { octets, oid, seq, setOf, tlv } from '../../src/asn1/der.js';
import { certificatesFrom } from '../../src/certs/pem.js';
import { signWithAttributes } from '../../src/cms/sign.js';
import { openssl } from './tools.js';

export interface Requester {
  key: KeyObject;
  keyPem: string;
  /** Self-signed, as a device signs its PKCSReq. */
  certificate: Buffer;
  certPem: string;
  csr: Buffer;
}

function run(args: string[], input?: Buffer | string): Buffer {
  const r = openssl(args, input);
  if (r.status !== 0) throw new Error(`openssl ${args[0]}: ${r.stderr.toString()}`);
  return r.stdout;
}

/** A key, a request for it with `challenge` (if any) and a self-signed certificate, all made by openssl. */
export function requester(dir: string, name: string, options: { bits?: number; challenge?: string; ec?: boolean } = {}): Requester {
  const keyFile = join(dir, `${name}.key`);
  if (options.ec) run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
  else run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${options.bits ?? 2048}`, '-out', keyFile]);
  const conf = join(dir, `${name}.cnf`);
  writeFileSync(conf, `[req]\nprompt = no\ndistinguished_name = dn\nattributes = attrs\n[dn]\nCN = ${name}\n[attrs]\n${options.challenge ? `challengePassword = ${options.challenge}\n` : ''}`);
  const csr = run(['req', '-new', '-key', keyFile, '-config', conf, '-outform', 'DER']);
  const certPem = run(['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${name}`, '-days', '30']).toString();
  const keyPem = readFileSync(keyFile, 'utf8');
  return { key: createPrivateKey(keyPem), keyPem, certificate: certificatesFrom(certPem)[0]!, certPem, csr };
}

/** `content` encrypted to `recipientPem` by openssl cms (`-aes128`, `-des3`, …). */
export function opensslEnvelope(dir: string, content: Buffer, recipientPem: string, cipher = '-aes128'): Buffer {
  const ra = join(dir, 'recipient.pem');
  writeFileSync(ra, recipientPem);
  return run(['cms', '-encrypt', '-binary', '-outform', 'DER', cipher, ra], content);
}

const printable = (type: string, v: string) => seq(oid(type), setOf(tlv(0x13, Buffer.from(v))));

/** A PKIMessage: `envelope` signed by `signer` with SCEP's attributes. */
export function pkiMessage(envelope: Buffer, signer: { key: KeyObject; certificate: Buffer }, options: { messageType?: number; transactionID?: string; digest?: 'sha1' | 'sha256'; nonce?: Buffer } = {}): Buffer {
  return signWithAttributes(envelope, {
    key: signer.key,
    certificate: signer.certificate,
    certificates: [signer.certificate],
    digest: options.digest ?? 'sha256',
    attributes: [
      printable('2.16.840.1.113733.1.9.2', String(options.messageType ?? 19)),
      printable('2.16.840.1.113733.1.9.7', options.transactionID ?? randomBytes(8).toString('hex')),
      seq(oid('2.16.840.1.113733.1.9.5'), setOf(octets(options.nonce ?? randomBytes(16)))),
    ],
  });
}

/** What openssl reads in a CertRep: its status and failInfo, digest, and (SUCCESS) the certificate and the cipher it came in. */
export function readReply(dir: string, reply: Buffer, who: Requester): { status: string; failInfo?: string; digest: string; certificate?: string; cipher?: string } {
  const file = join(dir, 'reply.der');
  writeFileSync(file, reply);
  const printed = run(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', file]).toString();
  const attr = (o: string) => new RegExp(`object: (?:undefined \\()?${o.replace(/\./g, '\\.')}\\)?\\s*\\n\\s*set:\\s*\\n\\s*PRINTABLESTRING:(\\S*)`).exec(printed)?.[1];
  const status = attr('2.16.840.1.113733.1.9.3') ?? '?';
  const failInfo = attr('2.16.840.1.113733.1.9.4');
  const digest = /digestAlgorithm:\s*\n\s*algorithm: (\S+)/.exec(printed)?.[1] ?? '?';
  const out: { status: string; failInfo?: string; digest: string; certificate?: string; cipher?: string } = { status, digest, ...(failInfo !== undefined ? { failInfo } : {}) };
  if (status !== '0') return out;
  const signer = join(dir, 'ra-signer.pem');
  const env = run(['cms', '-verify', '-inform', 'DER', '-in', file, '-noverify', '-signer', signer]);
  const envFile = join(dir, 'reply-env.der');
  writeFileSync(envFile, env);
  out.cipher = /contentEncryptionAlgorithm:\s*\n\s*algorithm: (\S+)/.exec(run(['cms', '-cmsout', '-print', '-inform', 'DER', '-in', envFile]).toString())?.[1] ?? '?';
  writeFileSync(join(dir, 'me.pem'), who.certPem);
  writeFileSync(join(dir, 'me.key'), who.keyPem);
  const certsOnly = run(['cms', '-decrypt', '-inform', 'DER', '-in', envFile, '-recip', join(dir, 'me.pem'), '-inkey', join(dir, 'me.key'), '-binary']);
  out.certificate = run(['pkcs7', '-inform', 'DER', '-print_certs'], certsOnly).toString();
  return out;
}
