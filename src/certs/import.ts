/**
 * Taking in identities issued elsewhere (a commercial CA, AD CS): reading PKCS#12, PEM or
 * DER, and the checks an identity must pass before the store keeps it.
 *
 * @module import
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { CertificateInvalid, InputInvalid, KeyUnsupported } from '../errors.js';
import type { CertificatePurpose } from './issue.js';
import { describeKey, keysMatch } from './keys.js';
import { certificatesFrom, pemBlocks } from './pem.js';
import { hiddenCharacter, hiddenMessage } from './name.js';
import { readPkcs12, readPkcs12Async, type KdfBudget, type Pkcs12Contents } from './pkcs12-read.js';
import { describeCertificate, EKU, type CertificateInfo } from './x509.js';

/** A certificate, its key and the chain that came with it, read from a PFX or PEM. */
export interface IdentityBundle {
  certificate: Buffer;
  privateKey: KeyObject;
  /** Other certificates that came with it (issuers), in file order. */
  chain: Buffer[];
}

function looksLikePkcs12(bytes: Buffer): boolean {
  // A PFX is a DER SEQUENCE starting with INTEGER 3.
  return bytes[0] === 0x30 && bytes.subarray(2, 12).includes(Buffer.from([0x02, 0x01, 0x03]));
}

function keyFromPem(text: string, password: string | undefined): KeyObject | undefined {
  const block = pemBlocks(text).find((b) => /PRIVATE KEY$/.test(b.label));
  if (!block) return undefined;
  try {
    const pem = text.slice(text.indexOf(`-----BEGIN ${block.label}-----`), text.indexOf(`-----END ${block.label}-----`) + block.label.length + 14);
    return createPrivateKey(password !== undefined ? { key: pem, passphrase: password } : { key: pem });
  } catch (cause) {
    const encrypted = block.label.startsWith('ENCRYPTED');
    throw new InputInvalid(
      'key',
      encrypted ? 'The private key is encrypted and the password is wrong or missing' : 'The private key cannot be read',
    );
  }
}

/** Options of {@link readIdentity} and {@link readIdentityAsync}. */
export interface ReadIdentityOptions {
  /** The PKCS#12 password, or the PEM key's passphrase. */
  password?: string;
  /** The key, when it is a file of its own (PEM or PKCS#8 DER). */
  keyBytes?: Uint8Array;
  /** The key-derivation work a PKCS#12 may cost. Default: a fresh {@link KdfBudget} (4,000,000 iteration-blocks). */
  budget?: KdfBudget;
}

/**
 * Reads an identity from a PKCS#12 file, or from PEM/DER certificate bytes plus a key
 * (in the same PEM, or in `keyBytes`). Synchronous: for a CLI or a worker; a server should use
 * {@link readIdentityAsync}, which does not block its event loop.
 * @throws ERR_INPUT_INVALID for unreadable input, a wrong password, no key, several keys, or a
 * PKCS#12 whose key derivations would overspend the budget
 * @example
 * const bundle = readIdentity(readFileSync('alice.p12'), { password })
 */
export function readIdentity(bytes: Uint8Array, options: ReadIdentityOptions = {}): IdentityBundle {
  const buf = Buffer.from(bytes);
  const p12 = looksLikePkcs12(buf) && !options.keyBytes ? readPkcs12(buf, options.password ?? '', options.budget ? { budget: options.budget } : {}) : undefined;
  return identityFrom(buf, options, p12);
}

/**
 * {@link readIdentity} without blocking the event loop (PBKDF2 on libuv's thread pool, the
 * PKCS#12 KDF in steps), for a server that takes uploads. The same budget bounds the work.
 * @throws ERR_INPUT_INVALID as {@link readIdentity}
 * @example
 * const bundle = await readIdentityAsync(upload, { password })
 */
export async function readIdentityAsync(bytes: Uint8Array, options: ReadIdentityOptions = {}): Promise<IdentityBundle> {
  const buf = Buffer.from(bytes);
  const p12 = looksLikePkcs12(buf) && !options.keyBytes ? await readPkcs12Async(buf, options.password ?? '', options.budget ? { budget: options.budget } : {}) : undefined;
  return identityFrom(buf, options, p12);
}

/** The identity in `buf`: the opened PKCS#12's, or the PEM/DER certificates' with their key. */
function identityFrom(buf: Buffer, options: ReadIdentityOptions, p12: Pkcs12Contents | undefined): IdentityBundle {
  let certs: Buffer[];
  let keys: KeyObject[];
  if (p12) {
    certs = p12.certificates.map((c) => c.der);
    keys = p12.keys.map((k) => k.key);
  } else {
    const text = buf.toString('latin1');
    certs = text.includes('-----BEGIN') ? certificatesFrom(text) : [buf];
    const keySource = options.keyBytes ? Buffer.from(options.keyBytes) : text.includes('PRIVATE KEY-----') ? buf : undefined;
    let key: KeyObject | undefined;
    if (keySource) {
      const keyText = keySource.toString('latin1');
      key = keyText.includes('-----BEGIN')
        ? keyFromPem(keyText, options.password)
        : (() => {
            try {
              return createPrivateKey({ key: keySource, format: 'der', type: 'pkcs8' });
            } catch {
              throw new InputInvalid('key', 'The key file is not a PKCS#8 DER or PEM private key');
            }
          })();
    }
    keys = key ? [key] : [];
  }
  if (!certs.length) throw new InputInvalid('certificate', 'The file holds no certificate');
  const parsed = certs.map((der) => {
    try {
      return { der, x: new X509Certificate(der) };
    } catch {
      throw new InputInvalid('certificate', 'The file is not a PKCS#12, a PEM file or a DER certificate');
    }
  });
  if (!keys.length) throw new InputInvalid('key', 'The file holds no private key (give the key in the same PEM, with --key, or import a .p12)');
  if (keys.length > 1) throw new InputInvalid('key', `The file holds ${keys.length} private keys; one identity is expected`);
  const key = keys[0] as KeyObject;
  const leaf = parsed.find((c) => keysMatch(key, c.x.publicKey));
  if (!leaf) throw new CertificateInvalid('key-mismatch', 'The private key does not belong to any certificate in the file');
  return { certificate: leaf.der, privateKey: key, chain: parsed.filter((c) => c !== leaf).map((c) => c.der) };
}

/** Options of {@link checkImport}. */
export interface ImportCheckOptions {
  user: string;
  purpose: CertificatePurpose;
  /** Refuse instead of warning (missing emailProtection, key usage that does not fit). */
  strict?: boolean;
  now?: Date;
}

/** What {@link checkImport} found about an identity to import. */
export interface ImportCheckResult {
  info: CertificateInfo;
  /** The address as the certificate writes it. */
  email: string;
  warnings: string[];
  expired: boolean;
}

/**
 * The checks before an outside identity is stored: the key matches; RSA of 2048 bits or
 * more; the address is the certificate's (case-insensitive); emailProtection (warning, or
 * refused with `strict`); a key usage that allows the purpose; an expired certificate only
 * into the encryption history.
 * @throws ERR_CERT_INVALID, ERR_KEY_UNSUPPORTED
 * @example
 * const bundle = readIdentity(readFileSync('alice.p12'), { password })
 * const { email, warnings, expired } = await checkImport(bundle, { user: 'alice@example.com', purpose: 'smime-encryption' })
 * for (const warning of warnings) console.warn(`${email}: ${warning}`)
 * if (!expired) await store.importIdentity(bundle, { user: email, purpose: 'smime-encryption' })
 */
export async function checkImport(bundle: IdentityBundle, options: ImportCheckOptions): Promise<ImportCheckResult> {
  const info = await describeCertificate(bundle.certificate);
  const now = options.now ?? new Date();
  const warnings: string[] = [];
  if (!keysMatch(bundle.privateKey, info.publicKey)) {
    throw new CertificateInvalid('key-mismatch', 'The private key does not belong to the certificate');
  }
  const kind = describeKey(bundle.privateKey);
  if (!/^rsa-\d+$/.test(kind) || Number(kind.slice(4)) < 2048) {
    throw new KeyUnsupported(kind, `S/MIME on iOS needs RSA of 2048 bits or more; this key is ${kind}`);
  }
  // The common name becomes the identity's name in the store and in profiles (the file name iOS shows).
  const hidden = info.commonName ? hiddenCharacter(info.commonName) : undefined;
  if (hidden) throw new CertificateInvalid('name', hiddenMessage("certificate's common name", hidden));
  const addresses = [...info.emails, ...info.subjectEmails];
  const email = addresses.find((a) => a.toLowerCase() === options.user.toLowerCase());
  if (!email) {
    throw new CertificateInvalid(
      'address-mismatch',
      addresses.length
        ? `The certificate is for "${addresses.join('", "')}", not "${options.user}"`
        : `The certificate names no email address; "${options.user}" was expected`,
    );
  }
  if (info.emails.length !== 1) warnings.push(`the certificate has ${info.emails.length} rfc822Name entries; iOS uses only the first`);
  const soft = (message: string) => {
    if (options.strict) throw new CertificateInvalid('policy', `Refused (--strict): ${message}`);
    warnings.push(message);
  };
  if (!info.extendedKeyUsage.includes(EKU.emailProtection)) soft('the certificate has no emailProtection extended key usage');
  const wanted = options.purpose === 'smime-signing' ? 'digitalSignature' : 'keyEncipherment';
  // Unfit key usage is refused, --strict or not: a signing-only certificate in the encryption
  // history would be offered for mail nobody can encrypt to it, and the reverse cannot sign.
  if (info.keyUsage.length && !info.keyUsage.includes(wanted)) {
    const other = options.purpose === 'smime-signing' ? 'smime-encryption' : 'smime-signing';
    throw new CertificateInvalid('key-usage', `The certificate's key usage (${info.keyUsage.join(', ')}) lacks ${wanted}, which ${options.purpose} needs; import it as ${other}`);
  }
  if (info.isCA) throw new CertificateInvalid('ca', 'The certificate is a CA certificate, not a user identity');
  const expired = now > info.notAfter;
  if (expired) {
    if (options.purpose === 'smime-signing') {
      throw new CertificateInvalid('expired', `The certificate expired on ${info.notAfter.toISOString()}; an expired signing identity is of no use`);
    }
    warnings.push(`expired on ${info.notAfter.toISOString().slice(0, 10)}: kept in the encryption history to read old mail`);
  }
  return { info, email, warnings, expired };
}
