/**
 * Templates: Handlebars over XML plist, each with a sibling `<name>.json` describing its
 * variables (type, default, description) and example data. The same file drives
 * `templates show`, the golden tests and the README table.
 *
 * @module template
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputInvalid, TemplateDataError, TemplateNotFound } from '../errors.js';
import type { BuiltinTemplateName } from './template-data.gen.js';

/** A declared template variable. Names are dotted paths into the data (`exchange.host`). */
export interface TemplateVariable {
  /** `date` is an ISO-8601 string; `real` any number. */
  type: 'string' | 'boolean' | 'integer' | 'real' | 'date';
  required?: boolean;
  /**
   * A literal, or `$user.email`, `$user.name`, `$store.organization`, `$store.scepUrl` (the
   * store's SCEP server), `$store.scepChallenge` (a one-time challenge the store mints for the user).
   * A string may also name other values inside it: `${organization} Exchange` (a variable
   * declared before this one, or one of the `$` names above without the `$`).
   */
  default?: string | boolean | number;
  description?: string;
  enum?: (string | number)[];
  /** For an integer or a real: the smallest value allowed (a port: 1). */
  minimum?: number;
  /** For an integer or a real: the largest value allowed (a port: 65535). */
  maximum?: number;
  /** A secret (a password, a challenge): never a command-line value, which other users of the machine can see. */
  secret?: boolean;
}

/** How a template uses the user's identities. */
export type IdentityUse = 'required' | 'optional' | 'none';

/** A template's metadata (its sibling `.json`): variables, identities, description. */
export interface TemplateMeta {
  description: string;
  /** Payload types the template emits, for listings. */
  payloads?: string[];
  identities?: { signing?: IdentityUse; encryption?: IdentityUse };
  variables: Record<string, TemplateVariable>;
  /** Example data, used by `templates show` and the golden tests. */
  example?: Record<string, unknown>;
}

/** A loaded template: its Handlebars source and metadata. */
export interface Template {
  /** Built-in name, or the file name for a template given by path. */
  name: string;
  source: string;
  meta: TemplateMeta;
  /** Where it was read from; absent for source given inline. */
  path?: string;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** templates/ of the package, from both src/profile and dist/profile. */
export const BUILTIN_DIR = resolve(HERE, '..', '..', 'templates');
const SUFFIX = '.mobileconfig.hbs';
const MAX_TEMPLATE_BYTES = 1024 * 1024;

/**
 * Profile-level options every template gets (its own declarations win): what the
 * profile-head partial writes at the top level.
 */
export const COMMON_VARIABLES: Record<string, TemplateVariable> = {
  organization: { type: 'string', default: '$store.organization', description: "PayloadOrganization. Default: the store's organization" },
  identifierPrefix: { type: 'string', description: 'The namespace of every PayloadIdentifier (reverse DNS: com.example.mail). Default: profilesmith.<organization>' },
  identifier: { type: 'string', description: 'Top-level PayloadIdentifier. Default: <identifierPrefix>.<template>, then .<local part>.<domain> for a user' },
  displayName: { type: 'string', default: 'Profile', description: 'Profile name on the install screen' },
  description: { type: 'string', description: 'PayloadDescription on the install screen. Default: names the organization, the user and what the profile installs' },
  targetDeviceType: { type: 'integer', default: 1, enum: [0, 1, 2, 3, 4, 5, 6], description: 'TargetDeviceType: 1 iPhone/iPad (so iOS does not ask), 0 any' },
  'removal.disallowed': { type: 'boolean', default: false, description: 'PayloadRemovalDisallowed (supervised devices only)' },
  'removal.password': { type: 'string', secret: true, description: 'Removal password payload + HasRemovalPasscode (locks the profile on any device). A secret: give it in --data, not --set' },
  'removal.date': { type: 'date', description: 'RemovalDate: remove the profile at this time (ISO-8601)' },
  'removal.after': { type: 'real', description: 'DurationUntilRemoval: seconds after install' },
  consentText: { type: 'string', description: 'ConsentText shown before install (default language)' },
};

function withCommon(meta: TemplateMeta): TemplateMeta {
  return { ...meta, variables: { ...COMMON_VARIABLES, ...meta.variables } };
}

const EMPTY_META: TemplateMeta = {
  description: 'Custom template',
  identities: { signing: 'optional', encryption: 'optional' },
  variables: {},
};

function readMeta(path: string, name: string): TemplateMeta {
  if (!existsSync(path)) return withCommon(EMPTY_META);
  try {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as TemplateMeta;
    if (typeof meta !== 'object' || !meta || typeof meta.variables !== 'object') throw new Error('no variables');
    return withCommon(meta);
  } catch (err) {
    throw new TemplateDataError(name, basename(path), `metadata is not valid: ${(err as Error).message}`);
  }
}

function fromFile(path: string, name: string): Template {
  const stat = statSync(path);
  if (stat.size > MAX_TEMPLATE_BYTES) throw new TemplateDataError(name, path, 'template file is larger than 1 MiB');
  const metaPath = path.endsWith(SUFFIX)
    ? path.slice(0, -SUFFIX.length) + '.json'
    : path.replace(/\.(hbs|mobileconfig|xml|plist)$/, '') + '.json';
  return { name, source: readFileSync(path, 'utf8'), meta: readMeta(metaPath, name), path };
}

/**
 * Which template, said explicitly, so that a value from a web request can never name a file:
 * a built-in by name, a `.hbs` file by path (its sibling `.json` metadata is read when
 * present), or source text (with its metadata, if any). A plain string is a built-in name.
 */
export type TemplateRef =
  | BuiltinTemplateName
  // Any string is accepted (and checked at run time); the literal names give completion and typed data.
  | (string & {})
  | { builtin: BuiltinTemplateName | (string & {}) }
  | { path: string }
  | { source: string; meta?: TemplateMeta; name?: string };

/**
 * Loads a template named by a {@link TemplateRef}. A built-in name is looked up among the
 * built-ins only: it never reaches the file system as a path.
 * @throws ERR_INPUT_INVALID (field `template`) for a name that is not a built-in's shape (`../x`,
 * a path) or a reference of another shape; ERR_TEMPLATE_NOT_FOUND for an unknown built-in or a
 * missing file
 * @example
 * loadTemplate('exchange-smime'); loadTemplate({ path: './site.mobileconfig.hbs' }); loadTemplate({ source: xml })
 */
export function loadTemplate(ref: TemplateRef | Template): Template {
  if (isTemplate(ref)) return ref;
  if (typeof ref === 'string' || (ref && typeof ref === 'object' && 'builtin' in ref)) {
    const name: unknown = typeof ref === 'string' ? ref : ref.builtin;
    if (typeof name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,63}$/.test(name)) {
      throw new InputInvalid('template', `${JSON.stringify(name)} is not the name of a built-in template; a file is { path }, template text is { source }`);
    }
    const builtin = join(BUILTIN_DIR, name + SUFFIX);
    if (existsSync(builtin)) return fromFile(builtin, name);
    throw new TemplateNotFound(name, [BUILTIN_DIR]);
  }
  if (ref && typeof ref === 'object' && 'path' in ref && typeof ref.path === 'string') {
    const path = resolve(ref.path);
    if (existsSync(path) && statSync(path).isFile()) return fromFile(path, basename(path).replace(SUFFIX, ''));
    throw new TemplateNotFound(ref.path, [path]);
  }
  if (ref && typeof ref === 'object' && 'source' in ref && typeof ref.source === 'string') {
    if (ref.source.length > MAX_TEMPLATE_BYTES) throw new TemplateDataError(ref.name ?? 'inline', 'source', 'template source is larger than 1 MiB');
    return { name: ref.name ?? 'inline', source: ref.source, meta: withCommon(ref.meta ?? EMPTY_META) };
  }
  throw new InputInvalid('template', 'template must be a built-in name, { builtin }, { path } or { source }');
}

function isTemplate(ref: unknown): ref is Template {
  return !!ref && typeof ref === 'object' && 'source' in ref && 'meta' in ref && 'name' in ref && typeof (ref as Template).meta?.variables === 'object';
}

/**
 * Names of the built-in templates.
 * @example
 * for (const t of listTemplates()) console.log(t.name, t.description)
 */
export function listTemplates(): { name: string; description: string; payloads: string[] }[] {
  return readdirSync(BUILTIN_DIR)
    .filter((f) => f.endsWith(SUFFIX))
    .sort()
    .map((f) => {
      const name = f.slice(0, -SUFFIX.length);
      const meta = loadTemplate(name).meta;
      return { name, description: meta.description, payloads: meta.payloads ?? [] };
    });
}

/** Reads a dotted path from nested data. */
export function getPath(data: Record<string, unknown>, path: string): unknown {
  let cur: unknown = data;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Writes a dotted path into nested data, creating objects on the way. */
export function setPath(data: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  if (parts.some((p) => !p || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    throw new TemplateDataError('data', path, 'is not a valid variable name');
  }
  let cur = data;
  for (const part of parts.slice(0, -1)) {
    const next = cur[part];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  }
  cur[parts[parts.length - 1] as string] = value;
}

/**
 * Turns `--set key=value` strings into typed values by the template's declarations:
 * `true`/`false` (also yes/no, 1/0) for booleans, decimal for integers.
 * Returns the keys the template does not declare, for a warning.
 * @throws ERR_TEMPLATE_DATA for a value that does not fit its type
 */
export function applySetValues(
  template: Template,
  data: Record<string, unknown>,
  sets: Record<string, string>,
): { unknown: string[] } {
  // The CLI refuses secrets in --set before it gets here; a library caller's `sets` are its own.
  const unknown: string[] = [];
  for (const [key, raw] of Object.entries(sets)) {
    const decl = template.meta.variables[key];
    let value: unknown = raw;
    if (!decl) unknown.push(key);
    else if (decl.type === 'boolean') {
      const v = raw.toLowerCase();
      if (['true', 'yes', '1', 'on'].includes(v)) value = true;
      else if (['false', 'no', '0', 'off'].includes(v)) value = false;
      else throw new TemplateDataError(template.name, key, `must be true or false, got "${raw}"`);
    } else if (decl.type === 'integer') {
      if (!/^-?\d{1,15}$/.test(raw)) throw new TemplateDataError(template.name, key, `must be an integer, got "${raw}"`);
      value = Number(raw);
    } else if (decl.type === 'real') {
      if (!/^-?\d{1,15}(\.\d{1,15})?$/.test(raw)) throw new TemplateDataError(template.name, key, `must be a number, got "${raw}"`);
      value = Number(raw);
    }
    setPath(data, key, value);
  }
  return { unknown };
}

// XML 1.0 forbids these characters even as entities; plist parsers reject them.
const XML_INVALID = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Fills defaults and checks every declared variable's type and presence, and that no
 * string anywhere in the data holds a character XML cannot carry.
 * @throws ERR_TEMPLATE_DATA naming the variable
 */
export function resolveData(
  template: Template,
  data: Record<string, unknown>,
  builtins: Record<string, unknown> = {},
): Record<string, unknown> {
  const out = structuredClone(data);
  for (const [name, decl] of Object.entries(template.meta.variables)) {
    let value = getPath(out, name);
    if ((value === undefined || value === null || value === '') && decl.default !== undefined) {
      // A default of "$user.email" refers to what the generator knows (user, store).
      value =
        typeof decl.default !== 'string'
          ? decl.default
          : decl.default.includes('${')
            ? interpolate(decl.default, out, builtins)
            : decl.default.startsWith('$')
              ? getPath(builtins, decl.default.slice(1))
              : decl.default;
      setPath(out, name, value);
    }
    if (value === undefined || value === null || value === '') {
      if (decl.required) throw new TemplateDataError(template.name, name, 'is required');
      continue;
    }
    const ok =
      decl.type === 'string'
        ? typeof value === 'string'
        : decl.type === 'boolean'
          ? typeof value === 'boolean'
          : decl.type === 'real'
            ? typeof value === 'number' && Number.isFinite(value) && value > 0
            : decl.type === 'date'
              ? typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(value) && !Number.isNaN(Date.parse(value))
              : Number.isSafeInteger(value);
    if (!ok) {
      const what = decl.type === 'date' ? 'an ISO-8601 date and time' : decl.type === 'real' ? 'a positive number' : `a ${decl.type}`;
      throw new TemplateDataError(template.name, name, `must be ${what}, got ${JSON.stringify(value)}`);
    }
    // A value the device would refuse or misread (imap.port=99999) is never signed.
    if (typeof value === 'number' && ((decl.minimum !== undefined && value < decl.minimum) || (decl.maximum !== undefined && value > decl.maximum))) {
      throw new TemplateDataError(template.name, name, `must be from ${decl.minimum ?? '-∞'} to ${decl.maximum ?? '∞'}, got ${value}`);
    }
    if (decl.enum && !decl.enum.includes(value as string | number)) {
      throw new TemplateDataError(template.name, name, `must be one of ${decl.enum.join(', ')}`);
    }
  }
  const walk = (v: unknown, path: string): void => {
    if (typeof v === 'string') {
      if (XML_INVALID.test(v)) throw new TemplateDataError(template.name, path, 'holds a character that a property list cannot carry (a control character, a lone surrogate or U+FFFE/U+FFFF)');
      if (v.length > 65_536) throw new TemplateDataError(template.name, path, 'is longer than 65536 characters');
    } else if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${path}[${i}]`));
    else if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    }
  };
  walk(out, '');
  return out;
}

/** `${name}` in a default, each replaced by the data's value (then the builtins'); undefined when one has none. */
function interpolate(text: string, data: Record<string, unknown>, builtins: Record<string, unknown>): string | undefined {
  let missing = false;
  const out = text.replace(/\$\{([A-Za-z0-9_.]+)\}/g, (_, name: string) => {
    const v = getPath(data, name) ?? getPath(builtins, name);
    if (typeof v !== 'string' && typeof v !== 'number') {
      missing = true;
      return '';
    }
    return String(v);
  });
  return missing ? undefined : out.trim();
}

/**
 * The keys of template data (dotted, to the leaves) that the template does not declare: a
 * typo in a data file (`exchange.hots`) is otherwise silently ignored.
 */
export function unknownDataKeys(template: Template, data: Record<string, unknown>): string[] {
  const declared = Object.keys(template.meta.variables);
  const out: string[] = [];
  const walk = (v: unknown, path: string) => {
    if (path && Object.hasOwn(template.meta.variables, path)) return;
    if (v && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date)) {
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    } else if (path && !declared.some((d) => d.startsWith(`${path}.`))) out.push(path);
  };
  walk(data, '');
  return out;
}

/** How long a challenge minted for a SCEP profile stays usable: 14 days. */
export const SCEP_CHALLENGE_TTL_MS = 14 * 86_400_000;

/** The variable of `template` whose default is `$store.<name>`, if any. */
const storeDefault = (template: Template, name: string) => Object.entries(template.meta.variables).find(([, v]) => v.default === `$store.${name}`)?.[0];

/**
 * The variable to fill with a challenge the store mints, for a profile of `template` whose
 * values `given` reads: the template takes one (default `$store.scepChallenge`) and the profile
 * points at the store's own SCEP server (`storeUrl`, the `$store.scepUrl` variable naming no
 * other). Another server's URL, or no store URL, mints nothing. A challenge given for the
 * store's own server is refused: it would not be one the store knows.
 * @throws ERR_INPUT_INVALID
 */
export function challengeToMint(template: Template, given: (variable: string) => unknown, storeUrl: string | undefined): string | undefined {
  const variable = storeDefault(template, 'scepChallenge');
  if (!variable || storeUrl === undefined) return undefined;
  const urlVariable = storeDefault(template, 'scepUrl');
  const url = urlVariable ? given(urlVariable) : undefined;
  if (url !== undefined && url !== '' && url !== storeUrl) return undefined;
  const challenge = given(variable);
  if (challenge !== undefined && challenge !== '') throw new InputInvalid(variable, `${variable} is minted by the store for its own SCEP server (${storeUrl}); give none`);
  return variable;
}
