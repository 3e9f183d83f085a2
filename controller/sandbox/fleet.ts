// Owns the sandbox fleet: disposable Debian hosts (systemd as PID 1, OpenSSH, their own Docker
// engine) reachable only over SSH on a 127.0.0.1 port, with pinned per-host keys, preloaded images,
// and ready-to-use NatsHost manifests (and, on request, a NatsCluster of them all). The hosts of a
// fleet also share an internal Docker network of their own, on which they reach each other (NATS
// routes) and nothing else. On that network, too, each fleet runs its own ACME server (pebble, alias
// `pebble`), and every host answers to its proxy domain (<host>.sandbox.test): the hosts' certbot
// obtains real certificates from it by HTTP-01, without leaving the fleet. Everything it creates carries
// the label io.natsfleet.sandbox, so `down` (or a later `up` after an interrupted run) removes all of it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { dump, load } from 'js-yaml';
import { docker, dockerPipe } from './docker.js';
import {
  ACME_DIRECTORY,
  buildAllImages,
  PEBBLE_ALIAS,
  PEBBLE_MANAGEMENT_PORT,
  preloadedImages,
  SANDBOX_USERS,
  type NatsImages,
} from './images.js';
import { SshSession } from '../transport/ssh.js';
import { byCodePoint } from '../util/order.js';

export const SANDBOX_LABEL = 'io.natsfleet.sandbox';
/** Set on the fleet's pebble container (`acme`): what is not a host. */
const ROLE_LABEL = 'io.natsfleet.sandbox.role';

/**
 * The proxy domain of a sandbox host (its manifest's spec.proxy.domain): on the fleet's network it is
 * the host's network alias, so the fleet's pebble reaches the host's nginx on port 80 by that name.
 */
export const sandboxDomain = (hostName: string) => `${hostName}.sandbox.test`;

/**
 * Where a named volume of a host's own Docker engine (such as the proxy's `nginx_secrets`) keeps its
 * files, on that host: e.g. `${sandboxVolumePath('nginx_secrets')}/live/<domain>/fullchain.pem`.
 */
export const sandboxVolumePath = (volume: string) => `/var/lib/docker/volumes/${volume}/_data`;

export interface SandboxHost {
  name: string;
  container: string;
  volume: string;
  sshPort: number;
  hostKey: string;
  /** 'v1': only docker-compose; 'v1+plugin': also the `docker compose` CLI plugin (a shim over v1). */
  compose: 'v1' | 'v1+plugin';
  /**
   * The host's IPv4 address on the fleet's internal network: where the other hosts reach the ports its
   * Docker engine publishes (NATS routes, 6222). Nothing outside the fleet reaches it.
   */
  clusterAddress: string;
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
  /** The NATS images every host has (NatsHost manifests use `old`). */
  natsImages: NatsImages;
  /** The fleet's internal Docker network (see SandboxHost.clusterAddress). */
  network: string;
  /** The fleet's ACME server (pebble), on its network only. */
  acme: {
    /** Its container on this machine's Docker engine. */
    container: string;
    /** The ACME directory URL, as the hosts (and their proxies' certbot) reach it. */
    directory: string;
  };
  /** The NatsCluster manifest of all the hosts, in hostsDir, when `up` was asked for a cluster. */
  clusterManifest?: string;
  readyMs: number;
}

export interface UpOptions {
  hosts: number;
  dir: string;
  id?: string;
  /** Also write a NatsCluster manifest of all the hosts, of this name (see clusterNameProblem). */
  cluster?: string;
  log?: (line: string) => void;
}

const containerName = (id: string, i: number) => `natsfleet-sb-${id}-${i}`;
const networkName = (id: string) => `natsfleet-sb-${id}`;
const pebbleName = (id: string) => `natsfleet-sb-${id}-pebble`;
const hostName = (i: number) => `nats-sb-${i + 1}`;
/** The names of the hosts of an n-host fleet: nats-sb-1 to nats-sb-<n>. */
export const sandboxHostNames = (n: number) => Array.from({ length: n }, (_, i) => hostName(i));

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

/**
 * An ed25519 key pair in OpenSSH formats. ssh2's generator drops a leading zero byte of the public key
 * (about one key in 256), which makes an invalid key (31 bytes): such a pair is drawn again.
 */
function keyPair() {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'natsfleet-sandbox' });
    // The blob: string "ssh-ed25519" (4 + 11 bytes), then string key (4 + 32 bytes).
    if (Buffer.from(k.public.split(' ')[1], 'base64').length === 51)
      return { private: k.private, public: k.public.trim() };
  }
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
    for (const d of [
      'etc',
      'etc/ssh',
      'etc/ssh/authorized_keys',
      'usr',
      'usr/libexec',
      'usr/libexec/docker',
      'usr/libexec/docker/cli-plugins',
    ]) {
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

interface HostSetup {
  fleetId: string;
  image: string;
  network: string;
  clientPublicKey: string;
  preload: string[];
}

async function startHost(setup: HostSetup, i: number): Promise<SandboxHost> {
  const { fleetId, image, network, clientPublicKey, preload } = setup;
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
    hostName(i),
    ...labels,
    ...HOST_FLAGS,
    '-v',
    `${volume}:/var/lib/docker`,
    image,
  ]);
  // A second interface, beside the default bridge's (published ports, SSH included, need that one). Its
  // alias, the host's proxy domain, is how the fleet's pebble finds the host (HTTP-01 on port 80).
  await docker(['network', 'connect', '--alias', sandboxDomain(hostName(i)), network, container]);
  await seed(container, [
    { path: 'etc/ssh/ssh_host_ed25519_key', content: hostKey.private, mode: 0o600 },
    { path: 'etc/ssh/ssh_host_ed25519_key.pub', content: `${hostKey.public}\n`, mode: 0o644 },
    { path: 'root/.ssh/authorized_keys', content: `${clientPublicKey}\n`, mode: 0o600 },
    // The non-root users log in with the same client key (root-owned and world-readable, as sshd wants).
    ...Object.values(SANDBOX_USERS).map((u) => ({
      path: `etc/ssh/authorized_keys/${u}`,
      content: `${clientPublicKey}\n`,
      mode: 0o644,
    })),
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
  await dockerPipe(['save', ...preload], ['exec', '-i', container, 'docker', 'load', '--quiet']);
  const port = (await docker(['port', container, '22/tcp'])).trim().split('\n')[0];
  const m = /^127\.0\.0\.1:(\d+)$/.exec(port);
  if (!m) throw new Error(`${container}: SSH is not published on 127.0.0.1 only: ${port}`);
  const clusterAddress = (
    await docker(['inspect', '--format', `{{ (index .NetworkSettings.Networks "${network}").IPAddress }}`, container])
  ).trim();
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(clusterAddress))
    throw new Error(`${container}: no IPv4 address on ${network}: ${clusterAddress}`);
  const pub = hostKey.public.split(' ');
  return {
    name: hostName(i),
    container,
    volume,
    sshPort: Number(m[1]),
    hostKey: `${pub[0]} ${pub[1]}`,
    compose,
    clusterAddress,
  };
}

/** The NatsHost manifest `up` writes for a sandbox host: a realistic host, secrets from a file. */
export function sandboxManifest(h: SandboxHost, tokenPath: string, natsImage: string): string {
  return dump(
    {
      apiVersion: 'natsfleet/v1alpha1',
      kind: 'NatsHost',
      metadata: { name: h.name, labels: { sandbox: 'true', compose: h.compose.replace('+', '-') } },
      spec: {
        ssh: { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
        nats: {
          image: natsImage,
          auth: { token: { file: tokenPath } },
          jetstream: { enabled: true, maxMemory: '64MB', maxFile: '256MB' },
        },
        proxy: { enabled: true, domain: sandboxDomain(h.name), email: 'ops@example.com' },
        policy: { selfHeal: true },
      },
    },
    { lineWidth: -1 },
  );
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** The NATS route port: every member publishes its container's 6222 on the same port of the host. */
const ROUTE_PORT = 6222;

/** Why `name` cannot name a cluster of hosts `hostNames` (its manifest lies beside theirs), or undefined. */
export function clusterNameProblem(name: string, hostNames: readonly string[]): string | undefined {
  if (!DNS_LABEL.test(name)) return "must be a DNS label: lower-case letters, digits and '-', at most 63 characters";
  if (hostNames.includes(name)) return `must not be a host's name (${name} is one)`;
  return undefined;
}

function assertClusterName(name: string, hostNames: readonly string[]) {
  const problem = clusterNameProblem(name, hostNames);
  if (problem) throw new Error(`cluster name ${JSON.stringify(name)} ${problem}`);
}

/**
 * The NatsCluster manifest `up --cluster NAME` writes: every given host a member, reached on its
 * address on the fleet's internal network, routes authenticated with the password in a file.
 */
export function sandboxClusterManifest(
  name: string,
  hosts: readonly Pick<SandboxHost, 'name' | 'clusterAddress'>[],
  routePasswordPath: string,
): string {
  assertClusterName(
    name,
    hosts.map((h) => h.name),
  );
  return dump(
    {
      apiVersion: 'natsfleet/v1alpha1',
      kind: 'NatsCluster',
      metadata: { name, labels: { sandbox: 'true' } },
      spec: {
        members: hosts.map((h) => ({ host: h.name, routeAddress: h.clusterAddress })),
        routePort: ROUTE_PORT,
        routeAuth: { user: 'route', password: { file: routePasswordPath } },
        rollout: { maxUnavailable: 1, settle: '5s', timeout: '3m' },
      },
    },
    { lineWidth: -1 },
  );
}

/** Writes a random secret to `path` (0600) unless a previous `up` did: a fleet keeps its secrets. */
function ensureSecret(path: string) {
  if (!existsSync(path)) writeFileSync(path, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
}

/** Removes the manifests a previous `up` wrote to `hostsDir` (ours carry the label sandbox: 'true'). */
function removeSandboxManifests(hostsDir: string) {
  for (const f of readdirSync(hostsDir)) {
    if (!f.endsWith('.yaml')) continue;
    let doc: unknown;
    try {
      doc = load(readFileSync(join(hostsDir, f), 'utf8'));
    } catch {
      continue; // not ours: we write valid YAML
    }
    const labels = (doc as { metadata?: { labels?: Record<string, unknown> } } | null)?.metadata?.labels;
    if (labels?.sandbox === 'true') rmSync(join(hostsDir, f));
  }
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

/**
 * The fleet's ACME server: pebble, on the fleet's internal network only (no published port), under the
 * alias `pebble` that the proxy image's ACME directory names.
 */
async function startPebble(id: string, network: string, image: string): Promise<void> {
  await docker([
    'run',
    '--detach',
    '--name',
    pebbleName(id),
    '--label',
    `${SANDBOX_LABEL}=${id}`,
    '--label',
    `${ROLE_LABEL}=acme`,
    '--network',
    network,
    '--network-alias',
    PEBBLE_ALIAS,
    // Validate at once (no random 0-15 s wait) and accept every valid nonce: a test CA, fast and predictable.
    '--env',
    'PEBBLE_VA_NOSLEEP=1',
    '--env',
    'PEBBLE_WFE_NONCEREJECT=0',
    '--memory',
    '256m',
    image,
  ]);
}

/** Runs `argv` on a host of the fleet (as root, through docker exec, not SSH): stdout. */
const onHost = (fleet: Pick<Fleet, 'hosts'>, argv: string[]) =>
  docker(['exec', fleet.hosts[0].container, ...argv], { timeoutMs: 30_000 });

/** Waits until the fleet's pebble answers its ACME directory, as the hosts reach it (by name). */
async function waitForPebble(fleet: Fleet): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      // -k: the hosts do not trust pebble's API certificate (the proxy image does).
      await onHost(fleet, ['curl', '-fsSk', '--max-time', '5', fleet.acme.directory]);
      return;
    } catch (e) {
      if (attempt >= 40) throw new Error(`fleet ${fleet.id}: pebble did not answer: ${String(e)}`);
      await sleep(250);
    }
  }
}

/**
 * The root certificate (PEM) of the fleet's pebble: what every certificate it issues chains to (through
 * the intermediate certbot puts in chain.pem). pebble makes a new one each start, so it is asked, from
 * a host (this machine is not on the fleet's network).
 */
export async function acmeRootCA(fleet: Pick<Fleet, 'hosts'>): Promise<string> {
  const pem = await onHost(fleet, [
    'curl',
    '-fsSk',
    '--max-time',
    '10',
    `https://${PEBBLE_ALIAS}:${PEBBLE_MANAGEMENT_PORT}/roots/0`,
  ]);
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`pebble's root is not a PEM certificate: ${pem}`);
  return pem;
}

export async function fleetUp(opts: UpOptions): Promise<Fleet> {
  const log = opts.log ?? (() => {});
  const id = opts.id ?? 'default';
  if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(id)) throw new Error(`invalid fleet id ${id}`);
  const hostNames = sandboxHostNames(opts.hosts);
  if (opts.cluster !== undefined) assertClusterName(opts.cluster, hostNames);
  await fleetDown(id);
  const dir = resolve(opts.dir);
  const images = await buildAllImages(log);
  const started = Date.now();
  const hostsDir = join(dir, 'hosts');
  mkdirSync(hostsDir, { recursive: true });
  removeSandboxManifests(hostsDir);
  const client = keyPair();
  const privateKeyPath = join(dir, 'id_ed25519');
  writeFileSync(privateKeyPath, client.private, { mode: 0o600 });
  const secretsDir = join(dir, 'secrets');
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  const tokenPath = join(secretsDir, 'nats-token');
  ensureSecret(tokenPath);
  const network = networkName(id);
  await docker(['network', 'create', '--internal', '--label', `${SANDBOX_LABEL}=${id}`, network]);
  const acme = { container: pebbleName(id), directory: ACME_DIRECTORY };
  await startPebble(id, network, images.pebble);
  log(`starting ${opts.hosts} sandbox host(s) (fleet ${id})`);
  const setup: HostSetup = {
    fleetId: id,
    image: images.host,
    network,
    clientPublicKey: client.public,
    preload: preloadedImages(images.nats),
  };
  const hosts = await Promise.all(hostNames.map((_, i) => startHost(setup, i)));
  const fleet: Fleet = {
    id,
    dir,
    image: images.host,
    privateKeyPath,
    tokenPath,
    secretsDir,
    hostsDir,
    hosts,
    natsImages: images.nats,
    network,
    acme,
    readyMs: 0,
  };
  await Promise.all([...hosts.map((h) => waitForSsh(fleet, h)), waitForPebble(fleet)]);
  fleet.readyMs = Date.now() - started;
  for (const h of hosts) {
    writeFileSync(join(hostsDir, `${h.name}.yaml`), sandboxManifest(h, tokenPath, images.nats.old));
  }
  if (opts.cluster !== undefined) {
    const routePasswordPath = join(secretsDir, 'route-password');
    ensureSecret(routePasswordPath);
    fleet.clusterManifest = join(hostsDir, `${opts.cluster}.yaml`);
    writeFileSync(fleet.clusterManifest, sandboxClusterManifest(opts.cluster, hosts, routePasswordPath));
  }
  writeFileSync(join(dir, 'fleet.json'), `${JSON.stringify(fleet, null, 2)}\n`);
  log(`fleet ${id} ready in ${(fleet.readyMs / 1000).toFixed(1)} s: manifests in ${hostsDir}`);
  return fleet;
}

/**
 * Removes every container, volume and network of fleet `id` (or of every fleet when id is undefined).
 * Returns how many hosts (containers) it removed.
 */
export async function fleetDown(id?: string): Promise<number> {
  const filter = ['--filter', `label=${SANDBOX_LABEL}${id ? `=${id}` : ''}`];
  const list = async (...cmd: string[]) => (await docker([...cmd, ...filter])).split('\n').filter(Boolean);
  const containers = (await list('ps', '-a', '--format', `{{.ID}}\t{{.Label "${ROLE_LABEL}"}}`)).map((r) =>
    r.split('\t'),
  );
  if (containers.length) await docker(['rm', '--force', '--volumes', ...containers.map(([c]) => c)]);
  const volumes = await list('volume', 'ls', '-q');
  if (volumes.length) await docker(['volume', 'rm', '--force', ...volumes]);
  // A network goes once its containers have: they are removed above.
  const networks = await list('network', 'ls', '-q');
  if (networks.length) await docker(['network', 'rm', ...networks]);
  return containers.filter(([, role]) => !role).length;
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
    await docker([
      'ps',
      '-a',
      '--no-trunc',
      ...filter,
      '--format',
      `{{.ID}}\t{{.Names}}\t{{.State}}\t{{.Ports}}\t{{.Label "${ROLE_LABEL}"}}`,
    ])
  )
    .split('\n')
    .filter(Boolean)
    .map((r) => r.split('\t'))
    .filter((r) => !r[4]); // hosts only: not the fleet's pebble
  return rows
    .map(([containerId, container, state, ports]) => {
      const port = /127\.0\.0\.1:(\d+)->22/.exec(ports)?.[1];
      return {
        name: hostName(Number(container.split('-').pop())),
        container,
        state,
        sshPort: port ? Number(port) : undefined,
        memoryMiB: state === 'running' ? memoryMiB(containerId) : undefined,
      };
    })
    .sort((a, b) => byCodePoint(a.container, b.container));
}
