import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs } from '../options.js';
import { note, printJson, printTable } from '../output.js';
import { isRemovedUser, statusOf, type CertificateRecord } from '../../store/store.js';

interface RemoveArgs extends StoreArgs {
  email: string;
  revoke?: boolean;
  json?: boolean;
}

function remove(ctx: Context): CommandModule<object, RemoveArgs> {
  return {
    command: 'remove <email>',
    describe: 'unenroll a user: no more profiles; --revoke revokes',
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('email', { type: 'string', describe: "the user's address" })
        .option('revoke', { type: 'boolean', describe: 'revoke every certificate our CA issued to the user, retired ones included (outside ones are retired)' })
        .option('json', { type: 'boolean', describe: 'print what changed as JSON' })
        .example('$0 user remove bob@example.com --store ./store --revoke', 'unenroll Bob and revoke his certificates') as unknown as Argv<RemoveArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const r = await store.removeUser(args.email, { revoke: !!args.revoke });
      if (args.json) return printJson(ctx.io, { revoked: r.revoked.map((x) => x.serial), retired: r.retired.map((x) => x.serial) });
      const outside = r.retired.filter((x) => x.source === 'imported');
      note(ctx.io, `Removed ${args.email}: ${r.revoked.length} revoked, ${r.retired.length} retired`);
      if (outside.length) {
        note(ctx.io, `${outside.length} certificate(s) came from outside CAs and cannot be revoked here; ask their issuer: ${outside.map((x) => `${x.serial} (${x.issuer})`).join('; ')}`);
      }
      if (r.revoked.length) note(ctx.io, store.pkiUrl ? 'The CRL and OCSP answers of `profilesmith pki serve` list them at once' : 'Publish the CRL with `profilesmith crl`');
      else if (!args.revoke && r.retired.some((x) => x.source === 'issued')) note(ctx.io, 'Nothing was revoked: the certificates stay valid for relying parties; `user remove --revoke` revokes them later too');
    },
  };
}

function list(ctx: Context): CommandModule<object, StoreArgs & { json?: boolean }> {
  return {
    command: 'list',
    describe: 'the users of the store, with their certificates by purpose and state',
    builder: (y: Argv) =>
      storeOptions(y).option('json', { type: 'boolean', describe: 'print JSON' }).example('$0 user list --store ./store', 'who is enrolled') as unknown as Argv<StoreArgs & { json?: boolean }>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const now = new Date();
      const users = new Map<string, { user: string; signing: number; encryption: number; total: number; removed: boolean }>();
      const byUser = new Map<string, CertificateRecord[]>();
      for (const r of await store.listCertificates()) {
        const key = r.user.toLowerCase();
        const u = users.get(key) ?? { user: r.user, signing: 0, encryption: 0, total: 0, removed: true };
        const status = statusOf(r, now);
        u.total++;
        if (status === 'valid') u[r.purpose === 'smime-signing' ? 'signing' : 'encryption']++;
        users.set(key, u);
        byUser.set(key, [...(byUser.get(key) ?? []), r]);
      }
      for (const [key, u] of users) u.removed = isRemovedUser(byUser.get(key)!);
      const rows = [...users.values()].sort((a, b) => a.user.localeCompare(b.user));
      if (args.json) return printJson(ctx.io, rows.map((u) => ({ user: u.user, validSigning: u.signing, validEncryption: u.encryption, certificates: u.total, state: u.removed ? 'removed' : 'enrolled' })));
      printTable(ctx.io, ['USER', 'VALID SIGNING', 'VALID ENCRYPTION', 'CERTIFICATES', 'STATE'], rows.map((u) => [u.user, String(u.signing), String(u.encryption), String(u.total), u.removed ? 'removed' : 'enrolled']));
    },
  };
}

export function userCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.user,
    builder: (y: Argv) => y.command(list(ctx)).command(remove(ctx)).demandCommand(1),
    handler: () => {},
  };
}
