// Owns `natsfleet completion bash`: a bash completion script generated from the command tree itself
// (commands, subcommands and their flags), so it never lags behind the CLI. zsh reads it through
// bashcompinit. A word that is neither a command nor a flag completes as a file name.
import type { Command } from 'commander';
import { shQuote } from '../shell/quote.js';

export interface CompletionEntry {
  commands: string[];
  flags: string[];
}

/** Per command path ('' for the top, 'hostkey' for its subcommands): what may come next. */
export function completionTable(program: Command): Map<string, CompletionEntry> {
  const table = new Map<string, CompletionEntry>();
  const walk = (cmd: Command, path: string) => {
    const subs = cmd.commands.filter((c) => c.name() !== 'help');
    const flags = cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => Boolean(f)));
    table.set(path, { commands: subs.map((c) => c.name()), flags: [...flags, '--help'] });
    for (const c of subs) walk(c, path ? `${path} ${c.name()}` : c.name());
  };
  walk(program, '');
  return table;
}

const word = (s: string) => `'${s.replace(/'/g, '')}'`;

export function bashCompletion(program: Command): string {
  const table = [...completionTable(program)];
  const cases = (pick: (e: CompletionEntry) => string[]) =>
    table.map(([path, e]) => `    ${word(path)}) echo ${shQuote(pick(e).join(' ')) || "''"} ;;`).join('\n');
  const paths = table.map(([path]) => path).filter(Boolean);
  return `# natsfleet completion for bash (zsh: autoload -U bashcompinit && bashcompinit first).
# Install: natsfleet completion bash > /etc/bash_completion.d/natsfleet, or eval "$(natsfleet completion bash)".
_natsfleet_commands() {
  case "$1" in
${cases((e) => e.commands)}
  esac
}
_natsfleet_flags() {
  case "$1" in
${cases((e) => e.flags)}
  esac
}
_natsfleet() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" w i known=${shQuote(`|${paths.join('|')}|`)}
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$known" in *"|\${path:+$path }$w|"*) path="\${path:+$path }$w" ;; esac
  done
  COMPREPLY=()
  if [[ "$cur" == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_natsfleet_flags "$path")" -- "$cur")
  else
    mapfile -t COMPREPLY < <(compgen -W "$(_natsfleet_commands "$path")" -- "$cur")
    [ \${#COMPREPLY[@]} -gt 0 ] || mapfile -t COMPREPLY < <(compgen -f -- "$cur")
  fi
}
complete -o filenames -F _natsfleet natsfleet
`;
}
