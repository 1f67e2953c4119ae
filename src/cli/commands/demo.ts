import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { toPem } from '../../certs/pem.js';
import { verifyProfile } from '../../cms/verify.js';
import { generateProfile } from '../../profile/generate.js';
import { initStore } from '../../store/fs-store.js';
import { atomicWrite } from '../../store/fs-util.js';
import { UsageError } from '../errors.js';
import type { Context } from '../options.js';
import { note } from '../output.js';

interface Args {
  dir: string;
}

const MARKER = '.profilesmith-demo';

/** The whole journey on a throw-away store: init, issue, generate, verify. */
export function demoCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.demo,
    builder: (y: Argv) =>
      y
        .option('dir', { type: 'string', default: './demo', describe: 'folder for the demo (replaced if it is an earlier demo)' })
        .example('$0 demo --dir ./demo', 'make a demo store and profile') as unknown as Argv<Args>,
    handler: async (args) => {
      const dir = resolve(ctx.io.cwd, args.dir);
      if (existsSync(dir)) {
        if (!existsSync(join(dir, MARKER))) throw new UsageError(`"${dir}" exists and is not an earlier demo; pass another --dir`);
        await fs.rm(dir, { recursive: true, force: true });
      }
      await fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await fs.writeFile(join(dir, MARKER), 'made by profilesmith demo\n');
      // A random passphrase, kept in a 0600 file beside the store: the demo store's keys are still encrypted.
      const passphrase = randomBytes(18).toString('base64url');
      await atomicWrite(join(dir, 'passphrase'), passphrase + '\n', 0o600);
      const step = (s: string) => note(ctx.io, s);

      step(`1. Creating a store in ${join(dir, 'store')} for "Example Corp" (root CA, issuing CA, profile signer)`);
      const store = await initStore(join(dir, 'store'), { organization: 'Example Corp', passphrase });
      const user = 'alice@example.com';
      step(`2. Issuing ${user} a signing certificate and two encryption certificates (the history)`);
      const issued = [];
      for (const purpose of ['smime-signing', 'smime-encryption', 'smime-encryption'] as const) {
        issued.push(await store.issueCertificate({ user, name: 'Alice Example', purpose }));
      }
      for (const r of issued) step(`   ${r.purpose.padEnd(16)} ${r.serial}  until ${r.notAfter.slice(0, 10)}`);

      step('3. Generating a signed exchange-smime profile');
      const profile = await generateProfile({
        store,
        template: 'exchange-smime',
        user,
        data: { exchange: { host: 'mail.example.com' } },
      });
      const out = join(dir, 'alice.mobileconfig');
      await atomicWrite(out, profile.bytes, 0o600);
      const chain = await store.trustChain();
      await atomicWrite(join(dir, 'root.pem'), toPem(chain.roots[0] as Buffer), 0o644);
      step(`   ${out}: ${profile.bytes.length} bytes, ${profile.encryptionSerials.length + 1} identities, UUID ${profile.uuid}`);

      step('4. Verifying it against the store root');
      const result = await verifyProfile(profile.bytes, { ca: chain.roots });
      if (!result.valid) throw new Error(`demo profile did not verify: ${result.reasons.map((r) => r.message).join('; ')}`);
      step(`   Verified: signed by "${result.signer?.subject}", chain of ${result.chain.length}`);
      step('');
      step('Try next:');
      step(`  export PROFILESMITH_PASSPHRASE_FILE=${join(dir, 'passphrase')}`);
      step(`  npx profilesmith cert list --store ${join(dir, 'store')}`);
      step(`  npx profilesmith verify ${out} --ca ${join(dir, 'root.pem')}`);
      step(`  openssl cms -verify -inform DER -in ${out} -CAfile ${join(dir, 'root.pem')}`);
    },
  };
}
