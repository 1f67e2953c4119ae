/**
 * SCEP on the PostgreSQL store, against a real server: two `serve --scep` nodes on one
 * database share the RA, the challenges and the records, so a device may fetch GetCACert from
 * one and enroll at the other, and a challenge is spent once whichever node receives it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PASSPHRASE } from '../helpers/fixture.js';
import { hasPostgres, postgres } from '../helpers/postgres.js';
import { opensslEnvelope, pkiMessage, readReply, requester } from '../helpers/scep.js';
import { BIN, cli, httpRequest, need, openssl, python, startServer, tmp } from '../helpers/tools.js';

const env = { PROFILESMITH_PASSPHRASE: PASSPHRASE };
const server = await postgres();
const HAS_SCEPCLIENT = spawnSync('scepclient', ['-version']).status === 0;

if (hasPostgres(server, 'The SCEP tests on PostgreSQL')) {
  test('two serve --scep nodes on one PostgreSQL store: one RA for both, a challenge minted by one is spent once across both, the device certificate is a keyless row that user remove --revoke puts on the CRL', async (t) => {
    if (!need(t, 'openssl') || !need(t, 'python3')) return;
    const dir = tmp(t);
    const url = await server.createDatabase();
    t.is(cli(['init', '--store', url, '--org', 'PG Corp'], { cwd: dir, env }).status, 0);
    t.is(cli(['cert', 'issue', '--store', url, '--user', 'pia@example.com', '--name', 'Pia Example', '--purpose', 'smime-encryption'], { cwd: dir, env }).status, 0);
    const node = () => startServer(t, [BIN, 'serve', '--store', url, '--template', 'scep-smime-signing', '--set', 'exchange.host=mail.example.com', '--http', '--listen', '127.0.0.1:0', '--scep', '--public-url', 'http://scep.example.com'], env);
    const [a, b] = [await node(), await node()];
    // Both listen on their own ports; the public URL is the balancer's, recorded once.
    const portOf = async (s: { logged: (re: RegExp) => Promise<string> }) => /listening on 127\.0\.0\.1:(\d+)/.exec(await s.logged(/listening on 127\.0\.0\.1:\d+/))![1];
    const baseA = `http://127.0.0.1:${await portOf(a)}`;
    const baseB = `http://127.0.0.1:${await portOf(b)}`;
    const caA = await httpRequest(`${baseA}/scep?operation=GetCACert`);
    const caB = await httpRequest(`${baseB}/scep?operation=GetCACert`);
    t.true(caA.body.equals(caB.body), 'both nodes hand out the same RA and chain');

    const file = join(dir, 'pia.mobileconfig');
    t.is(cli(['generate', 'scep-smime-signing', '--store', url, '--user', 'pia@example.com', '--set', 'exchange.host=mail.example.com', '-o', file], { cwd: dir, env }).status, 0);
    const xml = openssl(['cms', '-verify', '-inform', 'DER', '-in', file, '-noverify']).stdout;
    const scep = JSON.parse(python('import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps([x["PayloadContent"] for x in p["PayloadContent"] if x["PayloadType"]=="com.apple.security.scep"][0]))', xml).stdout) as { URL: string; Challenge: string };
    t.is(scep.URL, 'http://scep.example.com/scep');

    const raPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----\n/.exec(openssl(['pkcs7', '-inform', 'DER', '-print_certs'], caA.body).stdout.toString())![0];
    const who = requester(dir, 'dev', { challenge: scep.Challenge });
    const msg = () => pkiMessage(opensslEnvelope(dir, who.csr, raPem), who);
    const [ra, rb] = await Promise.all([httpRequest(`${baseA}/scep?operation=PKIOperation`, { method: 'POST', body: msg() }), httpRequest(`${baseB}/scep?operation=PKIOperation`, { method: 'POST', body: msg() })]);
    const answers = [readReply(dir, ra.body, who), readReply(dir, rb.body, who)].map((r) => r.status).sort();
    t.deepEqual(answers, ['0', '2'], 'one SUCCESS and one FAILURE, whichever node won');
    const rows = JSON.parse(cli(['cert', 'list', '--store', url, '--user', 'pia@example.com', '--json'], { cwd: dir, env }).stdout) as { serial: string; purpose: string; keyOnDevice?: boolean }[];
    const device = rows.filter((r) => r.keyOnDevice);
    t.is(device.length, 1);
    t.is(device[0]!.purpose, 'smime-signing');
    t.is(cli(['store', 'check', '--store', url], { cwd: dir, env }).status, 0);

    if (HAS_SCEPCLIENT) {
      // And micromdm's client, through node B, with a challenge minted for node A's profile.
      const again = join(dir, 'again.mobileconfig');
      t.is(cli(['generate', 'scep-smime-signing', '--store', url, '--user', 'pia@example.com', '--set', 'exchange.host=mail.example.com', '-o', again], { cwd: dir, env }).status, 0);
      const x2 = openssl(['cms', '-verify', '-inform', 'DER', '-in', again, '-noverify']).stdout.toString();
      const challenge = /<key>Challenge<\/key>\s*<string>([^<]+)<\/string>/.exec(x2)![1]!;
      const devDir = join(dir, 'scepclient');
      mkdirSync(devDir);
      const r = spawnSync('scepclient', ['-server-url', `${baseB}/scep`, '-challenge', challenge, '-private-key', 'k.pem', '-certificate', 'c.pem'], { cwd: devDir, encoding: 'utf8', timeout: 60_000 });
      t.is(r.status, 0, r.stderr);
      t.regex(openssl(['x509', '-noout', '-ext', 'subjectAltName'], readFileSync(join(devDir, 'c.pem'))).stdout.toString(), /email:pia@example\.com/);
    } else t.log('scepclient is not installed: the scepclient leg is skipped');

    t.is(cli(['user', 'remove', '--store', url, 'pia@example.com', '--revoke'], { cwd: dir, env }).status, 0);
    const crl = await httpRequest(`${baseA}/crl/issuing.crl`);
    const listed = openssl(['crl', '-inform', 'DER', '-noout', '-text'], crl.body).stdout.toString().toLowerCase();
    t.true(listed.includes(device[0]!.serial.replace(/^0+/, '')), 'the device certificate is on the CRL');
  });
}
