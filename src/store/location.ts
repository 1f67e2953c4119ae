import { homedir, platform } from 'node:os';
import { join, resolve } from 'node:path';
import { isPostgresUrl } from './postgres/db.js';

/**
 * Where the store lives: the flag, then `PROFILESMITH_STORE`, then the platform's data
 * directory (XDG on Linux, Application Support on macOS, LOCALAPPDATA on Windows). A
 * `postgres://` URL is returned as it is; a directory is made absolute.
 * `env` is passed in: the library never reads the process environment itself.
 * @example
 * const dir = resolveStoreDir(undefined, process.env) // PROFILESMITH_STORE, else the platform's data folder
 * const store = await openStore(dir, { passphrase })
 */
export function resolveStoreDir(flag: string | undefined, env: Record<string, string | undefined> = {}): string {
  if (flag) return isPostgresUrl(flag) ? flag : resolve(flag);
  if (env.PROFILESMITH_STORE) return isPostgresUrl(env.PROFILESMITH_STORE) ? env.PROFILESMITH_STORE : resolve(env.PROFILESMITH_STORE);
  const home = homedir();
  switch (platform()) {
    case 'darwin':
      return join(home, 'Library', 'Application Support', 'profilesmith');
    case 'win32':
      return join(env.LOCALAPPDATA ?? join(home, 'AppData', 'Local'), 'profilesmith');
    default:
      return join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'profilesmith');
  }
}
