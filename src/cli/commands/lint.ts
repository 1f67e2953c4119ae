import { createRequire } from 'node:module';
import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { certificatesFrom } from '../../certs/pem.js';
import { isProfilesmithError } from '../../errors.js';
import { lintProfile, type LintResult } from '../../profile/lint.js';
import { LINT_RULES } from '../../profile/rules.js';
import { lintToSarif } from '../../profile/sarif.js';
import { UsageError } from '../errors.js';
import { readInputFile, readPrivateKeyFile } from '../files.js';
import type { Context } from '../options.js';
import { printJson } from '../output.js';

interface Args {
  files: string[];
  json?: boolean;
  format?: 'text' | 'json' | 'sarif';
  strict?: boolean;
  ignore?: string[];
  target?: 'ios' | 'macos' | 'any';
  decryptKey?: string;
  decryptCert?: string;
  passwordFile?: string;
}

function version(): string | undefined {
  try {
    return (createRequire(import.meta.url)('../../../package.json') as { version?: string }).version;
  } catch {
    return undefined;
  }
}

export function lintCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.lint,
    builder: (y: Argv) =>
      y
        .positional('files', { type: 'string', array: true, describe: 'profiles: XML, binary or signed (DER or BER)' })
        .option('format', { choices: ['text', 'json', 'sarif'] as const, describe: 'output: text (default), json, or SARIF 2.1.0 for code-scanning dashboards' })
        .option('json', { type: 'boolean', describe: 'the same as --format json' })
        .option('strict', { type: 'boolean', describe: 'warnings count as failures too' })
        .option('ignore', { type: 'string', array: true, describe: 'leave out a rule by id (repeatable); see the README for the rules' })
        .option('target', { choices: ['ios', 'macos', 'any'] as const, describe: "judge availability for this platform (default: the profile's TargetDeviceType)" })
        .option('decrypt-key', { type: 'string', describe: "the device's private key, to decrypt an encrypted profile's payloads and lint them" })
        .option('decrypt-cert', { type: 'string', describe: "the device's certificate, to pick its recipient entry" })
        .option('password-file', { type: 'string', describe: 'password of an encrypted --decrypt-key file' })
        .example('$0 lint exported.mobileconfig --strict', 'check a profile made elsewhere')
        .example('$0 lint profiles/*.mobileconfig --format sarif > lint.sarif', 'for a code-scanning dashboard')
        .epilogue('Exit codes: 0 no errors (with --strict: no errors or warnings), 3 findings, 1 a file is not a profile') as unknown as Argv<Args>,
    handler: async (args) => {
      const format = args.format ?? (args.json ? 'json' : 'text');
      for (const rule of args.ignore ?? []) {
        if (!Object.hasOwn(LINT_RULES, rule)) throw new UsageError(`--ignore: there is no rule "${rule}" (the README lists them)`);
      }
      if (args.decryptCert && !args.decryptKey) throw new UsageError('--decrypt-cert goes with --decrypt-key');
      const decrypt = args.decryptKey
        ? {
            key: await readPrivateKeyFile(ctx.io, args.decryptKey, 'decrypt-key', args.passwordFile),
            ...(args.decryptCert ? { certificate: certificatesFrom(await readInputFile(ctx.io, args.decryptCert, 'decrypt-cert', 1024 * 1024))[0]! } : {}),
          }
        : undefined;
      const results: ({ file: string } & (LintResult | { error: { code: string; message: string } }))[] = [];
      let failed = false;
      let unreadable = false;
      for (const file of args.files) {
        try {
          const r = await lintProfile(await readInputFile(ctx.io, file, 'profile'), {
            ...(args.ignore?.length ? { ignore: args.ignore } : {}),
            ...(args.target ? { target: args.target } : {}),
            ...(decrypt ? { decrypt } : {}),
          });
          results.push({ file, ...r });
          if (r.findings.some((f) => f.severity === 'error' || (args.strict && f.severity === 'warning'))) failed = true;
          if (format === 'text') {
            for (const f of r.findings) ctx.io.stdout.write(`${file}: ${f.severity}: ${f.path}: ${f.message} [${f.rule}]\n`);
            const counted = r.findings.filter((f) => f.severity !== 'info').length;
            const what = `${r.signed ? `signed${r.encoding === 'ber' ? ' (BER)' : ''} ` : ''}${r.format} plist${r.encrypted ? (r.decrypted ? ', payloads decrypted and checked' : ', payloads encrypted and not checked') : ''}`;
            if (!counted) ctx.io.stdout.write(`${file}: no errors or warnings (${what})\n`);
          }
        } catch (err) {
          if (!isProfilesmithError(err)) throw err;
          unreadable = true;
          results.push({ file, error: { code: err.code, message: err.message } });
          if (format === 'text') ctx.io.stderr.write(`error: ${file}: ${err.message}\n`);
        }
      }
      if (format === 'json') printJson(ctx.io, results);
      if (format === 'sarif') {
        const v = version();
        printJson(ctx.io, lintToSarif(results.map((r) => ('error' in r ? { file: r.file, error: r.error } : { file: r.file, result: r })), v ? { version: v } : {}));
      }
      ctx.exitCode = unreadable ? 1 : failed ? 3 : 0;
    },
  };
}
