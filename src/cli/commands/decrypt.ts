import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { certificatesFrom } from '../../certs/pem.js';
import { decryptProfile } from '../../profile/decrypt.js';
import { readInputFile, readPrivateKeyFile } from '../files.js';
import type { Context } from '../options.js';
import { note, writeArtifact, checkOutput } from '../output.js';

interface Args {
  file: string;
  key: string;
  cert?: string;
  passwordFile?: string;
  out: string;
  force?: boolean;
}

export function decryptCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.decrypt,
    builder: (y: Argv) =>
      y
        .positional('file', { type: 'string', describe: 'an encrypted profile (signed or not)' })
        .option('key', { type: 'string', demandOption: true, describe: "the device's private key (PEM or DER PKCS#8)" })
        .option('cert', { type: 'string', describe: "the device's certificate, to pick its recipient entry" })
        .option('password-file', { type: 'string', describe: 'password of an encrypted key file' })
        .option('out', { alias: 'o', type: 'string', default: '-', describe: 'output file (- for stdout)' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace the output file if it exists (without it, an existing file is refused)' })
        .example('$0 decrypt alice.mobileconfig --key device.key --cert device.pem -o plain.mobileconfig', 'see what was encrypted') as unknown as Argv<Args>,
    handler: async (args) => {
      checkOutput(ctx.io, args.out, !!args.force);
      const key = await readPrivateKeyFile(ctx.io, args.key, 'key', args.passwordFile);
      const cert = args.cert ? certificatesFrom(await readInputFile(ctx.io, args.cert, 'cert', 1024 * 1024))[0] : undefined;
      const xml = decryptProfile(await readInputFile(ctx.io, args.file, 'profile'), key, cert);
      const where = await writeArtifact(ctx.io, args.out, Buffer.from(xml, 'utf8'), false, 0o600, !!args.force);
      if (where !== 'stdout') note(ctx.io, `Wrote ${where} (decrypted; unsigned)`);
    },
  };
}
