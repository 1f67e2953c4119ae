import type { Argv } from 'yargs';
import { pkcs11Signer, type Pkcs11Signer, type Pkcs11SignerOptions } from '../cms/pkcs11.js';
import { parsePkcs11Uri } from '../cms/pkcs11-uri.js';
import { UsageError } from './errors.js';
import { readInputFile, readSecretFile } from './files.js';
import type { Io } from './io.js';
import { warn } from './output.js';

export interface SignerArgs {
  signer?: string;
  signerCert?: string;
  chain?: string;
  pinFile?: string;
}

/** --signer, --signer-cert, --chain, --pin-file: a signing key outside the store. */
export function signerOptions<T>(y: Argv<T>) {
  return y
    .option('signer', {
      type: 'string',
      describe: 'sign with a key in a PKCS#11 token instead of the store: an RFC 7512 URI, "pkcs11:token=…;object=…?module-path=…"',
    })
    .option('signer-cert', { type: 'string', describe: 'the signer certificate (PEM/DER); default: the certificate on the token' })
    .option('chain', { type: 'string', describe: 'intermediates of the signer certificate (PEM, any number)' })
    .option('pin-file', {
      type: 'string',
      describe: 'read the token PIN from this file, private to you (chmod 600), or - for stdin; or set PROFILESMITH_PKCS11_PIN',
    });
}

/**
 * The options of a PKCS#11 signer from the arguments, without opening it (workers open their own).
 * PIN: --pin-file, then PROFILESMITH_PKCS11_PIN, then the URI's pin-source or pin-value.
 */
export async function pkcs11OptionsFromArgs(args: SignerArgs, io: Io): Promise<Pkcs11SignerOptions | undefined> {
  if (!args.signer) {
    if (args.signerCert || args.chain || args.pinFile) throw new UsageError('--signer-cert, --chain and --pin-file go with --signer');
    return undefined;
  }
  if (!/^pkcs11:/i.test(args.signer)) throw new UsageError('--signer takes a PKCS#11 URI ("pkcs11:token=…;object=…?module-path=…")');
  const uri = parsePkcs11Uri(args.signer);
  if (uri.pinValue !== undefined) {
    warn(io, 'pin-value in a command line is visible to other users of this machine; prefer --pin-file or PROFILESMITH_PKCS11_PIN');
  }
  const pin = args.pinFile ? await readSecretFile(io, args.pinFile, 'PIN') : io.env.PROFILESMITH_PKCS11_PIN || undefined;
  const options: Pkcs11SignerOptions = { uri: args.signer };
  if (pin !== undefined) options.pin = pin;
  if (args.signerCert) options.certificate = await readInputFile(io, args.signerCert, 'signer certificate');
  if (args.chain) options.chain = [await readInputFile(io, args.chain, 'chain')];
  return options;
}

/** Opens the --signer token, or returns undefined to use the store's signing identity. */
export async function signerFromArgs(args: SignerArgs, io: Io): Promise<Pkcs11Signer | undefined> {
  const options = await pkcs11OptionsFromArgs(args, io);
  return options ? pkcs11Signer(options) : undefined;
}
