import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { generateKeyPair } from '../../certs/keys.js';
import { toPem } from '../../certs/pem.js';
import { createCertificate, EKU } from '../../certs/x509.js';
import { createProfileHandler } from '../../server/handler.js';
import { createPkiHandler } from '../../pki/handler.js';
import { validity } from '../../certs/issue.js';
import { publicationFor } from '../../certs/publication.js';
import { LinkBook } from '../../server/links.js';
import { applySetValues, loadTemplate } from '../../profile/template.js';
import { UsageError } from '../errors.js';
import { readDataFile, readInputFile } from '../files.js';
import { openStoreFromArgs, parseSets, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, serveUntilTerminated, warn } from '../output.js';
import { signerFromArgs, signerOptions, type SignerArgs } from '../signer.js';

interface Args extends StoreArgs, SignerArgs {
  template: string;
  set?: string[];
  data?: string;
  host: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsFromStore?: boolean;
  http?: boolean;
  rateLimit: number;
}

export function serveCommand(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'serve',
    describe: 'serve profiles behind one-time download links',
    builder: (y: Argv) =>
      signerOptions(storeOptions(y))
        .option('template', { type: 'string', demandOption: true, describe: 'template for the profiles' })
        .option('set', { type: 'string', array: true, describe: 'template variable key=value (not for secrets)' })
        .option('data', { type: 'string', describe: 'JSON file of template variables' })
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on' })
        .option('port', { type: 'number', default: 8443, describe: 'port (0 picks a free one)' })
        .option('tls-cert', { type: 'string', describe: 'TLS certificate (PEM)' })
        .option('tls-key', { type: 'string', describe: 'TLS key (PEM)' })
        .option('tls-from-store', { type: 'boolean', describe: "issue a TLS certificate for --host from the store's CA (kept in memory)" })
        .option('http', { type: 'boolean', describe: 'plain HTTP, only behind a TLS reverse proxy' })
        .option('rate-limit', { type: 'number', default: 60, describe: 'requests per minute per client address' })
        .example('$0 serve --store ./store --template exchange-smime --set exchange.host=mail.example.com --tls-from-store --host profiles.example.com', 'serve profiles over HTTPS') as unknown as Argv<Args>,
    handler: async (args) => {
      const tlsModes = [args.tlsCert || args.tlsKey ? 1 : 0, args.tlsFromStore ? 1 : 0, args.http ? 1 : 0].reduce((a, b) => a + b, 0);
      if (tlsModes !== 1) throw new UsageError('Choose one of --tls-cert with --tls-key, --tls-from-store, or --http');
      if ((args.tlsCert && !args.tlsKey) || (args.tlsKey && !args.tlsCert)) throw new UsageError('--tls-cert and --tls-key go together');
      const template = loadTemplate(args.template);
      const data = args.data ? await readDataFile(ctx.io, args.data) : {};
      applySetValues(template, data, parseSets(args.set));
      const store = await openStoreFromArgs(args, ctx.io, true);
      const signer = await signerFromArgs(args, ctx.io);
      const log = (l: string) => ctx.io.stderr.write(l + '\n');
      const profiles = createProfileHandler({ store, ...(signer ? { signer } : {}), links: new LinkBook(store.dir), template, data, rateLimit: args.rateLimit, log });
      // The PKI routes (CRLs, CA certificates, OCSP) ride along, as `pki serve` answers them.
      const pki = createPkiHandler({ store, log });
      const handler = (req: IncomingMessage, res: ServerResponse) => {
        if (!pki(req, res)) profiles(req, res);
      };
      const limits = { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 8192, keepAliveTimeout: 5_000 };
      let server: Server;
      if (args.http) {
        warn(ctx.io, 'serving plain HTTP: put a TLS reverse proxy in front; profiles carry identities');
        server = createHttpServer(limits, handler);
      } else if (args.tlsFromStore) {
        const pair = await generateKeyPair('rsa-2048');
        const issuer = await store.issuerIdentity();
        const window = validity(new Date(), 397, new Date(new X509Certificate(issuer.certificate).validTo));
        const publication = publicationFor(store.pkiUrl, (await store.caCertificates()).filter((c) => c.ca !== 'root').at(-1)?.ca ?? 1);
        const cert = await createCertificate({
          subject: [['CN', args.host]],
          issuerCertificate: issuer.certificate,
          notBefore: window.notBefore,
          notAfter: window.notAfter,
          ...(publication ? { publication } : {}),
          publicKey: pair.publicKey,
          signingKey: issuer.privateKey,
          keyUsage: ['digitalSignature', 'keyEncipherment'],
          extendedKeyUsage: [EKU.serverAuth],
          ...(isIP(args.host) ? { ipAddresses: [args.host] } : { dnsNames: [args.host] }),
        });
        const chain = toPem(issuer.certificate);
        server = createHttpsServer({ ...limits, key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: toPem(cert) + chain }, handler);
      } else {
        const [cert, key] = await Promise.all([readInputFile(ctx.io, args.tlsCert!, 'tls-cert', 1 << 20), readInputFile(ctx.io, args.tlsKey!, 'tls-key', 1 << 20)]);
        server = createHttpsServer({ ...limits, key, cert }, handler);
      }
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(args.port, args.host, () => resolve());
      }).catch(async (err: unknown) => {
        await signer?.close();
        throw err;
      });
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : args.port;
      const base = `${args.http ? 'http' : 'https'}://${isIP(args.host) === 6 ? `[${args.host}]` : args.host}:${port}`;
      ctx.io.stdout.write(base + '\n');
      note(ctx.io, `Serving ${template.name} profiles on ${base}; links: profilesmith link create --base-url ${base}`);
      await serveUntilTerminated(ctx.io, server);
      await signer?.close();
    },
  };
}
