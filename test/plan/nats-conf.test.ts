// Reload or restart: nats-server reloads all-or-nothing, so one non-reloadable key means restart; what
// reloads follows server/reload.go of the version running (each row was also checked by SIGHUP against
// nats-server 2.9.10, 2.10.27 and 2.15.1).
import { describe, expect, it } from 'vitest';
import { classifyConfigChange, flattenNatsConf } from '../../controller/plan/nats-conf.js';
import { parseNatsVersion } from '../../controller/plan/nats-versions.js';

const base =
  'server_name: "a"\nport: 4222\nhttp_port: 8222\ndebug: false\nauthorization {\n  token: "t1"\n}\njetstream {\n  store_dir: "/data/js"\n  max_memory_store: 1GB\n}\n';

const cluster = `cluster {
  name: "core"
  listen: "0.0.0.0:6222"
  advertise: "10.1.0.11:6222"
  no_advertise: true
  authorization {
    user: "route"
    password: "s3cret"
  }
  routes: [
    "nats-route://route:s3cret@10.1.0.12:6222"
    "nats-route://route:s3cret@10.1.0.13:6222"
  ]
}
`;
const clustered = `${base}\n${cluster}`;

const V = (s: string) => parseNatsVersion(s)!;

describe('classifyConfigChange', () => {
  it.each([
    ['identical', base, 'none'],
    ['comments only', `# header\n${base}`, 'none'],
    ['token', base.replace('t1', 't2'), 'reload'],
    ['logging', base.replace('debug: false', 'debug: true'), 'reload'],
    ['max_payload added', `${base}max_payload: 2MB\n`, 'reload'],
    ['max_connections added', `${base}max_connections: 100\n`, 'reload'],
    ['JetStream limit up (version unknown)', base.replace('1GB', '2GB'), 'restart'],
    ['JetStream limit down', base.replace('1GB', '512MB'), 'restart'],
    ['JetStream limit written another way', base.replace('1GB', '1024MB'), 'reload'],
    ['JetStream limit removed', base.replace('  max_memory_store: 1GB\n', ''), 'restart'],
    ['JetStream limit added', base.replace('1GB\n', '1GB\n  max_file_store: 1GB\n'), 'restart'],
    ['JetStream turned off', base.slice(0, base.indexOf('jetstream')), 'restart'],
    ['server_name', base.replace('"a"', '"b"'), 'restart'],
    ['store_dir', base.replace('/data/js', '/data/other'), 'restart'],
    ['lame duck', `${base}lame_duck_duration: "45s"\n`, 'restart'],
    ['max_subscriptions (no case in reload.go)', `${base}max_subscriptions: 100\n`, 'restart'],
    ['logfile_size_limit (no case in reload.go)', `${base}logfile_size_limit: 1GB\n`, 'restart'],
    ['auth and server_name together', base.replace('t1', 't2').replace('"a"', '"b"'), 'restart'],
    ['cluster block added', clustered, 'restart'],
    ['client TLS turned on (tlsconfig reloads)', `${base}tls {\n  cert_file: "/c"\n  key_file: "/k"\n}\n`, 'reload'],
    [
      'client TLS with verify_and_map (TLSMap: no case)',
      `${base}tls {\n  cert_file: "/c"\n  verify_and_map: true\n}\n`,
      'restart',
    ],
    [
      'handshake_first on an unknown version',
      `${base}tls {\n  cert_file: "/c"\n  handshake_first: true\n}\n`,
      'restart',
    ],
  ])('%s -> %s', (t, after, action) => {
    if (t !== 'identical') expect(after).not.toBe(base);
    expect(classifyConfigChange(base, after).action).toBe(action);
  });

  it('restarts when the old config is not one it can read', () => {
    expect(classifyConfigChange('include ./x.conf\n', base).action).toBe('restart');
    expect(flattenNatsConf('a {\n')).toBeUndefined();
  });

  const route = '"nats-route://route:s3cret@10.1.0.13:6222"';
  const other = '"nats-route://route:s3cret@10.1.0.12:6222"';
  it.each([
    ['a 4th route', clustered.replace(route, `${route}\n    "nats-route://route:s3cret@10.1.0.14:6222"`), 'reload'],
    ['a route removed', clustered.replace(`    ${route}\n`, ''), 'reload'],
    ['routes reordered', clustered.replace(`${other}\n    ${route}`, `${route}\n    ${other}`), 'none'],
    ['route password (authorization and URLs)', clustered.replaceAll('s3cret', 'n3w'), 'reload'],
    ['route user', clustered.replace('user: "route"', 'user: "r2"'), 'reload'],
    ['cluster name', clustered.replace('name: "core"', 'name: "core2"'), 'reload'],
    ['advertise', clustered.replace('10.1.0.11:6222', '10.1.0.21:6222'), 'reload'],
    ['no_advertise', clustered.replace('no_advertise: true', 'no_advertise: false'), 'reload'],
    ['cluster authorization removed', clustered.replace(/ {2}authorization \{[^}]*\}\n/, ''), 'reload'],
    ['listen port', clustered.replace('0.0.0.0:6222', '0.0.0.0:7222'), 'restart'],
    ['listen host', clustered.replace('0.0.0.0:6222', '10.1.0.11:6222'), 'restart'],
    ['cluster block removed', base, 'restart'],
    [
      'pool_size (2.10 key; unknown version)',
      clustered.replace('no_advertise: true', 'no_advertise: true\n  pool_size: 3'),
      'restart',
    ],
  ])('cluster: %s -> %s', (_t, after, action) => {
    expect(after).not.toBe(clustered);
    expect(classifyConfigChange(clustered, after).action).toBe(action);
  });

  it('names the keys that changed and the ones that force a restart', () => {
    const after = clustered.replace('0.0.0.0:6222', '0.0.0.0:7222').replace('"core"', '"c2"');
    expect(classifyConfigChange(clustered, after)).toEqual({
      action: 'restart',
      changed: ['cluster.listen', 'cluster.name'],
      restartKeys: ['cluster.listen'],
    });
    expect(classifyConfigChange(base, clustered).restartKeys).toEqual(['cluster', 'cluster.listen']);
  });

  // reload.go accepts a larger limit from 2.12.7 (and 2.14.0); before, any change of a set limit fails.
  it.each([
    ['2.9.10', 'restart'],
    ['2.10.27', 'restart'],
    ['2.11.17', 'restart'],
    ['2.12.6', 'restart'],
    ['2.12.7', 'reload'],
    ['2.14.0', 'reload'],
    ['2.15.1', 'reload'],
  ])('JetStream limit up on %s -> %s', (version, action) => {
    expect(classifyConfigChange(base, base.replace('1GB', '2GB'), V(version)).action).toBe(action);
    expect(classifyConfigChange(base, base.replace('1GB', '512MB'), V(version)).action).toBe('restart');
  });

  it.each([
    ['2.9.10', 'restart'],
    ['2.10.27', 'reload'],
    ['2.15.1', 'reload'],
  ])('keys added in 2.10 (logtime_utc, cluster pool_size) on %s -> %s', (version, action) => {
    expect(classifyConfigChange(base, `${base}logtime_utc: true\n`, V(version)).action).toBe(action);
    const pooled = clustered.replace('no_advertise: true', 'no_advertise: true\n  pool_size: 3');
    expect(classifyConfigChange(clustered, pooled, V(version)).action).toBe(action);
  });
});

describe('flattenNatsConf', () => {
  it('reads the cluster block natsfleet renders; an array is one value, its items sorted', () => {
    expect(Object.fromEntries(flattenNatsConf(cluster)!)).toEqual({
      cluster: '{}',
      'cluster.name': 'core',
      'cluster.listen': '0.0.0.0:6222',
      'cluster.advertise': '10.1.0.11:6222',
      'cluster.no_advertise': 'true',
      'cluster.authorization': '{}',
      'cluster.authorization.user': 'route',
      'cluster.authorization.password': 's3cret',
      'cluster.routes': 'nats-route://route:s3cret@10.1.0.12:6222\nnats-route://route:s3cret@10.1.0.13:6222',
    });
  });

  it.each([
    ['one line', 'routes: ["b", "a"]\n'],
    ['one line, no commas', "routes = [ 'a' 'b' ]\n"],
    ['several lines with commas', 'routes: [\n  "b",\n  "a",\n]\n'],
    ['items on the bracket lines', 'routes: [ "a"\n  "b" ]\n'],
    ['comments', 'routes: [ # the others\n  "a" // first\n  # none here\n  "b"\n]\n'],
  ])('arrays: %s', (_t, text) => {
    expect(flattenNatsConf(text)?.get('routes')).toBe('a\nb');
  });

  it('keeps a # or // inside quotes', () => {
    expect(flattenNatsConf('password: "a #b //c"\n')?.get('password')).toBe('a #b //c');
  });

  it.each([
    ['an array of blocks', 'users: [\n  {user: a, password: b}\n]\n'],
    ['a nested array', 'a: [\n  [1]\n]\n'],
    ['an unterminated array', 'routes: [\n  "a"\n'],
    ['an inline block', 'authorization: { token: x }\n'],
  ])('gives up on %s', (_t, text) => {
    expect(flattenNatsConf(text)).toBeUndefined();
  });
});

describe('users beside a system account (a cluster with systemAccount)', () => {
  const conf = (app: string, routes: string[]) =>
    [
      'authorization {',
      `  users: [ { user: "app", password: "${app}" } ]`,
      '}',
      'accounts {',
      '  "$SYS" {',
      '    users: [ { user: "natsfleet", password: "s" } ]',
      '  }',
      '}',
      'cluster {',
      '  routes: [',
      ...routes.map((r) => `    "${r}"`),
      '  ]',
      '}',
    ].join('\n');

  it('reads a one-line list of users as one value', () => {
    expect(flattenNatsConf(conf('a', ['nats-route://x:6222']))?.get('authorization.users')).toBe(
      '{ user: "app", password: "a" }',
    );
  });

  it('reloads a new route, a new client password, and the system account user added (no restart)', () => {
    const before = conf('a', ['nats-route://x:6222']);
    expect(classifyConfigChange(before, conf('a', ['nats-route://x:6222', 'nats-route://y:6222'])).action).toBe(
      'reload',
    );
    expect(classifyConfigChange(before, conf('b', ['nats-route://x:6222'])).action).toBe('reload');
    const single = before
      .replace(/accounts \{[\s\S]*?\n\}\n/, '')
      .replace('  users: [ { user: "app", password: "a" } ]', '  user: "app"\n  password: "a"');
    expect(classifyConfigChange(single, before)).toMatchObject({ action: 'reload', restartKeys: [] });
    expect(flattenNatsConf(before)?.get('accounts.$SYS.users')).toBe('{ user: "natsfleet", password: "s" }');
  });
});
