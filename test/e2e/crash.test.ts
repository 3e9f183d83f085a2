// Issue 11's proof, end to end on a sandbox host (nats-sb-1): an operator's bad day. A full disk
// under the config or under natsfleet's own state, Docker restarted under NATS: auth never off, the
// live config never replaced by a partial one, clear errors, and convergence once the cause is gone.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../controller/cli/main.js';
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

describe('a nearly full state directory', () => {
  it('1c. /var/lib/natsfleet nearly full: whatever step runs out of space, a clear error, no stale lock, no false drift; freed, it converges', async () => {
    for (const leaveKb of [4, 12, 24]) {
      await fillDir('/var/lib/natsfleet', '256k', leaveKb);
      const t = await s.manifest((d) => (d.spec.nats.maxConnections = 1000 + leaveKb));
      const run = await s.apply(t);
      if (run.apply!.outcome !== 'applied')
        expect(run.apply!.error, `${leaveKb} KiB left`).toMatch(
          /No space left on device|cannot record progress in \/var\/lib\/natsfleet/,
        );
      expect(await s.sh('ls -a /var/lib/natsfleet | grep -c "^lock" || true')).toBe('0');
      await s.sh('rm -f /var/lib/natsfleet/filler');
      expect((await s.plan(t)).plan!.drift, `${leaveKb} KiB left`).toEqual([]);
      expect((await s.apply(t)).apply).toMatchObject({ health: 'Healthy' });
      expect((await s.plan(t)).plan!.sync).toBe('Synced');
      await unfillDir('/var/lib/natsfleet');
    }
  });
});

describe('locks', () => {
  const plant = (info: object | undefined, age = '') =>
    s.sh(
      `rm -rf /var/lib/natsfleet/lock && mkdir -p /var/lib/natsfleet/lock` +
        (info ? ` && printf '%s' '${JSON.stringify(info)}' > /var/lib/natsfleet/lock/info` : '') +
        (age ? ` && touch -d '${age}' /var/lib/natsfleet/lock` : ''),
    );
  const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();
  let n = 0;
  const change = () => s.manifest((d) => (d.spec.nats.maxConnections = 2000 + ++n));

  it('3a. a lock whose owner process on this machine is gone is taken over, and the apply says so', async () => {
    await plant({
      owner: `natsfleet@${hostname()}`,
      host: hostname(),
      pid: 2 ** 22 + 11,
      token: 'dead',
      since: iso(1000),
      expiresAt: iso(-1800_000),
    });
    const run = await s.apply(await change());
    expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
    expect(run.apply!.notes?.[0]).toMatch(
      /took over a lock: its owner natsfleet@.* \(pid \d+\) on this machine is gone/,
    );
    expect(await s.sh('ls -a /var/lib/natsfleet | grep -c "^lock" || true')).toBe('0');
  });

  it('3b. a lock of another machine within its lease is respected and shown; past its lease it is taken over', async () => {
    const info = {
      owner: 'natsfleet@build-7',
      host: 'build-7',
      pid: 91,
      token: 'foreign',
      since: iso(60_000),
      expiresAt: iso(-1740_000),
    };
    await plant(info);
    const t = await change();
    const plan = (await s.plan(t)).plan!;
    expect(plan.lock).toMatchObject({ owner: 'natsfleet@build-7', since: info.since, expiresAt: info.expiresAt });
    const blocked = await s.apply(t);
    expect(blocked.apply).toMatchObject({ outcome: 'blocked' });
    expect(blocked.apply!.error).toMatch(
      /^locked by natsfleet@build-7 \(pid 91\) since .*, lease until .*: another apply is running$/,
    );
    await plant({ ...info, since: iso(7200_000), expiresAt: iso(5400_000) });
    const run = await s.apply(t);
    expect(run.apply).toMatchObject({ outcome: 'applied' });
    expect(run.apply!.notes?.[0]).toMatch(/took over a lock: its lease ended at/);
  });

  it('3c. a lock without owner data: reported with its age, taken over after the lease', async () => {
    await plant(undefined);
    const t = await change();
    const blocked = await s.apply(t);
    expect(blocked.apply!.error).toMatch(
      /^a lock without owner data, \d+ s old, lease until .*: another apply is running$/,
    );
    await plant(undefined, '2 hours ago');
    const run = await s.apply(t);
    expect(run.apply).toMatchObject({ outcome: 'applied' });
    expect(run.apply!.notes?.[0]).toMatch(/took over a lock: it has no owner data and is \d+ s old/);
  });

  it('3d. unlock refuses a live lock, removes it with --force; removes an abandoned one without', async () => {
    const cli = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await main(
        ['node', 'natsfleet', 'unlock', ...args, ...s.cliFlags()],
        (l) => out.push(l),
        (l) => err.push(l),
      );
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    await s.manifest();
    await plant({
      owner: 'natsfleet@build-7',
      host: 'build-7',
      pid: 91,
      token: 'live',
      since: iso(1000),
      expiresAt: iso(-1800_000),
    });
    const refused = await cli('--host', h1.name);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /refusing: locked by natsfleet@build-7 .*; if you know no apply is running, pass --force/,
    );
    expect(await s.sh('ls -a /var/lib/natsfleet | grep -c "^lock$" || true')).toBe('1');
    const forced = await cli('--host', h1.name, '--force');
    expect(forced).toMatchObject({ code: 0 });
    expect(forced.out).toMatch(/lock removed \(--force: locked by natsfleet@build-7/);
    await plant(undefined, '2 hours ago');
    expect((await cli('--host', h1.name)).out).toMatch(/lock removed \(it has no owner data/);
    expect((await cli('--host', h1.name)).out).toBe(`${h1.name}: no lock`);
    expect((await cli()).code).toBe(1);
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
    await s
      .sh(`for i in $(seq 150); do [ "$(${https})" = 200 ] && exit 0; sleep 0.2; done; exit 1`)
      .catch(async (e) => {
        const debug = await s.sh(`docker ps -a; docker logs --tail 20 nginx-certbot 2>&1; ${https}; ss -tlnp || true`);
        writeFileSync(join(tmpdir(), 'nf-crash-docker.txt'), debug);
        throw new Error(`the proxy did not answer over HTTPS again: ${(e as Error).message}\n${debug}`);
      });
    expect((Date.now() - started) / 1000).toBeLessThan(30);
    expect(await s.containerStartedAt()).not.toBe(before);
    expect((await s.nats({ token: s.token() })).error).toBeUndefined();
  });
});
