import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An outside CA made with the openssl CLI (root → intermediate → user), as a commercial CA
 * or AD CS would hand an admin. Returns file paths.
 */
export function outsideCa(dir: string, options: { email?: string; commonName?: string; days?: number; bits?: number; eku?: boolean; startDate?: string; endDate?: string } = {}) {
  const email = options.email ?? 'bob@example.com';
  const o = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(
    join(dir, 'ext.cnf'),
    `[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n` +
      `[user]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment,digitalSignature\n` +
      (options.eku === false ? '' : 'extendedKeyUsage=emailProtection\n') +
      `subjectAltName=email:${email}\n`,
  );
  o(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'oroot.key', '-out', 'oroot.pem', '-subj', '/CN=Outside Root CA/O=Outside', '-days', '3650', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  o(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'oint.key', '-out', 'oint.csr', '-subj', '/CN=Outside Issuing CA/O=Outside']);
  o(['x509', '-req', '-in', 'oint.csr', '-CA', 'oroot.pem', '-CAkey', 'oroot.key', '-CAcreateserial', '-out', 'oint.pem', '-days', '3000', '-extfile', 'ext.cnf', '-extensions', 'ca']);
  o(['req', '-utf8', '-newkey', `rsa:${options.bits ?? 2048}`, '-nodes', '-keyout', 'user.key', '-out', 'user.csr', '-subj', `/CN=${options.commonName ?? 'Outside User'}`]);
  if (options.endDate) {
    writeFileSync(join(dir, 'ca.cnf'), `[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=serial.txt\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n`);
    writeFileSync(join(dir, 'index.txt'), '');
    writeFileSync(join(dir, 'serial.txt'), '1000\n');
    o(['ca', '-batch', '-config', 'ca.cnf', '-in', 'user.csr', '-cert', 'oint.pem', '-keyfile', 'oint.key', '-out', 'user.pem', '-startdate', options.startDate ?? '20200101000000Z', '-enddate', options.endDate, '-extfile', 'ext.cnf', '-extensions', 'user', '-notext']);
  } else {
    o(['x509', '-req', '-in', 'user.csr', '-CA', 'oint.pem', '-CAkey', 'oint.key', '-CAcreateserial', '-out', 'user.pem', '-days', String(options.days ?? 365), '-extfile', 'ext.cnf', '-extensions', 'user']);
  }
  writeFileSync(join(dir, 'chain.pem'), Buffer.concat([o(['x509', '-in', 'oint.pem']), o(['x509', '-in', 'oroot.pem'])]));
  const password = 'pässwörd-ü';
  writeFileSync(join(dir, 'pw.txt'), password, { mode: 0o600 });
  const base = ['pkcs12', '-export', '-in', 'user.pem', '-inkey', 'user.key', '-certfile', 'chain.pem', '-passout', `pass:${password}`];
  o([...base, '-out', 'modern.p12']);
  o([...base, '-legacy', '-out', 'legacy.p12']);
  writeFileSync(join(dir, 'combined.pem'), Buffer.concat([o(['x509', '-in', 'user.pem']), o(['pkey', '-in', 'user.key'])]));
  return { email, password, dir, modern: join(dir, 'modern.p12'), legacy: join(dir, 'legacy.p12'), chain: join(dir, 'chain.pem'), pem: join(dir, 'combined.pem'), userPem: join(dir, 'user.pem'), pwFile: join(dir, 'pw.txt') };
}
