import { isPostgresUrl } from '../store/postgres/db.js';
import { isProfilesmithError } from '../errors.js';
import { isDiskFull } from '../store/errno.js';

/** Bad or conflicting flags, a missing argument, a prompt needed while not interactive: exit 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** What to type next, by error code. Library messages stay CLI-agnostic; advice lives here. */
export function hintFor(code: string, kind?: string, detail: { entry?: string; purpose?: string } = {}): string | undefined {
  switch (code) {
    case 'ERR_STORE_NOT_INITIALIZED':
      return kind === 'postgres' ? 'Run `profilesmith init --store postgres://… --org NAME` to create the schema and the CA in it' : 'Run `profilesmith init --store DIR --org NAME` to create one, or pass --store';
    case 'ERR_KEY_PASSPHRASE':
      return 'Set PROFILESMITH_PASSPHRASE or pass --passphrase-file';
    case 'ERR_STORE_ENTRY_NOT_FOUND':
      if (kind === 'identity') {
        const user = detail.entry ?? 'ADDRESS';
        return `Issue one (\`profilesmith cert issue --user ${user} --purpose ${detail.purpose ?? 'PURPOSE'}\`) or import one (\`profilesmith cert import\`); \`profilesmith cert list --user ${user}\` shows what the user has`;
      }
      return kind === 'link' ? 'See `profilesmith link list` for the links' : 'See `profilesmith cert list` for what the store holds';
    case 'ERR_TEMPLATE_NOT_FOUND':
      return 'See `profilesmith templates list`, or pass a path to a .hbs file';
    case 'ERR_STORE_IO':
      // A database fault (server down, login refused, a newer schema) is not damage to look for;
      // nor is a full disk, where every write was all or nothing.
      if (kind === 'disk-full') return 'Free space on that disk (or raise the quota), then run the command again: what it finished stays done';
      return kind === 'postgres' ? undefined : 'Run `profilesmith store check` to see what is damaged';
    default:
      return undefined;
  }
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return 2;
  return 1;
}

/**
 * One line for stderr; the stack and cause chain only with --debug. `passphraseAdvice`: what to
 * do about a wrong passphrase, by where this run read it (said on the error's own line).
 */
export function formatError(err: unknown, debug: boolean, context: { passphraseAdvice?: string | undefined } = {}): string {
  const known = err instanceof UsageError || isProfilesmithError(err);
  const message = err instanceof Error ? err.message : String(err);
  let out = `error: ${message.split('\n')[0]}`;
  const code = (err as { code?: unknown } | undefined)?.code;
  if (!debug && code === 'ERR_KEY_PASSPHRASE' && context.passphraseAdvice && isProfilesmithError(err)) return `${out}: ${context.passphraseAdvice}`;
  if (debug) {
    let e: unknown = err;
    const parts: string[] = [];
    while (e instanceof Error) {
      parts.push(e.stack ?? String(e));
      e = e.cause;
    }
    return `${out}\n${parts.join('\ncaused by: ')}`;
  }
  if (!known) out += '\nThis is a bug; re-run with --debug and report it';
  else if (err instanceof Error) {
    const hint = adviceFor(err);
    if (hint) out += `\nhint: ${hint}`;
  }
  return out;
}

/**
 * What to do about one of our errors, as the CLI says it (after "hint:", or "next:" on a
 * server's log line): by its code, and by where it happened (a PostgreSQL store's fault is
 * no damage to look for; a full disk is space to free).
 */
export function adviceFor(err: unknown): string | undefined {
  const e = err as { code?: string; kind?: string; path?: string; dir?: string; entry?: string; purpose?: string };
  const onPostgres = isPostgresUrl(e.path ?? e.dir ?? '');
  return hintFor(e.code ?? '', onPostgres ? 'postgres' : isDiskFull(err) ? 'disk-full' : e.kind, e);
}
