import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { generateProfile } from '../../profile/generate.js';
import { csvField } from '../../util/csv.js';
import { readInputFile } from '../files.js';
import { UsageError } from '../errors.js';
import { openStoreFromArgs, templateArg, templateValues, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson, warn, writeArtifact, checkOutput } from '../output.js';
import { signerFromArgs, signerOptions, type SignerArgs } from '../signer.js';

interface Args extends StoreArgs, SignerArgs {
  template: string;
  user?: string;
  set?: string[];
  data?: string;
  out?: string;
  force?: boolean;
  sign: boolean;
  pkcs12Password: boolean;
  passwordsOut?: string;
  allowInvalid?: boolean;
  includeRevoked?: boolean;
  encryptTo?: string;
  cipher: 'aes-256' | '3des';
  json?: boolean;
}

export function generateCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.generate,
    builder: (y: Argv) =>
      signerOptions(storeOptions(y))
        .positional('template', { type: 'string', describe: 'built-in template name or path to a .hbs file' })
        .option('user', { type: 'string', describe: 'the user (email address); not needed for root-ca' })
        .option('set', { type: 'string', array: true, describe: 'template variable key=value (not for secrets: use --data)' })
        .option('data', { type: 'string', describe: 'JSON file of template variables' })
        .option('out', { alias: 'o', type: 'string', describe: 'output file (- for stdout); default <PayloadIdentifier>.mobileconfig' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace the output file if it exists (without it, an existing file is refused)' })
        .option('sign', { type: 'boolean', default: true, describe: 'sign the profile (--no-sign writes the XML)' })
        .option('pkcs12-password', {
          type: 'boolean',
          default: true,
          describe: 'put PKCS#12 passwords in the profile (obfuscation only); --no-pkcs12-password needs --passwords-out',
        })
        .option('passwords-out', { type: 'string', describe: 'write the PKCS#12 passwords to this file (mode 0600, CSV)' })
        .option('include-revoked', { type: 'boolean', describe: 'also ship revoked encryption certificates' })
        .option('encrypt-to', { type: 'string', describe: "device certificate (PEM/DER): encrypt the payloads to it; the device must hold its key" })
        .option('cipher', { choices: ['aes-256', '3des'] as const, default: 'aes-256' as const, describe: 'content cipher with --encrypt-to (3des for old devices)' })
        .option('allow-invalid', { type: 'boolean', describe: 'write the profile even when validation finds errors' })
        .option('json', { type: 'boolean', describe: 'print a JSON summary' })
        .example(
          '$0 generate exchange-smime --store ./store --user alice@example.com --set exchange.host=mail.example.com -o alice.mobileconfig',
          'an Exchange S/MIME profile',
        )
        .example(
          '$0 generate exchange-smime --store ./store --user alice@example.com --set exchange.host=mail.example.com --signer "pkcs11:token=HSM;object=profile-signer?module-path=/usr/lib/softhsm/libsofthsm2.so" --pin-file pin.txt --signer-cert signer.pem --chain issuing-ca.pem -o alice.mobileconfig',
          'sign with a key in an HSM',
        ) as unknown as Argv<Args>,
    handler: async (args) => {
      if (!args.sign && args.signer) throw new UsageError('--signer and --no-sign do not go together');
      if (!args.pkcs12Password && !args.passwordsOut) {
        throw new UsageError('--no-pkcs12-password needs --passwords-out FILE, or the passwords would be lost');
      }
      const template = templateArg(ctx.io, args.template);
      const ids = template.meta.identities ?? {};
      if (!args.user && (ids.signing !== 'none' || ids.encryption !== 'none')) {
        throw new UsageError(`Template "${template.name}" makes a profile for one user: pass --user EMAIL`);
      }
      if (args.out) checkOutput(ctx.io, args.out, !!args.force);
      if (args.passwordsOut) checkOutput(ctx.io, args.passwordsOut, !!args.force, '--passwords-out');
      const data = await templateValues(ctx, template, args.data, args.set);
      const store = await openStoreFromArgs(args, ctx.io, true);
      const signer = await signerFromArgs(args, ctx.io);
      const profile = await generateProfile({
        store,
        ...(signer ? { signer } : {}),
        template,
        ...(args.user ? { user: args.user } : {}),
        data,
        sign: args.sign,
        embedPkcs12Passwords: args.pkcs12Password,
        includeRevoked: !!args.includeRevoked,
        allowInvalid: !!args.allowInvalid,
        ...(args.encryptTo ? { encryptTo: await readInputFile(ctx.io, args.encryptTo, 'encrypt-to', 1024 * 1024), cipher: args.cipher === '3des' ? ('des-ede3-cbc' as const) : ('aes-256-cbc' as const) } : {}),
      }).finally(() => signer?.close());
      if (profile.issues.some((i) => i.severity === 'error')) {
        warn(ctx.io, 'writing a profile with errors because of --allow-invalid: iOS will refuse to install it');
      }
      // Unknown data keys were warned about where they were given (--set, --data, the config).
      for (const issue of profile.issues.filter((i) => i.rule !== 'unknown-variable')) {
        warn(ctx.io, `${issue.severity === 'error' ? 'INVALID ' : ''}${issue.path}: ${issue.message} [${issue.rule}]`);
      }
      if (args.passwordsOut) {
        const csv = ['fileName,payloadIdentifier,serial,purpose,password', ...profile.passwords.map((p) => [p.fileName, p.payloadIdentifier, p.serial, p.purpose, p.password].map(csvField).join(','))];
        await writeArtifact(ctx.io, args.passwordsOut, Buffer.from(csv.join('\n') + '\n'), false, 0o600, !!args.force);
      }
      const where = await writeArtifact(ctx.io, args.out ?? profile.fileName, profile.bytes, profile.signed, 0o600, !!args.force);
      const summary = {
        file: where,
        identifier: profile.identifier,
        uuid: profile.uuid,
        signed: profile.signed,
        signingSerial: profile.signingSerial ?? null,
        encryptionSerials: profile.encryptionSerials,
        warnings: profile.issues.length,
      };
      if (args.json && where !== 'stdout') printJson(ctx.io, summary);
      else {
        note(
          ctx.io,
          `Wrote ${where} (${profile.signed ? 'signed' : 'unsigned'}${profile.encrypted ? ', payloads encrypted to the device' : ''}; signing identity ${profile.signingSerial ?? 'none'}, ${profile.encryptionSerials.length} encryption ${profile.encryptionSerials.length === 1 ? 'identity' : 'identities'})`,
        );
      }
    },
  };
}
