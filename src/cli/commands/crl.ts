import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { toPem } from '../../certs/pem.js';
import { parseCaSlug, type CaRef } from '../../certs/publication.js';
import { UsageError } from '../errors.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs, durationFlag } from '../options.js';
import { note, writeArtifact, checkOutput } from '../output.js';

interface Args extends StoreArgs {
  ca?: string;
  out: string;
  force?: boolean;
  pem?: boolean;
  nextUpdate: string;
}

export function crlCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.crl,
    builder: (y: Argv) =>
      storeOptions(y)
        .option('ca', { type: 'string', describe: 'whose CRL: issuing (the current issuing CA), root, or issuing-N for an older one' })
        .option('out', { alias: 'o', type: 'string', default: '-', describe: 'output file (- for stdout)' })
        .option('pem', { type: 'boolean', describe: 'PEM instead of DER' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace the output file if it exists (without it, an existing file is refused)' })
        .option('next-update', { type: 'string', default: '7d', describe: 'when the next CRL is due (7d, 24h)' })
        .example('$0 crl --store ./store -o crl.der', 'publish revocations') as unknown as Argv<Args>,
    handler: async (args) => {
      const nextUpdateMs = durationFlag(args.nextUpdate, 'next-update');
      // Before the CRL is made: making one takes a CRL number.
      checkOutput(ctx.io, args.out, !!args.force);
      let ca: CaRef | undefined;
      if (args.ca !== undefined && args.ca !== 'issuing') {
        ca = parseCaSlug(args.ca);
        if (ca === undefined) throw new UsageError(`--ca takes issuing, root or issuing-N, got "${args.ca}"`);
      }
      const store = await openStoreFromArgs(args, ctx.io, true);
      const der = await store.createCrl({ nextUpdateMs, ...(ca !== undefined ? { ca } : {}) });
      const bytes = args.pem ? Buffer.from(toPem(der, 'X509 CRL')) : der;
      const where = await writeArtifact(ctx.io, args.out, bytes, !args.pem, 0o644, !!args.force);
      if (where !== 'stdout') note(ctx.io, `Wrote ${where}`);
    },
  };
}
