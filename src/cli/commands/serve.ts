import { X509Certificate } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { signerCertificates } from '../../cms/sign.js';
import { generateKeyPair } from '../../certs/keys.js';
import { toPem } from '../../certs/pem.js';
import { createCertificate, EKU } from '../../certs/x509.js';
import { createProfileHandler } from '../../server/handler.js';
import { createPkiHandler } from '../../pki/handler.js';
import { createScepHandler } from '../../scep/handler.js';
import { answerInternalError } from '../../server/request-target.js';
import { validity } from '../../certs/issue.js';
import { publicationFor } from '../../certs/publication.js';
import { generateProfile } from '../../profile/generate.js';
import { unknownDataKeys } from '../../profile/template.js';
import { statusOf } from '../../store/store.js';
import { adviceFor, UsageError } from '../errors.js';
import { InputInvalid, isProfilesmithError } from '../../errors.js';
import { readInputFile } from '../files.js';
import { listen, parseListen, probeListen } from '../listen.js';
import { openStoreFromArgs, templateArg, templateValues, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, serveUntilTerminated, warn } from '../output.js';
import { signerFromArgs, signerOptions, type SignerArgs } from '../signer.js';
import { signerTrust } from '../../cms/trust.js';

/** Errors that belong to one user (not to the template or the server): reported at start, not fatal. */
const USER_ERRORS = new Set(['ERR_STORE_ENTRY_NOT_FOUND', 'ERR_CERT_INVALID', 'ERR_INPUT_INVALID']);

interface Args extends StoreArgs, SignerArgs {
  template: string;
  set?: string[];
  data?: string;
  listen?: string;
  publicUrl?: string;
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  tlsFromStore?: boolean;
  http?: boolean;
  rateLimit: number;
  guessLimit: number;
  trustProxy?: string[];
  tlsTrustStep?: string;
  sample: number;
  scep?: boolean;
  scepDeviceLimit?: number;
}

/** The data without the keys the template does not declare: the CLI warned about them and ignores them; the handler would refuse them. */
function declaredOnly(data: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out = structuredClone(data);
  for (const key of keys) {
    const parts = key.split('.');
    let cur: unknown = out;
    for (const part of parts.slice(0, -1)) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[part] : undefined;
    if (cur && typeof cur === 'object') delete (cur as Record<string, unknown>)[parts.at(-1)!];
  }
  return out;
}

/**
 * The users tried at start who cannot have a profile now, as one warning line (undefined when
 * every user tried could): how many, the first one's reason, and what to do.
 */
export function cannotLine(cannot: readonly { user: string; reason: string }[], made: number, template: string): string | undefined {
  const first = cannot[0];
  if (!first) return made ? undefined : 'no user of the store holds a valid certificate, so no profile could be tried at start; issue some with `profilesmith cert issue` or `cert issue-batch`';
  const who = cannot.length === 1 ? `1 user cannot have a "${template}" profile now` : `${cannot.length} users cannot have a "${template}" profile now`;
  const none = made ? '' : ', and none could, so nothing was tried at start';
  return `${who}${none} (first: ${first.reason}); their links fail until they hold what the template needs: see \`profilesmith user list\``;
}

/** The --tls-cert and --tls-key files, read and checked to be a pair before anything else is done. */
async function readTlsFiles(io: Context['io'], certPath: string, keyPath: string): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (path: string, flag: 'tls-cert' | 'tls-key') => {
    try {
      return await readInputFile(io, path, flag, 1 << 20);
    } catch (err) {
      if (!(err instanceof InputInvalid)) throw err;
      const what = flag === 'tls-cert' ? "the server's TLS certificate" : 'its private key';
      throw new InputInvalid(flag, `--${flag}: ${err.message}; give the PEM file of ${what} (or serve with --tls-from-store)`);
    }
  };
  const cert = await read(certPath, 'tls-cert');
  const key = await read(keyPath, 'tls-key');
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const why = (err as Error).message.replace(/^error:[0-9A-F]+:[^:]*:[^:]*:/, '');
    throw new InputInvalid('tls-key', `--tls-cert "${certPath}" and --tls-key "${keyPath}" are not a certificate and its key in PEM (${why}); give the key that belongs to that certificate`);
  }
  return { cert, key };
}

/** The public URL: given, or made from the listening address (which must then be a real one). */
function publicUrlOf(args: Args, host: string | undefined, port: number): URL {
  const scheme = args.http ? 'http' : 'https';
  if (args.publicUrl) {
    let url: URL;
    try {
      url = new URL(args.publicUrl);
    } catch {
      throw new UsageError(`--public-url takes a URL like https://profiles.example.com, got "${args.publicUrl}"`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UsageError(`--public-url must be https:// (or http://), got "${args.publicUrl}"`);
    if (url.search || url.hash || url.username) throw new UsageError('--public-url must be a plain base URL, without query, fragment or credentials');
    return url;
  }
  if (!host || host === '0.0.0.0' || host === '::') throw new UsageError(`Listening on all addresses needs --public-url: the address devices reach (https://profiles.example.com)`);
  return new URL(`${scheme}://${isIP(host) === 6 ? `[${host}]` : host}:${port}`);
}

export function serveCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.serve,
    builder: (y: Argv) =>
      signerOptions(storeOptions(y))
        .option('template', { type: 'string', demandOption: true, describe: 'template for the profiles' })
        .option('set', { type: 'string', array: true, describe: 'template variable key=value (not for secrets)' })
        .option('data', { type: 'string', describe: 'JSON file of template variables' })
        .option('listen', { type: 'string', describe: 'HOST:PORT of the socket (default 127.0.0.1:8443; port 0 picks a free one)' })
        .option('public-url', { type: 'string', describe: 'the address devices reach, for links, the TLS certificate and the page (default: from --listen)' })
        .option('host', { type: 'string', hidden: true, describe: 'the listening address (use --listen)' })
        .option('port', { type: 'number', hidden: true, describe: 'the listening port (use --listen)' })
        .option('tls-cert', { type: 'string', describe: 'TLS certificate (PEM)' })
        .option('tls-key', { type: 'string', describe: 'TLS key (PEM)' })
        .option('tls-from-store', { type: 'boolean', describe: "issue a TLS certificate for the public URL's host from the store's CA (kept in memory)" })
        .option('http', { type: 'boolean', describe: 'plain HTTP, only behind a TLS reverse proxy' })
        .option('trust-proxy', { type: 'string', array: true, describe: 'a reverse proxy (address or CIDR) whose X-Forwarded-For / Forwarded is believed (repeatable)' })
        .option('rate-limit', { type: 'number', default: 600, describe: 'requests per minute per client for each kind of route (downloads, OCSP, CRLs, CA certificates), a flood bound' })
        .option('guess-limit', { type: 'number', default: 20, describe: 'unknown links a client may try in 10 minutes before it must wait' })
        .option('tls-trust-step', { type: 'string', describe: "tell users to switch on full TLS trust for the root, giving this reason (only if the profile's servers use this CA's TLS certificates)" })
        .option('scep', { type: 'boolean', describe: "also answer SCEP at /scep (devices enroll their own signing keys with the store's CA); its URL goes into SCEP profiles" })
        .option('scep-device-limit', { type: 'number', describe: 'with --scep: the most live device certificates one user may hold; enrolments past it are refused (renewals replace, so they do not count)' })
        .option('sample', { type: 'number', default: 3, describe: 'users whose profiles are made before listening, to find template or store problems at start' })
        .example('$0 serve --store ./store --template exchange-smime --set exchange.host=mail.example.com --tls-from-store --listen 0.0.0.0:8443 --public-url https://profiles.example.com:8443', 'serve profiles over HTTPS') as unknown as Argv<Args>,
    handler: async (args) => {
      const tlsModes = [args.tlsCert || args.tlsKey ? 1 : 0, args.tlsFromStore ? 1 : 0, args.http ? 1 : 0].reduce((a, b) => a + b, 0);
      if (tlsModes !== 1) throw new UsageError('Choose one of --tls-cert with --tls-key, --tls-from-store, or --http');
      if ((args.tlsCert && !args.tlsKey) || (args.tlsKey && !args.tlsCert)) throw new UsageError('--tls-cert and --tls-key go together');
      if (args.listen && (args.host !== undefined || args.port !== undefined)) throw new UsageError('--listen replaces --host and --port; give one or the other');
      const at = args.listen ? parseListen(args.listen) : { host: args.host ?? '127.0.0.1', port: args.port ?? 8443 };
      if (args.scepDeviceLimit !== undefined && !args.scep) throw new UsageError('--scep-device-limit goes with --scep');
      for (const [name, v] of [['rate-limit', args.rateLimit], ['guess-limit', args.guessLimit], ['sample', args.sample], ...(args.scepDeviceLimit !== undefined ? [['scep-device-limit', args.scepDeviceLimit] as const] : [])] as const) {
        if (!Number.isInteger(v) || v < (name === 'sample' ? 0 : 1)) throw new UsageError(`--${name} takes a whole number, got "${v}"`);
      }
      if (!args.publicUrl && (!at.host || at.host === '0.0.0.0' || at.host === '::')) {
        throw new UsageError('Listening on all addresses needs --public-url: the address devices reach (https://profiles.example.com)');
      }
      if (args.publicUrl) publicUrlOf(args, at.host, at.port);
      // The TLS files are read and paired now, before the store is opened and profiles are tried.
      const tlsFiles = args.tlsCert && args.tlsKey ? await readTlsFiles(ctx.io, args.tlsCert, args.tlsKey) : undefined;
      const template = templateArg(ctx.io, args.template);
      const data = await templateValues(ctx, template, args.data, args.set);
      // A port in use is found before the store is written to (the SCEP RA, its URL) or profiles are tried.
      await probeListen(at.host, at.port);
      const store = await openStoreFromArgs(args, ctx.io, true);
      // The SCEP RA is issued (or read) now: a problem shows at start, not at a device's first request.
      if (args.scep) await store.scepRa();
      const hsm = await signerFromArgs(args, ctx.io);
      const signer = hsm ?? (await store.profileSigner());
      try {
        // The public URL is needed before listening (the TLS certificate names it); with port 0 and no
        // --public-url it is fixed once the port is known.
        const provisional = args.publicUrl || at.port !== 0 ? publicUrlOf(args, at.host, at.port) : undefined;
        const scepUrl = (base: URL) => `${base.href.replace(/\/+$/, '')}/scep`;
        const recordScepUrl = async (url: string) => {
          if (store.scepUrl === url) return;
          await store.setScepUrl(url);
          note(ctx.io, `SCEP profiles now point at ${url} (recorded in the store)`);
        };
        if (args.scep && provisional) await recordScepUrl(scepUrl(provisional));
        // Tried profiles mint no SCEP challenge; before the port is known they name a stand-in URL.
        const sampleData = args.scep && !provisional && !store.scepUrl ? { ...data, scep: { ...((data.scep as object) ?? {}), url: 'https://localhost/scep' } } : data;
        // Fail at start, not per request: make the profiles of a few users now, as an install would.
        const now = new Date();
        // A template or data problem stops the server; a user who cannot have a profile (no encryption
        // certificate yet, say) is reported and the next one tried, so one user does not keep everyone waiting.
        const users = [...new Set((await store.listCertificates()).filter((r) => statusOf(r, now) === 'valid').map((r) => r.user.toLowerCase()))].sort();
        let made = 0;
        const cannot: { user: string; reason: string }[] = [];
        for (const user of users) {
          if (made >= args.sample) break;
          try {
            await generateProfile({ store, template, user, data: sampleData, signer, scepChallenge: false });
            made++;
          } catch (err) {
            if (!isProfilesmithError(err) || !USER_ERRORS.has(err.code)) throw err;
            cannot.push({ user, reason: err.message });
          }
        }
        // One line, however many users are short of something (hundreds in a real store).
        if (args.sample) {
          const line = cannotLine(cannot, made, args.template);
          if (line) warn(ctx.io, line);
        }
        const certs = signerCertificates(signer);
        const trust = signerTrust(certs.certificate, certs.chain);
        const log = (l: string) => ctx.io.stderr.write(l + '\n');
        const profiles = createProfileHandler({
          store,
          signer,
          links: store.links,
          template,
          data: declaredOnly(data, unknownDataKeys(template, data)),
          rateLimit: args.rateLimit,
          guessLimit: args.guessLimit,
          trustStep: trust.kind !== 'public',
          ...(args.trustProxy?.length ? { trustProxy: args.trustProxy } : {}),
          ...(args.tlsTrustStep ? { tlsTrustReason: args.tlsTrustStep } : {}),
          log,
          advise: adviceFor,
        });
        // The PKI routes (CRLs, CA certificates, OCSP) ride along, as `pki serve` answers them.
        // The PKI routes take the same per-client limit and proxies, each kind of route counted apart.
        const pki = createPkiHandler({ store, log, rateLimit: args.rateLimit, ...(args.trustProxy?.length ? { trustProxy: args.trustProxy } : {}) });
        const scep = args.scep
          ? createScepHandler({ store, log, ...(args.trustProxy?.length ? { trustProxy: args.trustProxy } : {}), ...(args.scepDeviceLimit !== undefined ? { maxDeviceCertificates: args.scepDeviceLimit } : {}) })
          : undefined;
        const handler = (req: IncomingMessage, res: ServerResponse) => {
          try {
            // SCEP and the PKI routes answer their own paths; the profile handler answers the rest (404 outside /p/).
            if (scep?.(req, res) || pki(req, res)) return;
            profiles(req, res);
          } catch {
            // Each handler answers its own faults; this is the last guard: one request, never the server.
            answerInternalError(res);
          }
        };
        const limits = { requestTimeout: 30_000, headersTimeout: 10_000, maxHeaderSize: 8192, keepAliveTimeout: 5_000 };
        let server: Server;
        if (args.http) {
          warn(ctx.io, 'serving plain HTTP: put a TLS reverse proxy in front; profiles carry identities');
          server = createHttpServer(limits, handler);
        } else if (args.tlsFromStore) {
          const name = (provisional ?? publicUrlOf(args, at.host, 1)).hostname.replace(/^\[|\]$/g, '');
          const pair = await generateKeyPair('rsa-2048');
          const issuer = await store.issuerIdentity();
          const window = validity(new Date(), 397, new Date(new X509Certificate(issuer.certificate).validTo));
          const publication = publicationFor(store.pkiUrl, (await store.caCertificates()).filter((c) => c.ca !== 'root').at(-1)?.ca ?? 1);
          const cert = await createCertificate({
            subject: [['CN', name]],
            issuerCertificate: issuer.certificate,
            notBefore: window.notBefore,
            notAfter: window.notAfter,
            ...(publication ? { publication } : {}),
            publicKey: pair.publicKey,
            signingKey: issuer.privateKey,
            keyUsage: ['digitalSignature', 'keyEncipherment'],
            extendedKeyUsage: [EKU.serverAuth],
            ...(isIP(name) ? { ipAddresses: [name] } : { dnsNames: [name] }),
          });
          server = createHttpsServer({ ...limits, key: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: toPem(cert) + toPem(issuer.certificate) }, handler);
        } else {
          server = createHttpsServer({ ...limits, key: tlsFiles!.key, cert: tlsFiles!.cert }, handler);
        }
        const bound = await listen(server, at.host, at.port);
        let base: string;
        try {
          base = (provisional ?? publicUrlOf(args, at.host, bound.port)).href.replace(/\/+$/, '');
        } catch (err) {
          server.close();
          throw err;
        }
        if (args.scep) await recordScepUrl(scepUrl(new URL(base)));
        ctx.io.stdout.write(base + '\n');
        note(ctx.io, `Serving ${template.name} profiles on ${base} (listening on ${bound.address}:${bound.port}); links: profilesmith link create --base-url ${base} --template ${args.template} --user EMAIL`);
        note(ctx.io, trust.kind === 'public' ? 'The signer chains to a public root: profiles show "Verified" without a trust step' : 'The page installs the trust profile first, so the account profile shows "Verified"');
        await serveUntilTerminated(ctx.io, server);
      } finally {
        await hsm?.close();
      }
    },
  };
}
