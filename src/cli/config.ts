import { readFileSync, statSync } from 'node:fs';
import { isPostgresUrl } from '../store/postgres/db.js';
import { dirname, join, resolve } from 'node:path';
import { InputInvalid } from '../errors.js';
import { applySetValues, listTemplates, loadTemplate, setPath, type Template } from '../profile/template.js';
import { ioWords } from './files.js';
import type { Io } from './io.js';

/**
 * The CLI's config file, `profilesmith.json`: the store and the site's default template
 * values, so that neither is retyped. Never secrets: a file that would be copied between
 * machines and checked in is the wrong place for a passphrase or a removal password.
 *
 * ```json
 * { "store": "./store",
 *   "set": { "exchange.host": "mail.example.com", "organization": "Example Corp" },
 *   "templates": { "imap-smime": { "imap.host": "imap.example.com" } } }
 * ```
 *
 * `set` applies to every template that declares the key (a site file serves several templates,
 * so a key another template has is not an error); `templates.NAME` applies to one template
 * and wins over `set`. A relative `store` is relative to the file, as in tsconfig.json.
 */
export interface CliConfig {
  /** The file, absolute. */
  path: string;
  /** How it was found. */
  via: '--config' | 'PROFILESMITH_CONFIG' | 'working directory';
  /** Absolute. */
  store?: string;
  set: Record<string, ConfigValue>;
  templates: Record<string, Record<string, ConfigValue>>;
}

export type ConfigValue = string | number | boolean;

/** The file looked for in the working directory. */
export const CONFIG_FILE = 'profilesmith.json';
const TOP_KEYS = ['$schema', 'store', 'set', 'templates'];
const KEY = /^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*$/;
// A key whose last part names a secret, whatever a template declares (`smtp.samePassword`, a
// switch, is not one).
const SECRET_WORDS = /(^|\.)(password|passphrase|passphraseFile|passcode|secret|challenge|pin|token|privateKey)$/i;

/**
 * Finds and reads the config: `--config FILE` (false: `--no-config`, none), then
 * `PROFILESMITH_CONFIG`, then `profilesmith.json` in the working directory. A file named by the
 * flag or the variable must exist; the working directory's is optional.
 * @throws ERR_INPUT_INVALID (field `config`) naming the file and what is wrong
 */
export function loadConfig(io: Io, flag: string | false | undefined): CliConfig | undefined {
  if (flag === false) return undefined;
  let path: string;
  let via: CliConfig['via'];
  if (flag) [path, via] = [resolve(io.cwd, flag), '--config'];
  else if (io.env.PROFILESMITH_CONFIG) [path, via] = [resolve(io.cwd, io.env.PROFILESMITH_CONFIG), 'PROFILESMITH_CONFIG'];
  else {
    path = join(io.cwd, CONFIG_FILE);
    via = 'working directory';
    try {
      statSync(path);
    } catch {
      return undefined;
    }
  }
  const shown = via === 'working directory' ? CONFIG_FILE : path;
  const bad = (what: string) => new InputInvalid('config', `The config file ${shown}: ${what}`);
  let text: string;
  try {
    const s = statSync(path);
    if (!s.isFile()) throw bad('is not a file');
    if (s.size > 1024 * 1024) throw bad('is larger than 1 MiB');
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof InputInvalid) throw err;
    throw new InputInvalid('config', `Cannot read the config file ${shown} (${via}): ${ioWords(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw bad(`not JSON (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw bad('must hold a JSON object');
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (!TOP_KEYS.includes(k)) {
      if (SECRET_WORDS.test(k)) throw bad(`"${k}" looks like a secret, and secrets do not belong in a config file (use PROFILESMITH_PASSPHRASE_FILE or a --data file)`);
      throw bad(`unknown key "${k}" (known: ${TOP_KEYS.slice(1).join(', ')})`);
    }
  }
  const config: CliConfig = { path, via, set: {}, templates: {} };
  if (obj.store !== undefined) {
    if (typeof obj.store !== 'string' || !obj.store) throw bad('"store" must be a non-empty string (a directory)');
    config.store = isPostgresUrl(obj.store) ? obj.store : resolve(dirname(path), obj.store);
  }
  config.set = values(obj.set, 'set', bad);
  if (obj.templates !== undefined) {
    if (!obj.templates || typeof obj.templates !== 'object' || Array.isArray(obj.templates)) throw bad('"templates" must be an object of template name to values');
    for (const [name, v] of Object.entries(obj.templates)) config.templates[name] = values(v, `templates.${name}`, bad);
  }
  return config;
}

function values(v: unknown, where: string, bad: (what: string) => InputInvalid): Record<string, ConfigValue> {
  if (v === undefined) return {};
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad(`"${where}" must be an object of "variable.name": value`);
  const out: Record<string, ConfigValue> = {};
  const secrets = secretVariables();
  for (const [key, value] of Object.entries(v)) {
    if (!KEY.test(key)) throw bad(`"${where}": "${key}" is not a variable name (dotted, as in --set)`);
    if (secrets.has(key) || SECRET_WORDS.test(key)) throw bad(`"${where}": "${key}" is a secret, and secrets do not belong in a config file; put it in a --data file`);
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') throw bad(`"${where}": "${key}" must be a string, a number or true/false`);
    if (value === '') throw bad(`"${where}": "${key}" is empty; leave it out instead`);
    out[key] = value;
  }
  return out;
}

let secretCache: Set<string> | undefined;
/** Every variable a built-in template marks as a secret. */
function secretVariables(): Set<string> {
  if (!secretCache) {
    secretCache = new Set();
    for (const { name } of listTemplates()) {
      for (const [k, decl] of Object.entries(loadTemplate(name).meta.variables)) if (decl.secret) secretCache.add(k);
    }
  }
  return secretCache;
}

/** Where a template value in force came from, for `config show`. */
export type ValueSource = 'config set' | `config templates.${string}`;

/**
 * The config's values for `template`, typed by its declarations (`"443"` for an integer
 * becomes 443), lowest layer first: `set` (only the keys the template declares), then
 * `templates.NAME` (every key; one the template lacks is returned in `unknown`).
 * @throws ERR_TEMPLATE_DATA for a value that does not fit its declared type
 */
export function configValues(
  config: CliConfig | undefined,
  template: Template,
): { data: Record<string, unknown>; sources: Record<string, ValueSource>; unknown: string[] } {
  const data: Record<string, unknown> = {};
  const sources: Record<string, ValueSource> = {};
  const unknown: string[] = [];
  if (!config) return { data, sources, unknown };
  const put = (key: string, value: ConfigValue, source: ValueSource) => {
    if (typeof value === 'string') applySetValues(template, data, { [key]: value });
    else setPath(data, key, value);
    sources[key] = source;
  };
  for (const [key, value] of Object.entries(config.set)) if (template.meta.variables[key] && !template.meta.variables[key]!.secret) put(key, value, 'config set');
  for (const [key, value] of Object.entries(config.templates[template.name] ?? {})) {
    if (!template.meta.variables[key]) unknown.push(key);
    else put(key, value, `config templates.${template.name}`);
  }
  return { data, sources, unknown };
}

/** `src` into `dst`, objects merged key by key, anything else replaced. */
export function mergeData(dst: Record<string, unknown>, src: Record<string, unknown>): Record<string, unknown> {
  for (const [k, v] of Object.entries(src)) {
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') continue;
    const cur = dst[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) {
      mergeData(cur as Record<string, unknown>, v as Record<string, unknown>);
    } else dst[k] = v;
  }
  return dst;
}
