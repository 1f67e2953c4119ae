// The new-passphrase rule, apart from issuance.ts (which loads the certificate code): opening a
// store reads MIN_PASSPHRASE_LENGTH through meta.ts, and a read-only command issues nothing.
import { InputInvalid } from '../errors.js';

/** The shortest passphrase a new store (or a new passphrase) takes: it is all that guards the keys. */
export const MIN_PASSPHRASE_LENGTH = 8;

/** @throws ERR_INPUT_INVALID for a passphrase shorter than {@link MIN_PASSPHRASE_LENGTH} characters */
export function checkNewPassphrase(passphrase: string): void {
  if ([...passphrase].length < MIN_PASSPHRASE_LENGTH) {
    throw new InputInvalid('passphrase', `The passphrase must have at least ${MIN_PASSPHRASE_LENGTH} characters; it is all that protects the store's private keys`);
  }
}
