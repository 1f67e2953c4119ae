import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { checkStore, quarantineEntries, type QuarantinedEntry } from '../../store/check.js';
import { FileStore } from '../../store/file/file-store.js';
import { closeStore, openStore } from '../../store/open.js';
import { migrateStore } from '../../store/migrate.js';
import { UsageError } from '../errors.js';
import { readSecretFile } from '../files.js';
import { readSecret } from '../io.js';
import { getPassphrase, openStoreFromArgs, storeDir, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson } from '../output.js';

interface CheckArgs extends StoreArgs {
  json?: boolean;
  quarantine?: boolean;
}

interface PassphraseArgs extends StoreArgs {
  newPassphraseFile?: string;
}

function check(ctx: Context): CommandModule<object, CheckArgs> {
  return {
    command: 'check',
    describe: 'report damaged entries, wrong modes, keys that do not decrypt',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('json', { type: 'boolean', describe: 'print the findings as JSON' })
        .option('quarantine', { type: 'boolean', describe: 'move damaged certificate entries aside, into STORE/quarantine/ (move one back to restore it)' })
        .example('$0 store check --store ./store', 'check everything (keys too, when the passphrase is given)')
        .example('$0 store check --store ./store --quarantine', 'move damaged entries aside so that the rest of the store works')
        .epilogue('Exit codes: 0 no errors, 1 could not check, 3 checked and found errors. Nothing is changed or deleted, except that --quarantine moves damaged entries (whole) into STORE/quarantine/.') as unknown as Argv<CheckArgs>,
    handler: async (args) => {
      const store = await openStore(storeDir(args, ctx.io));
      if (args.quarantine && !(store instanceof FileStore)) throw new UsageError('--quarantine is for a file store; a PostgreSQL store keeps no entry files to move aside');
      const hasPassphrase = !!(args.passphraseFile || ctx.io.env.PROFILESMITH_PASSPHRASE || ctx.io.env.PROFILESMITH_PASSPHRASE_FILE || ctx.io.stdin.isTTY);
      if (hasPassphrase) await store.unlock(await getPassphrase(args, ctx.io));
      let findings = await checkStore(store);
      let moved: QuarantinedEntry[] = [];
      if (args.quarantine && store instanceof FileStore) {
        moved = await quarantineEntries(store, findings);
        // What is left, once they are aside.
        if (moved.length) findings = await checkStore(store);
      }
      const errors = findings.filter((f) => f.severity === 'error').length;
      if (args.json) printJson(ctx.io, { keysChecked: hasPassphrase, errors, findings, ...(args.quarantine ? { quarantined: moved } : {}) });
      else {
        for (const f of findings) {
          const advice = f.entry && !args.quarantine ? '; `profilesmith store check --quarantine` moves the entry aside' : '';
          ctx.io.stdout.write(`${f.severity}: ${f.path}: ${f.message}${advice}\n`);
        }
        for (const m of moved) note(ctx.io, `Moved ${m.from} to ${m.to} in ${store.dir}: its certificate is no longer listed or put in profiles; to restore it, repair it and move it back to ${m.from}`);
        if (!hasPassphrase) note(ctx.io, 'Keys were not decrypted: give the passphrase to check them too');
        note(ctx.io, errors ? `${errors} ${errors === 1 ? 'error' : 'errors'} found in ${store.dir}` : `No errors in ${store.dir}`);
      }
      if (errors) ctx.exitCode = 3;
    },
  };
}

function passphrase(ctx: Context): CommandModule<object, PassphraseArgs> {
  return {
    command: 'passphrase',
    describe: 'change the passphrase: every key re-encrypted, or none',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('new-passphrase-file', { type: 'string', describe: 'file holding the new passphrase; or PROFILESMITH_NEW_PASSPHRASE, or a prompt' })
        .example('$0 store passphrase --store ./store --new-passphrase-file new.txt', 'rotate the passphrase') as unknown as Argv<PassphraseArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      let next: string;
      if (args.newPassphraseFile) next = await readSecretFile(ctx.io, args.newPassphraseFile, 'new passphrase');
      else if (ctx.io.env.PROFILESMITH_NEW_PASSPHRASE) next = ctx.io.env.PROFILESMITH_NEW_PASSPHRASE;
      else {
        const how = 'pass --new-passphrase-file or set PROFILESMITH_NEW_PASSPHRASE';
        next = await readSecret(ctx.io, 'New passphrase: ', how);
        if ((await readSecret(ctx.io, 'Again: ', how)) !== next) throw new UsageError('The passphrases do not match');
      }
      if (!next) throw new UsageError('The new passphrase must not be empty');
      const n = await store.changePassphrase(next);
      note(ctx.io, `Re-encrypted ${n} keys under the new passphrase`);
    },
  };
}

interface MigrateArgs {
  from: string;
  to: string;
  passphraseFile?: string;
  json?: boolean;
}

function migrateCommand(ctx: Context): CommandModule<object, MigrateArgs> {
  return {
    command: 'migrate',
    describe: 'copy a store whole into an empty directory or PostgreSQL database',
    builder: (y: Argv) =>
      y
        .option('from', { type: 'string', demandOption: true, describe: 'the store: a directory or a postgres:// URL' })
        .option('to', { type: 'string', demandOption: true, describe: 'an empty directory, or postgres://user@host:port/db (empty; its password in PGPASSWORD or ~/.pgpass)' })
        .option('passphrase-file', { type: 'string', describe: 'with the passphrase (or PROFILESMITH_PASSPHRASE), every key is decrypted on both ends by store check afterwards, and a key the target keeps under other associated data is sealed again' })
        .option('json', { type: 'boolean', describe: 'print what was copied and both checks as JSON' })
        .example('$0 store migrate --from ./store --to postgres://profilesmith@db.internal/pki', 'move the store into PostgreSQL')
        .example('$0 store migrate --from postgres://profilesmith@db.internal/pki --to ./store-copy --passphrase-file pass.txt', 'and back into a directory')
        .epilogue('The source is left as it was; a failure leaves the target as it was. Sealed keys are copied as they are (same KDF, same passphrase) wherever the target keeps them under the same associated data; into a directory, a profile signer\'s key is sealed again, which needs the passphrase. Exit codes: 0, 1 refused (a non-empty target, a damaged source, a key to seal again without the passphrase), 3 copied but a check found errors.') as unknown as Argv<MigrateArgs>,
    handler: async (args) => {
      const from = storeDir({ store: args.from }, ctx.io);
      const to = storeDir({ store: args.to }, ctx.io);
      if (from === to) throw new UsageError('--from and --to are the same store');
      const source = await openStore(from);
      try {
        const hasPassphrase = !!(args.passphraseFile || ctx.io.env.PROFILESMITH_PASSPHRASE || ctx.io.env.PROFILESMITH_PASSPHRASE_FILE);
        const passphrase = hasPassphrase ? await getPassphrase(args, ctx.io) : undefined;
        if (passphrase !== undefined) await source.unlock(passphrase);
        const copied = await migrateStore(source, to, passphrase !== undefined ? { passphrase } : {});
        const target = await openStore(to);
        try {
          if (passphrase !== undefined) await target.unlock(passphrase);
          const checks = { from: await checkStore(source), to: await checkStore(target) };
          const errors = (f: { severity: string }[]) => f.filter((x) => x.severity === 'error').length;
          if (args.json) printJson(ctx.io, { copied, keysChecked: hasPassphrase, checks, errors: { from: errors(checks.from), to: errors(checks.to) } });
          else {
            note(ctx.io, `Copied ${copied.certificates} certificates, ${copied.keys} sealed keys, ${copied.chains} issuer certificates, ${copied.revocations} revocations and ${copied.links} links into ${target.dir}`);
            for (const [end, f] of Object.entries(checks)) for (const x of f) ctx.io.stdout.write(`${end}: ${x.severity}: ${x.path}: ${x.message}\n`);
            note(ctx.io, `store check: errors: ${errors(checks.from)} in the source, ${errors(checks.to)} in the target${hasPassphrase ? ' (keys decrypted on both ends)' : '; give the passphrase to decrypt every key on both ends too'}`);
          }
          if (errors(checks.from) || errors(checks.to)) ctx.exitCode = 3;
        } finally {
          await closeStore(target);
        }
      } finally {
        await closeStore(source);
      }
    },
  };
}

function path(ctx: Context): CommandModule<object, StoreArgs> {
  return {
    command: 'path',
    describe: 'print the store directory',
    builder: (y: Argv) => storeOptions(y).example('$0 store path', 'where the store is') as unknown as Argv<StoreArgs>,
    handler: (args) => {
      ctx.io.stdout.write(storeDir(args, ctx.io) + '\n');
    },
  };
}

export function storeCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.store,
    builder: (y: Argv) => y.command(check(ctx)).command(passphrase(ctx)).command(migrateCommand(ctx)).command(path(ctx)).demandCommand(1),
    handler: () => {},
  };
}
