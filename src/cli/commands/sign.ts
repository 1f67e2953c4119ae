import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { signProfile } from '../../cms/sign.js';
import { ProfileInvalid } from '../../errors.js';
import { parseProfile } from '../../profile/parse.js';
import { validateProfile } from '../../profile/validate.js';
import { readInputFile } from '../files.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, warn, writeArtifact, checkOutput } from '../output.js';
import { signerFromArgs, signerOptions, type SignerArgs } from '../signer.js';

interface Args extends StoreArgs, SignerArgs {
  file: string;
  out: string;
  force?: boolean;
  allowInvalid?: boolean;
}

export function signCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.sign,
    builder: (y: Argv) =>
      signerOptions(storeOptions(y))
        .positional('file', { type: 'string', describe: 'an unsigned profile (XML or binary plist)' })
        .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'output file (- for stdout)' })
        .option('allow-invalid', { type: 'boolean', describe: 'sign even when validation finds errors' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace the output file if it exists (without it, an existing file is refused)' })
        .example('$0 sign wifi.mobileconfig --store ./store -o wifi-signed.mobileconfig', 'sign a profile made elsewhere')
        .example(
          '$0 sign wifi.mobileconfig --signer "pkcs11:token=HSM;object=profile-signer?module-path=/usr/lib/softhsm/libsofthsm2.so" --pin-file pin.txt --signer-cert signer.pem --chain issuing-ca.pem -o wifi-signed.mobileconfig',
          'sign with a key in an HSM (no store needed)',
        ) as unknown as Argv<Args>,
    handler: async (args) => {
      checkOutput(ctx.io, args.out, !!args.force);
      const bytes = await readInputFile(ctx.io, args.file, 'profile');
      const parsed = parseProfile(bytes);
      if (parsed.signed) warn(ctx.io, `${args.file} is already signed; its content is signed again`);
      const issues = validateProfile(parsed.plist, { ...(parsed.xml ? { xml: parsed.xml } : {}) });
      for (const i of issues.filter((x) => x.severity !== 'info')) warn(ctx.io, `${i.severity === 'error' ? 'INVALID ' : ''}${i.path}: ${i.message} [${i.rule}]`);
      if (issues.some((i) => i.severity === 'error')) {
        if (!args.allowInvalid) throw new ProfileInvalid(issues);
        warn(ctx.io, 'signing a profile with errors because of --allow-invalid: iOS will refuse it');
      }
      const hsm = await signerFromArgs(args, ctx.io);
      const signer = hsm ?? (await (await openStoreFromArgs(args, ctx.io, true)).profileSigner());
      const der = await signProfile(parsed.content, signer).finally(() => hsm?.close());
      const where = await writeArtifact(ctx.io, args.out, der, true, 0o600, !!args.force);
      if (where !== 'stdout') note(ctx.io, `Wrote ${where} (signed)`);
    },
  };
}
