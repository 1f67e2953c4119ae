import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { linkState } from '../../server/links.js';
import { openStoreFromArgs, templateArg, templateValues, storeOptions, type Context, type StoreArgs, durationFlag } from '../options.js';
import { InputInvalid } from '../../errors.js';
import { UsageError } from '../errors.js';
import { generateProfile } from '../../profile/generate.js';
import { statusOf } from '../../store/store.js';

import { note, printJson, printTable } from '../output.js';

interface CreateArgs extends StoreArgs {
  user: string;
  template?: string;
  set?: string[];
  data?: string;
  ttl: string;
  uses: number;
  baseUrl?: string;
  json?: boolean;
}

export function linkCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.link,
    builder: (y: Argv) =>
      y
        .command<CreateArgs>({
          command: 'create',
          describe: 'make a link for a user; prints it on stdout',
          builder: (yy: Argv) =>
            storeOptions(yy)
              .option('user', { type: 'string', demandOption: true, describe: 'the user the link is for' })
              .option('ttl', { type: 'string', default: '24h', describe: 'how long it lives (24h, 7d)' })
              .option('uses', { type: 'number', default: 1, describe: 'how many downloads it allows' })
              .option('base-url', { type: 'string', describe: 'the address devices reach profilesmith serve at (serve prints it when it starts)' })
              .option('template', { type: 'string', describe: "serve's template (needed): the profile is made now (without signing), and the link refused if it cannot be" })
              .option('set', { type: 'string', array: true, describe: 'template variable key=value, as serve has them' })
              .option('data', { type: 'string', describe: 'JSON file of template variables, as serve has them' })
              .option('json', { type: 'boolean', describe: 'print JSON' })
              .example('$0 link create --store ./store --user alice@example.com --base-url https://profiles.example.com --template exchange-smime --set exchange.host=mail.example.com', 'a link for Alice, after checking that her profile can be made') as unknown as Argv<CreateArgs>,
          handler: async (args) => {
            // A link to a guessed address, or to a profile nobody checked can be made, fails only when the user clicks it.
            const missing = [
              ...(args.baseUrl ? [] : ['--base-url URL (the address devices reach profilesmith serve at; serve prints it when it starts)']),
              ...(args.template ? [] : ["--template NAME (serve's template, with serve's --set/--data, so that the user's profile is made and checked before the link goes out)"]),
            ];
            if (missing.length || !args.baseUrl || !args.template) throw new UsageError(`link create needs ${missing.join(' and ')}`);
            const ttlMs = durationFlag(args.ttl, 'ttl');
            const store = await openStoreFromArgs(args, ctx.io, true);
            const now = new Date();
            const held = await store.listCertificates({ user: args.user });
            if (!held.some((r) => statusOf(r, now) === 'valid')) {
              throw new InputInvalid('user', held.length ? `"${args.user}" holds no valid certificate now (${held.map((r) => `${r.purpose} ${statusOf(r, now)}`).join(', ')}), so no profile can be made` : `"${args.user}" holds no certificate in this store, so no profile can be made; issue one with \`profilesmith cert issue\``);
            }
            const template = templateArg(ctx.io, args.template);
            const data = await templateValues(ctx, template, args.data, args.set);
            // The profile the link will serve, made now without signing: a missing variable or certificate shows here.
            await generateProfile({ store, template, user: args.user, data, sign: false });
            const { token, link } = await store.links.create(args.user, { ttlMs, uses: args.uses });
            const url = `${args.baseUrl.replace(/\/+$/, '')}/p/${token}`;
            if (args.json) printJson(ctx.io, { url, id: link.id, user: link.user, expires: link.expires, uses: link.usesLeft });
            else ctx.io.stdout.write(url + '\n');
          },
        })
        .command<StoreArgs & { json?: boolean }>({
          command: 'list',
          describe: 'list links (never their tokens)',
          builder: (yy: Argv) => storeOptions(yy).option('json', { type: 'boolean', describe: 'print JSON' }).example('$0 link list --store ./store', 'all links') as unknown as Argv<StoreArgs & { json?: boolean }>,
          handler: async (args) => {
            const store = await openStoreFromArgs(args, ctx.io, false);
            const now = new Date();
            const rows = (await store.links.list()).map((l) => ({ id: l.id, user: l.user, state: linkState(l, now), expires: l.expires, usesLeft: l.usesLeft }));
            if (args.json) return printJson(ctx.io, rows);
            printTable(ctx.io, ['ID', 'USER', 'STATE', 'EXPIRES', 'USES LEFT'], rows.map((r) => [r.id, r.user, r.state, r.expires.slice(0, 16), String(r.usesLeft)]));
          },
        })
        .command<StoreArgs & { id: string }>({
          command: 'revoke <id>',
          describe: 'revoke a link by its id',
          builder: (yy: Argv) => storeOptions(yy).positional('id', { type: 'string', describe: 'the id from link list' }).example('$0 link revoke 3fa0643c1347 --store ./store', 'stop a link') as unknown as Argv<StoreArgs & { id: string }>,
          handler: async (args) => {
            const store = await openStoreFromArgs(args, ctx.io, false);
            const l = await store.links.revoke(args.id);
            note(ctx.io, `Revoked link ${l.id} for ${l.user}`);
          },
        })
        .demandCommand(1),
    handler: () => {},
  };
}
