import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import type { AnyStore } from '../store/open.js';
import { isPostgresUrl } from '../store/postgres/db.js';
import { resolveStoreDir } from '../store/location.js';
import { UsageError } from './errors.js';
import { readDataFile, readSecretFile } from './files.js';
import { warn } from './output.js';
import { applySetValues, getPath, loadTemplate, unknownDataKeys, type Template } from '../profile/template.js';
import { readSecret, type Io } from './io.js';
import { configValues, mergeData, type CliConfig } from './config.js';
import { parseDuration } from '../util/duration.js';
import { suggest } from '../util/suggest.js';
import { isProfilesmithError } from '../errors.js';

/** A duration flag (`--ttl 24h`): a bad one is a usage error (exit 2) naming the flag and the form. */
export function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text, flag);
  } catch (err) {
    if (!isProfilesmithError(err)) throw err;
    throw new UsageError(`--${flag}: ${err.message}; write a whole number and a unit: s, m, h, d or w (90m, 24h, 30d, 2w)`);
  }
}

/** Per-run state shared by the handlers: the Io and the exit code a handler may set. */
export interface Context {
  io: Io;
  exitCode: number;
  /** The config file in force (read before the handler runs), if any. */
  config?: CliConfig;
  /** Where the store directory in force comes from. */
  storeSource?: '--store' | 'PROFILESMITH_STORE' | 'config' | 'default';
}

export interface StoreArgs {
  store?: string;
  passphraseFile?: string;
}

export function storeOptions<T>(y: Argv<T>) {
  return y
    .option('store', { type: 'string', describe: 'store directory or postgres://user@host:port/db URL (default: $PROFILESMITH_STORE, then the data directory)' })
    .option('passphrase-file', {
      type: 'string',
      describe: 'read the store passphrase from this file, private to you (chmod 600), or - for stdin; or set PROFILESMITH_PASSPHRASE',
    });
}

function nonEmpty(value: string, path: string): string {
  if (!value) throw new UsageError(`The passphrase file "${path}" is empty`);
  return value;
}

/** Where the run's passphrase came from, so that "wrong passphrase" can say what to fix. */
const passphraseSources = new WeakMap<Io, string>();

/**
 * What to do about a wrong passphrase, by where it came from (undefined when no passphrase was
 * read in this run): one clause, for the error line.
 */
export function wrongPassphraseAdvice(io: Io): string | undefined {
  return passphraseSources.get(io);
}

/** The passphrase: --passphrase-file, then PROFILESMITH_PASSPHRASE, then PROFILESMITH_PASSPHRASE_FILE, then a prompt on a TTY. */
export async function getPassphrase(args: StoreArgs, io: Io, options: { confirm?: boolean } = {}): Promise<string> {
  if (args.passphraseFile) {
    passphraseSources.set(
      io,
      args.passphraseFile === '-'
        ? 'it was read from stdin (--passphrase-file -); send the store\'s passphrase there'
        : `it was read from --passphrase-file "${args.passphraseFile}"; put the store's passphrase in that file`,
    );
    return nonEmpty(await readSecretFile(io, args.passphraseFile), args.passphraseFile);
  }
  if (io.env.PROFILESMITH_PASSPHRASE) {
    passphraseSources.set(io, "it came from PROFILESMITH_PASSPHRASE; set that to the store's passphrase (or unset it to be asked)");
    return io.env.PROFILESMITH_PASSPHRASE;
  }
  if (io.env.PROFILESMITH_PASSPHRASE_FILE) {
    passphraseSources.set(io, `it was read from PROFILESMITH_PASSPHRASE_FILE ("${io.env.PROFILESMITH_PASSPHRASE_FILE}"); put the store's passphrase in that file`);
    return nonEmpty(await readSecretFile(io, io.env.PROFILESMITH_PASSPHRASE_FILE), io.env.PROFILESMITH_PASSPHRASE_FILE);
  }
  passphraseSources.set(io, "it was typed at the prompt; run the command again and type the store's passphrase");
  const how = 'set PROFILESMITH_PASSPHRASE or pass --passphrase-file';
  const first = await readSecret(io, 'Store passphrase: ', how);
  if (!first) throw new UsageError('The passphrase must not be empty');
  if (options.confirm && (await readSecret(io, 'Again: ', how)) !== first) throw new UsageError('The passphrases do not match');
  return first;
}

/**
 * The store in force: a directory, or a `postgres://` URL. A URL with a password is refused on
 * the command line (argv shows in ps and shell history): the password goes in PGPASSWORD or
 * ~/.pgpass, or the whole URL in PROFILESMITH_STORE or the config file.
 */
export function storeDir(args: StoreArgs, io: Io): string {
  if (args.store && isPostgresUrl(args.store)) {
    let password = '';
    try {
      password = new URL(args.store).password;
    } catch {
      throw new UsageError(`--store: "${args.store.replace(/:[^:@/]*@/, ':…@')}" is not a valid postgres:// URL`);
    }
    if (password) throw new UsageError('--store: a password in the URL would show in ps and shell history; put it in PGPASSWORD or ~/.pgpass (or the whole URL in PROFILESMITH_STORE)');
    return args.store;
  }
  return resolveStoreDir(args.store ? resolve(io.cwd, args.store) : undefined, io.env);
}

/** Opens the store; with `keys`, asks for the passphrase and checks it. */
export async function openStoreFromArgs(args: StoreArgs, io: Io, keys: boolean): Promise<AnyStore> {
  const dir = storeDir(args, io);
  // Loaded here, not with this module: every command's options come from this module, and
  // --help or a command without a store never needs the store's code.
  const { openStore } = await import('../store/open.js');
  const store = await openStore(dir);
  if (keys) await store.unlock(await getPassphrase(args, io));
  return store;
}

/**
 * The template a command line names: a path (it has a slash or ends in .hbs) relative to the
 * working directory, else a built-in name. The library never guesses; the CLI decides here.
 */
export function templateArg(io: Io, arg: string): Template {
  return loadTemplate(/[\\/]/.test(arg) || arg.endsWith('.hbs') ? { path: resolve(io.cwd, arg) } : { builtin: arg });
}

/** " (did you mean exchange.host?)" for a key close to one of the template's variables, else "". */
function didYouMean(template: Template, key: string): string {
  const near = suggest(key, Object.keys(template.meta.variables));
  return near ? ` (did you mean ${near}?)` : '';
}

/** Parses repeated `--set key=value`. */
export function parseSets(values: string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of values ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`--set takes key=value, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/**
 * Template values as every command that renders a template takes them, lowest first: the
 * config file's (see config.ts), `--data FILE`, `--set key=value`. A secret in `--set` is
 * refused (a flag value shows in `ps` and shell history), and keys the template does not have
 * are warned about, from any source.
 */
export async function templateValues(ctx: Context, template: Template, dataFile: string | undefined, sets: string[] | undefined): Promise<Record<string, unknown>> {
  const { io } = ctx;
  const fromConfig = configValues(ctx.config, template);
  for (const key of fromConfig.unknown) warn(io, `${ctx.config!.path}: templates.${template.name}: "${key}" is not a variable of template "${template.name}"${didYouMean(template, key)}; it is ignored`);
  const fromFile = dataFile ? await readDataFile(io, dataFile) : {};
  const data = mergeData(fromConfig.data, fromFile);
  const parsed = parseSets(sets);
  for (const key of Object.keys(parsed)) {
    if (template.meta.variables[key]?.secret) throw new UsageError(`--set ${key}: a secret; put it in a --data file instead (a flag value shows in ps and shell history)`);
  }
  const fileUnknown = unknownDataKeys(template, fromFile);
  const { unknown } = applySetValues(template, data, parsed);
  // A typo of a required variable is the reason the profile cannot be made: say so once, as the error.
  const typo = [...unknown.map((key) => ['--set', key] as const), ...fileUnknown.map((key) => [`--data ${dataFile}:`, key] as const)]
    .map(([source, key]) => ({ source, key, near: suggest(key, Object.keys(template.meta.variables)) }))
    .find(({ near }) => near !== undefined && template.meta.variables[near]?.required && getPath(data, near) === undefined);
  if (typo) throw new UsageError(`${typo.source} ${typo.key}: template "${template.name}" has no such variable; did you mean ${typo.near}? (it is required: --set ${typo.near}=…)`);
  for (const key of fileUnknown) warn(io, `--data ${dataFile}: "${key}" is not a variable of template "${template.name}"${didYouMean(template, key)}; it is ignored`);
  for (const key of unknown) warn(io, `--set ${key}: template "${template.name}" has no such variable${didYouMean(template, key)}; it is ignored (\`profilesmith templates show ${template.name}\` lists them)`);
  return data;
}
