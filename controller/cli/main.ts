// Owns the natsfleet command line: parses arguments and dispatches to one module per command. Normal
// output goes to `out`; usage errors (a bad flag or argument, an invalid controller configuration) go to
// `err` as plain messages and return 1; any other failure is thrown to the caller (bin/natsfleet.js).
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../package-root.js';
import { ConfigError } from '../gitops/config-options.js';
import { validateCommand } from './validate.js';
import { renderCommand } from './render.js';
import { integerArg, policyOptions, type PolicyFlags } from './policy-options.js';
import { sandboxCommands } from './sandbox.js';
import { reconcileCommands } from './reconcile.js';
import { controllerCommand } from './controller.js';
import { importCommand } from './import.js';
import { initCommand } from './init.js';
import { historyCommand } from './history.js';
import { revertCommand } from './revert.js';
import { remoteCommands } from './remote.js';
import { bashCompletion } from './completion.js';
import { userMessage } from './errors.js';
import { terminalSafe } from './terminal-text.js';

export async function main(
  argv: string[],
  // Lines may carry text from hosts: never a control sequence of theirs (terminal-text.ts).
  out: (line: string) => void = (l) => console.log(terminalSafe(l)),
  err: (line: string) => void = (l) => console.error(terminalSafe(l)),
): Promise<number> {
  let code = 0;
  const program = new Command('natsfleet')
    .description('GitOps controller for NATS servers on bare Linux hosts')
    .version(packageVersion())
    .exitOverride()
    .configureOutput({ writeOut: (s) => out(s.trimEnd()), writeErr: (s) => err(s.trimEnd()) })
    // Inherited by every command added below: a usage error ends with where to look.
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError();

  const validate = program
    .command('validate')
    .description('validate every NatsHost manifest in DIR (default hosts/)')
    .argument('[dir]', 'hosts directory', 'hosts');
  validate.addOption(
    validate
      .createOption('--format <format>', 'text, or github: workflow commands GitHub shows as annotations')
      .choices(['text', 'github'])
      .default('text'),
  );
  policyOptions(validate).action(async (dir: string, opts: PolicyFlags & { format: 'text' | 'github' }) => {
    code = await validateCommand(dir, out, opts);
  });

  policyOptions(
    program
      .command('render')
      .description("write a host's files under DIR at their remote paths")
      .argument('<target>', 'host name or manifest file')
      .requiredOption('--out <dir>', 'output directory')
      .option('--hosts <dir>', 'hosts directory', 'hosts'),
  ).action(async (target: string, opts: { out: string; hosts: string } & PolicyFlags) => {
    code = await renderCommand(target, opts, out);
  });

  const setCode = (c: number) => {
    code = c;
  };
  sandboxCommands(program, out, setCode);
  reconcileCommands(program, out, setCode, err);
  controllerCommand(program);
  importCommand(program, out, err, setCode);
  initCommand(program, out, err, setCode);
  historyCommand(program, out, err, setCode);
  revertCommand(program, out, err, setCode);
  remoteCommands(program, out, err, setCode);

  program
    .command('demo')
    .description(
      'the main job: a local sandbox fleet, a Git repository of the example hosts, the controller deploying them',
    )
    .option('--hosts <dir>', 'example manifests', 'hosts')
    .option('--out <dir>', 'where the demo keeps its files', '.sandbox/demo')
    .option('--timeout <sec>', 'give up after this long', integerArg(1, 86400), 300)
    .action(async (opts: { hosts: string; out: string; timeout: number }) => {
      const { demoCommand } = await import('./demo.js'); // the sandbox, the controller: only here
      code = await demoCommand({ hosts: opts.hosts, out: opts.out, timeoutSec: opts.timeout }, out, main);
    });

  program
    .command('completion')
    .description('print a shell completion script (bash; zsh through bashcompinit)')
    .argument('[shell]', 'bash', 'bash')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') {
        err(`error: no completion for ${shell}: bash, or zsh through bashcompinit`);
        code = 1;
      } else out(bashCompletion(program).trimEnd());
    });

  try {
    await program.parseAsync(argv);
  } catch (e) {
    // Commander has already written its message (through writeErr) or the help (through writeOut).
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    if (e instanceof ConfigError) {
      for (const line of e.problems) err(line);
      return 1;
    }
    // Anything else still reaches the user as one plain line: never a stack trace or a raw errno text.
    err(`error: ${userMessage(e)}`);
    return 1;
  }
  return code;
}
