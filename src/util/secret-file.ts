/**
 * The one rule for a file that holds a secret (a passphrase, a PKCS#12 or key password, a
 * PIN): only its owner may have access to it, as ssh demands of a private key. A file that
 * others can read has given the secret away already, or will; it is refused, not used.
 *
 * @module secret-file
 */
import { platform } from 'node:os';
import { InputInvalid } from '../errors.js';

/**
 * Throws when `mode` (of the file `path` holding the `what`, e.g. `passphrase`) grants its
 * group or others any access. Windows has no such mode bits, so nothing is checked there.
 * @throws ERR_INPUT_INVALID naming the file, its mode and `chmod 600`
 */
export function assertSecretFileMode(path: string, mode: number, what: string, field: string = what): void {
  if (platform() === 'win32' || (mode & 0o077) === 0) return;
  const access = mode & 0o044 ? 'readable' : mode & 0o022 ? 'writable' : 'usable';
  throw new InputInvalid(field, `The ${what} file "${path}" is ${access} by other users (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); run chmod 600 "${path}"`);
}
