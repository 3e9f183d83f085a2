// Owns `natsfleet demo`, the README's main job on an embedded default: a local sandbox fleet, a
// local Git repository made from the hosts/ examples pointed at it, the controller running until
// every host is deployed and healthy, then the status table and how to make a change.
import { shortRev } from '../util/rev.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { fleetUp, type SandboxHost } from '../sandbox/fleet.js';
import { NATS_TAGS } from '../sandbox/images.js';
import { startController } from '../gitops/run.js';
import { DEFAULTS } from '../gitops/config.js';
import { loadPolicyFrom } from '../manifest/policy.js';
import type { NatsHost } from '../manifest/natshost.gen.js';

export interface DemoOptions {
  hosts: string;
  out: string;
  timeoutSec: number;
  /** Sandbox fleet id (tests use their own). */
  fleetId?: string;
}

/** The natsfleet command line (main.ts's `main`), handed in so that demo does not import main back. */
export type RunCli = (argv: string[], out: (line: string) => void) => Promise<number>;

/** The example manifest `doc`, pointed at sandbox host `h` and at images the sandbox has. */
function pointAtSandbox(doc: NatsHost, h: SandboxHost, tokenPath: string) {
  doc.spec.ssh = { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey };
  const nats = (doc.spec.nats ??= {});
  nats.image = NATS_TAGS[0];
  // Secrets stay out of Git: the example's {env: NATS_EU1_TOKEN} becomes the sandbox's token file.
  if (nats.auth?.token?.env) nats.auth.token = { file: tokenPath };
  return doc;
}

export async function demoCommand(o: DemoOptions, out: (l: string) => void, cli: RunCli): Promise<number> {
  const dir = resolve(o.out);
  const examples = readdirSync(o.hosts)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const started = Date.now();
  out(`natsfleet demo: a sandbox fleet of ${examples.length + 1} hosts, a Git repository, the controller\n`);
  const fleet = await fleetUp({
    hosts: examples.length + 1,
    id: o.fleetId ?? 'demo',
    dir: join(dir, 'fleet'),
    log: (l) => out(`  sandbox: ${l}`),
  });

  // The hosts repository: the examples (pointed at the sandbox) plus one default sandbox host.
  const origin = join(dir, 'origin.git');
  const work = join(dir, 'hosts-repo');
  const stateDir = join(dir, 'controller-state');
  for (const p of [origin, work, stateDir]) rmSync(p, { recursive: true, force: true });
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  git('init', '--bare', '-q', '-b', 'main', origin);
  git('init', '-q', '-b', 'main', work);
  mkdirSync(join(work, 'hosts'));
  examples.forEach((f, i) => {
    const doc = pointAtSandbox(
      load(readFileSync(join(o.hosts, f), 'utf8')) as NatsHost,
      fleet.hosts[i],
      fleet.tokenPath,
    );
    writeFileSync(
      join(work, 'hosts', f),
      `# From ${o.hosts}/${f}, pointed at sandbox host ${fleet.hosts[i].container}.\n${dump(doc, { lineWidth: -1 })}`,
    );
  });
  const last = fleet.hosts[examples.length];
  writeFileSync(join(work, 'hosts', `${last.name}.yaml`), readFileSync(join(fleet.hostsDir, `${last.name}.yaml`)));
  git('-C', work, 'add', '-A');
  git(
    '-C',
    work,
    '-c',
    'user.name=natsfleet demo',
    '-c',
    'user.email=demo@natsfleet.invalid',
    'commit',
    '-q',
    '-m',
    'NATS hosts',
  );
  git('-C', work, 'remote', 'add', 'origin', origin);
  git('-C', work, 'push', '-q', 'origin', 'main');
  const head = git('-C', work, 'rev-parse', 'HEAD').trim();
  out(`\n  repository: ${origin} (working copy ${work}), ${examples.length + 1} manifests at ${shortRev(head)}`);

  out('  controller: polling every 2 s until every host is deployed and healthy...\n');
  const log = pino({ level: 'warn' });
  const running = await startController(
    {
      ...DEFAULTS,
      repo: origin,
      stateDir,
      sshKey: fleet.privateKeyPath,
      pollIntervalSec: 2,
      driftIntervalSec: 3600,
      planUntrustedLive: false,
      policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
    },
    log,
  );
  const deadline = Date.now() + o.timeoutSec * 1000;
  try {
    while (Date.now() < deadline) {
      await running.nextTick();
      const st = running.controller.state;
      if (st.appliedRevision === head && Object.keys(st.retries).length === 0) break;
      if (Object.keys(st.retries).length)
        out(
          `  retrying: ${Object.entries(st.retries)
            .map(([h, r]) => `${h}: ${r.lastError}`)
            .join('; ')}`,
        );
    }
  } finally {
    await running.stop();
  }
  const st = running.controller.state;
  const ok = st.appliedRevision === head && Object.keys(st.retries).length === 0;
  out(
    ok
      ? `  deployed ${shortRev(head)} to every host in ${((Date.now() - started) / 1000).toFixed(1)} s\n`
      : '  not every host was deployed in time:\n',
  );
  const code = await cli(
    [
      'node',
      'natsfleet',
      'status',
      '--hosts',
      join(work, 'hosts'),
      '--ssh-key',
      fleet.privateKeyPath,
      '--secrets-dir',
      fleet.secretsDir,
    ],
    out,
  );
  out(`
Next: change a host and watch it deploy.
  cd ${work}
  sed -i 's/^    image: nats:2.9.10$/    image: nats:2.9.10-r1/' hosts/${last.name}.yaml
  git commit -qam 'upgrade ${last.name}' && git push -q origin main
  export NATSFLEET_SSH_KEY=${fleet.privateKeyPath} NATSFLEET_SECRETS_DIR=${fleet.secretsDir}
  npx natsfleet controller --repo ${origin} --state-dir ${stateDir} --poll-interval 5
  npx natsfleet status --hosts ${work}/hosts     # in another terminal
Remove everything: npx natsfleet sandbox down --id ${o.fleetId ?? 'demo'}`);
  return ok ? code : 1;
}
