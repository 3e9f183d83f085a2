// Owns `natsfleet controller`: the long-running GitOps process, configured by flags, NATSFLEET_*
// environment variables and an optional config file (all checked by gitops/config.ts: an invalid one
// is a ConfigError, reported by main() as a usage error); stops cleanly on SIGINT/SIGTERM.
import type { Command } from 'commander';
import { integerRange } from '../gitops/config-options.js';
import { integerArg } from './policy-options.js';

interface Flags {
  config?: string;
  repo?: string;
  branch?: string;
  hostsDir?: string;
  pollInterval?: number;
  driftInterval?: number;
  stateDir?: string;
  sshKey?: string;
  concurrency?: number;
  listen?: string;
  githubRepository?: string;
  githubApiUrl?: string;
  logLevel?: string;
  stateNats?: string;
  leaseTtl?: number;
  replicaId?: string;
}

/** An integer flag, bounded as the config file's key is. */
const int = (key: string) => {
  const { min, max } = integerRange(key);
  return integerArg(min, max);
};

export function controllerCommand(program: Command) {
  program
    .command('controller')
    .description('run the GitOps loop: deploy the branch, plan pull requests, report drift')
    .option('--config <file>', 'YAML config file (see deploy/natsfleet.yaml)')
    .option('--repo <url>', 'Git remote of the hosts repository (ssh, https, or a local path)')
    .option('--branch <name>', 'branch to deploy (default main)')
    .option('--hosts-dir <dir>', 'hosts directory in the repository (default hosts)')
    .option('--poll-interval <sec>', 'seconds between polls (default 30)', int('pollIntervalSec'))
    .option('--drift-interval <sec>', 'seconds between drift sweeps (default 300)', int('driftIntervalSec'))
    .option('--state-dir <dir>', 'state directory (default /var/lib/natsfleet-controller)')
    .option('--ssh-key <path>', 'SSH private key')
    .option('--concurrency <n>', 'hosts handled at once (default 10)', int('concurrency'))
    .option('--listen <host:port>', 'serve /healthz, /metrics and /webhook')
    .option('--github-repository <owner/repo>', 'report to this GitHub repository')
    .option('--github-api-url <url>', 'GitHub API base URL (GitHub Enterprise)')
    .option('--log-level <level>', 'trace, debug, info (default), warn, error or fatal')
    .option('--state-nats <url>', 'keep state and leases in NATS JetStream KV (replicas share the work)')
    .option(
      '--lease-ttl <sec>',
      'with --state-nats: seconds before a silent replica is replaced (default 15)',
      int('state.nats.leaseTtlSec'),
    )
    .option('--replica-id <name>', "with --state-nats: this replica's name (default: machine name + random)")
    .action(async (f: Flags) => {
      // The validation loads ajv: only this command does (config-options.ts).
      const { resolveConfig } = await import('../gitops/config.js');
      const cfg = resolveConfig(
        {
          repo: f.repo,
          branch: f.branch,
          hostsDir: f.hostsDir,
          pollIntervalSec: f.pollInterval,
          driftIntervalSec: f.driftInterval,
          stateDir: f.stateDir,
          sshKey: f.sshKey,
          concurrency: f.concurrency,
          listen: f.listen,
          'github.repository': f.githubRepository,
          'github.apiUrl': f.githubApiUrl,
          logLevel: f.logLevel,
          'state.nats.url': f.stateNats,
          'state.nats.leaseTtlSec': f.leaseTtl,
          replicaId: f.replicaId,
        },
        process.env,
        f.config,
      );
      // Loaded by this command only (pino, octokit, prom-client, simple-git...): the others start without them.
      const [{ controllerLogger }, { startController }, { redactUrl }] = await Promise.all([
        import('./log.js'),
        import('../gitops/run.js'),
        import('../source/git-source.js'),
      ]);
      const log = controllerLogger({ base: { app: 'natsfleet' }, level: cfg.logLevel });
      const running = await startController(cfg, log);
      log.info(
        {
          repo: redactUrl(cfg.repo),
          branch: cfg.branch,
          github: cfg.github?.repository ?? null,
          listen: running.url ?? null,
          state: cfg.stateNats ? `nats bucket ${cfg.stateNats.bucket}` : cfg.stateDir,
          ...(running.replica ? { replica: running.replica } : {}),
        },
        'controller started',
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      log.info('stopping');
      await running.stop();
    });
}
