// Issue 12's proof, end to end on the sandbox (real sshd, systemd, dockerd and nats-server of three
// Debian suites): a three-member JetStream cluster from a NatsCluster manifest, an upgrade 2.9 -> 2.10
// rolled member by member under an acknowledged publisher, the quorum gate, a member that cannot start
// (rolled back, rollout halted), and a fourth member added by a reload of the others.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { connect } from 'nats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadManifests } from '../../controller/manifest/load.js';
import { readManifestDir } from '../../controller/manifest/read-dir.js';
import { policyResolver } from '../../controller/secrets/resolve.js';
import { prepareTargets, reconcileAll, type HostRun } from '../../controller/reconcile/reconcile.js';
import { openTunnel } from '../../controller/apply/nats-probe.js';
import { Scenario } from './helpers.js';
import { mainWithin } from '../helpers/cli.js';

const fleet = inject('fleet');
const images = fleet.natsImages;
const MEMBERS = fleet.hosts.slice(0, 3);
const FOURTH = fleet.hosts[3];
const dir = mkdtempSync(join(tmpdir(), 'nf-e2e-cluster-'));
const scenarios = new Map(fleet.hosts.map((h) => [h.name, new Scenario(fleet, h)]));
const sh = (host: string, cmd: string) => scenarios.get(host)!.sh(cmd);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML manifests, edited freely
type Doc = Record<string, any>;
const hostDoc = (name: string): Doc => {
  const d = load(readFileSync(join(fleet.hostsDir, `${name}.yaml`), 'utf8')) as Doc;
  // The cluster's, one line for all.
  delete d.spec.nats.image;
  delete d.spec.nats.jetstream;
  delete d.spec.proxy; // monitoring stays on the host (faster; the proxy is covered elsewhere)
  d.spec.nats.httpBind = '127.0.0.1';
  return d;
};
let cluster: Doc;
const hosts = new Map<string, Doc>();

function write(): void {
  for (const f of ['core', ...fleet.hosts.map((h) => h.name)]) rmSync(join(dir, `${f}.yaml`), { force: true });
  writeFileSync(join(dir, 'core.yaml'), dump(cluster));
  for (const [name, d] of hosts) writeFileSync(join(dir, `${name}.yaml`), dump(d));
}

/** The CLI in-process, its output and errors as one text. */
async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const flags = ['--hosts', dir, '--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir];
  const code = await mainWithin([...args, ...flags], lines);
  return { code, out: lines.join('\n') };
}

/** Plans through the library (to read the rollout value). */
async function planRuns(): Promise<HostRun[]> {
  const s = scenarios.get(MEMBERS[0].name)!;
  const { hosts: specs, problems } = loadManifests(await readManifestDir(dir), s.policy);
  if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems));
  const targets = prepareTargets(specs, await policyResolver(specs, s.policy.secrets), s.policy.paths);
  return reconcileAll(targets, { pool: s.pool, revision: 'e2e', apply: false, concurrency: 4 });
}

const monitor = async (host: string, path: string) => JSON.parse(await sh(host, `curl -s '127.0.0.1:8222/${path}'`));
const startedAt = (host: string) => sh(host, "docker inspect --format '{{.State.StartedAt}}' nats");

/** Routes to distinct peers, the meta leader and meta group size, as each member reports them. */
async function clusterView(members: string[]) {
  return Promise.all(
    members.map(async (h) => {
      const routez = await monitor(h, 'routez');
      const jsz = await monitor(h, 'jsz');
      const varz = await monitor(h, 'varz');
      return {
        host: h,
        routes: new Set(routez.routes.map((r: { remote_id: string }) => r.remote_id)).size,
        leader: jsz.meta_cluster?.leader,
        size: jsz.meta_cluster?.cluster_size,
        version: varz.version,
      };
    }),
  );
}

const wipe = (host: string) => scenarios.get(host)!.wipe();

/** A NATS client to every member at once, through SSH tunnels (clients reconnect to the others). */
async function clusterClient(token: string, members: string[]) {
  const tunnels = await Promise.all(
    members.map(async (h) => {
      const s = scenarios.get(h)!;
      await s.sh('true');
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the scenario's own shell session
      return openTunnel((s as any).shell, 4222);
    }),
  );
  const nc = await connect({
    servers: tunnels.map((t) => `127.0.0.1:${t.port}`),
    token,
    reconnect: true,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    ignoreClusterUpdates: true,
    timeout: 5000,
  });
  return {
    nc,
    close: async () => {
      await nc.close();
      for (const t of tunnels) await t.close();
    },
  };
}

beforeAll(async () => {
  await Promise.all(fleet.hosts.map((h) => wipe(h.name)));
  cluster = load(readFileSync(fleet.clusterManifest!, 'utf8')) as Doc;
  cluster.spec.members = cluster.spec.members.slice(0, 3);
  cluster.spec.nats = { image: images.old, jetstream: { enabled: true, maxMemory: '64MB', maxFile: '256MB' } };
  cluster.spec.rollout = { maxUnavailable: 1, settle: '3s', timeout: '2m' };
  for (const h of MEMBERS) hosts.set(h.name, hostDoc(h.name));
  write();
}, 120_000);

afterAll(async () => {
  await Promise.all(fleet.hosts.map((h) => wipe(h.name)));
  for (const s of scenarios.values()) await s.close();
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('a three-member JetStream cluster (issue 12)', () => {
  const names = MEMBERS.map((h) => h.name);
  // Test 2's publisher runs while this is true (also stopped in afterAll, should that test fail early).
  let publishing = true;
  let closeClient: (() => Promise<void>) | undefined;
  afterAll(async () => {
    publishing = false;
    await closeClient?.();
  });

  it('1. apply from nothing: a cold start of all members; each reports 2 routes, one meta leader, size 3', async () => {
    const plan = await cli('plan');
    expect(plan.code).toBe(2);
    expect(plan.out).toMatch(/cluster core: 0 of 3 members healthy/);
    expect(plan.out).toMatch(/rollout \(cold start: all members together\)/);
    const r = await cli('apply');
    expect(r.out).not.toMatch(/Unknown|failed|rolled back/i);
    expect(r.code, r.out).toBe(0);
    const view = await clusterView(names);
    for (const v of view) expect(v).toMatchObject({ routes: 2, size: 3, version: '2.9.10' });
    expect(new Set(view.map((v) => v.leader)).size).toBe(1);
    expect(names).toContain(view[0].leader);
    const settled = await cli('plan');
    expect(settled.code, settled.out).toBe(0);
  });

  it('2. an upgrade 2.9.10 -> 2.10 under an acknowledged publisher: one member at a time, the meta leader last, no acked message lost', async () => {
    const token = readFileSync(fleet.tokenPath, 'utf8').trim();
    const client = await clusterClient(token, names);
    closeClient = client.close;
    const jsm = await client.nc.jetstreamManager();
    await jsm.streams.add({ name: 'ORDERS', subjects: ['orders.>'], num_replicas: 3 });
    const js = client.nc.jetstream();
    const leaderBefore = (await clusterView(names))[0].leader;
    let acked = 0;
    let longestGapMs = 0;
    let lastAck = Date.now();
    // Ids published more than once (a timeout, then the same id again): only these may appear twice.
    const retried = new Set<string>();
    const publisher = (async () => {
      for (let i = 1; publishing; i++) {
        // The same message id until acknowledged: a retry is deduplicated by the stream.
        const id = `m-${i}`;
        let failingSince = 0;
        for (;;) {
          try {
            await js.publish(`orders.${i}`, `order ${i}`, { msgID: id, timeout: 500 });
            break;
          } catch (e) {
            if (client.nc.isClosed()) return;
            retried.add(id);
            failingSince ||= Date.now();
            // Once the apply is over, a publisher that still cannot publish after 30 s is a failure, not a hang.
            if (!publishing && Date.now() - failingSince > 30_000)
              throw new Error(`${id} not acknowledged for 30 s after the apply: ${(e as Error).message}`);
            await new Promise((r) => setTimeout(r, 50));
          }
        }
        acked = i;
        longestGapMs = Math.max(longestGapMs, Date.now() - lastAck);
        lastAck = Date.now();
        await new Promise((r) => setTimeout(r, 20)); // about 50 messages a second
      }
    })();
    await new Promise((r) => setTimeout(r, 2000));

    cluster.spec.nats.image = images.next;
    write();
    const runs = await planRuns();
    const rollout = runs[0].rollout!;
    const order = rollout.batches.map((b) => b[0]);
    expect(rollout.batches.every((b) => b.length === 1)).toBe(true);
    expect(order).toHaveLength(3);
    expect(order[2]).toBe(names.find((n) => n === leaderBefore) ?? order[2]);
    const before = await Promise.all(names.map(startedAt));
    const t0 = Date.now();
    const r = await cli('apply').finally(() => (publishing = false));
    const totalMs = Date.now() - t0;
    await publisher;
    expect(r.code, r.out).toBe(0);

    // Restarted in the planned order, each after the previous one was up (settle 3 s included).
    const after = await Promise.all(order.map(startedAt));
    for (const [i, host] of order.entries()) expect(after[i]).not.toBe(before[names.indexOf(host)]);
    const times = after.map((t) => Date.parse(t));
    for (let i = 1; i < times.length; i++) expect(times[i] - times[i - 1]).toBeGreaterThan(3000);
    const view = await clusterView(names);
    for (const v of view) expect(v).toMatchObject({ routes: 2, size: 3 });
    expect(view.every((v) => v.version.startsWith(images.next.split(':')[1]))).toBe(true);

    // Every acknowledged message is in the stream, on every replica. A publish whose acknowledgement timed
    // out during a leader change and was sent again may be stored twice: the stream's duplicate window
    // lives on its leader, and an entry proposed by the old leader can commit after the new one accepted
    // the retry (NATS's deduplication is per leader, not exactly-once across an election). Such a copy
    // is reported, and it may only be of an id that was sent again; no acknowledged id may be missing.
    await new Promise((r) => setTimeout(r, 2000));
    const info = await jsm.streams.info('ORDERS');
    const ids = new Map<string, number>();
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq += 50) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(50, info.state.last_seq - seq + 1) }, (_, k) =>
          jsm.streams.getMessage('ORDERS', { seq: seq + k }),
        ),
      );
      for (const m of batch) {
        const id = m.header?.get('Nats-Msg-Id') ?? '';
        ids.set(id, (ids.get(id) ?? 0) + 1);
      }
    }
    const missing = Array.from({ length: acked }, (_, k) => `m-${k + 1}`).filter((id) => !ids.has(id));
    expect(missing, 'acknowledged messages missing from the stream').toEqual([]);
    const twice = [...ids].filter(([, n]) => n > 1).map(([id]) => id);
    expect(
      twice.filter((id) => !retried.has(id)),
      'stored twice without having been sent twice',
    ).toEqual([]);
    expect(ids.size).toBe(acked);
    expect(info.state.messages).toBe(acked + twice.length);
    // Replication is asynchronous: each replica reaches the leader's count within 30 s. On the idle stream
    // nats-server 2.10.27 can leave a follower one message behind until the stream gets another (seen once in
    // CI: 1690 of 1691 on two replicas for 30 s): then one more message is published, and every replica must
    // hold it, so every acknowledged one before it (the log is replicated in order).
    let expected = info.state.messages;
    const onReplicas = async () =>
      Promise.all(
        names.map(async (h) => {
          const jsz = await monitor(h, 'jsz?accounts=true&streams=true');
          const stream = jsz.account_details[0].stream_detail.find((s: { name: string }) => s.name === 'ORDERS');
          return stream.state.messages as number;
        }),
      );
    const converged = async () => {
      let counts = await onReplicas();
      for (let t = 0; t < 30 && counts.some((n) => n !== expected); t++) {
        await new Promise((r) => setTimeout(r, 1000));
        counts = await onReplicas();
      }
      return counts;
    };
    let counts = await converged();
    if (counts.some((n) => n !== expected)) {
      console.log(`[cluster] replicas at ${counts.join(', ')} of ${expected} on the idle stream: one more message`);
      await js.publish('orders.nudge', 'nudge', { msgID: 'nudge', timeout: 5000 });
      expected += 1;
      counts = await converged();
    }
    expect(counts, `messages on ${names.join(', ')}`).toEqual(names.map(() => expected));
    console.log(
      `[cluster] rolling upgrade ${images.old} -> ${images.next} of 3 members: ${(totalMs / 1000).toFixed(1)} s; ` +
        `${acked} acked messages, 0 lost, ${twice.length} stored twice after a retried publish ` +
        `(${retried.size} retried); longest publish gap ${longestGapMs} ms`,
    );
    closeClient = undefined;
    await client.close();
  });

  it('3. with one member stopped by hand, a change that restarts the others is refused naming quorum; nothing restarts', async () => {
    const [stopped, ...others] = names;
    await sh(stopped, 'systemctl stop nats.service');
    const before = await Promise.all(others.map(startedAt));
    cluster.spec.nats.lameDuck = { duration: '31s' }; // lame-duck settings need a restart
    cluster.spec.rollout = { maxUnavailable: 1, settle: '3s', timeout: '40s' };
    write();
    const r = await cli('apply');
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(/quorum/);
    expect(await Promise.all(others.map(startedAt))).toEqual(before);
    // The stopped member starts first (capacity first), on the new settings. nats-server 2.10.27 can leave a
    // member that was just started out of an idle stream's current replicas for minutes (the stall the README's
    // cluster section describes): past the rollout's timeout it is rolled back, started on the previous settings.
    const first = new RegExp(`^${stopped}: (applied|rolled-back)`, 'm').exec(r.out)?.[1];
    expect(first, r.out).toBeDefined();
    if (first === 'rolled-back') console.log(`[cluster] test 3: ${stopped} rolled back on its start:\n${r.out}`);
    expect(await sh(stopped, 'systemctl is-active nats.service')).toBe('active');
    // The change withdrawn, the next apply converges: the member started on the new settings gets the previous
    // ones again; the others are not restarted.
    delete cluster.spec.nats.lameDuck;
    write();
    const again = await cli('apply');
    expect(again.code, again.out).toBe(0);
    expect(again.out).toMatch(new RegExp(`${stopped}: ${first === 'applied' ? 'applied' : 'unchanged'}`));
    expect(await Promise.all(others.map(startedAt))).toEqual(before);
    const settled = await cli('plan');
    expect(settled.code, settled.out).toBe(0);
  });

  it('4. a member that cannot start is rolled back, the rollout halts, the others never restart; exit 1', async () => {
    cluster.spec.nats.lameDuck = { duration: '32s' };
    cluster.spec.rollout = { maxUnavailable: 1, settle: '3s', timeout: '40s' };
    write();
    const first = (await planRuns())[0].rollout!.batches[0][0];
    // An address the host does not have: docker cannot publish the monitoring port, the server never starts.
    hosts.get(first)!.spec.nats.httpBind = '192.0.2.1';
    write();
    const others = names.filter((n) => n !== first);
    const before = await Promise.all(others.map(startedAt));
    const r = await cli('apply');
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(new RegExp(`${first}: rolled-back|${first}.*rolled back`));
    expect(r.out).toMatch(/halted/);
    expect(await Promise.all(others.map(startedAt))).toEqual(before);
    const view = await clusterView(names);
    for (const v of view) expect(v).toMatchObject({ routes: 2, size: 3 });
    for (const h of names) expect(await sh(h, 'curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
    // Put back as it was: the rolled-back member already runs it, so nothing restarts (see test 3).
    hosts.get(first)!.spec.nats.httpBind = '127.0.0.1';
    delete cluster.spec.nats.lameDuck;
    write();
    const fixed = await cli('plan');
    expect(fixed.code, fixed.out).toBe(0);
  });

  it('5. a fourth member: the others reload (no restart) and report 3 routes', async () => {
    const before = await Promise.all(names.map(startedAt));
    hosts.set(FOURTH.name, hostDoc(FOURTH.name));
    cluster.spec.members.push({ host: FOURTH.name, routeAddress: FOURTH.clusterAddress });
    write();
    const plan = await cli('plan');
    expect(plan.out).toMatch(new RegExp(`${FOURTH.name} \\(start\\)`));
    const r = await cli('apply');
    expect(r.code, r.out).toBe(0);
    expect(await Promise.all(names.map(startedAt))).toEqual(before);
    const all = [...names, FOURTH.name];
    const view = await clusterView(all);
    for (const v of view) expect(v).toMatchObject({ routes: 3, size: 4 });
  });

  it('6. clients as a user and a system account user for natsfleet: the four members reload, none restarts', async () => {
    const all = [...names, FOURTH.name];
    const before = await Promise.all(all.map(startedAt));
    writeFileSync(join(fleet.secretsDir, 'app-password'), 'e2e-app-password\n', { mode: 0o600 });
    writeFileSync(join(fleet.secretsDir, 'system-password'), 'e2e-system-password\n', { mode: 0o600 });
    cluster.spec.nats.auth = { user: 'app', password: { file: join(fleet.secretsDir, 'app-password') } };
    for (const d of hosts.values()) delete d.spec.nats.auth;
    cluster.spec.systemAccount = { user: 'natsfleet', password: { file: join(fleet.secretsDir, 'system-password') } };
    write();
    const r = await cli('apply');
    expect(r.out).toMatch(/nats-sb-\d \(reload\)/);
    expect(r.code, r.out).toBe(0);
    expect(await Promise.all(all.map(startedAt))).toEqual(before);
    const view = await clusterView(all);
    for (const v of view) expect(v).toMatchObject({ routes: 3, size: 4 });
  });

  it('7. remove the fourth member: it stops, the others reload, and its peer leaves the JetStream meta group', async () => {
    const before = await Promise.all(names.map(startedAt));
    cluster.spec.members = cluster.spec.members.filter((m: { host: string }) => m.host !== FOURTH.name);
    // Its stop takes the lame-duck time: the removal waits for it to be offline.
    cluster.spec.rollout = { maxUnavailable: 1, settle: '3s', timeout: '2m' };
    // Decommissioned: no longer a member, so it names its own image again.
    hosts.get(FOURTH.name)!.spec.state = 'absent';
    hosts.get(FOURTH.name)!.spec.nats.image = images.next;
    write();
    const r = await cli('apply');
    expect(r.out).toMatch(new RegExp(`removed ${FOURTH.name} \\(no longer a member\\) from the JetStream meta group`));
    expect(r.code, r.out).toBe(0);
    expect(await Promise.all(names.map(startedAt))).toEqual(before);
    expect(await sh(FOURTH.name, 'systemctl is-active nats.service || true')).not.toBe('active');
    const view = await clusterView(names);
    for (const v of view) expect(v).toMatchObject({ routes: 2, size: 3 });
    const settled = await cli('plan');
    expect(settled.code, settled.out).toBe(0);
  });
});
