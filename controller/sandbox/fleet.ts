// Owns the sandbox fleet: disposable Debian hosts (systemd as PID 1, OpenSSH, their own Docker
// engine) reachable only over SSH on a 127.0.0.1 port, with pinned per-host keys, preloaded images,
// and ready-to-use NatsHost manifests. Everything it creates carries the label io.natsfleet.sandbox,
// so `down` (or a later `up` after an interrupted run) removes all of it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { dump } from 'js-yaml';
import { docker, dockerPipe } from './docker.js';
import { buildAllImages, NATS_TAGS, PRELOADED_IMAGES } from './images.js';
import { SshSession } from '../transport/ssh.js';

export const SANDBOX_LABEL = 'io.natsfleet.sandbox';

export interface SandboxHost {
  name: string;
  container: string;
  volume: string;
  sshPort: number;
  hostKey: string;
  /** 'v1': only docker-compose; 'v1+plugin': also the `docker compose` CLI plugin (a shim over v1). */
  compose: 'v1' | 'v1+plugin';
}

export interface Fleet {
  id: string;
  dir: string;
  image: string;
  privateKeyPath: string;
  tokenPath: string;
  /** The secrets directory of the fleet's manifests (give it as --secrets-dir / secrets.dir). */
  secretsDir: string;
  hostsDir: string;
  hosts: SandboxHost[];
  readyMs: number;
}

export interface UpOptions {
  hosts: number;
  dir: string;
  id?: string;
  log?: (line: string) => void;
}

const containerName = (id: string, i: number) => `natsfleet-sb-${id}-${i}`;

const HOST_FLAGS = [
  '--cap-add',
  'ALL',
  '--cap-drop',
  'SYS_RESOURCE',
  '--security-opt',
  'seccomp=unconfined',
  '--security-opt',
  'apparmor=unconfined',
  '-v',
  '/sys/fs/cgroup:/sys/fs/cgroup:rw',
  '--tmpfs',
  '/run',
  '--tmpfs',
  '/run/lock',
  '--stop-signal',
  'SIGRTMIN+3',
  '-p',
  '127.0.0.1::22',
];

function keyPair() {
  const k = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'natsfleet-sandbox' });
  return { private: k.private, public: k.public.trim() };
}

/** Puts per-host files in a created (not yet started) container through a tar stream. */
async function seed(container: string, files: { path: string; content?: string; mode: number; link?: string }[]) {
  const tmp = mkdtempSync(join(tmpdir(), 'natsfleet-seed-'));
  try {
    const tops = new Set<string>();
    for (const f of files) {
      const p = join(tmp, f.path);
      mkdirSync(join(p, '..'), { recursive: true });
      if (f.link) symlinkSync(f.link, p);
      else {
        writeFileSync(p, f.content ?? '');
        chmodSync(p, f.mode);
      }
      tops.add(f.path.split('/')[0]);
    }
    // Directory entries in the tar carry modes onto the host: keep them as the image has them.
    for (const d of ['etc', 'etc/ssh', 'usr', 'usr/libexec', 'usr/libexec/docker', 'usr/libexec/docker/cli-plugins']) {
      if (existsSync(join(tmp, d))) chmodSync(join(tmp, d), 0o755);
    }
    for (const d of ['root', 'root/.ssh']) if (existsSync(join(tmp, d))) chmodSync(join(tmp, d), 0o700);
    const tar = spawn('tar', ['-C', tmp, '--owner=0', '--group=0', '-c', ...tops], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await docker(['cp', '-', `${container}:/`], { input: tar.stdout });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitReady(container: string): Promise<void> {
  let state = '';
  // Until systemd has its bus up, systemctl cannot even connect: retry, then wait for boot to finish.
  for (let i = 0; i < 120 && !/^(running|degraded)/.test(state); i++) {
    state = (
      await docker(['exec', container, 'timeout', '60', 'systemctl', 'is-system-running', '--wait']).catch((e) =>
        String(e),
      )
    ).trim();
    if (!/^(running|degraded)/.test(state)) await sleep(250);
  }
  if (!/^(running|degraded)/.test(state)) throw new Error(`${container}: systemd did not come up: ${state}`);
  for (let i = 0; i < 60; i++) {
    if (
      await docker(['exec', container, 'docker', 'info', '--format', '{{.ServerVersion}}']).then(
        () => true,
        () => false,
      )
    )
      return;
    await sleep(500);
  }
  throw new Error(`${container}: the host's Docker engine did not answer`);
}

async function startHost(fleetId: string, image: string, i: number, clientPublicKey: string): Promise<SandboxHost> {
  const container = containerName(fleetId, i);
  const volume = `${container}-docker`;
  const hostKey = keyPair();
  const compose = i % 2 === 1 ? 'v1+plugin' : 'v1';
  const labels = ['--label', `${SANDBOX_LABEL}=${fleetId}`];
  await docker(['volume', 'create', ...labels, volume]);
  await docker([
    'create',
    '--name',
    container,
    '--hostname',
    `nats-sb-${i + 1}`,
    ...labels,
    ...HOST_FLAGS,
    '-v',
    `${volume}:/var/lib/docker`,
    image,
  ]);
  await seed(container, [
    { path: 'etc/ssh/ssh_host_ed25519_key', content: hostKey.private, mode: 0o600 },
    { path: 'etc/ssh/ssh_host_ed25519_key.pub', content: `${hostKey.public}\n`, mode: 0o644 },
    { path: 'root/.ssh/authorized_keys', content: `${clientPublicKey}\n`, mode: 0o600 },
    ...(compose === 'v1+plugin'
      ? [
          {
            path: 'usr/libexec/docker/cli-plugins/docker-compose',
            link: '/usr/local/lib/natsfleet/compose-plugin-shim',
            mode: 0o755,
          },
        ]
      : []),
  ]);
  await docker(['start', container]);
  await waitReady(container);
  await dockerPipe(['save', ...PRELOADED_IMAGES], ['exec', '-i', container, 'docker', 'load', '--quiet']);
  const port = (await docker(['port', container, '22/tcp'])).trim().split('\n')[0];
  const m = /^127\.0\.0\.1:(\d+)$/.exec(port);
  if (!m) throw new Error(`${container}: SSH is not published on 127.0.0.1 only: ${port}`);
  const pub = hostKey.public.split(' ');
  return {
    name: `nats-sb-${i + 1}`,
    container,
    volume,
    sshPort: Number(m[1]),
    hostKey: `${pub[0]} ${pub[1]}`,
    compose,
  };
}

/** The NatsHost manifest `up` writes for a sandbox host: a realistic host, secrets from a file. */
export function sandboxManifest(h: SandboxHost, tokenPath: string): string {
  return dump(
    {
      apiVersion: 'natsfleet/v1alpha1',
      kind: 'NatsHost',
      metadata: { name: h.name, labels: { sandbox: 'true', compose: h.compose.replace('+', '-') } },
      spec: {
        ssh: { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
        nats: {
          image: NATS_TAGS[0],
          auth: { token: { file: tokenPath } },
          jetstream: { enabled: true, maxMemory: '64MB', maxFile: '256MB' },
        },
        proxy: { enabled: true, domain: `${h.name}.sandbox.test`, email: 'ops@example.com' },
        policy: { selfHeal: true },
      },
    },
    { lineWidth: -1 },
  );
}

export async function waitForSsh(fleet: Fleet, h: SandboxHost): Promise<void> {
  const privateKey = readFileSync(fleet.privateKeyPath);
  for (let attempt = 0; ; attempt++) {
    try {
      const s = await SshSession.connect(
        { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
        { privateKey },
        { timeoutMs: 5000 },
      );
      s.close();
      return;
    } catch (e) {
      if (attempt >= 40) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

export async function fleetUp(opts: UpOptions): Promise<Fleet> {
  const log = opts.log ?? (() => {});
  const id = opts.id ?? 'default';
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(id)) throw new Error(`invalid fleet id ${id}`);
  await fleetDown(id);
  const dir = resolve(opts.dir);
  const image = await buildAllImages(log);
  const started = Date.now();
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  const client = keyPair();
  const privateKeyPath = join(dir, 'id_ed25519');
  writeFileSync(privateKeyPath, client.private, { mode: 0o600 });
  const secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const tokenPath = join(secretsDir, 'nats-token');
  if (!existsSync(tokenPath)) writeFileSync(tokenPath, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  log(`starting ${opts.hosts} sandbox host(s) (fleet ${id})`);
  const hosts = await Promise.all(Array.from({ length: opts.hosts }, (_, i) => startHost(id, image, i, client.public)));
  const fleet: Fleet = {
    id,
    dir,
    image,
    privateKeyPath,
    tokenPath,
    secretsDir,
    hostsDir: join(dir, 'hosts'),
    hosts,
    readyMs: 0,
  };
  await Promise.all(hosts.map((h) => waitForSsh(fleet, h)));
  fleet.readyMs = Date.now() - started;
  for (const h of hosts) writeFileSync(join(fleet.hostsDir, `${h.name}.yaml`), sandboxManifest(h, tokenPath));
  writeFileSync(join(dir, 'fleet.json'), `${JSON.stringify(fleet, null, 2)}\n`);
  log(`fleet ${id} ready in ${(fleet.readyMs / 1000).toFixed(1)} s: manifests in ${fleet.hostsDir}`);
  return fleet;
}

/** Removes every container and volume of fleet `id` (or of every fleet when id is undefined). */
export async function fleetDown(id?: string): Promise<number> {
  const filter = ['--filter', `label=${SANDBOX_LABEL}${id ? `=${id}` : ''}`];
  const containers = (await docker(['ps', '-aq', ...filter])).split('\n').filter(Boolean);
  if (containers.length) await docker(['rm', '--force', '--volumes', ...containers]);
  const volumes = (await docker(['volume', 'ls', '-q', ...filter])).split('\n').filter(Boolean);
  if (volumes.length) await docker(['volume', 'rm', '--force', ...volumes]);
  return containers.length;
}

export interface HostStatus {
  name: string;
  container: string;
  state: string;
  sshPort?: number;
  memoryMiB?: number;
}

/** Resident memory of a sandbox host, all its processes (systemd, sshd, dockerd, NATS, nginx) included. */
function memoryMiB(containerId: string): number | undefined {
  for (const path of [
    `/sys/fs/cgroup/memory/docker/${containerId}/memory.stat`,
    `/sys/fs/cgroup/system.slice/docker-${containerId}.scope/memory.stat`,
  ]) {
    if (!existsSync(path)) continue;
    const m = /^(?:total_rss|anon) (\d+)$/m.exec(readFileSync(path, 'utf8'));
    if (m) return Math.round(Number(m[1]) / 1048576);
  }
  return undefined;
}

export async function fleetStatus(id?: string): Promise<HostStatus[]> {
  const filter = ['--filter', `label=${SANDBOX_LABEL}${id ? `=${id}` : ''}`];
  const rows = (
    await docker(['ps', '-a', '--no-trunc', ...filter, '--format', '{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Ports}}'])
  )
    .split('\n')
    .filter(Boolean);
  return rows
    .map((r) => {
      const [containerId, container, state, ports] = r.split('\t');
      const port = /127\.0\.0\.1:(\d+)->22/.exec(ports)?.[1];
      return {
        name: `nats-sb-${Number(container.split('-').pop()) + 1}`,
        container,
        state,
        sshPort: port ? Number(port) : undefined,
        memoryMiB: state === 'running' ? memoryMiB(containerId) : undefined,
      };
    })
    .sort((a, b) => a.container.localeCompare(b.container));
}
