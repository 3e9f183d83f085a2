// `natsfleet import`, pure parts: reading hand-written NATS configs, and the manifest that reproduces a
// host from what was read (paths mapped back from the container, secrets as references, what cannot be
// reproduced said plainly), through the same validation as every manifest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNatsConf, ConfSyntaxError } from '../../controller/adopt/nats-conf-reader.js';
import { importManifest, manifestYaml } from '../../controller/adopt/manifest.js';
import {
  containerConfigPath,
  detailsScript,
  findNatsContainer,
  hostPathOf,
  parseDetails,
  parseInventory,
  type ContainerDetail,
  type ImportFacts,
} from '../../controller/adopt/import-facts.js';
import { DEFAULT_PATH_POLICY } from '../../controller/manifest/path-policy.js';
import { loadManifests } from '../../controller/manifest/load.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICkJ3Q85hSksdBCBjk05qa+UOy28jABLxn47S4uWTLVF';

describe('readNatsConf', () => {
  it('reads the forms hand-written configs use', () => {
    const conf = readNatsConf(`
# comment
port: 4222
http_port = 8222 // another comment
server_name: "seed-1"
max_payload: 2MB;
debug: false
authorization {
  token: "s3cr\\"et"
}
jetstream {
  store_dir: '/data/js'
  max_mem: 1G
}
cluster { routes: [ "nats://a:6222", nats://b:6222 ] }
`);
    expect(conf).toEqual({
      port: 4222,
      http_port: 8222,
      server_name: 'seed-1',
      max_payload: '2MB',
      debug: false,
      authorization: { token: 's3cr"et' },
      jetstream: { store_dir: '/data/js', max_mem: '1G' },
      cluster: { routes: ['nats://a:6222', 'nats://b:6222'] },
    });
  });

  it.each([['authorization { token: "x"'], ['a: "open'], ['a: [1, 2']])('%j is a syntax error', (text) => {
    expect(() => readNatsConf(text)).toThrow(ConfSyntaxError);
  });
});

const container = (over: Partial<ContainerDetail> = {}): ContainerDetail => ({
  id: 'a'.repeat(64),
  name: 'nats-main',
  image: 'nats:2.10.22-alpine',
  args: ['nats-server', '-c', '/etc/nats/nats-server.conf'],
  env: [],
  labels: {},
  mounts: [
    { type: 'bind', source: '/etc/nats/nats-server.conf', destination: '/etc/nats/nats-server.conf', rw: false },
    { type: 'bind', source: '/srv/nats', destination: '/data', rw: true },
  ],
  bindings: { '4222/tcp': { ip: '', port: 4222 }, '8222/tcp': { ip: '127.0.0.1', port: 8222 } },
  ...over,
});

const facts = (text: string, over: Partial<ImportFacts> = {}): ImportFacts => ({
  inventory: {
    os: { id: 'debian', pretty: 'Debian' },
    uid: 0,
    unit: { name: 'nats.service' },
    dockerRunning: true,
    containers: [],
  },
  nats: container(),
  config: { hostPath: '/etc/nats/nats-server.conf', containerPath: '/etc/nats/nats-server.conf', text },
  ...over,
});
const opts = {
  name: 'seed-1',
  ssh: { host: '192.0.2.7', port: 22, user: 'root', hostKey: KEY },
  paths: DEFAULT_PATH_POLICY,
};

describe('importManifest', () => {
  it('reproduces a seed host: paths through the mounts, the store NATS reports, a token as a reference', () => {
    const r = importManifest(
      facts(
        'port: 4222\nhttp_port: 8222\nauthorization { token: "t0k" }\njetstream { store_dir: "/data" max_file_store: 1GB }\n',
        {
          jsz: { config: { store_dir: '/data/jetstream', max_memory: 1024 } },
        },
      ),
      opts,
    );
    expect(r.manifest.spec.nats).toEqual({
      image: 'nats:2.10.22-alpine',
      containerName: 'nats-main',
      clientPort: 4222,
      httpPort: 8222,
      httpBind: '127.0.0.1',
      confFile: '/etc/nats/nats-server.conf',
      dataDir: '/srv/nats',
      auth: { token: { env: 'NATS_SEED_1_TOKEN' } },
      jetstream: { enabled: true, storeDir: '/srv/nats', maxMemory: 1024, maxFile: '1GB' },
    });
    expect(r.secrets).toEqual([
      { env: 'NATS_SEED_1_TOKEN', what: 'the token in /etc/nats/nats-server.conf on the host' },
    ]);
    // /srv/nats exists and natsfleet did not create it: the operator must allow it.
    expect(r.rootsToAllow).toEqual(['/srv/nats']);
    expect(JSON.stringify(r)).not.toContain('t0k');
  });

  it('keeps a bcrypt hash (safe in Git), user and password as user plus a reference', () => {
    const hash = '$2b$11$yC4ukHYxo2esX/.jRq6AeehRDvz07JmMrWJsooiaGezve0mdh6/9C';
    expect(importManifest(facts(`authorization { token: "${hash}" }`), opts).manifest.spec.nats!.auth).toEqual({
      token: { bcrypt: hash },
    });
    const up = importManifest(facts('authorization { user: app, password: "pw" }'), opts);
    expect(up.manifest.spec.nats!.auth).toEqual({ user: 'app', password: { env: 'NATS_SEED_1_PASSWORD' } });
  });

  it('says what the manifest cannot reproduce, and a server without auth', () => {
    const r = importManifest(facts('tls { cert_file: "/x" }\nleafnodes { port: 7422 }\n'), opts);
    expect(r.notes).toEqual([
      '/etc/nats/nats-server.conf: "tls" is not reproduced by the manifest: natsfleet\'s config will not have it (set spec.nats.tls)',
      '/etc/nats/nats-server.conf: "leafnodes" is not reproduced by the manifest: natsfleet\'s config will not have it ' +
        '(remove it from the host config first, or keep managing this host by hand)',
      'the server has no authorization: clients connect without credentials (validate warns)',
    ]);
  });

  it('a config the reader cannot parse is reported, not guessed', () => {
    expect(importManifest(facts('authorization {'), opts).notes[0]).toMatch(
      /^\/etc\/nats\/nats-server.conf: not read \(line 1: missing "}"\): settings not imported$/,
    );
  });

  it('the proxy from its container: domain, email, directories, volume', () => {
    const proxy = container({
      name: 'nginx-certbot',
      image: 'jonasal/nginx-certbot:latest',
      env: ['CERTBOT_EMAIL=ops@example.com', 'STAGING=0'],
      labels: { 'com.docker.compose.project.working_dir': '/root/nginx' },
      mounts: [
        {
          type: 'volume',
          source: '/var/lib/docker/volumes/nginx_secrets/_data',
          destination: '/etc/letsencrypt',
          name: 'nginx_secrets',
          rw: true,
        },
        { type: 'bind', source: '/data/nginx/user_conf.d', destination: '/etc/nginx/user_conf.d', rw: true },
      ],
    });
    const r = importManifest(
      facts('authorization { token: "x" }', {
        proxy: {
          container: proxy,
          composeText: 'services:\n  nginx:\n    env_file:\n      - /data/nginx/nginx-certbot.env\n',
          serverNames: ['seed-1.example.com'],
        },
      }),
      opts,
    );
    expect(r.manifest.spec.proxy).toEqual({
      enabled: true,
      domain: 'seed-1.example.com',
      email: 'ops@example.com',
      image: 'jonasal/nginx-certbot:latest',
      dir: '/root/nginx',
      userConfDir: '/data/nginx/user_conf.d',
      envFile: '/data/nginx/nginx-certbot.env',
      secretsVolume: 'nginx_secrets',
    });
  });

  it('the written manifest validates, with a header naming the secrets to set', () => {
    const r = importManifest(facts('authorization { token: "x" }\njetstream {}\n'), {
      ...opts,
      paths: { allowedRoots: ['/etc/nats', '/srv/nats'] },
    });
    const text = manifestYaml(r, '192.0.2.7', '2026-11-26T00:00:00Z');
    expect(text.split('\n')[3]).toBe(
      "# Secret: set NATS_SEED_1_TOKEN in the controller's environment to the token in /etc/nats/nats-server.conf on the host.",
    );
    const policy = loadPolicyFrom({ allowedRoots: ['/etc/nats', '/srv/nats'] });
    const { problems, hosts } = loadManifests([{ path: 'hosts/seed-1.yaml', text }], policy);
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(hosts[0].nats.containerName).toBe('nats-main');
  });
});

describe('what the importer reads', () => {
  it('the config path from -c, mapped to the host through a single-file or a directory mount', () => {
    const c = container();
    expect(containerConfigPath(c)).toBe('/etc/nats/nats-server.conf');
    expect(hostPathOf(c, '/etc/nats/nats-server.conf')).toBe('/etc/nats/nats-server.conf');
    const dir = container({ mounts: [{ type: 'bind', source: '/opt/nats/etc', destination: '/etc/nats', rw: false }] });
    expect(hostPathOf(dir, '/etc/nats/nats-server.conf')).toBe('/opt/nats/etc/nats-server.conf');
    expect(hostPathOf(dir, '/data')).toBeUndefined();
    expect(containerConfigPath(container({ args: ['nats-server', '--config=/conf/n.conf'] }))).toBe('/conf/n.conf');
  });

  it('the NATS container is the one serving 4222 inside, or the one named', () => {
    const inv = parseInventory(
      [
        '@@natsfleet os',
        'debian',
        'Debian GNU/Linux 12 (bookworm)',
        '@@natsfleet uid',
        '0',
        '@@natsfleet unit',
        'FragmentPath=/etc/systemd/system/nats.service',
        'ActiveState=active',
        'ExecStart={ path=/usr/bin/docker ; argv[]=/usr/bin/docker run --rm --name nats-main nats:2.9.10 ; ignore_errors=no }',
        '@@natsfleet containers',
        Buffer.from(
          `${'0'.repeat(24)}\n${JSON.stringify([
            { Id: 'b'.repeat(64), Names: ['/web'], Image: 'nginx', Ports: [{ PrivatePort: 80, PublicPort: 80 }] },
            {
              Id: 'a'.repeat(64),
              Names: ['/nats-main'],
              Image: 'nats:2.9.10',
              Ports: [{ PrivatePort: 4222, PublicPort: 4222, IP: '0.0.0.0' }],
            },
          ])}\n@@http-${'0'.repeat(24)} 200\n`,
        ).toString('base64'),
        '@@natsfleet end',
      ].join('\n'),
      'nats.service',
    );
    expect(inv.unit).toEqual({
      name: 'nats.service',
      fragmentPath: '/etc/systemd/system/nats.service',
      activeState: 'active',
      execStart: '/usr/bin/docker run --rm --name nats-main nats:2.9.10',
    });
    expect(findNatsContainer(inv)?.name).toBe('nats-main');
    expect(findNatsContainer(inv, 'web')?.name).toBe('web');
    expect(findNatsContainer(inv, 'nope')).toBeUndefined();
  });

  it('an inventory cut short is an error, not an empty host', () => {
    expect(() => parseInventory('@@natsfleet os\ndebian\n', 'nats.service')).toThrow('output cut short');
  });
});

describe('the manifest header quotes the host on one line', () => {
  it('a config key with a line break cannot end its comment and write into the manifest', () => {
    // A quoted key in the host's config: "x\nspec:\n  ssh: {host: evil}" and one with terminal controls.
    const text = '"x\\nspec:\\n  ssh: {host: evil}": 1\n"y\\r\\u001b": 2\n';
    const r = importManifest(facts(text), opts);
    const yaml = manifestYaml(r, '192.0.2.7', '2026-01-01T00:00:00Z');
    const head = yaml.slice(0, yaml.indexOf('apiVersion:'));
    for (const line of head.trimEnd().split('\n')) expect(line).toMatch(/^# /);
    expect(head).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
    expect(head).toMatch(/: a key that is no setting name \(\d+ characters\) is not reproduced/);
    expect(head).not.toContain('evil');
    expect(yaml.match(/^spec:/gm)).toHaveLength(1);
    // A path read from the host (its mounts), quoted in notes and secrets as it is.
    const path = '/etc/nats/a\u2028spec:\u009b.conf';
    const withPath = facts('authorization { token: t }\nx: 1\n', {
      config: {
        hostPath: path,
        containerPath: '/etc/nats/nats-server.conf',
        text: 'authorization { token: t }\nx: 1\n',
      },
    });
    const head2 = manifestYaml(importManifest(withPath, opts), '192.0.2.7', 'now').split('apiVersion:')[0];
    expect(head2).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
    expect(head2).toContain('/etc/nats/a\\u2028spec:\\u009b.conf');
  });
});

describe('the config is read only as a regular file reached without a link', () => {
  // The details script's config part, run here by sh on local files (no proxy, no monitoring published).
  const run = (confHostPath: string) => {
    const nats = container({
      mounts: [{ type: 'bind', source: confHostPath, destination: '/etc/nats/nats-server.conf', rw: false }],
      bindings: {},
    });
    const out = execFileSync('sh', ['-s'], { input: detailsScript(nats), encoding: 'utf8' });
    return parseDetails(out, nats, facts('').inventory);
  };
  let dir: string;
  beforeAll(() => {
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'natsfleet-import-')));
    writeFileSync(
      join(dir, 'secret'),
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n',
    );
    writeFileSync(join(dir, 'nats.conf'), 'port: 4222\nserver_name: seed\n');
    symlinkSync(join(dir, 'secret'), join(dir, 'linked.conf'));
    mkdirSync(join(dir, 'real'));
    writeFileSync(join(dir, 'real', 'nats.conf'), 'port: 4222\n');
    symlinkSync(join(dir, 'real'), join(dir, 'linkdir'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a regular file is read', () => {
    const f = run(join(dir, 'nats.conf'));
    expect(f.config?.text).toBe('port: 4222\nserver_name: seed\n');
    expect(f.configNotRead).toBeUndefined();
  });

  it.each(['linked.conf', 'linkdir/nats.conf'])('%s (a link on the way) is not read, and the manifest says so', (p) => {
    const f = run(join(dir, p));
    expect(f.config).toBeUndefined();
    expect(f.configNotRead).toBe(join(dir, p));
    const r = importManifest(f, opts);
    expect(r.notes[0]).toBe(
      `${join(dir, p)}: not read (not a regular file, or a symbolic link on the way): settings not imported`,
    );
    expect(JSON.stringify(r)).not.toContain('b3BlbnNzaC1rZXktdjEAAAAABG5vbm');
  });

  it('a file that is no NATS config has its keys counted, not quoted', () => {
    const r = importManifest(facts(readFileSync(join(dir, 'secret'), 'utf8')), opts);
    expect(JSON.stringify(r)).not.toContain('b3BlbnNzaC1rZXktdjEAAAAABG5vbm');
  });
});
