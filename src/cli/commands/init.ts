import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { initStore } from '../../store/open.js';
import type { KeyAlgorithm } from '../../certs/keys.js';
import { getPassphrase, storeDir, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson } from '../output.js';

interface Args extends StoreArgs {
  org: string;
  pkiUrl?: string;
  permitEmailDomain?: string[];
  keyType: KeyAlgorithm;
  json?: boolean;
}

export function initCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.init,
    builder: (y: Argv) =>
      storeOptions(y)
        .option('org', { type: 'string', demandOption: true, describe: 'organization name for the CA certificates' })
        .option('key-type', {
          choices: ['rsa-2048', 'rsa-3072', 'rsa-4096', 'ec-p256', 'ec-p384'] as const,
          default: 'rsa-2048' as const,
          describe: 'key algorithm of the CA and the profile signer',
        })
        .option('pki-url', { type: 'string', describe: 'base URL where `pki serve` publishes CRLs, CA certificates and OCSP (http:// by convention); certificates carry CDP and AIA under it' })
        .option('permit-email-domain', { type: 'string', array: true, describe: 'only issue for addresses at this domain (.domain: its subdomains); repeatable; a critical nameConstraints on the issuing CA' })
        .option('json', { type: 'boolean', describe: 'print the result as JSON' })
        .example('$0 init --store ./store --org "Example Corp"', 'create a store')
        .example('$0 init --store ./store --org "Example Corp" --pki-url http://pki.example.com --permit-email-domain example.com', 'a CA that publishes revocation and issues for one domain') as unknown as Argv<Args>,
    handler: async (args) => {
      const dir = storeDir(args, ctx.io);
      const passphrase = await getPassphrase(args, ctx.io, { confirm: true });
      if (ctx.io.stderr.isTTY) note(ctx.io, 'Generating keys...');
      const store = await initStore(dir, {
        organization: args.org,
        passphrase,
        keyAlgorithm: args.keyType,
        ...(args.pkiUrl !== undefined ? { pkiUrl: args.pkiUrl } : {}),
        ...(args.permitEmailDomain?.length ? { permittedEmailDomains: args.permitEmailDomain } : {}),
      });
      if (args.json) printJson(ctx.io, { store: store.dir, organization: store.organization, ...(store.pkiUrl ? { pkiUrl: store.pkiUrl } : {}), permittedEmailDomains: store.permittedEmailDomains });
      else {
        note(ctx.io, `Created the store at ${store.dir} for "${store.organization}" (root CA, issuing CA, profile signer)`);
        if (store.pkiUrl) note(ctx.io, `Certificates point relying parties at ${store.pkiUrl}: serve it with \`profilesmith pki serve\``);
      }
    },
  };
}
