// The validation contract: every bad manifest is rejected with a message naming the file and field.
import { describe, expect, it } from 'vitest';
import { dump } from 'js-yaml';
import { loadManifests } from '../../controller/manifest/load.js';
import { formatProblem } from '../../controller/manifest/problems.js';
import { readDir } from '../helpers/fixtures.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/Ke1fjU+ycPsTn/8TNDIy0scOjx3oWxZgIF+TiXIT1';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests built to be invalid, any shape
type Doc = Record<string, any>;
const base = (): Doc => ({
  apiVersion: 'natsfleet/v1alpha1',
  kind: 'NatsHost',
  metadata: { name: 'h1', labels: { region: 'eu' } },
  spec: {
    ssh: { host: '203.0.113.10', port: 22, user: 'root', hostKey: KEY },
    nats: { image: 'nats:2.10.22-alpine', auth: { token: { env: 'NATS_TOKEN' } }, jetstream: { enabled: true } },
    proxy: { enabled: true, domain: 'h1.example.com', email: 'ops@example.com' },
  },
});

function check(doc: Doc | string, name = 'h1') {
  const text = typeof doc === 'string' ? doc : dump(doc);
  return loadManifests([{ path: `hosts/${name}.yaml`, text }]);
}

describe('valid manifests', () => {
  it('accepts the base manifest with no problems', () => {
    const r = check(base());
    expect(r.problems).toEqual([]);
    expect(r.hosts.map((h) => h.name)).toEqual(['h1']);
  });

  it('accepts every shipped example and fixture', () => {
    for (const dir of ['hosts', 'test/fixtures/hosts']) {
      const r = loadManifests(readDir(dir));
      expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    }
  });

  it('fills defaults from the schema and derives the rest', () => {
    const doc = base();
    delete doc.spec.proxy;
    const [h] = check(doc).hosts;
    expect(h.ssh.port).toBe(22);
    expect(h.nats.containerName).toBe('nats');
    expect(h.nats.serverName).toBe('h1');
    expect(h.nats.confFile).toBe('/etc/nats/nats-server.conf');
    expect(h.nats.httpBind).toBe('0.0.0.0');
    expect(h.nats.jetstream.storeDir).toBe('/var/lib/nats/jetstream');
    expect(h.nats.imagePullPolicy).toBe('IfNotPresent');
    expect(h.nats.lameDuck).toEqual({ duration: '30s', gracePeriod: '10s' });
    expect(h.proxy.enabled).toBe(false);
    expect(h.proxy.dir).toBe('/root/nginx');
    expect(h.policy.selfHeal).toBe(false);
    expect(h.state).toBe('present');
  });

  it('keeps monitoring off the public interface when the proxy is on', () => {
    expect(check(base()).hosts[0].nats.httpBind).toBe('127.0.0.1');
  });

  it('warns, but passes, a server without auth', () => {
    const doc = base();
    delete doc.spec.nats.auth;
    const r = check(doc);
    expect(r.hosts).toHaveLength(1);
    expect(r.problems).toEqual([expect.objectContaining({ severity: 'warning', path: 'spec.nats.auth' })]);
  });
});

type Case = [title: string, mutate: (d: Doc) => void, path: string, message: RegExp];
const cases: Case[] = [
  ['unknown top-level field', (d) => (d.extra = 1), 'extra', /unknown field "extra"/],
  [
    'unknown nested field',
    (d) => (d.spec.nats.jetstream.maxMem = '1GB'),
    'spec.nats.jetstream.maxMem',
    /unknown field/,
  ],
  [
    'unknown field in a secret',
    (d) => (d.spec.nats.auth.token = { vault: 'x' }),
    'spec.nats.auth.token.vault',
    /\{env: NAME\}/,
  ],
  ['wrong kind', (d) => (d.kind = 'Deployment'), 'kind', /must be NatsHost/],
  ['wrong apiVersion', (d) => (d.apiVersion = 'v1'), 'apiVersion', /natsfleet\/v1alpha1/],
  [
    'missing spec.nats (no image anywhere)',
    (d) => delete d.spec.nats,
    'spec.nats.image',
    /is required \(or in its NatsCluster's spec.nats\)/,
  ],
  ['missing pinned host key', (d) => delete d.spec.ssh.hostKey, 'spec.ssh.hostKey', /is required/],
  ['malformed host key', (d) => (d.spec.ssh.hostKey = 'AAAA'), 'spec.ssh.hostKey', /public host key/],
  [
    'host key of another type',
    (d) => (d.spec.ssh.hostKey = KEY.replace('ssh-ed25519', 'ssh-rsa')),
    'spec.ssh.hostKey',
    /ssh-rsa/,
  ],
  ['bad name', (d) => (d.metadata.name = 'H_1'), 'metadata.name', /DNS label/],
  ['name differs from file', (d) => (d.metadata.name = 'h2'), 'metadata.name', /file name "h1"/],
  ['port out of range', (d) => (d.spec.nats.clientPort = 70000), 'spec.nats.clientPort', /1 to 65535/],
  ['port zero', (d) => (d.spec.ssh.port = 0), 'spec.ssh.port', /1 to 65535/],
  ['port as text', (d) => (d.spec.nats.httpPort = '8222'), 'spec.nats.httpPort', /port number/],
  [
    'client = http port',
    (d) => (d.spec.nats.httpPort = 4222),
    'spec.nats.httpPort',
    /clashes with spec.nats.clientPort/,
  ],
  ['client port 443 with proxy', (d) => (d.spec.nats.clientPort = 443), 'spec.nats.clientPort', /taken by the proxy/],
  ['http port 80 with proxy', (d) => (d.spec.nats.httpPort = 80), 'spec.nats.httpPort', /taken by the proxy/],
  [
    'token with user/password',
    (d) => Object.assign(d.spec.nats.auth, { user: 'a', password: { env: 'P' } }),
    'spec.nats.auth',
    /mutually exclusive/,
  ],
  [
    'user without password',
    (d) => (d.spec.nats.auth = { user: 'a' }),
    'spec.nats.auth.password',
    /required together with user/,
  ],
  ['empty auth', (d) => (d.spec.nats.auth = {}), 'spec.nats.auth', /token, or user and password/],
  [
    'plaintext token',
    (d) => (d.spec.nats.auth.token = 'hunter2'),
    'spec.nats.auth.token',
    /plaintext secrets are not allowed/,
  ],
  [
    'plaintext password',
    (d) => (d.spec.nats.auth = { user: 'a', password: 'hunter2' }),
    'spec.nats.auth.password',
    /plaintext/,
  ],
  [
    'two secret sources',
    (d) => (d.spec.nats.auth.token = { env: 'A', file: '/x/y' }),
    'spec.nats.auth.token',
    /exactly one/,
  ],
  [
    'malformed bcrypt',
    (d) => (d.spec.nats.auth.token = { bcrypt: '$2a$11$short' }),
    'spec.nats.auth.token.bcrypt',
    /bcrypt hash/,
  ],
  [
    'bad env name',
    (d) => (d.spec.nats.auth.token = { env: 'A-B' }),
    'spec.nats.auth.token.env',
    /environment variable/,
  ],
  ['relative data dir', (d) => (d.spec.nats.dataDir = 'var/lib/nats'), 'spec.nats.dataDir', /absolute path/],
  ['.. in a path', (d) => (d.spec.nats.dataDir = '/var/lib/../../etc'), 'spec.nats.dataDir', /'\.\.'/],
  ['/ as data dir', (d) => (d.spec.nats.dataDir = '/'), 'spec.nats.dataDir', /absolute path/],
  ['/proc as data dir', (d) => (d.spec.nats.dataDir = '/proc/nats'), 'spec.nats.dataDir', /lies in \/proc/],
  ['/sys as data dir', (d) => (d.spec.nats.dataDir = '/sys'), 'spec.nats.dataDir', /lies in \/sys/],
  ['/dev as data dir', (d) => (d.spec.nats.dataDir = '/dev/shm/nats'), 'spec.nats.dataDir', /lies in \/dev/],
  ['/boot as data dir', (d) => (d.spec.nats.dataDir = '/boot'), 'spec.nats.dataDir', /lies in \/boot/],
  [
    '/etc as config dir',
    (d) => (d.spec.nats.confFile = '/etc/nats.conf'),
    'spec.nats.confFile',
    /outside natsfleet's allowed roots/,
  ],
  [
    'config inside data dir',
    (d) => (d.spec.nats.confFile = '/var/lib/nats/nats.conf'),
    'spec.nats.confFile',
    /separate from the data directory/,
  ],
  [
    'store dir outside data dir',
    (d) => (d.spec.nats.jetstream.storeDir = '/srv/js'),
    'spec.nats.jetstream.storeDir',
    /inside spec.nats.dataDir/,
  ],
  ['quote in image', (d) => (d.spec.nats.image = 'nats:2.10"; rm -rf /'), 'spec.nats.image', /Docker image reference/],
  [
    'command substitution in image',
    (d) => (d.spec.nats.image = 'nats$(id)'),
    'spec.nats.image',
    /Docker image reference/,
  ],
  [
    'semicolon in container name',
    (d) => (d.spec.nats.containerName = 'nats;id'),
    'spec.nats.containerName',
    /container name/,
  ],
  ['newline in server name', (d) => (d.spec.nats.serverName = 'a\nport: 1'), 'spec.nats.serverName', /letters, digits/],
  ['brace in domain', (d) => (d.spec.proxy.domain = 'a.com}'), 'spec.proxy.domain', /domain name/],
  ['space in ssh host', (d) => (d.spec.ssh.host = 'a b'), 'spec.ssh.host', /host name/],
  ['shell in ssh user', (d) => (d.spec.ssh.user = 'root$(id)'), 'spec.ssh.user', /Unix user name/],
  ['quote in label', (d) => (d.metadata.labels.region = "eu'"), 'metadata.labels.region', /label value/],
  ['bad label key', (d) => (d.metadata.labels['a b'] = 'x'), 'metadata.labels', /invalid key "a b"/],
  [
    'proxy without domain',
    (d) => delete d.spec.proxy.domain,
    'spec.proxy.domain',
    /required when the proxy is enabled/,
  ],
  ['proxy without email', (d) => delete d.spec.proxy.email, 'spec.proxy.email', /required when the proxy is enabled/],
  ['bad email', (d) => (d.spec.proxy.email = 'ops@'), 'spec.proxy.email', /e-mail/],
  ['bad size', (d) => (d.spec.nats.jetstream.maxMemory = '1 GB'), 'spec.nats.jetstream.maxMemory', /size/],
  ['bad state', (d) => (d.spec.state = 'gone'), 'spec.state', /present or absent/],
  [
    'grace >= duration',
    (d) => (d.spec.nats.lameDuck = { duration: '30s', gracePeriod: '1m' }),
    'spec.nats.lameDuck.gracePeriod',
    /shorter than/,
  ],
  [
    'lame duck below minimum',
    (d) => (d.spec.nats.lameDuck = { duration: '10s', gracePeriod: '1s' }),
    'spec.nats.lameDuck.duration',
    /at least 30s/,
  ],
  ['payload above NATS limit', (d) => (d.spec.nats.maxPayload = '65MB'), 'spec.nats.maxPayload', /64MB/],
  ['bad httpBind', (d) => (d.spec.nats.httpBind = 'localhost'), 'spec.nats.httpBind', /IPv4/],
];

describe('invalid manifests', () => {
  it.each(cases)('%s', (_title, mutate, path, message) => {
    const doc = base();
    mutate(doc);
    const r = check(doc);
    expect(r.hosts).toEqual([]);
    const errors = r.problems.filter((p) => p.severity === 'error');
    expect(errors.map(formatProblem).join('\n')).toMatch(message);
    expect(errors.find((e) => message.test(e.message))).toMatchObject({ file: 'hosts/h1.yaml', path });
  });

  it('names the line of the offending field', () => {
    const text = dump(base()).replace('port: 22', 'port: 99999');
    const line = text.split('\n').findIndex((l) => l.includes('99999')) + 1;
    const [p] = check(text).problems;
    expect(p).toMatchObject({ path: 'spec.ssh.port', line });
    expect(formatProblem(p)).toBe(`hosts/h1.yaml:${line}: error: spec.ssh.port: must be a port number from 1 to 65535`);
  });

  it('reports YAML syntax errors with their line, without crashing', () => {
    const r = check('apiVersion: natsfleet/v1alpha1\nkind: NatsHost\nmetadata:\n  name: [h1\n');
    expect(r.hosts).toEqual([]);
    expect(r.problems[0]).toMatchObject({ file: 'hosts/h1.yaml', severity: 'error' });
    expect(r.problems[0].message).toMatch(/^YAML: /);
    expect(r.problems[0].line).toBeGreaterThan(0);
  });

  it('rejects duplicate keys', () => {
    const r = check(`${dump(base())}kind: NatsHost\n`);
    expect(r.problems[0].message).toMatch(/duplicate/i);
  });

  it('rejects several documents in one file', () => {
    const r = check(`${dump(base())}---\n${dump(base())}`);
    expect(r.problems).toEqual([expect.objectContaining({ message: expect.stringMatching(/2 YAML documents/) })]);
  });

  it('rejects an alias bomb quickly', () => {
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      levels.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const started = Date.now();
    const r = check(levels.join('\n'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(r.hosts).toEqual([]);
    expect(r.problems[0].message).toMatch(/alias|expands/i);
  });

  it('rejects an oversized file', () => {
    const r = check(`${dump(base())}# ${'x'.repeat(70 * 1024)}\n`);
    expect(r.problems[0].message).toMatch(/at most 65536/);
  });

  it('rejects a file that is not a mapping', () => {
    expect(check('- a\n- b\n').problems[0].message).toMatch(/mapping/);
    expect(check('').problems[0].message).toMatch(/mapping/);
  });

  it('rejects a name used twice and one SSH endpoint managed twice', () => {
    const a = base();
    const b = base();
    b.metadata.name = 'h2';
    const r = loadManifests([
      { path: 'hosts/h1.yaml', text: dump(a) },
      { path: 'hosts/h1.yml', text: dump(a) },
      { path: 'hosts/h2.yaml', text: dump(b) },
    ]);
    const msgs = r.problems.map(formatProblem).join('\n');
    expect(msgs).toMatch(/hosts\/h1.yml.*metadata.name: "h1" is already used by hosts\/h1.yaml/);
    expect(msgs).toMatch(/hosts\/h2.yaml.*spec.ssh.host: 203.0.113.10:22 is already managed by hosts\/h1.yaml/);
    expect(r.hosts.map((h) => h.name)).toEqual(['h1']);
  });
});
