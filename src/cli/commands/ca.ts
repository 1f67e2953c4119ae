import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { toPem } from '../../certs/pem.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson, warn } from '../output.js';
import { certificatesFrom } from '../../certs/pem.js';
import { readIdentity } from '../../certs/import.js';
import { signerTrust } from '../../cms/trust.js';
import { readInputFile, readSecretFile } from '../files.js';
import type { AnyStore } from '../../store/open.js';

interface ImportSignerArgs extends StoreArgs {
  cert: string;
  key?: string;
  chain?: string;
  passwordFile?: string;
  json?: boolean;
}

interface Args extends StoreArgs {
  chain?: boolean;
  all?: boolean;
  url?: string;
  clear?: boolean;
  json?: boolean;
}

function exportCmd(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'export',
    describe: 'print the root CA certificate as PEM',
    builder: (yy: Argv) =>
      storeOptions(yy)
        .option('chain', { type: 'boolean', describe: 'also print the issuing CAs that profiles carry' })
        .option('all', { type: 'boolean', describe: 'also print every issuing CA, past ones included' })
        .example('$0 ca export --store ./store > root.pem', 'save the root CA') as unknown as Argv<Args>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const chain = await store.trustChain();
      const every = args.all ? (await store.caCertificates()).filter((c) => c.ca !== 'root').map((c) => c.certificate) : [];
      const certs = [...chain.roots, ...(args.all ? every : args.chain ? chain.intermediates : [])];
      ctx.io.stdout.write(certs.map((c) => toPem(c)).join(''));
    },
  };
}

/** A `ca` command that shows, sets or clears one URL setting of the store. */
function urlSetting(
  ctx: Context,
  spec: {
    command: string;
    describe: string;
    url: string;
    clear: string;
    example: [string, string];
    field: 'pkiUrl' | 'scepUrl';
    set: (store: AnyStore, url: string | undefined) => Promise<string | undefined>;
    changed: (url: string | undefined) => string[];
  },
): CommandModule<object, Args> {
  return {
    command: `${spec.command} [url]`,
    describe: spec.describe,
    builder: (yy: Argv) =>
      storeOptions(yy)
        .positional('url', { type: 'string', describe: spec.url })
        .option('clear', { type: 'boolean', describe: spec.clear })
        .option('json', { type: 'boolean', describe: 'print the setting as JSON' })
        .example(...spec.example) as unknown as Argv<Args>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      if (args.url === undefined && !args.clear) {
        if (args.json) return printJson(ctx.io, { [spec.field]: store[spec.field] ?? null });
        ctx.io.stdout.write(`${store[spec.field] ?? '(none)'}\n`);
        return;
      }
      const url = await spec.set(store, args.clear ? undefined : args.url);
      if (args.json) return printJson(ctx.io, { [spec.field]: url ?? null });
      for (const line of spec.changed(url)) note(ctx.io, line);
    },
  };
}

const pkiUrl = (ctx: Context) =>
  urlSetting(ctx, {
    command: 'pki-url',
    describe: 'show or change the PKI base URL written into certificates issued from now on',
    url: 'http:// or https:// base URL (http is the convention: RFC 5280 4.2.1.13, RFC 5019)',
    clear: 'issue without CRL distribution points and AIA from now on',
    example: ['$0 ca pki-url http://pki.example.com --store ./store', 'publish revocation there'],
    field: 'pkiUrl',
    set: (store, url) => store.setPkiUrl(url),
    changed: (url) => [url ? `PKI URL set to ${url}` : 'PKI URL cleared', 'It applies to certificates issued from now on; those issued before keep the URLs they carry (the issuing CA too, until `profilesmith ca rotate-issuing`)'],
  });

const scepUrl = (ctx: Context) =>
  urlSetting(ctx, {
    command: 'scep-url',
    describe: "show or change the URL of the store's SCEP server written into SCEP profiles (serve --scep sets it)",
    url: 'http:// or https:// URL devices reach /scep at',
    clear: 'write no SCEP URL of the store into profiles (give scep.url yourself)',
    example: ['$0 ca scep-url https://profiles.example.com/scep --store ./store', 'where devices enroll'],
    field: 'scepUrl',
    set: (store, url) => store.setScepUrl(url),
    changed: (url) => [url ? `SCEP profiles point at ${url}` : 'SCEP URL cleared'],
  });

function rotateSigner(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'rotate-signer',
    describe: 'issue a new profile-signing identity; the old one is revoked (superseded)',
    builder: (yy: Argv) => storeOptions(yy).option('json', { type: 'boolean', describe: 'print the serials as JSON' }) as unknown as Argv<Args>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      const r = await store.rotateSigner();
      if (args.json) return printJson(ctx.io, r);
      note(ctx.io, `New profile signer ${r.serial}; the previous one (${r.previous}) is revoked (superseded). Profiles signed from now on verify with the new one`);
    },
  };
}

function rotateIssuing(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'rotate-issuing',
    describe: 'a new issuing CA under the same root; existing certificates stay valid under the old one',
    builder: (yy: Argv) => storeOptions(yy).option('json', { type: 'boolean', describe: 'print the result as JSON' }) as unknown as Argv<Args>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      const r = await store.rotateIssuing();
      if (args.json) return printJson(ctx.io, r);
      note(ctx.io, `New issuing CA ${r.generation} (serial ${r.serial}) issues from now on, with a new profile signer ${r.signer}`);
      note(ctx.io, 'Certificates of the old issuing CA stay valid, and profiles carry it while it has live ones; once it has none, revoke it with `profilesmith cert revoke <its serial>` (it goes on the root CRL)');
    },
  };
}

function importSigner(ctx: Context): CommandModule<object, ImportSignerArgs> {
  return {
    command: 'import-signer',
    describe: 'sign profiles with an identity from a CA devices already trust (profiles then show Verified without a trust profile)',
    builder: (yy: Argv) =>
      storeOptions(yy)
        .option('cert', { type: 'string', demandOption: true, describe: 'the certificate: PEM or DER, or a PKCS#12 with the key' })
        .option('key', { type: 'string', describe: 'the private key (PEM or DER PKCS#8), unless it is in --cert' })
        .option('chain', { type: 'string', describe: 'the issuers (PEM), unless they are in --cert' })
        .option('password-file', { type: 'string', describe: 'the password of the PKCS#12 or of an encrypted key' })
        .option('json', { type: 'boolean', describe: 'print the result as JSON' })
        .example('$0 ca import-signer --store ./store --cert signer.p12 --password-file pw.txt', 'an organization certificate from a public CA') as unknown as Argv<ImportSignerArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      const password = args.passwordFile ? await readSecretFile(ctx.io, args.passwordFile, 'password') : undefined;
      const bytes = await readInputFile(ctx.io, args.cert, 'cert', 1024 * 1024);
      const keyBytes = args.key ? await readInputFile(ctx.io, args.key, 'key', 1024 * 1024) : undefined;
      const bundle = readIdentity(bytes, { ...(password !== undefined ? { password } : {}), ...(keyBytes ? { keyBytes } : {}) });
      const chain = args.chain ? certificatesFrom(await readInputFile(ctx.io, args.chain, 'chain', 1024 * 1024)) : [];
      const r = await store.importSigner(bundle, { chain });
      const trust = signerTrust(bundle.certificate, [...bundle.chain, ...chain]);
      if (args.json) return printJson(ctx.io, { ...r, trust });
      for (const w of r.warnings) warn(ctx.io, w);
      note(ctx.io, `Profiles are signed by ${r.serial} from now on; the previous signer ${r.previous} is out of use`);
      note(ctx.io, trust.kind === 'public' ? `It chains to the public root "${trust.root}": iPhones show its profiles as Verified without a trust profile` : `It chains to "${trust.root}", which is not a public root: iPhones show Verified only once that root is installed`);
    },
  };
}

export function caCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.ca,
    builder: (y: Argv) =>
      y
        .command(exportCmd(ctx))
        .command(pkiUrl(ctx))
        .command(scepUrl(ctx))
        .command(rotateSigner(ctx))
        .command(rotateIssuing(ctx))
        .command(importSigner(ctx) as unknown as CommandModule<object, Args>)
        .demandCommand(1) as unknown as Argv<Args>,
    handler: () => {},
  };
}
