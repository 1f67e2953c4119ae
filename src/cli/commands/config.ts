import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { getPath } from '../../profile/template.js';
import { configValues } from '../config.js';
import { storeDir, storeOptions, templateArg, type Context, type StoreArgs } from '../options.js';
import { printJson, printTable } from '../output.js';

interface ShowArgs extends StoreArgs {
  template?: string;
  json?: boolean;
}

const STORE_SOURCE: Record<NonNullable<Context['storeSource']>, string> = {
  '--store': '--store',
  PROFILESMITH_STORE: 'PROFILESMITH_STORE',
  config: 'config file',
  default: 'default (the data directory)',
};

function show(ctx: Context): CommandModule<object, ShowArgs> {
  return {
    command: 'show',
    describe: 'the settings in force and where each comes from',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('template', { type: 'string', describe: "also every variable of this template, with the config's value or the default" })
        .option('json', { type: 'boolean', describe: 'print JSON' })
        .example('$0 config show', 'which config file, which store')
        .example('$0 config show --template exchange-smime', "the template's variables as the config sets them")
        .epilogue(
          'The config file is --config FILE, else $PROFILESMITH_CONFIG, else ./profilesmith.json (--no-config: none). It holds "store" ' +
            '(relative to the file), "set" (values for every template that has the key) and "templates" ({"NAME": {values}}, for one template; ' +
            'wins over "set"); never secrets. Flags win over it: --store and PROFILESMITH_STORE over "store", --data and --set over its values.',
        ) as unknown as Argv<ShowArgs>,
    handler: (args) => {
      const cfg = ctx.config;
      const rows: { key: string; value: string; source: string }[] = [];
      rows.push({ key: 'config', value: cfg?.path ?? '(none)', source: cfg ? cfg.via : '--no-config, or no ./profilesmith.json' });
      rows.push({ key: 'store', value: storeDir(args, ctx.io), source: STORE_SOURCE[ctx.storeSource ?? 'default'] });
      if (args.template) {
        const template = templateArg(ctx.io, args.template);
        const { data, sources } = configValues(cfg, template);
        for (const [key, decl] of Object.entries(template.meta.variables)) {
          const fromConfig = Object.hasOwn(sources, key);
          let value: string;
          if (fromConfig) value = JSON.stringify(getPath(data, key));
          else if (decl.secret) value = '(secret: give it in a --data file)';
          else if (decl.default !== undefined) value = JSON.stringify(decl.default);
          else value = decl.required ? '(required, not set)' : '(not set)';
          rows.push({ key, value, source: fromConfig ? sources[key]! : decl.default !== undefined ? 'template default' : '' });
        }
      } else if (cfg) {
        for (const [key, v] of Object.entries(cfg.set)) rows.push({ key: `set ${key}`, value: JSON.stringify(v), source: 'config set' });
        for (const [name, values] of Object.entries(cfg.templates)) {
          for (const [key, v] of Object.entries(values)) rows.push({ key: `${name} ${key}`, value: JSON.stringify(v), source: `config templates.${name}` });
        }
      }
      if (args.json) return printJson(ctx.io, rows);
      printTable(ctx.io, ['KEY', 'VALUE', 'FROM'], rows.map((r) => [r.key, r.value, r.source]));
    },
  };
}

export function configCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.config,
    builder: (y: Argv) => y.command(show(ctx)).demandCommand(1, 'Name a command: show'),
    handler: () => {},
  };
}
