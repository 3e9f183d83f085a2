// Planning as a pure function: captured facts in, typed changes and service steps out.
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { planHost } from '../../controller/plan/plan.js';
import { formatPlan } from '../../controller/plan/format.js';
import { desiredFrom, factsFrom, withFileHash } from '../helpers/observed.js';
import { FIXTURE_TOKEN } from '../helpers/fixtures.js';
import type { HostFacts } from '../../controller/observe/facts.js';

const steps = (p: ReturnType<typeof planHost>) => p.steps.map((s) => s.step);
const CONF = '/etc/nats/nats-server.conf';

describe('planHost', () => {
  it('a converged host: Synced, Healthy, nothing to do', () => {
    const d = desiredFrom();
    const p = planHost(d, factsFrom(d), 'r1');
    expect(p).toMatchObject({ sync: 'Synced', health: 'Healthy', changes: [], steps: [], drift: [], blocked: [] });
    expect(p.applied).toEqual({ revision: 'fixture-rev', at: expect.any(String) });
  });

  it('auth change: reload, never restart; the diff shows the secret reference, never its value', () => {
    const d = desiredFrom((doc) => (doc.spec.nats.auth = { token: { env: 'NATS_EU1_TOKEN' } }));
    const p = planHost(d, factsFrom(d), 'r2');
    expect(steps(p)).toEqual(['test-config', 'reload']);
    expect(p.changes).toMatchObject([{ kind: 'file', path: CONF, action: 'update', drift: false }]);
    const text = formatPlan(p);
    expect(text).not.toContain(FIXTURE_TOKEN);
    expect(text).toContain('+  token: "<secret:env:NATS_EU1_TOKEN>"');
    expect(text).toContain('-  token: "$2a$11$'); // a bcrypt hash is in Git already
    expect(JSON.stringify(p)).not.toContain(FIXTURE_TOKEN);
  });

  it('a secret value changed on the controller: a deploy reloads; a pull-request plan (displays) sees no change', () => {
    const before = desiredFrom((doc) => (doc.spec.nats.auth = { token: { env: 'NATS_EU1_TOKEN' } }));
    // The host holds natsfleet's write of `before` (its record says so).
    const facts = factsFrom(before, undefined, (f) => {
      const conf = before.files.find((x) => x.path === CONF)!;
      const sha = createHash('sha256').update(conf.content).digest('hex');
      f.files[CONF] = { ...f.files[CONF], sha256: sha, mode: conf.mode };
      f.record!.files[CONF] = { sha256: sha, mode: conf.mode };
      f.record!.rendered![CONF] = conf.display;
    });
    const rotated = desiredFrom((doc) => (doc.spec.nats.auth = { token: { env: 'NATS_EU1_TOKEN' } }));
    rotated.files[0] = {
      ...rotated.files[0],
      content: rotated.files[0].content.replace(FIXTURE_TOKEN, 'rotated-value'),
    };
    const deploy = planHost(rotated, facts, 'r');
    expect(steps(deploy)).toEqual(['test-config', 'reload']);
    expect(deploy.steps[1].reason).toBe('hot-reloadable config keys changed: authorization (a secret value)');
    expect(JSON.stringify(deploy)).not.toContain('rotated-value');
    const pr = planHost(rotated, facts, 'r', 'display');
    expect(pr).toMatchObject({ sync: 'Synced', changes: [], steps: [] });
  });

  it('a JetStream limit increase reloads where the running version can (2.12.7+), a decrease restarts', () => {
    const up = desiredFrom((doc) => (doc.spec.nats.jetstream.maxMemory = '128MB'));
    // The captured host runs 2.9.10, whose reload refuses any JetStream limit change (server/reload.go).
    expect(steps(planHost(up, factsFrom(up), 'r'))).toEqual(['test-config', 'restart']);
    const newer = factsFrom(up, undefined, (f) => (f.varz = { ...f.varz, version: '2.14.5' }));
    expect(steps(planHost(up, newer, 'r'))).toEqual(['test-config', 'reload']);
    const down = desiredFrom((doc) => (doc.spec.nats.jetstream.maxMemory = '32MB'));
    const p = planHost(down, factsFrom(down), 'r');
    expect(p.steps).toEqual([
      { step: 'test-config', reason: expect.any(String) },
      { step: 'restart', reason: 'config keys that need a restart: jetstream.max_memory_store' },
    ]);
  });

  it('server name or store dir changes restart', () => {
    const d = desiredFrom((doc) => (doc.spec.nats.serverName = 'renamed'));
    expect(planHost(d, factsFrom(d), 'r').steps.find((s) => s.step === 'restart')?.reason).toBe(
      'unit file changed; config keys that need a restart: server_name',
    );
    const js = desiredFrom((doc) => (doc.spec.nats.jetstream.storeDir = '/var/lib/nats/js2'));
    expect(planHost(js, factsFrom(js), 'r').steps.find((s) => s.step === 'restart')?.reason).toBe(
      'config keys that need a restart: jetstream.store_dir',
    );
  });

  it('a client port change rewrites only the unit: daemon-reload and restart', () => {
    const d = desiredFrom((doc) => (doc.spec.nats.clientPort = 14222));
    const p = planHost(
      d,
      factsFrom(d, (o) => o.replace('@@natsfleet ports-wanted 4222,', '@@natsfleet ports-wanted 14222,')),
      'r',
    );
    expect(p.changes.map((c) => c.path)).toEqual(['/etc/systemd/system/nats.service']);
    expect(steps(p)).toEqual(['daemon-reload', 'restart']);
  });

  it('image change: restart for the image, pull when it is not on the host', () => {
    const d = desiredFrom((doc) => (doc.spec.nats.image = 'nats:2.9.11'));
    const p = planHost(
      d,
      factsFrom(d, undefined, (f) => (f.imageId = undefined)),
      'r',
    );
    expect(p.steps).toEqual([
      { step: 'pull', reason: 'image nats:2.9.11 is not on the host' },
      { step: 'daemon-reload', reason: 'unit file changed' },
      { step: 'restart', reason: 'image nats:2.9.10 -> nats:2.9.11; unit file changed' },
    ]);
  });

  it('drift: a hand edit is drift, its content never shown; what the server runs is unknown, so it restarts', () => {
    const d = desiredFrom();
    // ...and the server loaded a config since natsfleet's apply (config_load_time moved).
    const f = factsFrom(
      d,
      (o) => withFileHash(o, CONF, 'f'.repeat(64)),
      (x) => (x.varz!.config_load_time = '2030-01-01T00:00:00Z'),
    );
    const p = planHost(d, f, 'r');
    expect(p.drift).toEqual([`${CONF}: content changed on the host (content not shown)`]);
    expect(p.changes[0]).toMatchObject({
      action: 'update',
      reason: 'content changed on the host (content not shown)',
      drift: true,
    });
    // Only natsfleet's own rendering is shown (what it will write), never the host's text.
    expect((p.changes[0] as { diff: string }).diff).toContain('+debug: false');
    expect((p.changes[0] as { diff: string }).diff).not.toMatch(/^-(?!--)/m);
    expect(steps(p)).toEqual(['test-config', 'restart']);
  });

  it('drift not yet loaded by the server (config_load_time as natsfleet left it): reverted with a reload', () => {
    const d = desiredFrom();
    const f = factsFrom(
      d,
      (o) => withFileHash(o, CONF, 'f'.repeat(64)),
      (x) => (x.record!.configLoadTime = x.varz!.config_load_time),
    );
    const p = planHost(d, f, 'r');
    expect(p.drift).toEqual([`${CONF}: content changed on the host (content not shown)`]);
    expect(steps(p)).toEqual(['test-config', 'reload']);
    const reloaded = factsFrom(
      d,
      (o) => withFileHash(o, CONF, 'f'.repeat(64)),
      (x) => (x.record!.configLoadTime = '2020-01-01T00:00:00Z'),
    );
    expect(steps(planHost(d, reloaded, 'r'))).toEqual(['test-config', 'restart']);
  });

  it('a file natsfleet did not write (no record): replaced, its content not shown, the server restarted', () => {
    const d = desiredFrom();
    const f = factsFrom(
      d,
      (o) => withFileHash(o, CONF, 'e'.repeat(64)),
      (x) => (x.record = undefined),
    );
    const p = planHost(d, f, 'r');
    expect(p.changes[0].reason).toBe(
      'content differs (the file on the host was not written by natsfleet: its content is not shown)',
    );
    expect(steps(p)).toContain('restart');
  });

  it("a dedicated directory that exists and is not natsfleet's blocks the host; a missing or recorded one does not", () => {
    const d = desiredFrom((doc) => (doc.spec.nats.dataDir = '/srv/nats/data'));
    expect(d.claims).toEqual(['/srv/nats']);
    const theirs = factsFrom(d, undefined, (f) => (f.claims = { '/srv/nats': true }));
    expect(planHost(d, theirs, 'r').blocked).toEqual([
      "/srv/nats exists and was not created by natsfleet: natsfleet writes only in directories it created or under the controller's allowed roots (paths.allowedRoots); its content is not read",
    ]);
    const missing = factsFrom(d, undefined, (f) => (f.claims = { '/srv/nats': false }));
    expect(planHost(d, missing, 'r').blocked).toEqual([]);
    const ours = factsFrom(d, undefined, (f) => {
      f.claims = { '/srv/nats': true };
      f.ownedDirs = ['/srv/nats'];
    });
    expect(planHost(d, ours, 'r').blocked).toEqual([]);
  });

  it('a link or a non-regular file at a managed path blocks the host', () => {
    const d = desiredFrom();
    const f = factsFrom(d, undefined, (x) => (x.files[CONF] = { exists: true, kind: 'link' }));
    expect(planHost(d, f, 'r').blocked).toEqual([`${CONF} is a symbolic link: natsfleet replaces only regular files`]);
  });

  it('a stopped service with a missing container is started, and reported as drift', () => {
    const d = desiredFrom();
    const f = factsFrom(
      d,
      (o) => o.replace('ActiveState=active', 'ActiveState=inactive'),
      (x) => (x.container = { exists: false }),
    );
    const p = planHost(d, f, 'r');
    expect(steps(p)).toEqual(['start']);
    expect(p.drift).toEqual(['service nats.service is inactive, container missing']);
    expect(p.health).toBe('Missing');
  });

  it('failed prerequisites block the host with clear messages', () => {
    const d = desiredFrom();
    const f = factsFrom(
      d,
      (o) => o.replace('@@natsfleet uid\n0', '@@natsfleet uid\n1000'),
      (x) => {
        x.docker.running = false;
        x.ports[0] = { port: 4222, held: true, process: 'gnatsd' };
      },
    );
    expect(planHost(d, f, 'r').blocked).toEqual([
      'the SSH user is not root (uid 1000): natsfleet needs root to manage Docker, systemd and files',
      'Docker is installed but its engine is not running',
      'port 4222 is held by another program (gnatsd)',
    ]);
  });

  it('an interrupted apply is finished: its pending restart is redone', () => {
    const d = desiredFrom();
    const f = factsFrom(d, (o) =>
      o.replace('@@natsfleet pending\n', '@@natsfleet pending\n{"revision":"r0","since":"x","actions":["restart"]}\n'),
    );
    expect(planHost(d, f, 'r').steps).toEqual([
      { step: 'restart', reason: 'an earlier apply (revision r0) was interrupted before it finished' },
    ]);
  });

  it('an interrupted apply: the steps it finished are not repeated, the rest are done; nothing of it is drift', () => {
    const d = desiredFrom();
    const pending = (done: string) =>
      `@@natsfleet pending\n{"revision":"r0","since":"x","actions":["daemon-reload","restart","proxy-up"]}\n@@natsfleet pending-done\n${done}`;
    const cut = factsFrom(d, (o) =>
      o.replace(/@@natsfleet pending\n\n@@natsfleet pending-done\n/, pending('install\ndaemon-reload\n')),
    );
    expect(planHost(d, cut, 'r').steps.map((s) => s.step)).toEqual(['restart', 'proxy-up']);
    // Every step ran; the apply was cut while verifying: verify and record, restart nothing again.
    const all = factsFrom(d, (o) =>
      o.replace(
        /@@natsfleet pending\n\n@@natsfleet pending-done\n/,
        pending('install\ndaemon-reload\nrestart\nproxy-up\n'),
      ),
    );
    const p = planHost(d, all, 'r');
    expect(p.steps).toEqual([
      {
        step: 'finish',
        reason: 'an earlier apply (revision r0) was interrupted before it finished: verify and record it',
      },
    ]);
    expect(p.sync).toBe('OutOfSync');
    // Files the interrupted apply installed differ from the (older) record: not drift.
    const half = factsFrom(
      d,
      (o) =>
        withFileHash(
          o.replace(/@@natsfleet pending\n\n@@natsfleet pending-done\n/, pending('install\n')),
          CONF,
          'a'.repeat(64),
        ),
      (x) => (x.unit.activeState = 'inactive'),
    );
    expect(planHost(d, half, 'r').drift).toEqual([]);
  });

  it('the adoption trap: a store that holds streams elsewhere than the manifest says blocks the host', () => {
    const d = desiredFrom();
    const seedStyle = (streams: number, storeDir: string) =>
      factsFrom(d, undefined, (x) => {
        x.container.mounts = { '/data': '/var/lib/nats', '/etc/nats': '/etc/nats' };
        x.jsz = { ...x.jsz, config: { ...x.jsz!.config, store_dir: storeDir }, streams, bytes: streams * 1000 };
      });
    // The old role's config said store_dir: "/data": NATS keeps /data/jetstream, i.e. /var/lib/nats on the host.
    expect(planHost(d, seedStyle(3, '/data/jetstream'), 'r').blocked).toEqual([
      'JetStream keeps 3 stream(s), 3000 bytes in /var/lib/nats on the host, but the manifest points the store at ' +
        '/var/lib/nats/jetstream: applying would hide them. Set spec.nats.dataDir and spec.nats.jetstream.storeDir ' +
        'to where the data is, or move the data there first',
    ]);
    expect(planHost(d, seedStyle(0, '/data/jetstream'), 'r').blocked).toEqual([]);
    expect(planHost(d, seedStyle(3, '/data/jetstream/jetstream'), 'r').blocked).toEqual([]);
  });

  it('a held lock is shown in the plan', () => {
    const d = desiredFrom();
    const f = factsFrom(d, undefined, (x) => {
      x.lock = {
        owner: 'natsfleet@ci',
        host: 'ci',
        pid: 7,
        token: 't',
        since: '2026-11-26T11:00:00Z',
        expiresAt: '2026-11-26T11:30:00Z',
      };
      x.lockAgeSec = 60;
    });
    const p = planHost(d, f, 'r');
    expect(p.lock).toEqual({
      owner: 'natsfleet@ci',
      since: '2026-11-26T11:00:00Z',
      ageSec: 60,
      expiresAt: '2026-11-26T11:30:00Z',
    });
    expect(formatPlan(p)).toContain(
      '! locked by natsfleet@ci since 2026-11-26T11:00:00Z, lease until 2026-11-26T11:30:00Z',
    );
  });

  it('disabling the proxy deletes its files; decommissioning stops and removes, keeping data', () => {
    const off = desiredFrom((doc) => (doc.spec.proxy.enabled = false));
    const p = planHost(off, factsFrom(off), 'r');
    expect(
      p.changes
        .filter((c) => c.action === 'delete')
        .map((c) => c.path)
        .sort(),
    ).toEqual([
      '/data/nginx/nginx-certbot.env',
      '/data/nginx/user_conf.d/nats-sb-1.sandbox.test.conf',
      '/root/nginx/compose.yml',
    ]);
    // Without the proxy, monitoring is published on all interfaces again (the default): the unit changes.
    expect(p.steps).toEqual([
      { step: 'proxy-down', reason: 'proxy disabled' },
      { step: 'daemon-reload', reason: 'unit file changed' },
      { step: 'restart', reason: 'unit file changed' },
    ]);
    const gone = desiredFrom((doc) => (doc.spec.state = 'absent'));
    const a = planHost(gone, factsFrom(gone), 'r');
    expect(steps(a)).toEqual(['proxy-down', 'stop', 'disable', 'remove-container', 'daemon-reload']);
    expect(a.changes.every((c) => c.kind === 'file' && c.action === 'delete')).toBe(true);
    expect(a.changes.map((c) => c.path)).not.toContain('/var/lib/nats');
  });
});

describe('takeover and health reasons', () => {
  const d = desiredFrom();
  // The seed's host: the unit and the container run, the files differ, natsfleet never applied here.
  const seedHost = () =>
    factsFrom(
      d,
      (o) => withFileHash(o, d.nats.unitPath, 'f'.repeat(64)),
      (x) => {
        x.record = undefined;
      },
    );

  it('a NATS natsfleet did not deploy is a takeover with one restart, not blocked', () => {
    const p = planHost(d, seedHost(), 'r');
    expect(p.blocked).toEqual([]);
    expect(p.takeover).toBe(
      'nats.service and container nats were not deployed by natsfleet: this apply takes them over ' +
        '(one restart; JetStream data stays where it is)',
    );
  });

  it.each([
    ['natsfleet applied here before', (x: HostFacts) => (x.record = { ...x.record! })],
    [
      'an interrupted apply is being finished',
      (x: HostFacts) => (x.pending = { revision: 'r', since: 'now', actions: [] }),
    ],
  ])('no takeover when %s', (_, edit) => {
    const f = factsFrom(d, (o) => withFileHash(o, d.nats.unitPath, 'f'.repeat(64)));
    edit(f);
    expect(planHost(d, f, 'r').takeover).toBeUndefined();
  });

  it('a host with nothing of NATS yet is a fresh install, not a takeover', () => {
    const f = seedHost();
    f.unit = {
      loadState: 'not-found',
      activeState: 'inactive',
      subState: 'dead',
      unitFileState: '',
      needDaemonReload: false,
    };
    f.container = { exists: false };
    expect(planHost(d, f, 'r').takeover).toBeUndefined();
  });

  it.each([
    [(x: HostFacts) => (x.unit.activeState = 'failed'), 'Degraded', 'nats.service failed (running)'],
    [
      (x: HostFacts) =>
        (x.healthz = { status: 503, body: '{"status":"unavailable","error":"JetStream stream not current"}' }),
      'Degraded',
      'NATS /healthz answers 503: JetStream stream not current',
    ],
    [
      (x: HostFacts) => (x.container.running = false),
      'Progressing',
      'nats.service is active, container nats not running yet',
    ],
  ])('the health verdict carries its reason (%#)', (edit, health, reason) => {
    const f = factsFrom(d, undefined, edit);
    const p = planHost(d, f, 'r');
    expect([p.health, p.healthReason]).toEqual([health, reason]);
  });
});

describe('a NATS under another container name', () => {
  it('blocks with how to take it over, not as an unknown program', () => {
    const d = desiredFrom();
    const f = factsFrom(d, undefined, (x) => {
      x.container = { exists: false };
      x.ports[0] = { port: 4222, held: true, process: 'docker-proxy' };
    });
    const why = (port: number) =>
      `port ${port} is published by a Docker container other than nats (spec.nats.containerName): if it is the ` +
      'NATS to take over, set containerName to its name (`natsfleet import` writes the manifest from the host), ' +
      'otherwise stop it';
    expect(planHost(d, f, 'r').blocked).toEqual([why(4222), why(8222)]);
  });
});
