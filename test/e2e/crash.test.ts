// Issue 11's proof, end to end on a sandbox host (nats-sb-1): an operator's bad day. A full disk
// under the config or under natsfleet's own state, Docker restarted under NATS: auth never off, the
// live config never replaced by a partial one, clear errors, and convergence once the cause is gone.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';

const fleet = inject('fleet');
const h1 = fleet.hosts[0];
const s = new Scenario(fleet, h1);

/** Probes the client port without credentials every 200 ms while `during` runs; returns what it saw. */
async function probeWhile<T>(during: Promise<T>): Promise<{ result: T; accepted: number; probes: number }> {
  let done = false;
  let accepted = 0;
  let probes = 0;
  const loop = (async () => {
    while (!done) {
      const c = await s.nats({});
      probes++;
      if (c.nc) accepted++;
      await c.close();
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const result = await during.finally(() => {
    done = true;
  });
  await loop;
  return { result, accepted, probes };
}

/** Puts `dir` on a tmpfs of `size` holding what it held, then fills it (nothing left but `leaveKb`). */
async function fillDir(dir: string, size: string, leaveKb = 0) {
  await s.sh(`rm -rf /root/keep${dir} && mkdir -p /root/keep${dir} && cp -a ${dir}/. /root/keep${dir}/`);
  await s.sh(`mount -t tmpfs -o size=${size},mode=0755 tmpfs ${dir} && cp -a /root/keep${dir}/. ${dir}/`);
  await s.sh(`dd if=/dev/zero of=${dir}/filler bs=1k 2>/dev/null || true`);
  if (leaveKb) await s.sh(`truncate -s -${leaveKb}K ${dir}/filler`);
}
/** Gives `dir` its own disk back, with what it holds now. */
async function unfillDir(dir: string) {
  await s.sh(
    `rm -f ${dir}/filler && rm -rf /root/keep${dir} && mkdir -p /root/keep${dir} && cp -a ${dir}/. /root/keep${dir}/`,
  );
  await s.sh(`umount ${dir} && cp -a /root/keep${dir}/. ${dir}/ && rm -rf /root/keep${dir}`);
}

beforeAll(async () => {
  const run = await s.apply(await s.manifest());
  expect(run.apply).toMatchObject({ health: 'Healthy' });
});
afterAll(async () => {
  for (const dir of ['/etc/nats', '/var/lib/natsfleet']) {
    if ((await s.sh(`mountpoint -q ${dir} && echo yes || true`)) === 'yes') await unfillDir(dir);
  }
  await s.sh('systemctl restart nats');
  await s.close();
});

describe('a full disk never switches auth off', () => {
  it('1a. /etc/nats full: a restart-requiring change fails with "No space left on device", a client without the token is refused at every moment, the live config is unchanged; freed, the apply converges', async () => {
    await fillDir('/etc/nats', '16k');
    await s.sh('systemctl restart nats');
    await s.sh(
      'for i in $(seq 50); do [ "$(curl -s 127.0.0.1:8222/healthz)" = \'{"status":"ok"}\' ] && break; sleep 0.2; done',
    );
    const configBefore = await s.sh('sha256sum /etc/nats/nats-server.conf');
    const startedBefore = await s.containerStartedAt();

    const renamed = await s.manifest((d) => (d.spec.nats.serverName = 'nats-sb-1-renamed'));
    expect((await s.plan(renamed)).plan!.steps.map((x) => x.step)).toContain('restart');
    const { result: run, accepted, probes } = await probeWhile(s.apply(renamed));
    expect(run.apply).toMatchObject({ outcome: 'failed' });
    expect(run.apply!.error).toMatch(/No space left on device/);
    expect(probes).toBeGreaterThan(0);
    expect(accepted).toBe(0);
    expect(await s.sh('sha256sum /etc/nats/nats-server.conf')).toBe(configBefore);
    expect(await s.containerStartedAt()).toBe(startedBefore);
    expect(await s.sh('ls -a /etc/nats | grep -c natsfleet- || true')).toBe('0');
    expect(await s.sh('ls /var/lib/natsfleet')).not.toMatch(/^lock/m);
    expect((await s.nats({ token: s.token() })).error).toBeUndefined();

    await s.sh('rm -f /etc/nats/filler');
    const again = await s.apply(renamed);
    expect(again.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
    expect(JSON.parse(await s.sh('curl -s 127.0.0.1:8222/varz')).server_name).toBe('nats-sb-1-renamed');
    expect((await s.nats({})).error).toBe('AUTHORIZATION_VIOLATION');
    await unfillDir('/etc/nats');
    expect((await s.apply(await s.manifest())).apply).toMatchObject({ health: 'Healthy' });
  });

  it('1b. /var/lib/natsfleet full: a clear error, no lock left behind, no false drift; freed, the apply converges', async () => {
    await fillDir('/var/lib/natsfleet', '256k');
    const t = await s.manifest((d) => (d.spec.nats.logging = { debug: true }));
    const run = await s.apply(t);
    expect(run.apply!.outcome).not.toBe('applied');
    expect(run.apply!.error).toMatch(/No space left on device/);
    expect(await s.sh('ls -a /var/lib/natsfleet | grep -c lock || true')).toBe('0');
    expect(await s.sh('grep -c "^debug: false" /etc/nats/nats-server.conf')).toBe('1');
    await s.sh('rm -f /var/lib/natsfleet/filler');
    const plan = (await s.plan(t)).plan!;
    expect(plan.drift).toEqual([]);
    expect((await s.apply(t)).apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
    expect((await s.plan(t)).plan!.sync).toBe('Synced');
    await unfillDir('/var/lib/natsfleet');
    expect((await s.apply(await s.manifest())).apply).toMatchObject({ health: 'Healthy' });
  });
});

describe('Docker restarts under NATS', () => {
  it('4. systemctl stop docker && systemctl start docker: NATS and the proxy are healthy again within 30 s, with no natsfleet run', async () => {
    const before = await s.containerStartedAt();
    await s.sh('systemctl stop docker docker.socket && systemctl start docker');
    const started = Date.now();
    await s.sh(
      'for i in $(seq 150); do [ "$(curl -s -m 1 127.0.0.1:8222/healthz)" = \'{"status":"ok"}\' ] && exit 0; sleep 0.2; done; exit 1',
    );
    const https = `curl -sk -m 2 -o /dev/null -w '%{http_code}' --resolve ${h1.name}.sandbox.test:443:127.0.0.1 https://${h1.name}.sandbox.test/varz`;
    await s.sh(`for i in $(seq 150); do [ "$(${https})" = 200 ] && exit 0; sleep 0.2; done; exit 1`);
    expect((Date.now() - started) / 1000).toBeLessThan(30);
    expect(await s.containerStartedAt()).not.toBe(before);
    expect((await s.nats({ token: s.token() })).error).toBeUndefined();
  });
});
