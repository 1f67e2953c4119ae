import yargs, { type Argv } from 'yargs';
import { batchCommand } from './commands/batch.js';
import { caCommand } from './commands/ca.js';
import { certCommand } from './commands/cert.js';
import { crlCommand } from './commands/crl.js';
import { pkiCommand } from './commands/pki.js';
import { decryptCommand } from './commands/decrypt.js';
import { storeCommand } from './commands/store.js';
import { userCommand } from './commands/user.js';
import { demoCommand } from './commands/demo.js';
import { generateCommand } from './commands/generate.js';
import { initCommand } from './commands/init.js';
import { linkCommand } from './commands/link.js';
import { serveCommand } from './commands/serve.js';
import { inspectCommand } from './commands/inspect.js';
import { lintCommand } from './commands/lint.js';
import { signCommand } from './commands/sign.js';
import { templatesCommand } from './commands/templates.js';
import { verifyCommand } from './commands/verify.js';
import { exitCodeFor, formatError, UsageError } from './errors.js';
import type { Io } from './io.js';
import type { Context } from './options.js';
import { errorLine } from './output.js';

const EPILOGUE = `Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 a check (verify, lint, store check) ran and said no.
Environment: PROFILESMITH_STORE (store directory), PROFILESMITH_PASSPHRASE, PROFILESMITH_PASSPHRASE_FILE,
PROFILESMITH_NEW_PASSPHRASE (store passphrase), PROFILESMITH_DEBUG=1 (same as --debug), NO_COLOR.`;

export function buildParser(ctx: Context, argv: string[]): Argv {
  return yargs(argv)
    .scriptName('profilesmith')
    .usage('$0 <command> [options]')
    .command(initCommand(ctx))
    .command(certCommand(ctx))
    .command(caCommand(ctx))
    .command(generateCommand(ctx))
    .command(batchCommand(ctx))
    .command(verifyCommand(ctx))
    .command(signCommand(ctx))
    .command(decryptCommand(ctx))
    .command(serveCommand(ctx))
    .command(linkCommand(ctx))
    .command(lintCommand(ctx))
    .command(inspectCommand(ctx))
    .command(templatesCommand(ctx))
    .command(userCommand(ctx))
    .command(crlCommand(ctx))
    .command(pkiCommand(ctx))
    .command(storeCommand(ctx))
    .command(demoCommand(ctx))
    .option('debug', { type: 'boolean', describe: 'print stack traces and causes' })
    .example('$0 init --store ./store --org "Example Corp"', 'create a store and its CA')
    .example('$0 cert issue --store ./store --user alice@example.com --name "Alice Example" --purpose smime-signing', 'issue a certificate')
    .example('$0 generate exchange-smime --store ./store --user alice@example.com --set exchange.host=mail.example.com -o alice.mobileconfig', 'make a profile')
    .example('$0 verify alice.mobileconfig --store ./store', 'check a profile')
    .epilogue(EPILOGUE)
    .strict()
    .demandCommand(1, 'Name a command; see --help')
    .recommendCommands()
    .exitProcess(false)
    .wrap(Math.min(110, ctx.io.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      throw new UsageError(msg);
    });
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const ctx: Context = { io, exitCode: 0 };
  const debug = argv.includes('--debug') || io.env.PROFILESMITH_DEBUG === '1';
  try {
    let output = '';
    await buildParser(ctx, argv).parseAsync(argv, {}, (_err, _args, out) => {
      output = out;
    });
    if (output) io.stdout.write(output + '\n');
    return ctx.exitCode;
  } catch (err) {
    errorLine(io, formatError(err, debug));
    return exitCodeFor(err);
  }
}
