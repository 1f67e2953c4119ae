import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { PURPOSES, type CertificatePurpose } from '../../certs/purposes.js';
import { InputInvalid, isProfilesmithError } from '../../errors.js';
import type { ImportIdentityResult } from '../../store/fs-store.js';
import type { AnyStore } from '../../store/open.js';
import { readInputFile, readSecretFile } from '../files.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson, warn } from '../output.js';

const MAX_IDENTITY_BYTES = 10 * 1024 * 1024;

interface ImportArgs extends StoreArgs {
  file: string;
  user: string;
  purpose: CertificatePurpose;
  passwordFile?: string;
  key?: string;
  chain?: string;
  strict?: boolean;
  json?: boolean;
}

interface BatchArgs extends StoreArgs {
  manifest: string;
  strict?: boolean;
  json?: boolean;
}

interface ImportSpec {
  file: string;
  user: string;
  purpose: string;
  passwordFile?: string | undefined;
  key?: string | undefined;
  chain?: string | undefined;
  strict?: boolean | undefined;
}

/** Reads the files of one import and stores the identity. Paths are relative to `base`. */
async function importOne(ctx: Context, store: AnyStore, spec: ImportSpec, base: string): Promise<ImportIdentityResult> {
  if (!(PURPOSES as readonly string[]).includes(spec.purpose)) {
    throw new InputInvalid('purpose', `"${spec.purpose}" is not a purpose; use smime-signing or smime-encryption`);
  }
  const at = (p: string) => resolve(base, p);
  const bytes = await readInputFile(ctx.io, at(spec.file), 'file', MAX_IDENTITY_BYTES);
  const password = spec.passwordFile ? await readSecretFile(ctx.io, spec.passwordFile === '-' ? '-' : at(spec.passwordFile), 'password') : undefined;
  const keyBytes = spec.key ? await readInputFile(ctx.io, at(spec.key), 'key', MAX_IDENTITY_BYTES) : undefined;
  // The certificate code loads when an import runs, not with `cert`'s other subcommands.
  const [{ readIdentity }, { certificatesFrom }] = await Promise.all([import('../../certs/import.js'), import('../../certs/pem.js')]);
  const chain = spec.chain ? certificatesFrom(await readInputFile(ctx.io, at(spec.chain), 'chain', MAX_IDENTITY_BYTES)) : [];
  const bundle = readIdentity(bytes, { ...(password !== undefined ? { password } : {}), ...(keyBytes ? { keyBytes } : {}) });
  return store.importIdentity(bundle, {
    user: spec.user,
    purpose: spec.purpose as CertificatePurpose,
    chain,
    ...(spec.strict ? { strict: true } : {}),
  });
}

function report(ctx: Context, r: ImportIdentityResult, prefix = ''): void {
  for (const w of r.warnings) warn(ctx.io, `${prefix}${w}`);
  const added = [...(r.added?.purpose ? [`now also ${r.added.purpose} (a dual-use certificate)`] : []), ...(r.added?.chain ? [`${r.added.chain} issuer certificate(s) added`] : [])];
  if (r.duplicate && added.length) note(ctx.io, `${prefix}Already in the store: ${r.record.serial} (${r.record.user}, ${r.record.purpose}); ${added.join('; ')}`);
  else if (r.duplicate) note(ctx.io, `${prefix}Already in the store: ${r.record.serial} (${r.record.user}, ${r.record.purpose}${r.record.alsoPurpose ? ` and ${r.record.alsoPurpose}` : ''}); nothing changed`);
  else note(ctx.io, `${prefix}Imported ${r.record.purpose} certificate ${r.record.serial} for ${r.record.user}, valid until ${r.record.notAfter.slice(0, 10)}${r.record.chain?.length ? `, with ${r.record.chain.length} issuer certificate(s)` : ''}`);
}

function importCmd(ctx: Context): CommandModule<object, ImportArgs> {
  return {
    command: 'import <file>',
    describe: 'import an identity (.p12/.pfx, or PEM/DER with its key)',
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('file', { type: 'string', describe: 'PKCS#12, or PEM/DER certificate (with the key in the PEM or --key)' })
        .option('user', { type: 'string', demandOption: true, describe: "the user's address; the certificate must name it" })
        .option('purpose', { choices: PURPOSES, demandOption: true, describe: 'what the identity is for' })
        .option('password-file', { type: 'string', describe: 'file holding the PKCS#12 or key password (- for stdin)' })
        .option('key', { type: 'string', describe: 'private key file (PEM or DER PKCS#8) for a PEM/DER certificate' })
        .option('chain', { type: 'string', describe: 'PEM file of issuer certificates to ship with it' })
        .option('strict', { type: 'boolean', describe: 'refuse a certificate without emailProtection (a key usage unfit for --purpose is always refused)' })
        .option('json', { type: 'boolean', describe: 'print the record as JSON' })
        .example('$0 cert import alice-2019.pfx --store ./store --user alice@example.com --purpose smime-encryption --password-file pw.txt', 'import an old encryption identity') as unknown as Argv<ImportArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      const r = await importOne(ctx, store, args, ctx.io.cwd);
      if (args.json) printJson(ctx.io, { ...r.record, duplicate: r.duplicate, warnings: r.warnings });
      else report(ctx, r);
    },
  };
}

function importBatchCmd(ctx: Context): CommandModule<object, BatchArgs> {
  return {
    command: 'import-batch <manifest>',
    describe: 'import many identities from a CSV manifest',
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('manifest', { type: 'string', describe: 'CSV with header user,file,purpose,password_file[,chain][,key]; paths relative to it' })
        .option('strict', { type: 'boolean', describe: 'as for cert import' })
        .option('json', { type: 'boolean', describe: 'print a JSON summary' })
        .example('$0 cert import-batch pfx/manifest.csv --store ./store', 'import every row') as unknown as Argv<BatchArgs>,
    handler: async (args) => {
      const manifest = resolve(ctx.io.cwd, args.manifest);
      const { parseCsvRecords } = await import('../../util/csv.js');
      const rows = parseCsvRecords((await readInputFile(ctx.io, manifest, 'manifest', MAX_IDENTITY_BYTES)).toString('utf8'));
      if (rows.length && !('user' in rows[0]!.values && 'file' in rows[0]!.values && 'purpose' in rows[0]!.values)) {
        throw new InputInvalid('manifest', `"${args.manifest}" needs a header row with user, file and purpose`);
      }
      const store = await openStoreFromArgs(args, ctx.io, true);
      const summary = { imported: 0, unchanged: 0, failed: 0, failures: [] as { line: number; message: string }[] };
      for (const { line, values } of rows) {
        try {
          const r = await importOne(
            ctx,
            store,
            { file: values.file ?? '', user: values.user ?? '', purpose: values.purpose ?? '', passwordFile: values.password_file || undefined, chain: values.chain || undefined, key: values.key || undefined, strict: args.strict },
            dirname(manifest),
          );
          if (r.duplicate) summary.unchanged++;
          else summary.imported++;
          if (!args.json) report(ctx, r, `line ${line}: `);
        } catch (err) {
          if (!isProfilesmithError(err) && !(err instanceof Error && err.name === 'UsageError')) throw err;
          summary.failed++;
          summary.failures.push({ line, message: (err as Error).message });
          warn(ctx.io, `line ${line}: ${(err as Error).message}`);
        }
      }
      if (args.json) printJson(ctx.io, summary);
      note(ctx.io, `${summary.imported} imported, ${summary.unchanged} already present, ${summary.failed} failed`);
      if (summary.failed) ctx.exitCode = 1;
    },
  };
}

export { importCmd as importCommand, importBatchCmd as importBatchCommand };
