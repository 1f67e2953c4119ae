/**
 * PKCS#12 bombs, built by hand: files whose every part is cheap to make and dear to open.
 * Each encrypted safe decrypts (with the right password) to an empty SafeContents, so nothing
 * in them is wrong except the work they ask for. All safes share one salt, so the bomb costs
 * its maker one derivation and its reader one per safe.
 */
import { createCipheriv, createHmac, pbkdf2Sync } from 'node:crypto';
import { explicit, int, nul, octets, oid, seq, tlv } from '../../src/asn1/der.js';
import { pkcs12Kdf, pkcs12Password } from '../../src/certs/pkcs12.js';

export interface BombOptions {
  /** Encrypted safes, each empty inside. */
  safes: number;
  /** Iterations of each safe's key derivation. */
  iterations: number;
  /** `legacy`: pbeWithSHAAnd3-KeyTripleDES-CBC (the PKCS#12 KDF, JS); `pbes2`: PBKDF2-SHA-256 with AES-256-CBC (native). */
  kind: 'legacy' | 'pbes2';
  password: string;
  /** A SHA-1 MAC with this many iterations; none by default (the MAC is optional). */
  macIterations?: number;
}

const SALT = Buffer.alloc(8, 7);

export function pkcs12Bomb(o: BombOptions): Buffer {
  const empty = seq();
  let alg: Buffer;
  let encrypted: Buffer;
  if (o.kind === 'legacy') {
    const bmp = pkcs12Password(o.password);
    const key = pkcs12Kdf(bmp, SALT, 1, o.iterations, 24);
    const iv = pkcs12Kdf(bmp, SALT, 2, o.iterations, 8);
    const c = createCipheriv('des-ede3-cbc', key, iv);
    encrypted = Buffer.concat([c.update(empty), c.final()]);
    alg = seq(oid('1.2.840.113549.1.12.1.3'), seq(octets(SALT), int(o.iterations)));
  } else {
    const iv = Buffer.alloc(16, 3);
    const key = pbkdf2Sync(Buffer.from(o.password, 'utf8'), SALT, o.iterations, 32, 'sha256');
    const c = createCipheriv('aes-256-cbc', key, iv);
    encrypted = Buffer.concat([c.update(empty), c.final()]);
    alg = seq(
      oid('1.2.840.113549.1.5.13'),
      seq(seq(oid('1.2.840.113549.1.5.12'), seq(octets(SALT), int(o.iterations), seq(oid('1.2.840.113549.2.9'), nul()))), seq(oid('2.16.840.1.101.3.4.1.42'), octets(iv))),
    );
  }
  const safe = seq(oid('1.2.840.113549.1.7.6'), explicit(0, seq(int(0), seq(oid('1.2.840.113549.1.7.1'), alg, tlv(0x80, encrypted)))));
  const authSafe = seq(...Array.from({ length: o.safes }, () => safe));
  const authSafeInfo = seq(oid('1.2.840.113549.1.7.1'), explicit(0, octets(authSafe)));
  if (o.macIterations === undefined) return seq(int(3), authSafeInfo);
  const macKey = pkcs12Kdf(pkcs12Password(o.password), SALT, 3, o.macIterations, 20);
  const mac = createHmac('sha1', macKey).update(authSafe).digest();
  return seq(int(3), authSafeInfo, seq(seq(seq(oid('1.3.14.3.2.26'), nul()), octets(mac)), octets(SALT), int(o.macIterations)));
}
