import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { listTemplates } from '../../profile/template.js';
import { templateArg, type Context } from '../options.js';
import { printJson, printTable } from '../output.js';

interface ShowArgs {
  name: string;
  json?: boolean;
}

export function templatesCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.templates,
    builder: (y: Argv) =>
      y
        .command<{ json?: boolean }>({
          command: 'list',
          describe: 'list the built-in templates',
          builder: (yy: Argv) => yy.option('json', { type: 'boolean', describe: 'print JSON' }).example('$0 templates list', 'what can be generated') as unknown as Argv<{ json?: boolean }>,
          handler: (args) => {
            const list = listTemplates();
            if (args.json) return printJson(ctx.io, list);
            printTable(ctx.io, ['NAME', 'DESCRIPTION'], list.map((t) => [t.name, t.description]));
          },
        })
        .command<ShowArgs>({
          command: 'show <name>',
          describe: 'variables, defaults and example data of a template',
          builder: (yy: Argv) =>
            yy
              .positional('name', { type: 'string', describe: 'template name or path' })
              .option('json', { type: 'boolean', describe: 'print the metadata as JSON' })
              .example('$0 templates show exchange-smime', 'its variables') as unknown as Argv<ShowArgs>,
          handler: (args) => {
            const t = templateArg(ctx.io, args.name);
            if (args.json) return printJson(ctx.io, { name: t.name, ...t.meta });
            ctx.io.stdout.write(`${t.name}: ${t.meta.description}\n\nVariables:\n`);
            printTable(
              ctx.io,
              ['NAME', 'TYPE', 'DEFAULT', 'DESCRIPTION'],
              Object.entries(t.meta.variables).map(([n, v]) => [n, v.type + (v.required ? ' (required)' : ''), v.default === undefined ? '' : String(v.default), v.description ?? '']),
            );
            if (t.meta.example) ctx.io.stdout.write(`\nExample data (--data FILE):\n${JSON.stringify(t.meta.example, null, 2)}\n`);
          },
        })
        .demandCommand(1),
    handler: () => {},
  };
}
