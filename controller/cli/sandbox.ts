// Owns `natsfleet sandbox up|down|status`: the local fleet of disposable hosts for tests and the demo.
import type { Command } from 'commander';
import { integerArg } from './policy-options.js';

// Loaded by these commands only (Docker, ssh2): the CLI's other commands start without it.
const fleetModule = () => import('../sandbox/fleet.js');

export function sandboxCommands(program: Command, out: (line: string) => void, setCode: (c: number) => void) {
  const sandbox = program
    .command('sandbox')
    .description('a local fleet of disposable Debian hosts (systemd, sshd, Docker) on 127.0.0.1');
  sandbox
    .command('up')
    .description('start the fleet and write a pinned NatsHost manifest per host, plus the SSH key')
    .option('--count <n>', 'number of hosts (1 to 50)', integerArg(1, 50), 3)
    .option('--out <dir>', 'where manifests, key and token go', '.sandbox/default')
    .option('--id <id>', 'fleet id (several fleets can run side by side)', 'default')
    .option('--cluster <name>', 'also write a NatsCluster manifest of all the hosts, <out>/hosts/<name>.yaml')
    .action(async (opts: { count: number; out: string; id: string; cluster?: string }, cmd: Command) => {
      const { clusterNameProblem, fleetUp, sandboxHostNames } = await fleetModule();
      const problem =
        opts.cluster === undefined ? undefined : clusterNameProblem(opts.cluster, sandboxHostNames(opts.count));
      if (problem) cmd.error(`error: option '--cluster <name>' ${problem}`);
      const fleet = await fleetUp({ hosts: opts.count, dir: opts.out, id: opts.id, cluster: opts.cluster, log: out });
      for (const h of fleet.hosts) {
        out(
          `${h.name}  ssh -i ${fleet.privateKeyPath} -p ${h.sshPort} root@127.0.0.1  ` +
            `(compose ${h.compose}; cluster address ${h.clusterAddress})`,
        );
      }
      const n = fleet.natsImages;
      out(`NATS images on every host: ${n.old}, ${n.oldVariant}, ${n.next}, ${n.newest}`);
      out(`manifests: ${fleet.hostsDir}`);
      if (fleet.clusterManifest) out(`cluster manifest: ${fleet.clusterManifest}`);
      out(
        `next: export NATSFLEET_SSH_KEY=${fleet.privateKeyPath} NATSFLEET_SECRETS_DIR=${fleet.secretsDir}; ` +
          `natsfleet plan --hosts ${fleet.hostsDir}`,
      );
    });
  sandbox
    .command('down')
    .description('remove the fleet: containers, volumes and its network')
    .option('--id <id>', 'fleet id', 'default')
    .option('--all', 'every natsfleet sandbox fleet on this machine')
    .action(async (opts: { id: string; all?: boolean }) => {
      const n = await (await fleetModule()).fleetDown(opts.all ? undefined : opts.id);
      out(`removed ${n} sandbox host(s)`);
    });
  sandbox
    .command('status')
    .description('list sandbox hosts, their SSH port and memory')
    .option('--id <id>', 'fleet id (default: every fleet)')
    .action(async (opts: { id?: string }) => {
      const rows = await (await fleetModule()).fleetStatus(opts.id);
      if (rows.length === 0) {
        out('no sandbox hosts');
        setCode(0);
        return;
      }
      out(['CONTAINER'.padEnd(28), 'STATE'.padEnd(9), 'SSH'.padEnd(16), 'MEMORY'].join(' '));
      for (const r of rows) {
        out(
          [
            r.container.padEnd(28),
            r.state.padEnd(9),
            (r.sshPort ? `127.0.0.1:${r.sshPort}` : '-').padEnd(16),
            r.memoryMiB !== undefined ? `${r.memoryMiB} MiB` : '-',
          ].join(' '),
        );
      }
    });
}
