// NatsCluster manifests: loading beside NatsHosts, inheritance of shared settings, and the cross-file
// rules (unknown or invalid members, a host in two clusters, addresses, names), as tables.
import { describe, expect, it } from 'vitest';
import { dump, load } from 'js-yaml';
import { loadManifests, type ManifestFile } from '../../controller/manifest/load.js';
import { formatProblem } from '../../controller/manifest/problems.js';
import { readDir } from '../helpers/fixtures.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML, edited freely
type Doc = Record<string, any>;
const base = readDir('test/fixtures/clusters');
const docs = () => new Map(base.map((f) => [f.path, load(f.text) as Doc]));
const files = (m: Map<string, Doc>): ManifestFile[] => [...m].map(([path, d]) => ({ path, text: dump(d) }));
const CORE = 'test/fixtures/clusters/core.yaml';
const A = 'test/fixtures/clusters/core-a.yaml';

function loadEdited(edit: (m: Map<string, Doc>) => void) {
  const m = docs();
  edit(m);
  return loadManifests(files(m));
}

describe('a NatsCluster beside its NatsHosts', () => {
  const r = loadManifests(base);

  it('loads the cluster and its members, each member knowing its peers and their server names', () => {
    expect(r.problems).toEqual([]);
    expect(r.clusters.map((c) => c.name)).toEqual(['core']);
    const a = r.hosts.find((h) => h.name === 'core-a')!;
    expect(a.cluster).toMatchObject({
      name: 'core',
      routePort: 6222,
      routeAddress: '10.1.0.11',
      members: ['core-a', 'core-b', 'core-c'],
      peers: [
        { host: 'core-b', routeAddress: '10.1.0.12', serverName: 'core-b' },
        { host: 'core-c', routeAddress: 'nats-c.internal.example.com', serverName: 'core-c' },
      ],
      rollout: { maxUnavailable: 1, settleMs: 10_000, timeoutMs: 300_000 },
    });
  });

  it('gives members the shared settings (one image line for all), keeping their own', () => {
    for (const h of r.hosts) {
      expect(h.nats.image).toBe('nats:2.10.27');
      expect(h.nats.auth).toEqual({ user: 'app', password: { env: 'NATS_EU1_TOKEN' } });
      expect(h.nats.jetstream).toMatchObject({ enabled: true, maxFile: '1GB', storeDir: '/var/lib/nats/js' });
    }
  });
});

const RULES: [string, (m: Map<string, Doc>) => void, string, RegExp][] = [
  [
    'a field set in the cluster and in a member',
    (m) => (m.get(A)!.spec.nats.image = 'nats:2.9.10'),
    `${A}:`,
    /spec.nats.image: is also set by NatsCluster core/,
  ],
  [
    'a nested field set in both',
    (m) => (m.get(A)!.spec.nats.jetstream.maxFile = '2GB'),
    `${A}:`,
    /spec.nats.jetstream.maxFile: is also set by NatsCluster core/,
  ],
  [
    'an unknown member',
    (m) => m.get(CORE)!.spec.members.push({ host: 'core-z', routeAddress: '10.1.0.99' }),
    `${CORE}:`,
    /no NatsHost named core-z/,
  ],
  [
    'a member listed twice',
    (m) => m.get(CORE)!.spec.members.push({ host: 'core-a', routeAddress: '10.1.0.99' }),
    `${CORE}:`,
    /core-a is listed twice/,
  ],
  [
    'two members at one route address',
    (m) => (m.get(CORE)!.spec.members[1].routeAddress = '10.1.0.11'),
    `${CORE}:`,
    /10.1.0.11 is the route address of another member/,
  ],
  [
    'a host in two clusters',
    (m) => {
      const other = structuredClone(m.get(CORE)!);
      other.metadata.name = 'edge';
      other.spec.members = [{ host: 'core-a', routeAddress: '10.9.0.1' }];
      delete other.spec.nats;
      m.set('test/fixtures/clusters/edge.yaml', other);
    },
    'edge.yaml',
    /core-a is already a member of NatsCluster core/,
  ],
  [
    'a cluster named like a host',
    (m) => {
      const c = m.get(CORE)!;
      m.delete(CORE);
      c.metadata.name = 'core-a';
      m.set('test/fixtures/clusters/core-a.yaml', c);
    },
    '',
    /core-a/,
  ],
  [
    'a route password as a bcrypt hash',
    (m) => (m.get(CORE)!.spec.routeAuth.password = { bcrypt: `$2a$11$${'a'.repeat(53)}` }),
    `${CORE}:`,
    /a bcrypt hash cannot be sent/,
  ],
  [
    'a route password file outside the secrets directory',
    (m) => (m.get(CORE)!.spec.routeAuth.password = { file: '/root/.ssh/id_ed25519' }),
    `${CORE}:`,
    /secret files must lie in \/etc\/natsfleet\/secrets/,
  ],
  [
    'an absent member',
    (m) => (m.get(A)!.spec.state = 'absent'),
    `${A}:`,
    /cannot be absent: remove it from .*core.yaml first/,
  ],
  [
    'two members with one server name',
    (m) => (m.get(A)!.spec.nats.serverName = 'core-b'),
    `${CORE}:`,
    /members core-a and core-b have the same server name/,
  ],
  [
    'an invalid member',
    (m) => (m.get(A)!.spec.ssh.port = 0),
    `${CORE}:`,
    /core-a .* is invalid: the cluster is left out until it is fixed/,
  ],
  [
    'a system account beside a client token',
    (m) => (m.get(CORE)!.spec.nats.auth = { token: { env: 'NATS_EU1_TOKEN' } }),
    `${CORE}:`,
    /NATS refuses a system account beside a client token or no client auth: core-a, core-b, core-c/,
  ],
  [
    'a system account password as a bcrypt hash',
    (m) => (m.get(CORE)!.spec.systemAccount.password = { bcrypt: `$2a$11$${'a'.repeat(53)}` }),
    `${CORE}:`,
    /natsfleet signs in with it, a bcrypt hash cannot be sent/,
  ],
  [
    'a settle longer than the timeout',
    (m) => (m.get(CORE)!.spec.rollout = { settle: '10m', timeout: '1m' }),
    `${CORE}:`,
    /must be at least rollout.settle/,
  ],
];

describe.each(RULES)('%s', (_name, edit, file, message) => {
  it('is an error naming the file and field; the cluster is left out with all its members', () => {
    const r = loadEdited(edit);
    const errors = r.problems.filter((p) => p.severity === 'error').map(formatProblem);
    expect(errors.join('\n')).toMatch(message);
    expect(errors.some((e) => e.includes(file) && message.test(e))).toBe(true);
    // The second cluster naming core-a is the one left out; core keeps its members.
    const broken = file === 'edge.yaml' ? 'edge' : 'core';
    expect(r.clusters.map((c) => c.name)).not.toContain(broken);
    expect(r.hosts.filter((h) => h.cluster?.name === broken)).toEqual([]);
    expect(r.hosts.filter((h) => h.name.startsWith('core-') && !h.cluster)).toEqual([]);
  });
});

describe('warnings', () => {
  it('warns of an even member count, and loads the cluster', () => {
    const r = loadEdited((m) => {
      const d = structuredClone(m.get(A)!);
      d.metadata.name = 'core-d';
      d.spec.ssh.host = '10.1.0.14';
      m.set('test/fixtures/clusters/core-d.yaml', d);
      m.get(CORE)!.spec.members.push({ host: 'core-d', routeAddress: '10.1.0.14' });
    });
    expect(r.problems.map(formatProblem).join('\n')).toMatch(/warning: spec.members: 4 members: an even count/);
    expect(r.clusters).toHaveLength(1);
    expect(r.hosts.filter((h) => h.cluster)).toHaveLength(4);
  });

  it('warns when JetStream is on for some members only', () => {
    const r = loadEdited((m) => {
      delete m.get(CORE)!.spec.nats.jetstream.enabled;
      m.get(A)!.spec.nats.jetstream.enabled = true;
    });
    expect(r.problems.map(formatProblem).join('\n')).toMatch(/JetStream is enabled on 1 of 3 members/);
  });
});

describe('lines', () => {
  it('names the line of the list item at fault', () => {
    const r = loadEdited((m) => (m.get(CORE)!.spec.members[2].host = 'core-z'));
    const p = r.problems.find((x) => /no NatsHost named core-z/.test(x.message))!;
    const text = dump(docs().get(CORE)!).split('\n');
    expect(text[p.line! - 1]).toMatch(/host: core-c/);
  });
});

describe('secrets of a cluster', () => {
  it('route and system passwords are in the config, never in what natsfleet shows', async () => {
    const { renderHost } = await import('../../controller/render/desired.js');
    const { fixtureSecrets, FIXTURE_ROUTE_PASSWORD } = await import('../helpers/fixtures.js');
    const a = loadManifests(base).hosts.find((h) => h.name === 'core-a')!;
    const conf = renderHost(a, fixtureSecrets).files.find((f) => f.id === 'nats-config')!;
    expect(conf.sensitive).toBe(true);
    expect(conf.mode).toBe('0600');
    expect(conf.content).toContain(`password: "${FIXTURE_ROUTE_PASSWORD}"`);
    expect(conf.content).toContain(`route:${encodeURIComponent(FIXTURE_ROUTE_PASSWORD)}@10.1.0.12:6222`);
    expect(conf.content).toContain('fixture-system-password');
    for (const secret of [
      FIXTURE_ROUTE_PASSWORD,
      encodeURIComponent(FIXTURE_ROUTE_PASSWORD),
      'fixture-system-password',
    ])
      expect(conf.display).not.toContain(secret);
    expect(conf.display).toContain('nats-route://route:<secret:env:NATS_CORE_ROUTE_PASSWORD>@10.1.0.12:6222');
    expect(conf.display).toContain('password: "<secret:env:NATS_CORE_SYSTEM_PASSWORD>"');
  });

  it('a member whose route password is missing is not rendered, naming the cluster file and field', async () => {
    const { prepareEach } = await import('../../controller/reconcile/reconcile.js');
    const { secretResolver } = await import('../../controller/secrets/resolve.js');
    const r = loadManifests(base);
    const resolve = secretResolver({
      env: { NATS_EU1_TOKEN: 't', NATS_CORE_SYSTEM_PASSWORD: 's' },
      readFile: () => '',
    });
    const { targets, failures } = prepareEach(r.hosts, resolve);
    expect(targets).toEqual([]);
    expect(failures[0].error).toMatch(
      /core-a.yaml: spec.routeAuth.password of NatsCluster core \(test\/fixtures\/clusters\/core.yaml\): environment variable NATS_CORE_ROUTE_PASSWORD is not set/,
    );
  });
});

describe('rendering targets', () => {
  it('standalone hosts with secrets and cluster members with a system account user are both prepared', async () => {
    const { prepareEach } = await import('../../controller/reconcile/reconcile.js');
    const { fixtureSecrets } = await import('../helpers/fixtures.js');
    const standalone = readDir('hosts').filter((f) => /nats-(eu|us)-1/.test(f.path));
    const r = loadManifests([...base, ...standalone, ...readDir('test/fixtures/hosts')]);
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    const { targets, failures } = prepareEach(r.hosts, fixtureSecrets);
    expect(failures).toEqual([]);
    expect(targets.find((t) => t.spec.name === 'nats-eu-1')?.credentials).toEqual({ token: expect.any(String) });
    expect(targets.find((t) => t.spec.name === 'core-a')?.systemCredentials).toEqual({
      user: 'natsfleet',
      pass: 'fixture-system-password',
    });
  });
});
