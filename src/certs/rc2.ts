/**
 * RC2-CBC decryption, for reading legacy PKCS#12 files (OpenSSL's -legacy default encrypts
 * the certificates with 40-bit RC2). Node's OpenSSL 3 has RC2 only in the legacy provider,
 * which Node does not load, so this is the one use of node-forge's cipher.
 */
import forge from 'node-forge';

export function rc2Decrypt(key: Buffer, iv: Buffer, data: Buffer, bits: number): Buffer | undefined {
  const cipher = forge.rc2.createDecryptionCipher(forge.util.createBuffer(key.toString('binary')), bits);
  cipher.start(forge.util.createBuffer(iv.toString('binary')));
  cipher.update(forge.util.createBuffer(data.toString('binary')));
  if (!cipher.finish()) return undefined;
  return Buffer.from(cipher.output.getBytes(), 'binary');
}
