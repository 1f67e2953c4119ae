import type { Argv, CommandModule } from 'yargs';
import { TOP } from './index.js';
import { COMPLETION_SCRIPTS } from '../completion.js';
import type { Context } from '../options.js';

type Shell = keyof typeof COMPLETION_SCRIPTS;

/** `completion <shell>`: prints the script that asks `profilesmith __complete` for candidates. */
export function completionCommand(ctx: Context): CommandModule<object, { shell: Shell }> {
  return {
    ...TOP.completion,
    builder: (y: Argv) =>
      y
        .positional('shell', { choices: ['bash', 'zsh', 'fish'] as const, demandOption: true })
        .example('eval "$($0 completion bash)"', 'in ~/.bashrc')
        .example('eval "$($0 completion zsh)"', 'in ~/.zshrc, after compinit')
        .example('$0 completion fish > ~/.config/fish/completions/profilesmith.fish', 'fish') as unknown as Argv<{ shell: Shell }>,
    handler: (args) => {
      ctx.io.stdout.write(COMPLETION_SCRIPTS[args.shell]);
    },
  };
}
