import type { Argv, CommandModule } from 'yargs';
import { toPem } from '../../certs/pem.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';

interface Args extends StoreArgs {
  chain?: boolean;
}

export function caCommand(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'ca <command>',
    describe: 'the store CA',
    builder: (y: Argv) =>
      y
        .command<Args>({
          command: 'export',
          describe: 'print the root CA certificate as PEM',
          builder: (yy: Argv) =>
            storeOptions(yy)
              .option('chain', { type: 'boolean', describe: 'also print the intermediates' })
              .example('$0 ca export --store ./store > root.pem', 'save the root CA') as unknown as Argv<Args>,
          handler: async (args) => {
            const store = await openStoreFromArgs(args, ctx.io, false);
            const chain = await store.trustChain();
            const certs = [...chain.roots, ...(args.chain ? chain.intermediates : [])];
            ctx.io.stdout.write(certs.map((c) => toPem(c)).join(''));
          },
        })
        .demandCommand(1) as unknown as Argv<Args>,
    handler: () => {},
  };
}
