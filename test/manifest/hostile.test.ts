// The trust boundary, statically: what a pull request could write in a manifest to read or reach
// what it should not. Each hostile manifest is rejected by `validate` (exit 1, naming the file and
// the field) and by the controller before any remote command; unusual but legitimate ones pass.
import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from 'js-yaml';
import pino from 'pino';
import { loadManifests, type ManifestFile } from '../../controller/manifest/load.js';
import { formatProblem } from '../../controller/manifest/problems.js';
import { readManifestDir } from '../../controller/manifest/read-dir.js';
import { validateCommand } from '../../controller/cli/validate.js';
import { Controller } from '../../controller/gitops/controller.js';
import type { GitSource } from '../../controller/source/git-source.js';
import type { SessionPool } from '../../controller/reconcile/pool.js';
import { StateStore } from '../../controller/gitops/state.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';

const key = (type: 'ed25519' | 'ecdsa' | 'rsa', bits?: number) =>
  (type === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync(type, { bits: bits! })).public.trim();
const ED = key('ed25519').split(' ').slice(0, 2).join(' ');
const BCRYPT = '$2a$11$yC4ukHYxo2esX/.jRq6AeehRDvz07JmMrWJsooiaGezve0mdh6/9C';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- manifests built to be invalid, any shape
type Doc = Record<string, any>;
const base = (name = 'h1'): Doc => ({
  apiVersion: 'natsfleet/v1alpha1',
  kind: 'NatsHost',
  metadata: { name },
  spec: {
    ssh: { host: '203.0.113.10', hostKey: ED },
    nats: { image: 'nats:2.10.22', auth: { token: { env: 'NATS_TOKEN' } }, jetstream: { enabled: true } },
    proxy: { enabled: true, domain: `${name}.example.com`, email: 'ops@example.com' },
  },
});

type Hostile = [title: string, mutate: (d: Doc) => void, field: string];
const conf = (p: string): Hostile => [`confFile ${p}`, (d) => (d.spec.nats.confFile = p), 'spec.nats.confFile'];
const env = (p: string): Hostile => [`envFile ${p}`, (d) => (d.spec.proxy.envFile = p), 'spec.proxy.envFile'];
const pdir = (p: string): Hostile => [`proxy.dir ${p}`, (d) => (d.spec.proxy.dir = p), 'spec.proxy.dir'];
const ucd = (p: string): Hostile => [
  `userConfDir ${p}`,
  (d) => (d.spec.proxy.userConfDir = p),
  'spec.proxy.userConfDir',
];
const data = (p: string): Hostile => [
  `dataDir ${p}`,
  (d) => {
    d.spec.nats.dataDir = p;
    d.spec.nats.jetstream.storeDir = `${p === '/' ? '' : p}/js`;
  },
  'spec.nats.dataDir',
];
const secret = (ref: { env?: string; file?: string }, field: 'token' | 'password' = 'token'): Hostile => [
  `${field} ${JSON.stringify(ref)}`,
  (d) => {
    d.spec.nats.auth = field === 'token' ? { token: ref } : { user: 'app', password: ref };
  },
  `spec.nats.auth.${field}`,
];
const sshHost = (h: string): Hostile => [`ssh.host ${h}`, (d) => (d.spec.ssh.host = h), 'spec.ssh.host'];
const hostKey = (title: string, k: string): Hostile => [title, (d) => (d.spec.ssh.hostKey = k), 'spec.ssh.hostKey'];

const edBlob = Buffer.from(ED.split(' ')[1], 'base64');
const hostile: Hostile[] = [
  // A host's secrets or system files as the NATS config (would be read into a plan, or overwritten).
  ...[
    '/etc/passwd',
    '/etc/shadow',
    '/etc/ssh/ssh_host_ed25519_key',
    '/etc/ssh/sshd_config',
    '/root/.ssh/authorized_keys',
    '/etc/systemd/system/nats.service',
    '/etc/systemd/system/other.service',
    '/etc/sudoers.d/natsfleet',
    '/etc/cron.d/nats',
    '/proc/1/environ',
    '/proc/self/environ',
    '/var/lib/natsfleet/applied.json',
    '/var/lib/natsfleet/x/nats.conf',
    '/tmp/nats.conf',
    '/var/tmp/nats/nats.conf',
    '/home/user/nats.conf',
    '/var/log/nats.conf',
    '/run/nats/nats.conf',
    '/var/run/nats.conf',
    '/usr/local/etc/nats.conf',
    '/boot/nats.conf',
    '/etc/nats.conf',
    '/etc/natsfleet/secrets/nats.conf',
    '/var/lib/docker/volumes/x/nats.conf',
    '/var/lib/containerd/nats.conf',
    '/root/nats.conf',
    '/nats.conf',
    '/srv/nats.conf',
    '/opt/nats.conf',
    '/var/lib/nats.conf',
    '/etc/default/nats',
    '/etc/profile.d/nats.sh',
    '/dev/shm/nats.conf',
    '/sys/kernel/nats.conf',
    '/mnt/nats/nats.conf',
    '/media/nats.conf',
    '/var/spool/cron/crontabs/root',
    '/var/lib/dpkg/info/nats.list',
    '/lib/systemd/system/nats.service',
    '/var/lib/natsfleet-controller/state.json',
  ].map(conf),
  // The proxy's env file: read into plans, or written over system files.
  ...[
    '/etc/shadow',
    '/etc/passwd',
    '/etc/ssh/ssh_host_ed25519_key',
    '/proc/self/environ',
    '/root/.ssh/id_rsa',
    '/var/lib/natsfleet/applied.json',
    '/etc/nats/nats-server.conf',
    '/tmp/nginx.env',
    '/home/ops/.env',
    '/var/log/nginx.env',
    '/etc/environment',
    '/root/.bashrc',
    '/var/lib/nats/proxy.env',
  ].map(env),
  ...[
    '/root/.ssh',
    '/etc/cron.d',
    '/tmp',
    '/var/run',
    '/etc/systemd/system',
    '/var/lib/natsfleet',
    '/home/ops',
    '/etc',
    '/root',
  ].map(pdir),
  ...['/etc/nginx', '/etc/sudoers.d', '/var/lib/docker', '/tmp/conf', '/etc/nats'].map(ucd),
  // Directories bind-mounted read-write into the NATS container, or chmod-ed by natsfleet.
  ...[
    '/var/run',
    '/run',
    '/etc/cron.d',
    '/root/.ssh',
    '/var/lib/containerd',
    '/var/lib/docker',
    '/var/lib/natsfleet',
    '/var/lib/natsfleet/data',
    '/tmp',
    '/var/tmp',
    '/home',
    '/etc',
    '/var/log',
    '/srv',
    '/opt',
    '/data',
    '/var/lib',
    '/root',
    '/var/spool',
    '/usr/lib/nats',
  ].map(data),
  [
    'storeDir outside the data dir',
    (d) => (d.spec.nats.jetstream.storeDir = '/etc/cron.d'),
    'spec.nats.jetstream.storeDir',
  ],
  // Secret references that reach the controller's own machine and credentials.
  ...[
    { env: 'GITHUB_TOKEN' },
    { env: 'NATSFLEET_WEBHOOK_SECRET' },
    { env: 'NATSFLEET_GITHUB_TOKEN' },
    { env: 'PATH' },
    { env: 'HOME' },
    { env: 'SSH_AUTH_SOCK' },
    { env: 'AWS_SECRET_ACCESS_KEY' },
    { env: 'TOKEN' },
    { env: 'nats_token' },
    { file: '/dev/zero' },
    { file: '/proc/self/environ' },
    { file: '/etc/natsfleet/ssh/id_ed25519' },
    { file: '/etc/shadow' },
    { file: '/root/.ssh/id_ed25519' },
    { file: '/var/lib/natsfleet-controller/state.json' },
    { file: '/etc/natsfleet/natsfleet.env' },
  ].map((r) => secret(r)),
  secret({ file: '/dev/urandom' }, 'password'),
  secret({ env: 'GITHUB_TOKEN' }, 'password'),
  secret({ env: 'NATSFLEET_SSH_KEY' }, 'password'),
  // One endpoint under other spellings.
  ...['3221225985', '192.000.002.001', '0xc0.0.2.1', '192.0.2', '999.1.1.1', '01.2.3.4', 'fe80:::1', '1::2::3'].map(
    sshHost,
  ),
  // Host keys that do not hold together.
  hostKey('truncated ed25519 key', `ssh-ed25519 ${edBlob.subarray(0, edBlob.length - 5).toString('base64')}`),
  hostKey(
    'ed25519 key with extra bytes',
    `ssh-ed25519 ${Buffer.concat([edBlob, Buffer.from([0, 0, 0, 1, 7])]).toString('base64')}`,
  ),
  hostKey('key of another type than named', ED.replace('ssh-ed25519', 'ssh-rsa')),
  hostKey('ecdsa name on an ed25519 blob', ED.replace('ssh-ed25519', 'ecdsa-sha2-nistp256')),
  // Addresses natsfleet would curl on the host.
  ['httpBind on the metadata address', (d) => (d.spec.nats.httpBind = '169.254.169.254'), 'spec.nats.httpBind'],
  ['httpBind multicast', (d) => (d.spec.nats.httpBind = '224.0.0.1'), 'spec.nats.httpBind'],
  ['httpBind broadcast', (d) => (d.spec.nats.httpBind = '255.255.255.255'), 'spec.nats.httpBind'],
  // Values that would render as something else.
  ['size over int64', (d) => (d.spec.nats.jetstream.maxFile = '99999999999999TB'), 'spec.nats.jetstream.maxFile'],
  ['size that is not exact', (d) => (d.spec.nats.jetstream.maxMemory = 1e22), 'spec.nats.jetstream.maxMemory'],
  [
    'a domain whose server block name exceeds 255 bytes',
    (d) => (d.spec.proxy.domain = `${Array(4).fill('a'.repeat(62)).join('.')}.io`),
    'spec.proxy.domain',
  ],
  ['env file = compose file', (d) => (d.spec.proxy.envFile = '/root/nginx/compose.yml'), 'spec.proxy.envFile'],
];

describe('hostile manifests', () => {
  it(`there are at least 100 of them (${hostile.length})`, () => {
    expect(hostile.length).toBeGreaterThanOrEqual(100);
  });

  it.each(hostile)('%s: rejected, naming the file and the field', (_title, mutate, field) => {
    const doc = base();
    mutate(doc);
    const r = loadManifests([{ path: 'hosts/h1.yaml', text: dump(doc) }]);
    expect(r.hosts).toEqual([]);
    const errors = r.problems.filter((p) => p.severity === 'error');
    expect(errors.map((p) => p.path)).toContain(field);
    for (const e of errors) expect(formatProblem(e)).toMatch(/^hosts\/h1\.yaml(:\d+)?: error: /);
  });

  it('`natsfleet validate` exits 1 with a line naming each file and its field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-hostile-'));
    hostile.forEach(([, mutate], i) => {
      const doc = base(`h${i}`);
      doc.spec.ssh.port = 1000 + i;
      mutate(doc);
      writeFileSync(join(dir, `h${i}.yaml`), dump(doc));
    });
    const lines: string[] = [];
    expect(await validateCommand(dir, (l) => lines.push(l))).toBe(1);
    hostile.forEach(([, , field], i) => {
      expect(lines.some((l) => l.startsWith(`${join(dir, `h${i}.yaml`)}:`) && l.includes(` ${field}:`))).toBe(true);
    });
    expect(lines.at(-1)).toMatch(new RegExp(`${hostile.length} of ${hostile.length} manifest\\(s\\) invalid`));
  });

  it('the controller refuses a revision holding them before any remote command', async () => {
    const files: ManifestFile[] = hostile.map(([, mutate], i) => {
      const doc = base(`h${i}`);
      doc.spec.ssh.port = 1000 + i;
      mutate(doc);
      return { path: `hosts/h${i}.yaml`, text: dump(doc) };
    });
    files.push({ path: 'hosts/good.yaml', text: dump(base('good')) });
    let remote = 0;
    const pool = {
      get: () => {
        remote++;
        throw new Error('no remote command may run');
      },
      drop: async () => {},
      retain: async () => {},
    } as unknown as SessionPool;
    const source = { manifestsAt: async () => files } as unknown as GitSource;
    const ctl = new Controller({
      source,
      pool,
      store: new StateStore(mkdtempSync(join(tmpdir(), 'nf-hostile-state-'))),
      log: pino({ level: 'silent' }),
      concurrency: 4,
      driftIntervalMs: 1e9,
      env: { NATS_TOKEN: 'x', GITHUB_TOKEN: 'controller-credential' },
    });
    await ctl.deploy('0'.repeat(40));
    expect(remote).toBe(0);
    expect(ctl.state.invalidRevision).toBe('0'.repeat(40));
  });

  it('one SSH endpoint under two spellings is refused', () => {
    const a = base('a');
    const b = base('b');
    a.spec.ssh.host = 'NATS-A.example.com';
    b.spec.ssh.host = 'nats-a.example.com';
    const c = base('c');
    const e = base('e');
    c.spec.ssh.host = '2001:db8::1';
    e.spec.ssh.host = '2001:0db8:0000:0000:0000:0000:0000:0001';
    const r = loadManifests([a, b, c, e].map((d) => ({ path: `hosts/${d.metadata.name}.yaml`, text: dump(d) })));
    const msgs = r.problems.map(formatProblem);
    expect(msgs).toContainEqual(
      expect.stringMatching(/hosts\/b\.yaml(:\d+)?: error: spec\.ssh\.host: .*already managed by hosts\/a\.yaml/),
    );
    expect(msgs).toContainEqual(
      expect.stringMatching(/hosts\/e\.yaml(:\d+)?: error: spec\.ssh\.host: .*already managed by hosts\/c\.yaml/),
    );
  });
});

type Valid = [title: string, mutate: (d: Doc) => void];
const valid: Valid[] = [
  ['an IPv6 endpoint', (d) => (d.spec.ssh.host = '2001:db8::10')],
  ['an IPv6 endpoint written in full', (d) => (d.spec.ssh.host = '2001:0db8:0000:0000:0000:0000:0000:0011')],
  ['an ecdsa-sha2-nistp256 key', (d) => (d.spec.ssh.hostKey = key('ecdsa', 256))],
  ['an ecdsa-sha2-nistp384 key', (d) => (d.spec.ssh.hostKey = key('ecdsa', 384))],
  ['an ecdsa-sha2-nistp521 key', (d) => (d.spec.ssh.hostKey = key('ecdsa', 521))],
  ['an ssh-rsa key', (d) => (d.spec.ssh.hostKey = key('rsa', 2048))],
  ['a key copied from a .pub file, with its comment', (d) => (d.spec.ssh.hostKey = `${ED} root@nats-a`)],
  ['an image by digest', (d) => (d.spec.nats.image = `nats@sha256:${'a'.repeat(64)}`)],
  ['a registry with a port', (d) => (d.spec.nats.image = 'registry.example.com:5000/nats/nats-server:2.10.22')],
  [
    'dedicated directories under /srv',
    (d) => {
      d.spec.nats.confFile = '/srv/nats/conf/nats.conf';
      d.spec.nats.dataDir = '/srv/nats/data';
    },
  ],
  [
    'dedicated directories under /opt',
    (d) => {
      d.spec.nats.confFile = '/opt/nats/conf/nats.conf';
      d.spec.nats.dataDir = '/opt/nats/data';
      d.spec.nats.jetstream.storeDir = '/opt/nats/data/js';
    },
  ],
  ['a dedicated data directory under /var/lib', (d) => (d.spec.nats.dataDir = '/var/lib/nats-edge')],
  ['a dedicated data directory under /data', (d) => (d.spec.nats.dataDir = '/data/nats')],
  [
    'the proxy in dedicated directories',
    (d) => {
      d.spec.proxy.dir = '/srv/proxy';
      d.spec.proxy.userConfDir = '/srv/proxy/conf.d';
      d.spec.proxy.envFile = '/srv/proxy/certbot.env';
    },
  ],
  ['a proxy image that looks like a number', (d) => (d.spec.proxy.image = '1e3')],
  ['a secrets volume that looks like a boolean', (d) => (d.spec.proxy.secretsVolume = 'true')],
  [
    'a secret file in a subdirectory of the secrets directory',
    (d) => (d.spec.nats.auth.token = { file: '/etc/natsfleet/secrets/eu/nats-token' }),
  ],
  ['a bcrypt password', (d) => (d.spec.nats.auth = { user: 'app', password: { bcrypt: BCRYPT } })],
  ['an upper-case host name', (d) => (d.spec.ssh.host = 'NATS-A.Example.com')],
  ['monitoring on a private address of the host', (d) => (d.spec.nats.httpBind = '10.0.0.5')],
  ['an 8TB store', (d) => (d.spec.nats.jetstream.maxFile = '8TB')],
  ['labels with dots', (d) => (d.metadata.labels = { 'topology.example.com-zone': 'eu-1.a' })],
  ['a large exact size as a number', (d) => (d.spec.nats.jetstream.maxMemory = 1073741824)],
];

describe('unusual valid manifests', () => {
  it(`there are at least 20 of them (${valid.length})`, () => expect(valid.length).toBeGreaterThanOrEqual(20));

  it.each(valid)('%s: accepted', (_title, mutate) => {
    const doc = base();
    mutate(doc);
    const r = loadManifests([{ path: 'hosts/h1.yaml', text: dump(doc) }]);
    expect(r.problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(r.hosts).toHaveLength(1);
  });
});

describe('every manifest-like entry of a hosts directory is read or reported', () => {
  it('any case of .yaml/.yml is read; subdirectories, directories named .yaml and links are reported', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-tree-'));
    writeFileSync(join(dir, 'h1.YAML'), dump(base('h1')));
    writeFileSync(
      join(dir, 'h2.yml'),
      dump({ ...base('h2'), spec: { ...base('h2').spec, ssh: { host: '203.0.113.11', hostKey: ED } } }),
    );
    mkdirSync(join(dir, 'eu'));
    writeFileSync(join(dir, 'eu', 'h3.yaml'), dump(base('h3')));
    mkdirSync(join(dir, 'x.yaml'));
    symlinkSync('/etc/shadow', join(dir, 'shadow.yaml'));
    writeFileSync(join(dir, 'README.md'), 'not a manifest\n');
    const files = await readManifestDir(dir);
    const r = loadManifests(files);
    expect(r.hosts.map((h) => h.name).sort()).toEqual(['h1', 'h2']);
    const msgs = r.problems.map(formatProblem).join('\n');
    expect(msgs).toContain(`${join(dir, 'eu', 'h3.yaml')}: error: lies in a subdirectory`);
    expect(msgs).toContain(`${join(dir, 'x.yaml')}: error: is a directory, not a manifest file`);
    expect(msgs).toContain(`${join(dir, 'shadow.yaml')}: error: is a symbolic link`);
    expect(msgs).not.toContain('root:');
  });

  it('are read in code point order, the same under every locale', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-order-'));
    // A locale's collation puts a before B, and ignores case and dashes first; code points do not.
    for (const name of ['b', 'a-2', 'B', 'a1', 'A']) writeFileSync(join(dir, `${name}.yaml`), dump(base(name)));
    const files = await readManifestDir(dir);
    expect(files.map((f) => f.path.slice(dir.length + 1))).toEqual([
      'A.yaml',
      'B.yaml',
      'a-2.yaml',
      'a1.yaml',
      'b.yaml',
    ]);
  });
});
