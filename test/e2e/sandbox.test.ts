// The sandbox fleet is real: each host runs systemd, sshd and its own Docker engine with the
// preloaded images, is reachable only over SSH on 127.0.0.1 with a pinned host key.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker } from '../../controller/sandbox/docker.js';
import { fleetDown, fleetStatus, fleetUp, SANDBOX_LABEL } from '../../controller/sandbox/fleet.js';
import { preloadedImages } from '../../controller/sandbox/images.js';
import { HostKeyError, scanHostKey, SshSession } from '../../controller/transport/ssh.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { loadManifests } from '../../controller/manifest/load.js';
import { readManifestDir } from '../../controller/manifest/read-dir.js';

const fleet = inject('fleet');
const privateKey = readFileSync(fleet.privateKeyPath);
const sessions = new Map<string, SshSession>();

beforeAll(async () => {
  for (const h of fleet.hosts) {
    sessions.set(
      h.name,
      await SshSession.connect(
        { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
        { privateKey },
      ),
    );
  }
});
afterAll(() => sessions.forEach((s) => s.close()));

describe.each(fleet.hosts.map((h) => [h.name, h] as const))('%s', (name, host) => {
  const sh = async (cmd: string) => {
    const r = await sessions.get(name)!.exec(cmd);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    return r.stdout.trim();
  };

  it('runs systemd as PID 1, fully booted', async () => {
    expect(await sh('systemctl is-system-running')).toBe('running');
    expect(await sh('ps -o comm= -p 1')).toBe('systemd');
  });

  it('has its own Docker engine answering, with the images preloaded', async () => {
    expect(await sh("docker info --format '{{.ServerVersion}}'")).toMatch(/^20\.10\./);
    const images = (await sh("docker images --format '{{.Repository}}:{{.Tag}}'")).split('\n');
    for (const image of preloadedImages(fleet.natsImages)) expect(images).toContain(image);
  });

  it('runs three real NATS versions, from three Debian suites', async () => {
    const { old, next, newest } = fleet.natsImages;
    const versions = await Promise.all([old, next, newest].map((i) => sh(`docker run --rm ${i} --version`)));
    expect(versions).toEqual([old, next, newest].map((i) => `nats-server: v${i.split(':')[1]}`));
    expect(new Set(versions).size).toBe(3);
  });

  it('runs the NATS image (Debian nats-server) and knows its Compose flavour', async () => {
    expect(await sh('docker run --rm nats:2.9.10 --version')).toBe('nats-server: v2.9.10');
    expect(await sh('docker-compose version --short')).toMatch(/^1\.29/);
    const plugin = await sessions.get(name)!.exec('docker compose version');
    expect(plugin.code === 0).toBe(host.compose === 'v1+plugin');
  });

  it('is root over SSH, published on 127.0.0.1 only', async () => {
    expect(await sh('id -u')).toBe('0');
    const bindings = JSON.parse(
      await docker(['inspect', '--format', '{{json .HostConfig.PortBindings}}', host.container]),
    );
    expect(bindings).toEqual({ '22/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }] });
  });

  it('presents the pinned host key; scanning finds the same key', async () => {
    expect(await scanHostKey('127.0.0.1', host.sshPort)).toBe(host.hostKey);
  });

  it('refuses a host whose key differs from the pinned one, before authenticating', async () => {
    const other = fleet.hosts.find((h) => h.name !== name)!;
    const wrong = { host: '127.0.0.1', port: host.sshPort, user: 'root', hostKey: other.hostKey };
    const accepted = async () =>
      Number(await sh("journalctl -u ssh --no-pager -o cat | grep -c 'Accepted publickey' || true"));
    const before = await accepted();
    await expect(SshSession.connect(wrong, { privateKey })).rejects.toThrow(HostKeyError);
    await expect(SshSession.connect(wrong, { privateKey })).rejects.toThrow(/host key mismatch.*refusing to connect/);
    // The refused attempts never reached authentication: sshd logged no accepted login for them.
    expect(await accepted()).toBe(before);
  });
});

describe('the proxy stand-in follows jonasal/nginx-certbot', () => {
  it('refuses to start without CERTBOT_EMAIL', async () => {
    const r = await sessions.get(fleet.hosts[0].name)!.exec('docker run --rm jonasal/nginx-certbot:latest');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('CERTBOT_EMAIL');
  });
});

describe('fleet manifests', () => {
  it('are valid NatsHosts pinning each host key on 127.0.0.1, and a NatsCluster of them all', async () => {
    const policy = loadPolicyFrom({ secretsDir: fleet.secretsDir });
    const { hosts, clusters, problems } = loadManifests(await readManifestDir(fleet.hostsDir), policy);
    // An even member count is only warned of.
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(hosts.map((h) => [h.name, h.ssh.host, h.ssh.port, h.ssh.hostKey])).toEqual(
      fleet.hosts.map((h) => [h.name, '127.0.0.1', h.sshPort, h.hostKey]),
    );
    expect(clusters.map((c) => [c.name, c.members])).toEqual([
      ['core', fleet.hosts.map((h) => ({ host: h.name, routeAddress: h.clusterAddress, serverName: h.name }))],
    ]);
  });
});

describe('fleet lifecycle', () => {
  it('status lists the hosts with their memory; down leaves no container or volume behind', async () => {
    const status = await fleetStatus(fleet.id);
    expect(
      status.map((s) => s.state),
      JSON.stringify(status),
    ).toEqual(fleet.hosts.map(() => 'running'));
    for (const s of status) expect(s.memoryMiB, JSON.stringify(status)).toBeGreaterThan(5);

    const extra = await fleetUp({ hosts: 1, id: 'e2e-lifecycle', dir: '.sandbox/e2e-lifecycle' });
    expect(extra.hosts).toHaveLength(1);
    expect(await fleetDown('e2e-lifecycle')).toBe(1);
    const filter = `label=${SANDBOX_LABEL}=e2e-lifecycle`;
    expect(await docker(['ps', '-aq', '--filter', filter])).toBe('');
    expect(await docker(['volume', 'ls', '-q', '--filter', filter])).toBe('');
    expect(await docker(['network', 'ls', '-q', '--filter', filter])).toBe('');
  });
});
