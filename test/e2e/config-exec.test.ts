// Issue 16's faster config test, end to end on a sandbox host: when the image does not change, the staged
// config is tested by nats-server inside the running container (`docker exec`: no container is created); a
// config it rejects is never installed and the server is untouched; a new image is still tested in a new
// container of that image (`docker run`).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';

const fleet = inject('fleet');
const h = fleet.hosts[2];

describe('the config test in the running container (nats-sb-3)', () => {
  const s = new Scenario(fleet, h, 'e2e-exec');
  /** What the host's Docker engine did since `since` (a date in seconds), as `Action image-or-command` lines. */
  const events = async (since: string) =>
    (
      await s.sh(
        `docker events --since ${since} --until "$(date +%s.%N)" --filter type=container ` +
          `--format '{{.Action}} {{.Actor.Attributes.image}}'`,
      )
    )
      .split('\n')
      .filter(Boolean);
  const now = () => s.sh('date +%s.%N');

  beforeAll(async () => {
    await s.wipe();
    const first = await s.apply(
      await s.manifest((d) => {
        delete d.spec.proxy;
        d.spec.nats.jetstream = { enabled: false };
      }),
    );
    expect(first.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
  }, 180_000);
  afterAll(async () => {
    await s.wipe();
    await s.close();
  }, 60_000);

  it('a config nats-server rejects in the running container (and in a new one) is never installed; the server keeps serving', async () => {
    const t = await s.manifest();
    const configBefore = await s.sh('sha256sum /etc/nats/nats-server.conf');
    const startedBefore = await s.containerStartedAt();
    const idBefore = await s.sh("docker inspect --format '{{.Id}}' nats");
    // A key this nats-server does not know: rejected by `nats-server -t`.
    const conf = t.desired.files.find((f) => f.id === 'nats-config')!;
    conf.content += 'key_from_a_newer_nats: true\n';
    const since = await now();
    const run = await s.apply(t);
    expect(run.apply!.outcome).toBe('failed');
    expect(run.apply!.reason).toBe('config-rejected');
    expect(run.apply!.error).toMatch(
      /^config test failed at line \d+: nats-server rejected the new config \(not installed; the running server is untouched\)$/,
    );
    // Refused in the running container (one exec), then confirmed by a new one, whose verdict counts (the
    // running one may see other files than the host): one test container, the server's own untouched.
    const seen = await events(since);
    expect(seen.filter((e) => e.startsWith('exec_start'))).toHaveLength(1);
    expect(seen.filter((e) => /^create /.test(e))).toHaveLength(1);
    expect(await s.sh('sha256sum /etc/nats/nats-server.conf')).toBe(configBefore);
    expect(await s.sh('ls -A /etc/nats')).toBe('nats-server.conf'); // the staged file is gone too
    expect(await s.containerStartedAt()).toBe(startedBefore);
    expect(await s.sh("docker inspect --format '{{.Id}}' nats")).toBe(idBefore);
    expect(await s.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
    expect(await s.sh('ls /var/lib/natsfleet')).not.toContain('lock');
  });

  it('a reload-safe change is tested in the running container, installed, reloaded and verified', async () => {
    const since = await now();
    const run = await s.apply(await s.manifest((d) => (d.spec.nats.logging = { debug: true })));
    expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy', steps: ['test-config', 'reload'] });
    const seen = await events(since);
    expect(seen.filter((e) => e.startsWith('exec_start'))).toHaveLength(1);
    expect(seen.filter((e) => /^(create|start) /.test(e))).toEqual([]);
    expect(await s.sh('ls -A /etc/nats')).toBe('nats-server.conf');
  });

  it('a new image: the config is tested in a new container of that image (docker run), then restarted on it', async () => {
    const variant = fleet.natsImages.oldVariant;
    await s.sh(`docker image inspect ${variant} >/dev/null 2>&1 || docker tag ${fleet.natsImages.old} ${variant}`);
    const since = await now();
    const run = await s.apply(
      await s.manifest((d) => {
        d.spec.nats.image = variant;
        d.spec.nats.logging = { debug: false };
      }),
    );
    expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
    const seen = await events(since);
    // The test's container (of the new image, removed after) is created before the server's.
    const created = seen.filter((e) => e.startsWith('create '));
    expect(created.length).toBeGreaterThanOrEqual(2);
    expect(created[0]).toBe(`create ${variant}`);
  });
});
