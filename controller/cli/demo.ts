// Owns `natsfleet demo`, the README's main job on an embedded default: a local sandbox fleet, a
// local Git repository made from the hosts/ examples pointed at it (two standalone hosts and a
// three-member JetStream cluster), the controller running until every host is deployed and healthy,
// then the status table with the cluster's health, and how to roll an upgrade over the cluster.
import { shortRev } from '../util/rev.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { fleetUp, type SandboxHost } from '../sandbox/fleet.js';
import type { NatsImages } from '../sandbox/images.js';
import { startController } from '../gitops/run.js';
import { DEFAULTS } from '../gitops/config-options.js';
import { loadPolicyFrom } from '../manifest/policy.js';
import type { NatsHost } from '../manifest/natshost.gen.js';
import type { NatsCluster } from '../manifest/natscluster.gen.js';

export interface DemoOptions {
  hosts: string;
  out: string;
  timeoutSec: number;
  /** Sandbox fleet id (tests use their own). */
  fleetId?: string;
}

/** The natsfleet command line (main.ts's `main`), handed in so that demo does not import main back. */
export type RunCli = (argv: string[], out: (line: string) => void) => Promise<number>;

interface SandboxSecrets {
  tokenPath: string;
  routePasswordPath: string;
}

/** An example's shared or own NATS settings, pointed at the sandbox's oldest image and its secret files. */
function pointNats(nats: NonNullable<NatsHost['spec']['nats']>, images: NatsImages, s: SandboxSecrets) {
  // Secrets stay out of Git: the examples' {env: ...} tokens become the sandbox's token file.
  if (nats.image) nats.image = images.old;
  if (nats.auth?.token?.env) nats.auth.token = { file: s.tokenPath };
}

/** The example host `doc`, pointed at sandbox host `h`. */
function pointHost(doc: NatsHost, h: SandboxHost, images: NatsImages, s: SandboxSecrets) {
  doc.spec.ssh = { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey };
  if (doc.spec.nats) pointNats(doc.spec.nats, images, s);
  return doc;
}

/** The example cluster `doc`, its members reaching each other on the sandbox's network. */
function pointCluster(doc: NatsCluster, byName: Map<string, SandboxHost>, images: NatsImages, s: SandboxSecrets) {
  for (const m of doc.spec.members) m.routeAddress = byName.get(m.host)!.clusterAddress;
  if (doc.spec.routeAuth?.password.env) doc.spec.routeAuth.password = { file: s.routePasswordPath };
  if (doc.spec.nats) pointNats(doc.spec.nats, images, s);
  return doc;
}

export async function demoCommand(o: DemoOptions, out: (l: string) => void, cli: RunCli): Promise<number> {
  const dir = resolve(o.out);
  const files = readdirSync(o.hosts)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  const docs = files.map((f) => ({ f, doc: load(readFileSync(join(o.hosts, f), 'utf8')) as NatsHost | NatsCluster }));
  const hostDocs = docs.filter((d) => d.doc.kind === 'NatsHost');
  const clusters = docs.filter((d) => d.doc.kind === 'NatsCluster');
  const started = Date.now();
  out(
    `natsfleet demo: a sandbox fleet of ${hostDocs.length} hosts (${clusters.length} cluster(s)), ` +
      'a Git repository, the controller\n',
  );
  const fleet = await fleetUp({
    hosts: hostDocs.length,
    id: o.fleetId ?? 'demo',
    dir: join(dir, 'fleet'),
    cluster: 'sandbox',
    log: (l) => out(`  sandbox: ${l}`),
  });
  const secrets = { tokenPath: fleet.tokenPath, routePasswordPath: join(fleet.secretsDir, 'route-password') };

  // The hosts repository: the examples, pointed at the sandbox.
  const origin = join(dir, 'origin.git');
  const work = join(dir, 'hosts-repo');
  const stateDir = join(dir, 'controller-state');
  for (const p of [origin, work, stateDir]) rmSync(p, { recursive: true, force: true });
  const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  git('init', '--bare', '-q', '-b', 'main', origin);
  git('init', '-q', '-b', 'main', work);
  mkdirSync(join(work, 'hosts'));
  const byName = new Map(hostDocs.map((d, i) => [(d.doc as NatsHost).metadata.name, fleet.hosts[i]]));
  for (const { f, doc } of docs) {
    const pointed =
      doc.kind === 'NatsCluster'
        ? pointCluster(doc as NatsCluster, byName, fleet.natsImages, secrets)
        : pointHost(doc as NatsHost, byName.get(doc.metadata.name)!, fleet.natsImages, secrets);
    const where =
      doc.kind === 'NatsCluster'
        ? 'its members on the sandbox network'
        : `sandbox host ${byName.get(doc.metadata.name)!.container}`;
    writeFileSync(
      join(work, 'hosts', f),
      `# From ${o.hosts}/${f}, pointed at ${where}.\n${dump(pointed, { lineWidth: -1 })}`,
    );
  }
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
  out(`\n  repository: ${origin} (working copy ${work}), ${docs.length} manifests at ${shortRev(head)}`);

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
  const cluster = clusters[0]?.f.replace(/\.yaml$/, '');
  const { old, next } = fleet.natsImages;
  out(`
Next: upgrade the cluster ${cluster} and watch natsfleet roll it, one member at a time.
  cd ${work}
  sed -i 's/image: ${old}$/image: ${next}/' hosts/${cluster}.yaml
  git commit -qam 'upgrade ${cluster} to ${next}' && git push -q origin main
  export NATSFLEET_SSH_KEY=${fleet.privateKeyPath} NATSFLEET_SECRETS_DIR=${fleet.secretsDir}
  npx natsfleet controller --repo ${origin} --state-dir ${stateDir} --poll-interval 5
  npx natsfleet status --hosts ${work}/hosts     # in another terminal
Remove everything: npx natsfleet sandbox down --id ${o.fleetId ?? 'demo'}`);
  return ok ? code : 1;
}
