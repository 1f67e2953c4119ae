import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { verifyProfile, type VerifyResult } from '../../cms/verify.js';
import { describeTrust } from '../../cms/trust.js';
import { profileTrust } from '../../profile/trust.js';
import { readInputFile } from '../files.js';
import { recipientsOf } from '../../profile/inspect.js';
import { parseProfile } from '../../profile/parse.js';
import { openStore } from '../../store/open.js';
import { storeDir, type Context, type StoreArgs } from '../options.js';
import { printJson } from '../output.js';

interface Args extends StoreArgs {
  file: string;
  ca?: string[];
  json?: boolean;
}

function printHuman(io: Context['io'], r: VerifyResult): void {
  const lines = [
    `${r.valid ? 'Verified' : 'NOT VALID'}: ${r.signer ? `signed by "${r.signer.subject}"` : 'no signer certificate'}`,
    ...(r.signingTime ? [`signing time: ${r.signingTime.toISOString()}`] : []),
    ...(r.signer ? [`signer valid: ${r.signer.notBefore.toISOString()} to ${r.signer.notAfter.toISOString()}`] : []),
    `chain: ${r.chain.map((c) => `"${c.subject}"`).join(' <- ') || '(none)'} (trust: ${r.trustSource === 'given' ? 'given CA' : 'public roots'})`,
    ...r.reasons.map((x) => `reason: ${x.message} [${x.code}]`),
    ...(r.encoding === 'ber' ? ['encoding: BER (as Apple Configurator and openssl -stream write it)'] : []),
    ...r.warnings.map((x) => `warning: ${x.message} [${x.code}]`),
  ];
  io.stdout.write(lines.join('\n') + '\n');
}

export function verifyCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.verify,
    builder: (y: Argv) =>
      y
        .positional('file', { type: 'string', describe: 'the .mobileconfig to check' })
        .option('ca', { type: 'string', array: true, describe: 'trusted root certificate (PEM/DER); default: the store root with --store' })
        .option('store', { type: 'string', describe: 'trust the root of this store' })
        .option('json', { type: 'boolean', describe: 'print the result as JSON' })
        .example('$0 verify alice.mobileconfig --ca root.pem', 'verify against a root')
        .epilogue('Exit codes: 0 valid, 1 could not check, 3 checked and not valid (tampered, expired, untrusted)') as unknown as Argv<Args>,
    handler: async (args) => {
      const bytes = await readInputFile(ctx.io, args.file, 'profile');
      let ca: Buffer[] | undefined;
      if (args.ca?.length) ca = await Promise.all(args.ca.map((p) => readInputFile(ctx.io, p, 'ca', 1024 * 1024)));
      let revokedSerials: Set<string> | undefined;
      if (args.store || ctx.io.env.PROFILESMITH_STORE) {
        const store = await openStore(storeDir(args, ctx.io));
        if (!ca) ca = (await store.trustChain()).roots;
        revokedSerials = await store.revokedSerials();
      }
      const result = await verifyProfile(bytes, { ...(ca ? { ca } : {}), ...(revokedSerials ? { revokedSerials } : {}) });
      let encryptedTo: { issuer: string; serial: string }[] | undefined;
      try {
        const top = parseProfile(result.content).plist as Record<string, unknown>;
        if (top?.EncryptedPayloadContent instanceof Uint8Array) encryptedTo = recipientsOf(top.EncryptedPayloadContent);
      } catch {
        result.valid = false;
        result.reasons.push({ code: 'content-not-plist', message: 'The signed content is not a property list' });
      }
      const trust = profileTrust(bytes, ca ?? [], new Date());
      if (args.json) printJson(ctx.io, { ...result, content: undefined, bytes: result.content.length, encryptedTo: encryptedTo ?? null, trustNeeded: trust ?? null });
      else {
        printHuman(ctx.io, result);
        if (trust) ctx.io.stdout.write(`to show as Verified it needs: ${describeTrust(trust)}\n`);
        for (const r of encryptedTo ?? []) ctx.io.stdout.write(`payloads encrypted to: ${r.issuer}, serial ${r.serial}\n`);
      }
      if (!result.valid) ctx.exitCode = 3;
    },
  };
}
