import { resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { runBatch } from '../../batch/run.js';
import { UsageError } from '../errors.js';
import { readInputFile } from '../files.js';
import { getPassphrase, templateArg, templateValues, storeDir, storeOptions, type Context, type StoreArgs } from '../options.js';
import { InputInvalid } from '../../errors.js';
import { checkOutput, interruptSignal, note, printJson } from '../output.js';
import { batchReporter } from '../progress.js';
import { pkcs11OptionsFromArgs, signerOptions, type SignerArgs } from '../signer.js';

interface Args extends StoreArgs, SignerArgs {
  template: string;
  users: string;
  out: string;
  set?: string[];
  data?: string;
  jobs?: number;
  pkcs12Password: boolean;
  passwordsOut?: string;
  onlyChanged?: boolean;
  force?: boolean;
  includeRevoked?: boolean;
  strict?: boolean;
  dryRun?: boolean;
  skipRemoved?: boolean;
  encryptTo?: string;
  cipher: 'aes-256' | '3des';
  json?: boolean;
}

/** `-o`'s rule for --passwords-out, with batch's two ways on: --only-changed merges, --force replaces. */
function checkPasswordsOut(ctx: Context, out: string, force: boolean): void {
  try {
    checkOutput(ctx.io, out, force, '--passwords-out');
  } catch (err) {
    if (err instanceof InputInvalid && err.message.startsWith(`"${out}" exists`))
      throw new InputInvalid('passwords-out', `"${out}" exists; pass --only-changed to add this run's passwords to it, or --force to replace it (or choose another --passwords-out)`);
    throw err;
  }
}

export function batchCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.batch,
    builder: (y: Argv) =>
      signerOptions(storeOptions(y))
        .positional('template', { type: 'string', describe: 'built-in template name or path' })
        .option('users', { type: 'string', demandOption: true, describe: 'users.csv (header: email[,name][,username][,template variables…]) or users.json' })
        .option('out', { type: 'string', demandOption: true, describe: 'output directory: one <address>.mobileconfig per user' })
        .option('set', { type: 'string', array: true, describe: 'template variable for every user, key=value (not for secrets)' })
        .option('data', { type: 'string', describe: 'JSON file of template variables for every user' })
        .option('jobs', { type: 'number', describe: 'worker threads (default: the number of cores)' })
        .option('pkcs12-password', { type: 'boolean', default: true, describe: '--no-pkcs12-password keeps passwords out of the profiles; needs --passwords-out' })
        .option('passwords-out', { type: 'string', describe: 'CSV of the PKCS#12 passwords (mode 0600)' })
        .option('only-changed', { type: 'boolean', describe: 'skip users whose profile would not change; an existing --passwords-out keeps its rows and gets the new ones' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace an existing --passwords-out (without it, or --only-changed, an existing file is refused)' })
        .option('include-revoked', { type: 'boolean', describe: 'also ship revoked encryption certificates' })
        .option('strict', { type: 'boolean', describe: 'stop at the first failed row' })
        .option('dry-run', { type: 'boolean', describe: 'make every profile in memory and say what would be written; write nothing' })
        .option('skip-removed', { type: 'boolean', describe: 'skip users removed from the store (user remove) instead of failing their rows' })
        .option('encrypt-to', { type: 'string', describe: 'device certificate to encrypt every profile to (a device_cert column overrides it per user)' })
        .option('cipher', { choices: ['aes-256', '3des'] as const, default: 'aes-256' as const, describe: 'content cipher for encrypted profiles' })
        .option('json', { type: 'boolean', describe: 'print the summary as JSON on stdout' })
        .example('$0 batch exchange-smime --store ./store --users users.csv --out profiles --set exchange.host=mail.example.com', 'a profile per user')
        .example('$0 batch exchange-smime --store ./store --users users.csv --out profiles --signer "pkcs11:token=HSM;object=profile-signer?module-path=/usr/lib/softhsm/libsofthsm2.so" --pin-file pin.txt --signer-cert signer.pem --chain issuing-ca.pem', 'every worker signs through the HSM')
        .example('$0 batch exchange-smime --store ./store --users users.csv --out profiles --dry-run', 'check every row first; nothing is written')
        .epilogue(
          'Ctrl-C stops the run: the rows in flight finish, the run record (OUT/.profilesmith-batch.json) and --passwords-out are written for them, ' +
            'a summary is printed, and the exit code is 130; rerun with --only-changed to do the rest ' +
            '(an existing --passwords-out keeps its rows and gets the new ones; without --only-changed it is refused unless --force).\n' +
            'Exit codes: 0 every row done, 1 a row failed (the others still complete) or the run could not start, 130 stopped by Ctrl-C',
        ) as unknown as Argv<Args>,
    handler: async (args) => {
      if (!args.pkcs12Password && !args.passwordsOut) throw new UsageError('--no-pkcs12-password needs --passwords-out FILE, or the passwords would be lost');
      // Nothing the tool wrote is replaced silently: the passwords are what users must type.
      if (args.passwordsOut) checkPasswordsOut(ctx, args.passwordsOut, !!args.force || !!args.onlyChanged);
      if (args.jobs !== undefined && (!Number.isInteger(args.jobs) || args.jobs < 1)) throw new UsageError('--jobs takes a whole number from 1');
      // The config's values, the data file and the sets, with the secret and unknown-key checks
      // done here, once; users-file columns override them in the workers.
      const template = templateArg(ctx.io, args.template);
      const data = await templateValues(ctx, template, args.data, args.set);
      const passphrase = await getPassphrase(args, ctx.io);
      const pkcs11 = await pkcs11OptionsFromArgs(args, ctx.io);
      const report = batchReporter(ctx.io, 'batch', !!args.json);
      const stop = interruptSignal(ctx.io);
      const passwordsPath = args.passwordsOut ? resolve(ctx.io.cwd, args.passwordsOut) : undefined;
      const summary = await runBatch({
        storeDir: storeDir(args, ctx.io),
        passphrase,
        template,
        usersFile: resolve(ctx.io.cwd, args.users),
        outDir: resolve(ctx.io.cwd, args.out),
        // The --set values are in data already (templateValues applied them).
        data,
        ...(args.jobs ? { jobs: args.jobs } : {}),
        ...(pkcs11 ? { pkcs11 } : {}),
        embedPkcs12Passwords: args.pkcs12Password,
        ...(passwordsPath ? { passwordsOut: passwordsPath, passwordsOutExisting: args.force ? 'replace' : args.onlyChanged ? 'merge' : 'refuse' } : {}),
        onlyChanged: !!args.onlyChanged,
        includeRevoked: !!args.includeRevoked,
        strict: !!args.strict,
        dryRun: !!args.dryRun,
        skipRemoved: !!args.skipRemoved,
        signal: stop.signal,
        ...(args.encryptTo ? { encryptTo: await readInputFile(ctx.io, args.encryptTo, 'encrypt-to', 1024 * 1024) } : {}),
        cipher: args.cipher === '3des' ? 'des-ede3-cbc' : 'aes-256-cbc',
        ...report.callbacks,
      }).catch((err: unknown) => {
        // The library names the full path; the admin typed a shorter one.
        if (err instanceof InputInvalid && err.field === 'passwords-out' && passwordsPath && args.passwordsOut) throw new InputInvalid(err.field, err.message.replace(`"${passwordsPath}"`, `"${args.passwordsOut}"`));
        throw err;
      });
      report.finish();
      const text =
        `${summary.dryRun ? 'Dry run, nothing written: ' : ''}${summary.generated} ${summary.dryRun ? 'would be written' : 'generated'}, ${summary.unchanged} unchanged, ` +
        `${summary.failed} failed${summary.skipped ? `, ${summary.skipped} removed users skipped` : ''} in ${(summary.elapsedMs / 1000).toFixed(1)} s (${summary.profilesPerSecond.toFixed(1)} profiles/s)` +
        `${summary.stopped ? '; stopped at the first failure (--strict)' : ''}` +
        `${summary.interrupted ? `; interrupted after ${summary.done} of ${summary.total} rows: the run record holds them, and --only-changed does the rest` : ''}`;
      note(ctx.io, text);
      if (args.json) printJson(ctx.io, summary);
      if (summary.failed) ctx.exitCode = 1;
      if (summary.interrupted) ctx.exitCode = stop.exitCode() ?? 130;
    },
  };
}
