import test from 'ava';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { certificatesFrom } from '../../src/certs/pem.js';
import { certificateBasics, describeCertificate } from '../../src/certs/x509.js';
import { need, openssl, ROOT, tmp } from '../helpers/tools.js';

// @peculiar/x509 (describeCertificate) is the oracle for the light reader a batch worker uses.
async function agree(t: import('ava').ExecutionContext, der: Buffer, label: string) {
  const full = await describeCertificate(der);
  const light = certificateBasics(der);
  t.deepEqual(
    { serial: light.serial, commonName: light.commonName, selfSigned: light.selfSigned, fingerprint: light.fingerprint },
    { serial: full.serial.replace(/^(00)+(?=..)/, ''), commonName: full.commonName, selfSigned: full.selfSigned, fingerprint: full.fingerprint },
    label,
  );
}

test('certificateBasics reads what @peculiar/x509 reads: fixtures, UTF-8, BMPString and no common name', async (t) => {
  const dir = join(ROOT, 'test', 'fixtures', 'certs');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.pem') && !n.includes('key'))) {
    for (const der of certificatesFrom(readFileSync(join(dir, f), 'utf8'))) await agree(t, der, f);
  }
  if (!need(t, 'openssl')) return;
  const out = tmp(t);
  const make = (name: string, subj: string, extra: string[] = []) => {
    const r = openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(out, `${name}.key`), '-out', join(out, `${name}.pem`), '-days', '2', '-utf8', '-subj', subj, ...extra]);
    t.is(r.status, 0, r.stderr.toString());
    return certificatesFrom(readFileSync(join(out, `${name}.pem`), 'utf8'))[0]!;
  };
  await agree(t, make('utf8', '/O=Ærø A\\/S/CN=Müller\\, Zoë + Co/CN=second'), 'UTF8String, two CNs, escapes');
  const bmp = make('bmp', '/CN=Łódź Ünïcode', ['-config', writeConfig(out, 'bmp')]);
  t.true(bmp.includes(Buffer.concat([Buffer.from([0x1e, 24]), Buffer.from('Łódź Ünïcode', 'utf16le').swap16()])), 'the CN is a BMPString');
  await agree(t, bmp, 'BMPString');
  await agree(t, make('nocn', '/O=No Common Name/C=DE'), 'no CN');
  t.throws(() => certificateBasics(Buffer.from('not a certificate')), { code: 'ERR_CERT_INVALID' });
});

function writeConfig(dir: string, name: string): string {
  const path = join(dir, `${name}.cnf`);
  // string_mask = default lets openssl encode names beyond Latin-1 as BMPString.
  writeFileSync(path, '[req]\ndistinguished_name = dn\nstring_mask = default\nutf8 = yes\n[dn]\n');
  return path;
}
