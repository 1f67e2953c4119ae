import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { REVOCATION_REASONS, type RevocationReason } from '../../certs/revocation-reasons.js';
import { PURPOSES, type CertificatePurpose } from '../../certs/purposes.js';
import { statusOf } from '../../store/record.js';
import { InputInvalid, isProfilesmithError } from '../../errors.js';
import { UsageError } from '../errors.js';
import { readSecretFile } from '../files.js';
import { openStoreFromArgs, storeOptions, type Context, type StoreArgs, durationFlag } from '../options.js';
import { errorLine, interruptSignal, note, printJson, printTable, warn, writeArtifact, checkOutput, shellWord } from '../output.js';
import { importBatchCommand, importCommand } from './cert-import.js';
import { resolve } from 'node:path';
// What only some subcommands need (the certificate code, the batch runner) loads in their
// handlers: every subcommand of `cert` loads this module.

interface IssueArgs extends StoreArgs {
  user: string;
  name: string;
  purpose: CertificatePurpose;
  days: number;
  json?: boolean;
  force?: boolean;
}

interface ListArgs extends StoreArgs {
  user?: string;
  expiring?: string;
  json?: boolean;
}

interface ShowArgs extends StoreArgs {
  id: string;
  json?: boolean;
  pem?: boolean;
}

interface ExportArgs extends StoreArgs {
  serial: string;
  format: 'pem' | 'der' | 'p12';
  out?: string;
  force?: boolean;
  passwordFile?: string;
}

interface RenewArgs extends StoreArgs {
  user: string;
  purpose: CertificatePurpose;
  days?: number;
  json?: boolean;
}

interface IssueBatchArgs extends StoreArgs {
  users: string;
  purpose: CertificatePurpose;
  days?: number;
  jobs?: number;
  json?: boolean;
  dryRun?: boolean;
  skipRemoved?: boolean;
}

/** What publishes the CRL after a revocation, as a command that runs as printed (the store, the CA, a file). */
function crlHint(pkiUrl: string | undefined, store: string | undefined, ca: string): string {
  const command = ['profilesmith crl', ...(store ? ['--store', shellWord(store)] : []), '--ca', shellWord(ca), '-o', shellWord(`${ca}.crl`)].join(' ');
  return pkiUrl ? `\`profilesmith pki serve\` publishes it at once; for a copy elsewhere run: ${command}` : `Publish the CRL: ${command}`;
}

interface RevokeArgs extends StoreArgs {
  serial: string;
  reason: RevocationReason;
}

/** Says so when the store cut a certificate's validity to its issuing CA's. */
function warnIfClamped(ctx: Context, record: { notBefore: string; notAfter: string }, days: number | undefined): void {
  const wanted = Date.parse(record.notBefore) + (days ?? 365) * 86_400_000;
  if (Date.parse(record.notAfter) < wanted) {
    warn(ctx.io, `the validity was clamped to the issuing CA's notAfter (${record.notAfter.slice(0, 10)}): a certificate never outlives its issuer`);
  }
}

function issue(ctx: Context): CommandModule<object, IssueArgs> {
  return {
    command: 'issue',
    describe: 'issue an S/MIME certificate for a user from the store CA',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('user', { type: 'string', demandOption: true, describe: 'email address (the only rfc822Name SAN)' })
        .option('name', { type: 'string', demandOption: true, describe: 'subject common name' })
        .option('purpose', { choices: PURPOSES, demandOption: true, describe: 'certificate template' })
        .option('days', { type: 'number', default: 365, describe: "validity in days (1-3650); a notAfter past the issuing CA's is clamped to it, with a warning" })
        .option('json', { type: 'boolean', describe: 'print the new record as JSON' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'issue a signing certificate even if the user holds a valid one' })
        .example(
          '$0 cert issue --store ./store --user alice@example.com --name "Alice Example" --purpose smime-signing',
          'issue a signing certificate',
        ) as unknown as Argv<IssueArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      if (args.purpose === 'smime-signing' && !args.force) {
        // A profile carries one signing identity: a second one is a renewal, or a mistake.
        const now = new Date();
        const held = (await store.listCertificates({ user: args.user, purpose: 'smime-signing' })).filter((r) => !r.keyOnDevice && statusOf(r, now) === 'valid').at(-1);
        if (held) {
          throw new InputInvalid('user', `${held.user} already holds a valid signing certificate, ${held.serial} (until ${held.notAfter.slice(0, 10)}); to replace it, \`profilesmith cert renew --user ${held.user} --purpose smime-signing\`; to add another, --force`);
        }
      }
      if (ctx.io.stderr.isTTY) note(ctx.io, 'Generating an RSA key...');
      const record = await store.issueCertificate({ user: args.user, name: args.name, purpose: args.purpose, days: args.days });
      warnIfClamped(ctx, record, args.days);
      if (args.json) printJson(ctx.io, { ...record, status: statusOf(record, new Date()) });
      else note(ctx.io, `Issued ${record.purpose} certificate ${record.serial} for ${record.user}, valid until ${record.notAfter.slice(0, 10)}`);
    },
  };
}

function issueBatchCmd(ctx: Context): CommandModule<object, IssueBatchArgs> {
  return {
    command: 'issue-batch',
    describe: 'issue a certificate to every user of a users file who lacks one',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('users', { type: 'string', demandOption: true, describe: 'users.csv (header: email[,name]) or users.json' })
        .option('purpose', { choices: PURPOSES, demandOption: true, describe: 'certificate template' })
        .option('days', { type: 'number', describe: 'validity in days (default 365)' })
        .option('jobs', { type: 'number', describe: 'keys generated at once (default: the number of cores)' })
        .option('json', { type: 'boolean', describe: 'print the summary as JSON' })
        .option('dry-run', { type: 'boolean', describe: 'check every row and count who would get a certificate; issue nothing (no passphrase needed)' })
        .option('skip-removed', { type: 'boolean', describe: 'skip users removed from the store (user remove) instead of failing their rows' })
        .example('$0 cert issue-batch --store ./store --users users.csv --purpose smime-signing', 'a signing certificate for everyone')
        .example('$0 cert issue-batch --store ./store --users users.csv --purpose smime-signing --dry-run', 'who would get one')
        .epilogue('Ctrl-C stops the run after the keys being made; run it again to finish (users who hold a certificate are skipped). A fault of the store (a full disk, its database down) stops the run at once, with one error. Exit codes: 0, 1 a row failed (the others still complete) or the store failed (the run stops there), 130 stopped by Ctrl-C') as unknown as Argv<IssueBatchArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, !args.dryRun);
      const [{ issueBatch }, { batchReporter }] = await Promise.all([import('../../batch/issue-batch.js'), import('../progress.js')]);
      const report = batchReporter(ctx.io, 'issue', !!args.json);
      const stop = interruptSignal(ctx.io);
      // A store fault (a full disk, the database down) ends the run with one error, thrown, after the progress line.
      const s = await issueBatch({
        dryRun: !!args.dryRun,
        skipRemoved: !!args.skipRemoved,
        signal: stop.signal,
        store,
        usersFile: resolve(ctx.io.cwd, args.users),
        purpose: args.purpose,
        ...(args.days ? { days: args.days } : {}),
        ...(args.jobs ? { jobs: args.jobs } : {}),
        ...report.callbacks,
      }).finally(report.finish);
      note(
        ctx.io,
        `${s.dryRun ? 'Dry run, nothing issued: ' : ''}${s.generated} ${s.dryRun ? 'would be issued' : 'issued'}, ${s.existing} already held one, ${s.failed} failed` +
          `${s.skipped ? `, ${s.skipped} removed users skipped` : ''} in ${(s.elapsedMs / 1000).toFixed(1)} s${s.interrupted ? `; interrupted after ${s.done} of ${s.total} rows: run it again to finish` : ''}`,
      );
      if (args.json) printJson(ctx.io, s);
      if (s.failed) ctx.exitCode = 1;
      if (s.interrupted) ctx.exitCode = stop.exitCode() ?? 130;
    },
  };
}

function list(ctx: Context): CommandModule<object, ListArgs> {
  return {
    command: 'list',
    describe: 'list the user certificates in the store',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('user', { type: 'string', describe: 'only this address' })
        .option('expiring', { type: 'string', describe: 'only valid certificates that expire within this time (30d, 12h)' })
        .option('json', { type: 'boolean', describe: 'print a JSON array' })
        .example('$0 cert list --store ./store --user alice@example.com', "list Alice's certificates") as unknown as Argv<ListArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const now = new Date();
      const horizon = args.expiring ? now.getTime() + durationFlag(args.expiring, 'expiring') : undefined;
      const which = args.user ? { user: args.user } : {};
      // A damaged entry is named, and the rest listed; a store without the notion lists or fails whole.
      const readable = 'listReadable' in store && typeof store.listReadable === 'function' ? await store.listReadable(which) : { records: await store.listCertificates(which), damaged: [] };
      for (const d of readable.damaged) {
        errorLine(ctx.io, `error: Certificate ${d.serial}${d.user ? ` of ${d.user}` : ' (whose certificate file is damaged too)'} is not listed: its store entry "${d.path}" is ${d.error.message.endsWith('missing') ? 'missing' : 'damaged'}; run \`profilesmith store check --quarantine\` to move it aside`);
        ctx.exitCode = 1;
      }
      const records = readable.records.filter(
        (r) => horizon === undefined || (statusOf(r, now) === 'valid' && Date.parse(r.notAfter) <= horizon),
      );
      const rows = records.map((r) => ({
        serial: r.serial,
        user: r.user,
        purpose: r.purpose,
        ...(r.alsoPurpose ? { alsoPurpose: r.alsoPurpose } : {}),
        status: statusOf(r, now),
        source: r.source,
        subject: r.subject,
        issuer: r.issuer,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        fingerprint: r.fingerprint,
        ...(r.revoked ? { revoked: r.revoked } : {}),
        ...(r.retired ? { retired: r.retired } : {}),
        ...(r.chain ? { chain: r.chain } : {}),
        ...(r.addedChain ? { addedChain: r.addedChain } : {}),
        ...(r.keyOnDevice ? { keyOnDevice: true } : {}),
      }));
      if (args.json) return printJson(ctx.io, rows);
      if (!rows.length) return readable.damaged.length ? undefined : note(ctx.io, 'No certificates');
      printTable(
        ctx.io,
        ['SERIAL', 'USER', 'PURPOSE', 'STATUS', 'NOT AFTER', 'SOURCE'],
        rows.map((r) => [r.serial, r.user, r.alsoPurpose ? `${r.purpose}+${r.alsoPurpose.replace('smime-', '')}` : r.purpose, r.status, r.notAfter.slice(0, 10), r.keyOnDevice ? `${r.source} (scep)` : r.source]),
      );
    },
  };
}

function show(ctx: Context): CommandModule<object, ShowArgs> {
  return {
    command: 'show <id>',
    describe: 'show one certificate by serial or SHA-256 fingerprint',
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('id', { type: 'string', describe: 'serial (hex) or SHA-256 fingerprint' })
        .option('json', { type: 'boolean', describe: 'print JSON' })
        .option('pem', { type: 'boolean', describe: 'print the certificate as PEM' })
        .conflicts('json', 'pem')
        .example('$0 cert show 3fa0643c1347aa5a7ee4ed0770f9dfb4 --store ./store', 'details of one certificate') as unknown as Argv<ShowArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      const record = await store.findCertificate(args.id);
      const der = await store.getCertificate(record.serial);
      const [{ toPem }, { describeCertificate }] = await Promise.all([import('../../certs/pem.js'), import('../../certs/x509.js')]);
      if (args.pem) return void ctx.io.stdout.write(toPem(der));
      const info = await describeCertificate(der);
      const detail = {
        ...record,
        status: statusOf(record, new Date()),
        emails: info.emails,
        extendedKeyUsage: info.extendedKeyUsage,
        keyUsage: info.keyUsage,
        keyType: info.keyType,
      };
      if (args.json) return printJson(ctx.io, detail);
      const lines = Object.entries(detail).map(([k, v]) => `${k.padEnd(17)} ${Array.isArray(v) ? v.join(', ') : typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
      ctx.io.stdout.write(lines.join('\n') + '\n');
    },
  };
}

function exportCmd(ctx: Context): CommandModule<object, ExportArgs> {
  return {
    command: 'export <serial>',
    describe: 'export a certificate (pem, der) or an identity (p12)',
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('serial', { type: 'string', describe: 'serial or fingerprint' })
        .option('format', { choices: ['pem', 'der', 'p12'] as const, default: 'pem' as const, describe: 'output format; p12 includes the private key' })
        .option('out', { alias: 'o', type: 'string', default: '-', describe: 'output file (- for stdout)' })
        .option('password-file', { type: 'string', describe: 'p12: file holding the password to protect it with' })
        .option('force', { alias: 'f', type: 'boolean', describe: 'replace the output file if it exists (without it, an existing file is refused)' })
        .example('$0 cert export 3fa0… --store ./store --format p12 --password-file pw.txt -o alice.p12', 'an iOS-compatible PKCS#12') as unknown as Argv<ExportArgs>,
    handler: async (args) => {
      if (args.format === 'p12' && !args.passwordFile) throw new UsageError('--format p12 needs --password-file: a PKCS#12 must have a password');
      checkOutput(ctx.io, args.out ?? '-', !!args.force);
      const store = await openStoreFromArgs(args, ctx.io, args.format === 'p12');
      const record = await store.findCertificate(args.serial);
      let bytes: Uint8Array;
      if (args.format === 'p12') {
        const password = await readSecretFile(ctx.io, args.passwordFile as string, 'password');
        if (!password) throw new UsageError('The PKCS#12 password must not be empty');
        const id = await store.getIdentity(record.serial);
        const { toPkcs12 } = await import('../../certs/pkcs12.js');
        bytes = toPkcs12(id.certificate, id.privateKey, { password, friendlyName: `${record.user} ${record.purpose}` });
      } else {
        const der = await store.getCertificate(record.serial);
        const { toPem } = await import('../../certs/pem.js');
        bytes = args.format === 'der' ? der : Buffer.from(toPem(der));
      }
      const where = await writeArtifact(ctx.io, args.out ?? '-', bytes, args.format !== 'pem', args.format === 'p12' ? 0o600 : 0o644, !!args.force);
      if (where !== 'stdout') note(ctx.io, `Wrote ${where}`);
    },
  };
}

function renew(ctx: Context): CommandModule<object, RenewArgs> {
  return {
    command: 'renew',
    describe: 'issue a new certificate; the old one stays in the history',
    builder: (y: Argv) =>
      storeOptions(y)
        .option('user', { type: 'string', demandOption: true, describe: 'the user (email address)' })
        .option('purpose', { choices: PURPOSES, demandOption: true, describe: 'which certificate to renew' })
        .option('days', { type: 'number', describe: 'validity in days (default 365)' })
        .option('json', { type: 'boolean', describe: 'print the new record as JSON' })
        .example('$0 cert renew --store ./store --user alice@example.com --purpose smime-encryption', 'a new encryption certificate') as unknown as Argv<RenewArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, true);
      const record = await store.renewCertificate(args.user, args.purpose, args.days);
      warnIfClamped(ctx, record, args.days);
      if (args.json) printJson(ctx.io, record);
      else note(ctx.io, `Issued ${record.purpose} certificate ${record.serial} for ${record.user}, valid until ${record.notAfter.slice(0, 10)}; the previous ones stay in the history`);
    },
  };
}

function revoke(ctx: Context): CommandModule<object, RevokeArgs> {
  return {
    command: 'revoke <serial>',
    describe: "revoke a certificate issued by the store's CAs (retired ones too); the next CRL and OCSP answer show it",
    builder: (y: Argv) =>
      storeOptions(y)
        .positional('serial', { type: 'string', describe: 'serial or fingerprint: a user certificate, the profile signer, an OCSP responder, or an older issuing CA with no live certificates' })
        .option('reason', { choices: Object.keys(REVOCATION_REASONS) as RevocationReason[], default: 'unspecified' as RevocationReason, describe: 'RFC 5280 reason' })
        .example('$0 cert revoke 3fa0… --store ./store --reason keyCompromise', 'revoke, then publish a CRL') as unknown as Argv<RevokeArgs>,
    handler: async (args) => {
      const store = await openStoreFromArgs(args, ctx.io, false);
      // A user certificate by serial, fingerprint or unique prefix; else the serial as given (the signer, a CA).
      const serial = await store.findCertificate(args.serial).then((r) => r.serial, (err: unknown) => {
        if (isProfilesmithError(err) && err.code === 'ERR_INPUT_INVALID') throw err;
        return args.serial;
      });
      const r = await store.revokeCertificate(serial, args.reason);
      const what = r.record ? `${r.record.user}, ${r.record.purpose}` : { signer: 'a profile signer', responder: 'an OCSP responder', 'scep-ra': 'the SCEP RA', 'issuing-ca': 'an issuing CA', user: 'a user certificate' }[r.kind];
      const renewals = r.renewals?.length ? `; ${r.renewals.length} certificate(s) renewed from it revoked with it (keyCompromise): ${r.renewals.join(', ')}` : '';
      if (r.already) {
        note(ctx.io, `${r.serial} (${what}) was already revoked on ${r.revoked.date.slice(0, 10)} (${r.revoked.reason}); the ${r.ca} CRL lists it${renewals}`);
        if (!renewals) return;
        note(ctx.io, crlHint(store.pkiUrl, args.store, r.ca));
        return;
      }
      note(ctx.io, `Revoked ${r.serial} (${what}): ${args.reason}; the ${r.ca} CRL lists it from now on${renewals}`);
      note(ctx.io, crlHint(store.pkiUrl, args.store, r.ca));
      if (r.kind === 'signer' && !r.already) note(ctx.io, 'Profiles cannot be signed until `profilesmith ca rotate-signer` issues a new signer');
    },
  };
}

export function certCommand(ctx: Context): CommandModule<object, object> {
  return {
    ...TOP.cert,
    builder: (y: Argv) =>
      y
        .command(issue(ctx))
        .command(issueBatchCmd(ctx))
        .command(list(ctx))
        .command(show(ctx))
        .command(exportCmd(ctx))
        .command(renew(ctx))
        .command(revoke(ctx))
        .command(importCommand(ctx))
        .command(importBatchCommand(ctx))
        .demandCommand(1),
    handler: () => {},
  };
}
