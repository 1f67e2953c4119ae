import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { inspectProfile, type InspectResult } from '../../profile/inspect.js';
import { readInputFile } from '../files.js';
import type { Context } from '../options.js';
import { printJson } from '../output.js';
import { describeTrust } from '../../cms/trust.js';
import { profileTrust } from '../../profile/trust.js';

interface Args {
  file: string;
  json?: boolean;
  showSecrets?: boolean;
}

function human(r: InspectResult): string {
  const out = [
    `Profile:   ${r.displayName ?? '(no display name)'}  ${r.identifier ?? ''}  ${r.uuid ?? ''}`,
    `Format:    ${r.signed ? 'signed, ' : 'unsigned, '}${r.format} plist${r.encrypted ? ', payloads encrypted' : ''}`,
  ];
  if (r.organization) out.push(`Org:       ${r.organization}`);
  for (const x of r.recipients) out.push(`Encrypted to: ${x.issuer}, serial ${x.serial}`);
  if (r.signed) {
    out.push(`Signer:    ${r.signer?.subject ?? '(missing)'}${r.signatureIntact === false ? '  SIGNATURE BROKEN' : ''}`);
    if (r.signingTime) out.push(`Signed at: ${r.signingTime.toISOString()}`);
    out.push(`Chain:     ${r.chain.map((c) => c.subject).join(' <- ')}`);
  }
  out.push('', 'Payloads:');
  for (const p of r.payloads) {
    out.push(`  ${p.type}  ${p.identifier ?? ''}  ${p.uuid ?? ''}${p.displayName ? `  "${p.displayName}"` : ''}`);
    for (const [k, v] of Object.entries(p.settings ?? {})) out.push(`    ${k}: ${v}`);
    for (const [k, v] of Object.entries(p.secrets)) out.push(`    ${k}: ${v}`);
    for (const c of p.certificates) {
      out.push(`    cert: ${c.subject}${c.emails.length ? `  <${c.emails.join(', ')}>` : ''}  ${c.notBefore.slice(0, 10)} to ${c.notAfter.slice(0, 10)}${c.hasPrivateKey ? '  (with key)' : ''}${c.extendedKeyUsage.length ? `  EKU ${c.extendedKeyUsage.join(',')}` : ''}`);
    }
    if (p.note) out.push(`    note: ${p.note}`);
  }
  if (r.references.length) {
    out.push('', 'References:');
    for (const ref of r.references) out.push(`  ${ref.from} ${ref.key} -> ${ref.target ?? `${ref.to} (NOT FOUND)`}`);
  }
  return out.join('\n') + '\n';
}

export function inspectCommand(ctx: Context): CommandModule<object, Args> {
  return {
    ...TOP.inspect,
    builder: (y: Argv) =>
      y
        .positional('file', { type: 'string', describe: 'a profile (XML, binary or signed)' })
        .option('json', { type: 'boolean', describe: 'print JSON' })
        .option('show-secrets', { type: 'boolean', describe: 'show passwords and PKCS#12 bytes instead of redacting them' })
        .example('$0 inspect alice.mobileconfig', 'what is in the profile') as unknown as Argv<Args>,
    handler: async (args) => {
      const bytes = await readInputFile(ctx.io, args.file, 'profile');
      const r = await inspectProfile(bytes, { showSecrets: !!args.showSecrets });
      const trust = r.signed ? profileTrust(bytes) : undefined;
      if (args.json) printJson(ctx.io, { ...r, trustNeeded: trust ?? null });
      else ctx.io.stdout.write(human(r) + (trust ? `\nTo show as Verified it needs ${describeTrust(trust)}\n` : ''));
    },
  };
}
