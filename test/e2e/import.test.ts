// Issue 14's takeover proof, end to end on the sandbox: a host prepared by hand exactly as the seed
// describes (a single-file config mount, a `docker run --rm` unit, a container under its own name,
// token auth, JetStream with a store where the seed's template put it) is imported, planned (a takeover,
// not blocked) and applied: one restart, every message kept, the token enforced before and after, and
// the longest time clients could not connect reported.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';
import { openTunnel } from '../../controller/apply/nats-probe.js';

const run = promisify(execFile);
const fleet = inject('fleet');
const host = fleet.hosts[1];
const TOKEN = 'seed-token-e2e-3f9a';
const MESSAGES = 1000;
const CONTAINER = 'nats-main';
const ENV = `NATS_${host.name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_TOKEN`.replace(/^NATS_NATS_/, 'NATS_');

const CONF = `# written by hand, the seed's way
port: 4222
http_port: 8222
authorization {
  token: "${TOKEN}"
}
jetstream {
  store_dir: "/data"
  max_memory_store: 64MB
  max_file_store: 256MB
}
`;
const unit = (image: string) => `[Unit]
Description=NATS
After=docker.service
Requires=docker.service

[Service]
Restart=always
ExecStartPre=-/usr/bin/docker rm -f ${CONTAINER}
ExecStart=/usr/bin/docker run --rm --name ${CONTAINER} -p 4222:4222 -p 8222:8222 \\
  -v /etc/nats/nats-server.conf:/etc/nats/nats-server.conf:ro -v /var/lib/nats:/data \\
  ${image} -c /etc/nats/nats-server.conf
ExecStop=/usr/bin/docker stop ${CONTAINER}

[Install]
WantedBy=multi-user.target
`;

describe('import and take over a host deployed the seed way', () => {
  const s = new Scenario(fleet, host);
  const file = join(s.dir, `${host.name}.yaml`);
  const stored = async () => {
    const c = await s.nats({ token: TOKEN });
    if (!c.nc) throw new Error(`connect: ${c.error}`);
    try {
      return (await (await c.nc.jetstreamManager()).streams.info('ORDERS')).state.messages;
    } finally {
      await c.close();
    }
  };
  const startedAt = () => s.sh(`docker inspect --format '{{.State.StartedAt}}' ${CONTAINER}`);

  beforeAll(async () => {
    await s.wipe();
    await s.sh(`docker rm -f ${CONTAINER} >/dev/null 2>&1 || true`);
    const b64 = (t: string) => Buffer.from(t).toString('base64');
    await s.sh(
      `install -d -m 0755 /etc/nats /var/lib/nats && echo ${b64(CONF)} | base64 -d > /etc/nats/nats-server.conf && ` +
        `chmod 0644 /etc/nats/nats-server.conf && echo ${b64(unit(fleet.natsImages.old))} | base64 -d > ` +
        `/etc/systemd/system/nats.service && systemctl daemon-reload && systemctl enable --now nats.service && ` +
        `for i in $(seq 100); do curl -sf 127.0.0.1:8222/healthz >/dev/null && break; sleep 0.2; done`,
    );
    const c = await s.nats({ token: TOKEN });
    if (!c.nc) throw new Error(`connect: ${c.error}`);
    const jsm = await c.nc.jetstreamManager();
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'] });
    const js = c.nc.jetstream();
    for (let i = 0; i < MESSAGES; i++) await js.publish(`orders.${i % 10}`, `order ${i}`);
    await c.close();
  }, 180_000);
  afterAll(async () => {
    delete process.env[ENV];
    await s.sh(`systemctl disable --now nats.service >/dev/null 2>&1 || true; docker rm -f ${CONTAINER} || true`);
    await s.wipe();
    await s.close();
  }, 120_000);

  it('before: the stream holds every message and the token is enforced', async () => {
    expect(await stored()).toBe(MESSAGES);
    expect((await s.nats({})).error).toMatch(/AUTHORIZATION_VIOLATION/);
  });

  it('import writes a valid manifest reproducing the host, secrets as references', async () => {
    const r = await cli(
      'import',
      `127.0.0.1:${host.sshPort}`,
      '--name',
      host.name,
      '--host-key',
      host.hostKey,
      '--ssh-key',
      fleet.privateKeyPath,
      '--out',
      file,
    );
    expect(r.err).not.toMatch(/^ {4}at /m);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`secret: set ${ENV} to the token in /etc/nats/nats-server.conf on the host`);
    expect(r.err).toContain(`takeover: nats.service (active) and container ${CONTAINER} become natsfleet's`);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(TOKEN);
    const doc = load(text) as { spec: { nats: Record<string, unknown> } };
    expect(doc.spec.nats).toEqual({
      image: fleet.natsImages.old,
      containerName: CONTAINER,
      clientPort: 4222,
      httpPort: 8222,
      httpBind: '0.0.0.0',
      confFile: '/etc/nats/nats-server.conf',
      dataDir: '/var/lib/nats',
      auth: { token: { env: ENV } },
      // NATS keeps its files in /data/jetstream: the store is the data directory itself, not its default.
      jetstream: { enabled: true, storeDir: '/var/lib/nats', maxMemory: '64MB', maxFile: '256MB' },
    });
  });

  it('plan shows a takeover, not blocked; apply takes it over with one restart, data and auth kept', async () => {
    process.env[ENV] = TOKEN;
    const flags = ['--hosts', s.dir, '--ssh-key', fleet.privateKeyPath];
    const plan = await cli('plan', ...flags);
    expect(plan.out).toContain(`~ takeover: nats.service and container ${CONTAINER} were not deployed by natsfleet`);
    expect(plan.out).not.toMatch(/! blocked/);
    expect(plan.out).toContain('0 blocked');
    expect(plan.code).toBe(2);

    // On a terminal, apply shows the plan and asks: anything but "yes" changes nothing.
    const bin = join(import.meta.dirname, '../../bin/natsfleet.js');
    const initial = await startedAt();
    const tty = await run(
      'sh',
      ['-c', `printf 'no\\n' | NO_COLOR=1 script -qec "node ${bin} apply ${flags.join(' ')}" /dev/null`],
      { timeout: 60_000 },
    ).catch((e: { stdout: string }) => ({ stdout: e.stdout }));
    expect(tty.stdout).toContain(`~ takeover: nats.service and container ${CONTAINER}`);
    expect(tty.stdout).toContain('Apply these changes to 1 host(s)? Type "yes" to go on:');
    expect(tty.stdout).toContain('apply cancelled: nothing was changed');
    expect(await startedAt()).toBe(initial);

    // Clients connecting every 50 ms through one tunnel while the apply runs: the longest gap is reported.
    await s.sh('true');
    const tunnel = await openTunnel(s.shell!, 4222);
    let stop = false;
    let lastOk = Date.now();
    let longest = 0;
    const prober = (async () => {
      while (!stop) {
        try {
          const nc = await connect({
            servers: `127.0.0.1:${tunnel.port}`,
            token: TOKEN,
            reconnect: false,
            timeout: 1000,
          });
          await nc.flush();
          await nc.close();
          longest = Math.max(longest, Date.now() - lastOk);
          lastOk = Date.now();
        } catch {
          // counted as unavailable until the next success
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const before = await startedAt();
    const t0 = Date.now();
    const apply = await cli('apply', ...flags);
    const applySec = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await prober;
    await tunnel.close();
    console.log(`takeover: apply ${applySec.toFixed(1)} s, longest unavailability ${(longest / 1000).toFixed(2)} s`);
    expect(apply.err).toBe('');
    expect(apply.code).toBe(0);
    expect(apply.out).toMatch(new RegExp(`${host.name}: applied \\(.*restart.*\\), Healthy`));
    expect(apply.out.match(/restart/g)).toHaveLength(1);
    expect(await startedAt()).not.toBe(before);
    expect(longest).toBeLessThan(15_000);

    expect(await stored()).toBe(MESSAGES);
    expect((await s.nats({})).error).toMatch(/AUTHORIZATION_VIOLATION/);
    expect((await s.nats({ token: 'wrong' })).error).toMatch(/AUTHORIZATION_VIOLATION/);
    // natsfleet's unit now runs the container, with the config directory mounted (not the single file).
    expect(await s.sh('grep -c "natsfleet" /etc/systemd/system/nats.service')).not.toBe('0');
    const again = await cli('plan', ...flags);
    expect(again.out).toContain(`${host.name}: no changes (Synced, Healthy)`);
    expect(again.code).toBe(0);
  });
});
