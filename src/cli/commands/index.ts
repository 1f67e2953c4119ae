/**
 * The top-level commands: each one's usage and one-line description, which is all that
 * `profilesmith --help` and an unknown command's message need, and how to load the rest.
 * run.ts registers a command's module (its options, its subcommands, its handler, and what
 * they import) only when its name is on the command line, so that a command loads only what
 * it uses: nothing here may import a command module statically.
 *
 * @module commands
 */
import type { CommandModule } from 'yargs';
import type { Context } from '../options.js';

/** A command's usage and description, as yargs lists it; the module spreads these into its own. */
export interface TopCommand {
  readonly command: string;
  readonly describe: string;
}

/** In the order --help lists them. */
export const TOP = {
  init: { command: 'init', describe: 'create a store with a root CA, intermediate and profile signer' },
  cert: { command: 'cert <command>', describe: 'user certificates in the store' },
  ca: { command: 'ca <command>', describe: 'the store CA' },
  generate: { command: 'generate <template>', describe: 'generate a signed profile for a user from a template' },
  batch: { command: 'batch <template>', describe: 'generate a signed profile for every user of a users file' },
  verify: { command: 'verify <file>', describe: 'check the signature and chain of a signed profile' },
  sign: { command: 'sign <file>', describe: "sign an existing profile with the store's signing identity, or a key in a PKCS#11 token" },
  decrypt: { command: 'decrypt <file>', describe: 'give back the plain profile of an encrypted one (support)' },
  serve: { command: 'serve', describe: 'serve profiles behind one-time download links' },
  link: { command: 'link <command>', describe: 'one-time download links for profilesmith serve' },
  lint: { command: 'lint <files..>', describe: "check profiles against Apple's schema and iOS's rules" },
  inspect: { command: 'inspect <file>', describe: 'show signer, payloads, references and certificates' },
  templates: { command: 'templates <command>', describe: 'the built-in templates and their variables' },
  user: { command: 'user <command>', describe: 'users of the store' },
  crl: { command: 'crl', describe: 'write the CRL of the issuing CA (or of the root: revoked issuing CAs)' },
  pki: { command: 'pki <command>', describe: 'publish revocation: CRLs, CA certificates, OCSP' },
  store: { command: 'store <command>', describe: 'the certificate store itself' },
  demo: { command: 'demo', describe: 'run the whole journey on a demo store (npm start)' },
  config: { command: 'config <command>', describe: 'the config file (profilesmith.json): what is in force' },
  completion: { command: 'completion <shell>', describe: 'print a shell completion script (commands, flags, templates, --set keys)' },
} as const satisfies Record<string, TopCommand>;

export type CommandName = keyof typeof TOP;

type Factory = (ctx: Context) => CommandModule<object, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Each command's module, imported on demand. */
export const LOAD: Record<CommandName, () => Promise<Factory>> = {
  init: async () => (await import('./init.js')).initCommand,
  cert: async () => (await import('./cert.js')).certCommand,
  ca: async () => (await import('./ca.js')).caCommand,
  generate: async () => (await import('./generate.js')).generateCommand,
  batch: async () => (await import('./batch.js')).batchCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
  sign: async () => (await import('./sign.js')).signCommand,
  decrypt: async () => (await import('./decrypt.js')).decryptCommand,
  serve: async () => (await import('./serve.js')).serveCommand,
  link: async () => (await import('./link.js')).linkCommand,
  lint: async () => (await import('./lint.js')).lintCommand,
  inspect: async () => (await import('./inspect.js')).inspectCommand,
  templates: async () => (await import('./templates.js')).templatesCommand,
  user: async () => (await import('./user.js')).userCommand,
  crl: async () => (await import('./crl.js')).crlCommand,
  pki: async () => (await import('./pki.js')).pkiCommand,
  store: async () => (await import('./store.js')).storeCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  config: async () => (await import('./config.js')).configCommand,
  completion: async () => (await import('./completion.js')).completionCommand,
};
