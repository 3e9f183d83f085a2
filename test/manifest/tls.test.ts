// spec.nats.tls: every misuse is refused with the file, line and field, and nothing renders.
import { describe, expect, it } from 'vitest';
import { dump } from 'js-yaml';
import { loadManifests } from '../../controller/manifest/load.js';
import { formatProblem } from '../../controller/manifest/problems.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/Ke1fjU+ycPsTn/8TNDIy0scOjx3oWxZgIF+TiXIT1';
const doc = (tls: unknown, proxy = true) => ({
  apiVersion: 'natsfleet/v1alpha1',
  kind: 'NatsHost',
  metadata: { name: 'h1' },
  spec: {
    ssh: { host: '203.0.113.10', hostKey: KEY },
    nats: { image: 'nats:2.10.22', auth: { token: { env: 'NATS_TOKEN' } }, tls },
    proxy: proxy ? { enabled: true, domain: 'h1.example.com', email: 'ops@example.com' } : { enabled: false },
  },
});
const errors = (tls: unknown, proxy = true) =>
  loadManifests([{ path: 'hosts/h1.yaml', text: dump(doc(tls, proxy)) }])
    .problems.filter((p) => p.severity === 'error')
    .map(formatProblem);

describe('spec.nats.tls', () => {
  it.each([
    ['source proxy with the proxy', { enabled: true }, true],
    [
      'operator files under an allowed root',
      { enabled: true, source: 'files', certFile: '/etc/nats/tls/c.pem', keyFile: '/etc/nats/tls/k.pem' },
      false,
    ],
    ['mutual TLS with a CA', { enabled: true, verify: true, caFile: '/etc/nats/ca.pem' }, true],
    ['off, whatever else it says', { enabled: false, source: 'files' }, false],
  ])('accepts %s', (_n, tls, proxy) => expect(errors(tls, proxy)).toEqual([]));

  it.each([
    ['source proxy without the proxy', { enabled: true }, false, /spec\.nats\.tls\.source: proxy needs the proxy/],
    [
      'files without a key',
      { enabled: true, source: 'files', certFile: '/etc/nats/tls/c.pem' },
      false,
      /spec\.nats\.tls\.keyFile: is required with source: files/,
    ],
    [
      'a key in a system tree',
      { enabled: true, source: 'files', certFile: '/etc/nats/c.pem', keyFile: '/etc/ssh/ssh_host_ed25519_key' },
      false,
      /spec\.nats\.tls\.keyFile: \/etc\/ssh lies in \/etc\/ssh, which natsfleet never writes/,
    ],
    [
      'a certificate outside the allowed roots',
      { enabled: true, source: 'files', certFile: '/root/c.pem', keyFile: '/etc/nats/k.pem' },
      false,
      /spec\.nats\.tls\.certFile: \/root is outside natsfleet's allowed roots/,
    ],
    [
      'certFile with source proxy',
      { enabled: true, certFile: '/etc/nats/c.pem' },
      true,
      /spec\.nats\.tls\.certFile: is for source: files/,
    ],
    [
      'verify without a CA',
      { enabled: true, verify: true },
      true,
      /spec\.nats\.tls\.caFile: is required with verify: true/,
    ],
    ['an unknown source', { enabled: true, source: 'vault' }, true, /spec\.nats\.tls\.source: must be proxy or files/],
    [
      'a relative path',
      { enabled: true, source: 'files', certFile: 'c.pem', keyFile: '/etc/nats/k.pem' },
      false,
      /spec\.nats\.tls\.certFile/,
    ],
  ])('refuses %s', (_n, tls, proxy, message) => {
    const e = errors(tls, proxy);
    expect(e.length).toBeGreaterThan(0);
    expect(e.join('\n')).toMatch(message);
    expect(e.join('\n')).toMatch(/^hosts\/h1\.yaml:\d+/);
  });
});

describe('TLS files and the data directory', () => {
  it('refuses a certificate in the data directory NATS and its clients write', () => {
    const e = errors(
      { enabled: true, source: 'files', certFile: '/var/lib/nats/jetstream/c.pem', keyFile: '/etc/nats/k.pem' },
      false,
    );
    expect(e.join('\n')).toMatch(/spec\.nats\.tls\.certFile: lies in NATS's data directory \(\/var\/lib\/nats\)/);
  });
});

describe('NatsCluster spec.tls (routes)', () => {
  const cluster = (tls: unknown) =>
    dump({
      apiVersion: 'natsfleet/v1alpha1',
      kind: 'NatsCluster',
      metadata: { name: 'core' },
      spec: { members: [{ host: 'h1', routeAddress: '10.0.0.1' }], nats: { image: 'nats:2.10.22' }, tls },
    });
  const member = dump({
    apiVersion: 'natsfleet/v1alpha1',
    kind: 'NatsHost',
    metadata: { name: 'h1' },
    spec: { ssh: { host: '203.0.113.10', hostKey: KEY }, nats: { auth: { token: { env: 'NATS_TOKEN' } } } },
  });
  const load = (tls: unknown) =>
    loadManifests([
      { path: 'hosts/core.yaml', text: cluster(tls) },
      { path: 'hosts/h1.yaml', text: member },
    ]);

  it('renders the route tls block for a member when the three files are given', () => {
    const r = load({
      enabled: true,
      certFile: '/etc/nats/tls/r.pem',
      keyFile: '/etc/nats/tls/k.pem',
      caFile: '/etc/nats/tls/ca.pem',
    });
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(r.hosts[0].cluster!.tls).toEqual({
      enabled: true,
      certFile: '/etc/nats/tls/r.pem',
      keyFile: '/etc/nats/tls/k.pem',
      caFile: '/etc/nats/tls/ca.pem',
    });
  });

  it('refuses a missing CA and a key in a system tree, naming the cluster file; the member is left out', () => {
    const r = load({ enabled: true, certFile: '/etc/nats/tls/r.pem', keyFile: '/etc/ssh/k.pem' });
    const text = r.problems.map(formatProblem).join('\n');
    expect(text).toMatch(/hosts\/core\.yaml:\d+.*spec\.tls\.caFile: is required when route TLS is enabled/);
    expect(text).toMatch(/hosts\/core\.yaml:\d+.*spec\.tls\.keyFile: \/etc\/ssh lies in \/etc\/ssh/);
    expect(r.hosts).toEqual([]);
  });
});
