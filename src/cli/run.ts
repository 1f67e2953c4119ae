import type { Argv, CommandModule } from 'yargs';
import yargs from '../vendor/yargs.js';
import { LOAD, TOP, type CommandName } from './commands/index.js';
import { loadConfig } from './config.js';
import { exitCodeFor, formatError, UsageError } from './errors.js';
import { unwrapExamples } from './help.js';
import type { Io } from './io.js';
import type { Context } from './options.js';
import { packageVersion } from './version.js';

const EPILOGUE = `Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 a check (verify, lint, store check) ran and said no.
Config: ./profilesmith.json, or --config FILE, or PROFILESMITH_CONFIG: the store and default template values (see \`config show\`).
Environment: PROFILESMITH_STORE (store directory), PROFILESMITH_PASSPHRASE, PROFILESMITH_PASSPHRASE_FILE,
PROFILESMITH_NEW_PASSPHRASE (store passphrase), PROFILESMITH_DEBUG=1 (same as --debug), NO_COLOR.`;

/**
 * The parser for a command line. Every command is registered, but only those named among the
 * line's `words` with their module (options, subcommands, handler, and what they import): the
 * others by their usage and description alone, which is all that --help and yargs' command
 * matching read of a command that is not run. A command runs only when its name is a word of
 * the line, so a command that runs is always a loaded one. (A name that is only an option's
 * value, `--template verify`, loads a module for nothing, which costs time, never behaviour.)
 */
export async function buildParser(ctx: Context, argv: string[], words: string[] = argv): Promise<Argv> {
  const named = new Set(words.filter((w) => !w.startsWith('-')));
  const modules = await Promise.all(
    (Object.keys(TOP) as CommandName[]).map(async (name): Promise<CommandModule<object, any>> => // eslint-disable-line @typescript-eslint/no-explicit-any
      named.has(name) ? (await LOAD[name]())(ctx) : { ...TOP[name], builder: {}, handler: () => {} },
    ),
  );
  let parser: Argv = yargs(argv).scriptName('profilesmith').version(packageVersion()).usage('$0 <command> [options]');
  for (const m of modules) parser = parser.command(m);
  return parser
    .option('debug', { type: 'boolean', describe: 'print stack traces and causes' })
    .option('config', { type: 'string', describe: 'config file (default: $PROFILESMITH_CONFIG, then ./profilesmith.json); --no-config reads none' })
    .example('$0 init --store ./store --org "Example Corp"', 'create a store and its CA')
    .example('$0 cert issue --store ./store --user alice@example.com --name "Alice Example" --purpose smime-signing', 'issue a certificate')
    .example('$0 generate exchange-smime --store ./store --user alice@example.com --set exchange.host=mail.example.com -o alice.mobileconfig', 'make a profile')
    .example('$0 verify alice.mobileconfig --store ./store', 'check a profile')
    .epilogue(EPILOGUE)
    .middleware((args) => {
      // yargs turns `--days abc` into NaN; that is a usage error, not a failure later on.
      for (const [key, value] of Object.entries(args)) {
        if (typeof value === 'number' && Number.isNaN(value) && !key.includes('-') && key !== '$0') {
          throw new UsageError(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} takes a number`);
        }
      }
    }, true)
    .middleware((args) => {
      // The config file: read once, before the handler. Its store is the lowest layer but the
      // default: --store, then PROFILESMITH_STORE, then the config, then the data directory.
      const config = loadConfig(ctx.io, args.config as string | false | undefined);
      if (config) ctx.config = config;
      if (args.store !== undefined) ctx.storeSource = '--store';
      else if (ctx.io.env.PROFILESMITH_STORE) ctx.storeSource = 'PROFILESMITH_STORE';
      else if (ctx.config?.store) {
        ctx.storeSource = 'config';
        args.store = ctx.config.store;
      } else ctx.storeSource = 'default';
    })
    .strict()
    .demandCommand(1, 'Name a command; see --help')
    .recommendCommands()
    .exitProcess(false)
    .wrap(Math.min(110, ctx.io.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(oneLine(msg));
    });
}

/**
 * yargs' usage messages, as one line: "Invalid values: Argument: purpose, Given: …", and
 * "Unknown argument: dry-run" once, not with its camelCase twin.
 */
export function oneLine(msg: string): string {
  const flat = msg.replace(/\s*\n\s*/g, ' ').trim();
  const m = /^Unknown arguments?: (.*)$/.exec(flat);
  if (!m) return flat;
  const names = m[1]!.split(', ');
  const kebab = (n: string) => n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
  const kept = names.filter((n, i) => !(/[A-Z]/.test(n) && names.includes(kebab(n))) && names.indexOf(n) === i);
  return `Unknown argument${kept.length > 1 ? 's' : ''}: ${kept.map((n) => (n.length > 1 ? `--${n}` : `-${n}`)).join(', ')}`;
}

/**
 * `--passphrase-file -` (a file option followed by `-`, for stdin) as `--passphrase-file=-`:
 * yargs reads a lone `-` as a positional, not as the option's value.
 */
export function joinStdinValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--[a-z][a-z0-9-]*$/.test(a) && !a.startsWith('--no-') && argv[i + 1] === '-' && STDIN_OPTIONS.test(a)) {
      out.push(`${a}=-`);
      i++;
    } else out.push(a);
  }
  return out;
}
/** Options that take a file, where `-` means stdin (or stdout, for -o and --out). */
const STDIN_OPTIONS = /-file$|^--(out|data|users|cert|key|chain|passwords-out)$/;

/**
 * "Unknown argument: --outt" with the command's own flags (from the parser, as completion has
 * them) made into "(did you mean --out?)" and what to read.
 */
async function withFlagSuggestions(message: string, argv: string[], io: Io): Promise<string> {
  const m = /^Unknown arguments?: (.*)$/.exec(message);
  if (!m) return message;
  const given = m[1]!.split(', ');
  const path: string[] = [];
  for (const a of argv) {
    if (a.startsWith('-')) break;
    path.push(a);
  }
  let flags: string[] = [];
  try {
    const { yargsCandidates } = await import('./completion.js');
    flags = (await yargsCandidates(await buildParser({ io: { ...io, env: {} }, exitCode: 0 }, [], path), [...path, '--'])).filter((c) => c.startsWith('--')).map((c) => c.split(':')[0]!);
  } catch {
    // no suggestions then
  }
  const { suggest: closest } = await import('../util/suggest.js');
  const near = given.map((g) => [g, g.startsWith('--') ? closest(g, flags) : undefined] as const).filter((x): x is readonly [string, string] => x[1] !== undefined);
  const hint = near.length === 0 ? '' : near.length === 1 && given.length === 1 ? ` (did you mean ${near[0]![1]}?)` : ` (did you mean ${near.map(([g, s]) => `${s} for ${g}`).join(', ')}?)`;
  const help = `profilesmith ${path.length ? `${path.join(' ')} ` : ''}--help`;
  return `${message}${hint}; \`${help}\` lists the options`;
}

/** Commands that only group subcommands (`cert issue`, `user list`). */
const GROUPS = ['cert', 'ca', 'link', 'templates', 'user', 'pki', 'store', 'config'];

/**
 * A command or subcommand that does not exist, as one line naming it and what there is:
 * yargs would say "Unknown arguments: …" listing every flag of the line, or "Not enough
 * non-option arguments", neither of which names the mistake.
 */
async function unknownCommand(argv: string[], io: Io): Promise<string | undefined> {
  const words = argv.filter((a) => !a.startsWith('-'));
  if (!words.length || argv.includes('--help') || argv.includes('--version') || argv[0]?.startsWith('-')) return undefined;
  const { yargsCandidates } = await import('./completion.js');
  const names = async (path: string[]) => (await yargsCandidates(await buildParser({ io: { ...io, env: {} }, exitCode: 0 }, [], path), [...path, ''])).filter((c) => !c.startsWith('-'));
  const [first, second] = argv;
  if (first === undefined) return undefined;
  const top = await names([]);
  if (!top.includes(first)) return `Unknown command "${first}"${suggest(first, top)}. See profilesmith --help`;
  if (!GROUPS.includes(first) || second?.startsWith('-')) return undefined;
  const subs = await names([first]);
  if (second === undefined) return `"${first}" needs a command: ${subs.join(', ')}`;
  if (!subs.includes(second)) return `Unknown command "${first} ${second}"${suggest(second, subs, `${first} `)}. The ${first} commands are: ${subs.join(', ')}`;
  return undefined;
}

/** " (did you mean …?)" for a near miss (a prefix, or an edit distance of at most 2). */
function suggest(word: string, candidates: string[], prefix = ''): string {
  const distance = (a: string, b: string) => {
    const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
    for (let j = 1; j <= b.length; j++) d[0]![j] = j;
    for (let i = 1; i <= a.length; i++) for (let j = 1; j <= b.length; j++) d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    return d[a.length]![b.length]!;
  };
  const near = candidates.filter((c) => c.startsWith(word) || distance(word, c) <= 2);
  return near.length ? ` (did you mean ${near.map((c) => `"${prefix}${c}"`).join(' or ')}?)` : '';
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(rawArgv: string[], io: Io): Promise<number> {
  const ctx: Context = { io, exitCode: 0 };
  if (rawArgv[0] === '__complete') {
    // Called by the completion scripts on every Tab: candidates on stdout, never an error.
    const words = rawArgv.slice(rawArgv[1] === '--' ? 2 : 1);
    try {
      const { completions } = await import('./completion.js');
      const list = await completions(() => buildParser({ io: { ...io, env: {} }, exitCode: 0 }, [], words), words.length ? words : [''], io);
      if (list.length) io.stdout.write(list.join('\n') + '\n');
    } catch {
      // Nothing to offer; the shell falls back to file names.
    }
    return 0;
  }
  const argv = joinStdinValues(rawArgv);
  const debug = argv.includes('--debug') || io.env.PROFILESMITH_DEBUG === '1';
  try {
    let output = '';
    try {
      await (await buildParser(ctx, argv)).parseAsync(argv, {}, (_err, _args, out) => {
        output = out;
      });
    } catch (err) {
      // Only when yargs refused the line: is it an unknown command? (No cost on the happy path.)
      const unknown = err instanceof UsageError ? await unknownCommand(argv, io) : undefined;
      if (unknown) throw new UsageError(unknown);
      if (err instanceof UsageError && err.message.startsWith('Unknown argument')) throw new UsageError(await withFlagSuggestions(err.message, argv, io));
      throw err;
    }
    if (output) io.stdout.write(unwrapExamples(output) + '\n');
    return ctx.exitCode;
  } catch (err) {
    // With --json, stderr carries the error as one JSON line too, for scripts.
    if (argv.includes('--json') && !debug) {
      const code = (err as { code?: string })?.code ?? 'ERR_INTERNAL';
      io.stderr.write(JSON.stringify({ error: { code, message: (err instanceof Error ? err.message : String(err)).split('\n')[0], exitCode: exitCodeFor(err) } }) + '\n');
    } else {
      // Loaded for an error only: output.js brings the file-writing code, options.js the stores' options.
      const [{ errorLine }, { wrongPassphraseAdvice }] = await Promise.all([import('./output.js'), import('./options.js')]);
      errorLine(io, formatError(err, debug, { passphraseAdvice: wrongPassphraseAdvice(io) }));
    }
    return exitCodeFor(err);
  }
}
