import type { Argv, CommandModule } from 'yargs';
import { PURPOSES, type CertificatePurpose } from '../../certs/issue.js';
import { statusOf } from '../../store/store.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson, printTable } from '../output.js';

interface IssueArgs extends StoreArgs {
  user: string;
  name: string;
  purpose: CertificatePurpose;
  days: number;
  json?: boolean;
}

interface ListArgs extends StoreArgs {
  user?: string;
  json?: boolean;
}

function issue(ctx: Context): CommandModule<object, IssueArgs> {
  return {
    command: 'issue',
    describe: 'issue an S/MIME certificate for a user from the store CA',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('user', { type: 'string', demandOption: true, describe: 'email address (the only rfc822Name SAN)' })
        .option('name', { type: 'string', demandOption: true, describe: 'subject common name' })
        .option('purpose', { choices: PURPOSES, demandOption: true, describe: 'certificate template' })
        .option('days', { type: 'number', default: 365, describe: 'validity in days' })
        .option('json', { type: 'boolean', describe: 'print the new record as JSON' })
        .example(
          '$0 cert issue --store ./store --user alice@example.com --name "Alice Example" --purpose smime-signing',
          'issue a signing certificate',
        ) as unknown as Argv<IssueArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      if (ctx.io.stderr.isTTY) note(ctx.io, 'Generating an RSA key...');
      const record = await store.issueCertificate({ user: args.user, name: args.name, purpose: args.purpose, days: args.days });
      if (args.json) printJson(ctx.io, { ...record, status: statusOf(record, new Date()) });
      else note(ctx.io, `Issued ${record.purpose} certificate ${record.serial} for ${record.user}, valid until ${record.notAfter.slice(0, 10)}`);
    },
  };
}

function list(ctx: Context): CommandModule<object, ListArgs> {
  return {
    command: 'list',
    describe: 'list the user certificates in the store',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('user', { type: 'string', describe: 'only this address' })
        .option('json', { type: 'boolean', describe: 'print a JSON array' })
        .example('$0 cert list --store ./store --user alice@example.com', "list Alice's certificates") as unknown as Argv<ListArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const now = new Date();
      const rows = (await store.listCertificates(args.user ? { user: args.user } : {})).map((r) => ({
        serial: r.serial,
        user: r.user,
        purpose: r.purpose,
        status: statusOf(r, now),
        source: r.source,
        subject: r.subject,
        issuer: r.issuer,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        fingerprint: r.fingerprint,
        ...(r.revoked ? { revoked: r.revoked } : {}),
      }));
      if (args.json) return printJson(ctx.io, rows);
      if (!rows.length) return note(ctx.io, 'No certificates');
      printTable(
        ctx.io,
        ['SERIAL', 'USER', 'PURPOSE', 'STATUS', 'NOT AFTER', 'SOURCE'],
        rows.map((r) => [r.serial, r.user, r.purpose, r.status, r.notAfter.slice(0, 10), r.source]),
      );
    },
  };
}

export function certCommand(ctx: Context): CommandModule<object, object> {
  return {
    command: 'cert <command>',
    describe: 'user certificates in the store',
    builder: (y: Argv) => y.command(issue(ctx)).command(list(ctx)).demandCommand(1),
    handler: () => {},
  };
}
