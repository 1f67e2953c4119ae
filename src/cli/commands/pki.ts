import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { createPkiHandler } from '../../pki/handler.js';
import { TrustedProxies } from '../../server/client.js';
import { UsageError } from '../errors.js';
import { listen, parseListen } from '../listen.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs, durationFlag } from '../options.js';
import { note, serveUntilTerminated } from '../output.js';

interface ServeArgs extends StoreArgs {
  listen: string;
  rateLimit: number;
  trustProxy?: string[];
  crlValidity: string;
}

function serve(ctx: Context): CommandModule<object, ServeArgs> {
  return {
    command: 'serve',
    describe: 'publish CRLs, CA certificates and OCSP over plain HTTP',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('listen', { type: 'string', default: '127.0.0.1:8080', describe: 'HOST:PORT to listen on (port 0 picks a free one)' })
        .option('rate-limit', { type: 'number', default: 600, describe: 'requests per minute per client address, for OCSP, CRLs and CA certificates each' })
        .option('trust-proxy', { type: 'string', array: true, describe: 'a reverse proxy (address or CIDR) whose X-Forwarded-For / Forwarded is believed, so clients behind it are limited one by one (repeatable)' })
        .option('crl-validity', { type: 'string', default: '1d', describe: 'nextUpdate of the CRLs served (re-signed at half of it, and at once after a revocation); clients may cache a CRL that long' })
        .example('$0 pki serve --store ./store --listen 0.0.0.0:80', 'answer at the PKI URL the certificates carry') as unknown as Argv<ServeArgs>,
    handler: async (args) => {
      const { host, port } = parseListen(args.listen);
      if (!Number.isInteger(args.rateLimit) || args.rateLimit < 1) throw new UsageError(`--rate-limit takes a whole number of 1 or more, got "${args.rateLimit}"`);
      const crlValidityMs = durationFlag(args.crlValidity, 'crl-validity');
      const trustProxy = args.trustProxy?.length ? args.trustProxy : undefined;
      if (trustProxy) new TrustedProxies(trustProxy); // a bad value is refused before the store is opened
      // The port is bound first: one taken is found before the responders and CRLs are written to the store.
      let handler: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
      const server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000, maxHeaderSize: 8192, keepAliveTimeout: 5_000 }, (req, res) => {
        if (!handler) {
          res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '1' });
          res.end('Starting\n');
        } else if (!handler(req, res)) {
          res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
          res.end('Not found\n');
        }
      });
      const bound = await listen(server, host, port);
      let pkiUrl: string | undefined;
      try {
        const store = await openStoreFromArgs(args, ctx.io, true);
        // Issue the responders and sign the CRLs now: a problem shows at start, not per request.
        for (const ca of await store.caCertificates()) {
          await store.ocspResponder(ca.ca);
          await store.publishedCrl(ca.ca, { validityMs: crlValidityMs });
        }
        handler = createPkiHandler({ store, rateLimit: args.rateLimit, crlValidityMs, ...(trustProxy ? { trustProxy } : {}), log: (l) => ctx.io.stderr.write(l + '\n') });
        pkiUrl = store.pkiUrl;
      } catch (err) {
        server.close();
        throw err;
      }
      const shown = bound.address === '::' || bound.address === '0.0.0.0' ? 'localhost' : bound.address;
      const base = `http://${isIP(shown) === 6 ? `[${shown}]` : shown}:${bound.port}`;
      ctx.io.stdout.write(base + '\n');
      note(ctx.io, `Serving CRLs, CA certificates and OCSP on ${base}`);
      if (!pkiUrl) note(ctx.io, 'This store has no PKI URL, so its certificates point nowhere: set one with `profilesmith ca pki-url URL` (applies to certificates issued from then on)');
      else note(ctx.io, `Certificates point at ${pkiUrl}: route it here (a reverse proxy or DNS)`);
      await serveUntilTerminated(ctx.io, server);
    },
  };
}

export function pkiCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.pki,
    builder: (y: Argv) => y.command(serve(ctx)).demandCommand(1),
    handler: () => {},
  };
}
