import type { Argv } from 'yargs';
import { listTemplates, type Template } from '../profile/template.js';
import type { Io } from './io.js';
import { templateArg } from './options.js';

/**
 * What yargs itself offers after `words` (commands, flags, choices), one per line of its
 * completion output: the parser is the one source of the commands, for completion and for the
 * unknown-command message alike.
 */
export async function yargsCandidates(parser: Argv, words: string[]): Promise<string[]> {
  let out = '';
  await parser.parseAsync(['--get-yargs-completions', 'profilesmith', ...words], {}, (_e, _a, o) => {
    out = o;
  });
  return out.split('\n').filter(Boolean);
}

/**
 * Shell completion. The scripts that `profilesmith completion SHELL` prints call back
 * `profilesmith __complete -- WORD…` (the words after the program name, the last being the
 * one under the cursor) and offer the lines it prints; with none, the shell completes file
 * names. Commands, flags and choices come from the yargs parser itself, so they cannot drift
 * from the commands; template names and the `--set` keys of the template on the line are
 * added here.
 */
export async function completions(parser: () => Argv | Promise<Argv>, words: string[], io: Io): Promise<string[]> {
  const current = words.at(-1) ?? '';
  const prev = words.at(-2);
  if (prev === '--set' || prev === '-s') return setKeys(words, current, io);
  if (current.startsWith('--set=')) return setKeys(words, current.slice(6), io).map((k) => `--set=${k}`);
  if (prev === '--template') return templateNames(current);
  // The template positional of generate and batch, and the name of templates show.
  const positionals = words.slice(0, -1).filter((w) => !w.startsWith('-'));
  if (!current.startsWith('-') && words.length === 2 && (words[0] === 'generate' || words[0] === 'batch')) return templateNames(current);
  if (!current.startsWith('-') && words.length === 3 && positionals[0] === 'templates' && positionals[1] === 'show') return templateNames(current);

  const candidates = (await yargsCandidates(await parser(), words))
    // yargs offers one-letter aliases as `--o`; on a command line they are `-o`.
    .map((c) => (/^--[a-zA-Z]$/.test(c) ? c.slice(1) : c))
    .filter((c) => c !== 'completion' || words.length === 1);
  // After an option that takes a value (a file, a name), yargs offers the flags again; the
  // shell's file names are the better answer there.
  if (!current.startsWith('-') && prev?.startsWith('-') && candidates.every((c) => c.startsWith('-'))) return [];
  return [...new Set(candidates)].filter((c) => c.startsWith(current));
}

function templateNames(prefix: string): string[] {
  return listTemplates()
    .map((t) => t.name)
    .filter((n) => n.startsWith(prefix));
}

/** `KEY=` for every variable of the template on the line (not its secrets); past the `=`, its choices. */
function setKeys(words: string[], current: string, io: Io): string[] {
  const template = templateOnLine(words, io);
  if (!template) return [];
  const eq = current.indexOf('=');
  if (eq > 0) {
    const decl = template.meta.variables[current.slice(0, eq)];
    const choices = decl?.enum?.map(String) ?? (decl?.type === 'boolean' ? ['true', 'false'] : []);
    return choices.map((c) => `${current.slice(0, eq)}=${c}`).filter((c) => c.startsWith(current));
  }
  return Object.entries(template.meta.variables)
    .filter(([k, decl]) => !decl.secret && k.startsWith(current))
    .map(([k]) => `${k}=`);
}

/** The template the line names, read as the command will read it (a built-in, or a path). */
function templateOnLine(words: string[], io: Io): Template | undefined {
  let name: string | undefined;
  const t = words.indexOf('--template');
  if (t >= 0) name = words[t + 1];
  else if (words[0] === 'generate' || words[0] === 'batch') name = words[1];
  if (!name || name.startsWith('-')) return undefined;
  try {
    return templateArg(io, name);
  } catch {
    return undefined;
  }
}

/** The scripts; each reads its candidates from `profilesmith __complete`. */
export const COMPLETION_SCRIPTS: Record<'bash' | 'zsh' | 'fish', string> = {
  bash: `# profilesmith completion for bash. Load it with:
#   eval "$(profilesmith completion bash)"      (in ~/.bashrc)
_profilesmith_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" IFS=$'\\n'
  local -a words=("\${COMP_WORDS[@]:1:COMP_CWORD}")
  # bash splits "--set key=value" at the "=" (COMP_WORDBREAKS): join it back for profilesmith,
  # and offer only what follows the "=", which is what readline replaces.
  local key="" value=""
  if [[ "$cur" == "=" && \${COMP_CWORD} -ge 2 ]]; then
    key="\${COMP_WORDS[COMP_CWORD-1]}"; words=("\${COMP_WORDS[@]:1:COMP_CWORD-2}")
  elif [[ \${COMP_CWORD} -ge 3 && "\${COMP_WORDS[COMP_CWORD-1]}" == "=" ]]; then
    key="\${COMP_WORDS[COMP_CWORD-2]}"; value="$cur"; words=("\${COMP_WORDS[@]:1:COMP_CWORD-3}")
  fi
  if [[ -n "$key" ]]; then
    local line
    COMPREPLY=()
    while IFS= read -r line; do COMPREPLY+=("\${line#"$key="}"); done < <(profilesmith __complete -- "\${words[@]}" "$key=$value" 2>/dev/null)
    return
  fi
  COMPREPLY=($(profilesmith __complete -- "\${words[@]}" 2>/dev/null))
  # A --set key ends in "=": no space after it.
  if [[ \${#COMPREPLY[@]} -ge 1 && "\${COMPREPLY[0]}" == *= ]]; then compopt -o nospace 2>/dev/null; fi
}
complete -o default -o bashdefault -F _profilesmith_complete profilesmith
`,
  zsh: `#compdef profilesmith
# profilesmith completion for zsh. Load it with:
#   eval "$(profilesmith completion zsh)"       (in ~/.zshrc, after compinit)
_profilesmith() {
  local -a out keys rest
  out=("\${(@f)$(profilesmith __complete -- "\${(@)words[2,CURRENT]}" 2>/dev/null)}")
  out=(\${out:#})
  if (( \${#out} == 0 )); then
    _files
    return
  fi
  keys=(\${(M)out:#*=})
  rest=(\${out:#*=})
  (( \${#keys} )) && compadd -S '' -- "\${keys[@]}"
  (( \${#rest} )) && compadd -- "\${rest[@]}"
  return 0
}
compdef _profilesmith profilesmith
`,
  fish: `# profilesmith completion for fish. Load it with:
#   profilesmith completion fish > ~/.config/fish/completions/profilesmith.fish
function __profilesmith_complete
    set -l words (commandline -opc) (commandline -ct)
    set -l out (profilesmith __complete -- $words[2..-1] 2>/dev/null)
    if test (count $out) -eq 0
        __fish_complete_path (commandline -ct)
    else
        printf '%s\\n' $out
    end
end
complete -c profilesmith -f -a '(__profilesmith_complete)'
`,
};
