/**
 * The one adapter to node-forge, for the two legacy operations Node 20 cannot do natively:
 * - RC2-CBC decryption, for reading legacy PKCS#12 (OpenSSL's -legacy encrypts certificates
 *   with 40-bit RC2; Node does not load OpenSSL's legacy provider);
 * - RSA PKCS#1 v1.5 decryption, for opening encrypted profiles: Node 20 refuses
 *   RSA_PKCS1_PADDING in privateDecrypt (CVE-2023-46809) without implicit rejection.
 * - single DES-CBC, for SCEP clients that still encrypt with it (micromdm's scepclient,
 *   whatever the server advertises); OpenSSL 3 keeps DES in the legacy provider too.
 * None is on a hot path.
 */
import type { KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type Forge from 'node-forge';

// Loaded on first use: node-forge is large, and most runs (every batch worker) never need it.
let loaded: typeof Forge | undefined;
const forgeLib = (): typeof Forge => (loaded ??= createRequire(import.meta.url)('node-forge') as typeof Forge);

export function rc2Decrypt(key: Buffer, iv: Buffer, data: Buffer, bits: number): Buffer | undefined {
  const forge = forgeLib();
  const cipher = forge.rc2.createDecryptionCipher(forge.util.createBuffer(key.toString('binary')), bits);
  cipher.start(forge.util.createBuffer(iv.toString('binary')));
  cipher.update(forge.util.createBuffer(data.toString('binary')));
  if (!cipher.finish()) return undefined;
  return Buffer.from(cipher.output.getBytes(), 'binary');
}

/** RSAES-PKCS1-v1_5 decryption; throws on a wrong key or bad padding. */
export function rsaPkcs1Decrypt(key: KeyObject, data: Buffer): Buffer {
  const forge = forgeLib();
  const forgeKey = forge.pki.privateKeyFromPem(key.export({ type: 'pkcs1', format: 'pem' }).toString());
  return Buffer.from(forgeKey.decrypt(data.toString('binary'), 'RSAES-PKCS1-V1_5'), 'binary');
}

/** DES-CBC with PKCS#7 padding, either way; undefined when decryption finds bad padding. */
export function desCbc(encrypt: boolean, key: Buffer, iv: Buffer, data: Buffer): Buffer | undefined {
  const forge = forgeLib();
  const c = (encrypt ? forge.cipher.createCipher : forge.cipher.createDecipher)('DES-CBC', forge.util.createBuffer(key.toString('binary')));
  c.start({ iv: forge.util.createBuffer(iv.toString('binary')) });
  c.update(forge.util.createBuffer(data.toString('binary')));
  if (!c.finish()) return undefined;
  return Buffer.from(c.output.getBytes(), 'binary');
}
