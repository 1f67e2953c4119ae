import type { Argv, CommandModule } from 'yargs';
import { isProfilesmithError } from '../../errors.js';
import { lintProfile, type LintResult } from '../../profile/lint.js';
import { readInputFile } from '../files.js';
import type { Context } from '../options.js';
import { printJson } from '../output.js';

interface Args {
  files: string[];
  json?: boolean;
  strict?: boolean;
}

export function lintCommand(ctx: Context): CommandModule<object, Args> {
  return {
    command: 'lint <files..>',
    describe: "check profiles against Apple's schema and iOS's rules",
    builder: (y: Argv) =>
      y
        .positional('files', { type: 'string', array: true, describe: 'profiles: XML, binary or signed' })
        .option('json', { type: 'boolean', describe: 'print only JSON' })
        .option('strict', { type: 'boolean', describe: 'warnings count as failures too' })
        .example('$0 lint exported.mobileconfig --strict', 'check a profile made elsewhere')
        .epilogue('Exit codes: 0 no errors (with --strict: no findings), 3 findings, 1 a file is not a profile') as unknown as Argv<Args>,
    handler: async (args) => {
      const results: ({ file: string } & (LintResult | { error: { code: string; message: string } }))[] = [];
      let failed = false;
      let unreadable = false;
      for (const file of args.files) {
        try {
          const r = await lintProfile(await readInputFile(ctx.io, file, 'profile'));
          results.push({ file, ...r });
          if (r.findings.some((f) => f.severity === 'error' || args.strict)) failed = true;
          if (!args.json) {
            for (const f of r.findings) ctx.io.stdout.write(`${file}: ${f.severity}: ${f.path}: ${f.message} [${f.rule}]\n`);
            if (!r.findings.length) ctx.io.stdout.write(`${file}: no findings (${r.signed ? 'signed ' : ''}${r.format} plist)\n`);
          }
        } catch (err) {
          if (!isProfilesmithError(err)) throw err;
          unreadable = true;
          results.push({ file, error: { code: err.code, message: err.message } });
          if (!args.json) ctx.io.stderr.write(`error: ${file}: ${err.message}\n`);
        }
      }
      if (args.json) printJson(ctx.io, results);
      ctx.exitCode = unreadable ? 1 : failed ? 3 : 0;
    },
  };
}
