// Issue 4's proof, end to end on the sandbox fleet (real sshd, systemd, dockerd, nats-server, nginx):
// what an operator would check after each plan and apply; the whole suite on the oldest NATS the
// sandbox has (Debian bookworm's 2.9.10) and again on the newest (Debian sid's), from wiped hosts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { formatPlan } from '../../controller/plan/format.js';
import { cli as run } from '../helpers/cli.js';

const fleet = inject('fleet');
const [h1, h2, h3] = fleet.hosts;
const passwordFile = join(fleet.secretsDir, 'app-password');
writeFileSync(passwordFile, 'e2e-app-password\n', { mode: 0o600 });

const steps = (run: { plan?: { steps: { step: string }[] } }) => run.plan!.steps.map((s) => s.step);
const re = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const VERSIONS = [
  { image: fleet.natsImages.old, variant: fleet.natsImages.oldVariant },
  // Another tag of the newest image (the sandbox has a distinct variant of the oldest only).
  { image: fleet.natsImages.newest, variant: `${fleet.natsImages.newest}-r1` },
].map((v) => {
  const version = v.image.split(':')[1];
  const [major, minor] = version.split('.').map(Number);
  // A tag promising a later version than the image runs (allowed as an upgrade: the next minor line).
  return { ...v, version, fake: `nats:${major}.${minor + 1}.99` };
});

describe.each(VERSIONS)('on $image', ({ image, variant, version, fake }) => {
  beforeAll(async () => {
    for (const h of [h1, h2, h3]) {
      const s = new Scenario(fleet, h);
      await s.wipe();
      await s.sh(`docker image inspect ${variant} >/dev/null 2>&1 || docker tag ${image} ${variant}`);
      await s.close();
    }
  }, 120_000);
  // Leave no newer JetStream store behind: later files deploy the oldest version (a downgrade is refused).
  afterAll(async () => {
    for (const h of [h1, h2, h3]) {
      const s = new Scenario(fleet, h);
      await s.wipe();
      await s.close();
    }
  }, 120_000);

  describe('a host from scratch to every kind of change (nats-sb-1)', () => {
    const s = new Scenario(fleet, h1, 'e2e', image);
    afterAll(() => s.close());

    it('1. fresh host -> apply -> healthy; a client with the token can publish and subscribe, one without is refused', async () => {
      const t = await s.manifest((d) => {
        delete d.spec.proxy;
        d.spec.nats.jetstream = { enabled: false };
      });
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      expect(await s.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
      const ok = await s.nats({ token: s.token() });
      expect(ok.error).toBeUndefined();
      const sub = ok.nc!.subscribe('e2e.hello', { max: 1 });
      ok.nc!.publish('e2e.hello', 'world');
      for await (const m of sub) expect(m.string()).toBe('world');
      await ok.close();
      expect((await s.nats({})).error).toBe('AUTHORIZATION_VIOLATION');
    });

    it('2. token -> user/password: the plan says reload, the apply reloads in place; old token refused, new user accepted', async () => {
      const startedBefore = await s.containerStartedAt();
      const t = await s.manifest((d) => {
        d.spec.nats.auth = { user: 'app', password: { file: passwordFile } };
      });
      const plan = await s.plan(t);
      expect(steps(plan)).toEqual(['test-config', 'reload']);
      expect(formatPlan(plan.plan!)).toContain(
        'hot-reloadable config keys changed: authorization.password, authorization.token, authorization.user',
      );
      expect(formatPlan(plan.plan!)).not.toContain(s.token());
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', steps: ['test-config', 'reload'] });
      expect(await s.containerStartedAt()).toBe(startedBefore);
      expect((await s.nats({ token: s.token() })).error).toBe('AUTHORIZATION_VIOLATION');
      const app = await s.nats({ user: 'app', pass: 'e2e-app-password' });
      expect(app.error).toBeUndefined();
      await app.close();
    });

    it('3. JetStream with limits: /jsz shows them and a stream can be created', async () => {
      const t = await s.manifest((d) => {
        d.spec.nats.jetstream = { enabled: true, maxMemory: '32MB', maxFile: '128MB' };
      });
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      const jsz = JSON.parse(await s.sh('curl -s 127.0.0.1:8222/jsz'));
      expect(jsz.config).toMatchObject({
        max_memory: 32 * 1024 ** 2,
        max_storage: 128 * 1024 ** 2,
        store_dir: '/data/jetstream/jetstream',
      });
      const c = await s.nats({ user: 'app', pass: 'e2e-app-password' });
      const jsm = await c.nc!.jetstreamManager();
      const info = await jsm.streams.add({ name: 'E2E', subjects: ['e2e.stream.>'] });
      expect(info.config.name).toBe('E2E');
      await c.nc!.jetstream().publish('e2e.stream.one', 'x');
      expect((await jsm.streams.info('E2E')).state.messages).toBe(1);
      await c.close();
      // The stream lives in the host's data directory.
      expect(await s.sh('ls /var/lib/nats/jetstream/jetstream')).toContain('$G');
    });

    it('5. a second apply: plan exit 0, nothing written, one SSH command to observe', async () => {
      const t = await s.manifest();
      const stamp = () =>
        s.sh(
          'stat -c %Y.%i /etc/nats/nats-server.conf /etc/systemd/system/nats.service /var/lib/natsfleet/applied.json',
        );
      const before = await stamp();
      const session = await s.pool.get(t.spec);
      const execs = session.execCount;
      const plan = await s.plan(t);
      expect(session.execCount - execs).toBe(1);
      expect(plan.plan).toMatchObject({ sync: 'Synced', health: 'Healthy', changes: [], steps: [] });
      const run = await s.apply(t);
      expect(run.apply!.outcome).toBe('unchanged');
      expect(await stamp()).toBe(before);
    });

    it('7. image tag change -> restart on the new image', async () => {
      const t = await s.manifest((d) => {
        d.spec.nats.image = variant;
      });
      const plan = await s.plan(t);
      expect(plan.plan!.steps).toContainEqual({
        step: 'restart',
        reason: `image ${image} -> ${variant}; unit file changed`,
      });
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      const [configImage, imageId] = (await s.sh("docker inspect --format '{{.Config.Image}} {{.Image}}' nats")).split(
        ' ',
      );
      expect(configImage).toBe(variant);
      expect(imageId).toBe(await s.sh(`docker image inspect --format '{{.Id}}' ${variant}`));
    });

    it('8a. a config nats-server rejects is never installed; the old server keeps serving', async () => {
      const t = await s.manifest();
      const configBefore = await s.sh('sha256sum /etc/nats/nats-server.conf');
      const startedBefore = await s.containerStartedAt();
      // As when the image is older than the config it is given: a key this nats-server does not know.
      const conf = t.desired.files.find((f) => f.id === 'nats-config')!;
      conf.content += 'key_from_a_newer_nats: true\n';
      const run = await s.apply(t);
      expect(run.apply!.outcome).toBe('failed');
      // Only the line number: the image's own output (it could be anyone's image) is never repeated.
      expect(run.apply!.error).toMatch(
        /^config test failed at line \d+: nats-server rejected the new config \(not installed; the running server is untouched\)$/,
      );
      expect(await s.sh('sha256sum /etc/nats/nats-server.conf')).toBe(configBefore);
      expect(await s.containerStartedAt()).toBe(startedBefore);
      expect(await s.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
      expect(await s.sh('ls /var/lib/natsfleet')).not.toContain('lock');
    });

    it('8b. verification fails after a restart -> rolled back to the previous files, healthy again', async () => {
      // An image whose tag promises a version it does not run: /varz gives it away after the restart.
      await s.sh(`docker tag ${variant} ${fake}`);
      const t = await s.manifest((d) => {
        d.spec.nats.image = fake;
      });
      const run = await s.apply(t);
      // Rolled back and serving again: the words say so (the new version is not running, the old one is).
      expect(run.apply).toMatchObject({ outcome: 'rolled-back', health: 'Healthy' });
      expect(run.apply!.error).toMatch(
        new RegExp(
          `/varz version is ${re(version)}, the image ${re(fake)} should run ${re(fake.split(':')[1])}.*rolled back`,
        ),
      );
      expect(await s.sh("docker inspect --format '{{.Config.Image}}' nats")).toBe(variant);
      expect(await s.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
      const back = await s.manifest((d) => {
        d.spec.nats.image = variant;
      });
      expect((await s.plan(back)).plan!.sync).toBe('Synced');
    });
  });

  describe('proxy, drift and a cut connection (nats-sb-2)', () => {
    const s = new Scenario(fleet, h2, 'e2e', image);
    afterAll(() => s.close());

    it('4. proxy on: HTTPS through nginx returns /varz; monitoring is not reachable on the public interface', async () => {
      // From a host without the proxy (whatever ran there before: turning it off takes it down)...
      const off = await s.apply(await s.manifest((d) => (d.spec.proxy.enabled = false)));
      expect(off.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      expect(await s.sh("docker ps -a --format '{{.Names}}' --filter name=nginx-certbot")).toBe('');
      // ...to the proxy on.
      const run = await s.apply(await s.manifest((d) => (d.spec.proxy.enabled = true)));
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      expect(run.apply!.steps).toContain('proxy-up');
      const ip = await s.sh("ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1");
      const varz = JSON.parse(
        await s.sh(`curl -sk --resolve ${h2.name}.sandbox.test:443:${ip} https://${h2.name}.sandbox.test/varz`),
      );
      expect(varz.server_name).toBe(h2.name);
      expect(await s.sh(`curl -s -o /dev/null -w '%{http_code}' http://${ip}:8222/varz || true`)).toBe('000');
      expect(await s.sh(`curl -s -o /dev/null -w '%{http_code}' http://${ip}/varz`)).toBe('301');
    });

    it('6. manual drift (config edited, file chmod, service stopped, container removed): the plan shows exactly that, apply restores', async () => {
      const t = await s.manifest();
      await s.sh("sed -i 's/^debug: false/debug: true/' /etc/nats/nats-server.conf");
      await s.sh('chmod 0666 /etc/systemd/system/nats.service');
      await s.sh('systemctl stop nats && docker rm -f nats >/dev/null 2>&1 || true');
      const plan = (await s.plan(t)).plan!;
      expect(plan.sync).toBe('OutOfSync');
      expect(plan.drift).toEqual([
        '/etc/nats/nats-server.conf: content changed on the host (content not shown)',
        '/etc/systemd/system/nats.service: mode 0666 -> 0644',
        'service nats.service is inactive, container missing',
      ]);
      expect(plan.changes.map((c) => `${c.action} ${c.path}`)).toEqual([
        'update /etc/nats/nats-server.conf',
        'update /etc/systemd/system/nats.service',
      ]);
      // The hand-edited text is never shown: only what natsfleet will write (its own rendering).
      const diff = plan.changes[0].kind === 'file' ? plan.changes[0].diff : '';
      expect(diff).toContain('+debug: false');
      expect(diff).not.toContain('debug: true');
      expect(plan.steps.map((x) => x.step)).toEqual(['test-config', 'daemon-reload', 'start']);
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      expect(await s.sh('stat -c %a /etc/systemd/system/nats.service')).toBe('644');
      expect((await s.plan(t)).plan!.sync).toBe('Synced');
    });

    it('9. SSH connection cut in the middle of an apply: no half-written file; the next apply converges', async () => {
      const t = await s.manifest((d) => {
        d.spec.nats.maxPayload = '2MB';
        d.spec.nats.lameDuck = { duration: '31s', gracePeriod: '5s' };
      });
      const cut = await s.apply(t, {
        onPhase: async (_h, phase) => {
          if (phase === 'installing') setTimeout(async () => (await s.pool.get(t.spec)).destroy(), 30);
        },
      });
      expect(cut.apply?.outcome ?? 'failed').toBe('failed');
      // Every live file is whole: either what was there or what natsfleet wanted.
      for (const f of t.desired.files) {
        const content = await s.sh(`cat ${f.path}`);
        expect(content.length).toBeGreaterThan(0);
        expect(content.startsWith('# Managed by natsfleet')).toBe(true);
      }
      const run = await s.apply(t);
      expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
      expect(JSON.parse(await s.sh('curl -s 127.0.0.1:8222/varz')).max_payload).toBe(2 * 1024 * 1024);
      expect(await s.sh('ls /var/lib/natsfleet')).not.toMatch(/lock|pending/);
      expect((await s.plan(t)).plan!.sync).toBe('Synced');
    });
  });

  describe('host keys and decommissioning (nats-sb-3)', () => {
    const s = new Scenario(fleet, h3, 'e2e', image);
    afterAll(() => s.close());

    it('8c. a first deploy that fails verification is rolled back to nothing: no unit, no container, nothing restarting', async () => {
      await s.sh(`docker tag ${variant} ${fake}`);
      const t = await s.manifest((d) => {
        d.spec.nats.image = fake;
      });
      const run = await s.apply(t);
      s.doc.spec.nats.image = image; // the next tests deploy the real one
      expect(run.apply).toMatchObject({ outcome: 'rolled-back', health: 'Missing' });
      expect(run.apply!.error).toMatch(/should run .*; rolled back: nothing of it is left running$/);
      // Stopped before its unit file went (systemd would keep it running), and not enabled at boot any more.
      await new Promise((r) => setTimeout(r, 2000));
      expect(await s.sh('systemctl is-active nats.service || true')).toBe('inactive');
      expect(
        await s.sh(
          'ls /etc/systemd/system/nats.service /etc/systemd/system/*.wants/nats.service 2>&1 | grep -c "No such file"',
        ),
      ).toBe('2');
      expect(await s.sh("docker ps -a --format '{{.Names}}'")).toBe('');
      expect(await s.sh('curl -s -m 2 127.0.0.1:8222/healthz || echo nothing')).toBe('nothing');
    });

    it('10a. a wrong host key is refused and nothing runs', async () => {
      // Whatever ran on this host before (the e2e files share it): nothing under natsfleet's paths may change.
      const look =
        "ls -la --time-style=full-iso /etc/nats /var/lib/natsfleet 2>/dev/null | grep -vE ' [.]{1,2}$' || true";
      const before = await s.sh(look);
      const t = await s.manifest((d) => {
        d.spec.ssh.hostKey = h1.hostKey;
      });
      const run = await s.apply(t);
      expect(run.error).toMatch(
        /host key mismatch: the host presented SHA256:\S+ .*the manifest pins SHA256:\S+; refusing to connect/,
      );
      expect(run.plan!.sync).toBe('Unknown');
      s.doc.spec.ssh.hostKey = h3.hostKey;
      expect(await s.sh(look)).toBe(before);
    });

    it('10b. decommission: service, container and proxy gone, data kept', async () => {
      expect((await s.apply(await s.manifest())).apply).toMatchObject({
        outcome: expect.stringMatching(/^(applied|unchanged)$/),
        health: 'Healthy',
      });
      await s.sh('echo keep > /var/lib/nats/jetstream/marker');
      const t = await s.manifest((d) => {
        d.spec.state = 'absent';
      });
      const plan = (await s.plan(t)).plan!;
      expect(plan.steps.map((x) => x.step)).toEqual([
        'proxy-down',
        'stop',
        'disable',
        'remove-container',
        'daemon-reload',
      ]);
      const run = await s.apply(t);
      expect(run.apply!.outcome).toBe('applied');
      expect(await s.sh('systemctl is-active nats || true')).toBe('inactive');
      expect(await s.sh('ls /etc/systemd/system/nats.service 2>/dev/null || echo gone')).toBe('gone');
      expect(await s.sh("docker ps -a --format '{{.Names}}'")).toBe('');
      expect(await s.sh('ls /data/nginx/user_conf.d /root/nginx')).not.toMatch(/\.conf|compose/);
      expect(await s.sh('cat /var/lib/nats/jetstream/marker')).toBe('keep');
      expect((await s.plan(t)).plan!.sync).toBe('Synced');
    });
  });

  describe('the CLI an operator runs (nats-sb-2)', () => {
    const s = new Scenario(fleet, h2, 'e2e', image);
    afterAll(() => s.close());
    const cli = (...args: string[]) => run(...args, ...s.cliFlags());

    it('apply exits 0 when healthy and in sync; plan exits 0 with nothing to do, 2 with changes (Terraform detailed exit codes)', async () => {
      await s.manifest();
      expect((await cli('apply')).code).toBe(0);
      const same = await cli('plan');
      expect(same.out).toContain('nats-sb-2: no changes (Synced, Healthy)');
      expect(same.code).toBe(0);
      await s.manifest((d) => (d.spec.nats.logging = { debug: true }));
      const changed = await cli('plan', '--output', 'json');
      expect(changed.code).toBe(2);
      const [plan] = JSON.parse(changed.out);
      expect(plan).toMatchObject({
        host: 'nats-sb-2',
        sync: 'OutOfSync',
        steps: [{ step: 'test-config' }, { step: 'reload' }],
      });
      expect(changed.out).not.toContain(s.token());
    });

    it('status prints the table an operator reads', async () => {
      await s.manifest((d) => (d.spec.nats.logging = { debug: false }));
      const r = await cli('status');
      expect(r.out.split('\n')[0]).toMatch(/^HOST\s+SYNC\s+HEALTH\s+NATS\s+REVISION\s+APPLIED\s+REASON$/);
      expect(r.out).toMatch(
        new RegExp(`nats-sb-2\\s+Synced\\s+Healthy\\s+${re(version)}\\s+\\S+\\s+\\d{4}-\\d\\d-\\d\\dT`),
      );
      expect(r.code).toBe(0);
    });

    it('an invalid manifest: exit 1, the problem named, nothing run on the host', async () => {
      const before = await s.sh('stat -c %Y /var/lib/natsfleet/applied.json');
      s.write((d) => (d.spec.nats.clientPort = 8222));
      const r = await cli('apply');
      expect(r.code).toBe(1);
      // Errors go to stderr.
      expect(r.err).toMatch(
        /nats-sb-2\.yaml:\d+: error: spec\.nats\.httpPort: clashes with spec\.nats\.clientPort \(8222\)/,
      );
      expect(r.err).toContain('nothing was run on any host');
      expect(r.out).toBe('');
      expect(await s.sh('stat -c %Y /var/lib/natsfleet/applied.json')).toBe(before);
      await s.manifest((d) => (d.spec.nats.clientPort = 4222));
    });

    it('a wrong host key: plan exits 1 and says so', async () => {
      await s.manifest((d) => (d.spec.ssh.hostKey = h1.hostKey));
      const r = await cli('plan');
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/nats-sb-2: Unknown: .*host key mismatch/);
      await s.manifest((d) => (d.spec.ssh.hostKey = h2.hostKey));
    });
  });
});
