// The rolling upgrade of a three-member JetStream cluster, measured (issue 12, proof 7): a sandbox fleet
// of 3 hosts and a NatsCluster manifest (like test/e2e/cluster.test.ts test 2), each round from wiped
// hosts: a cold start on the old image, an R3 stream, a publisher with acknowledgements at about 50
// messages a second (a message is retried under the same msgID until acknowledged), then the cluster's
// image old -> next applied by the CLI (a separate process, `natsfleet apply --output json`). Measured:
// the whole apply, each member's apply (its result.durationMs) and, from the hosts' journals, how long
// its server took to stop (lame duck) and to start; the longest time between two acknowledgements; and
// the acknowledged messages missing from the stream afterwards (must be 0), on every replica.
// Rounds: BENCH_CLUSTER_ROUNDS (5). A downgrade is refused for JetStream, so each round starts over.
// Each apply's JSON and each member's journal of the upgrade are left in .sandbox/bench/cluster/logs.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { dump, load } from 'js-yaml';
import { connect, type JetStreamClient, type JetStreamManager } from 'nats';
import { fleetDown, fleetUp, type Fleet } from '../controller/sandbox/fleet.js';
import { SshSession } from '../controller/transport/ssh.js';
import { openTunnel } from '../controller/apply/nats-probe.js';

const ROOT = resolve(import.meta.dirname, '..');
export const CLUSTER_FLEET = 'bench-cluster';
export const SETTLE = '5s';
/** Upgrade rounds per run unless BENCH_CLUSTER_ROUNDS says otherwise. */
export const DEFAULT_ROUNDS = 5;
const STREAM = 'ORDERS';
const PUBLISH_EVERY_MS = 20;
/** As test/e2e/cluster.test.ts: a publish unacknowledged after 500 ms is sent again 50 ms later. */
const ACK_TIMEOUT_MS = 500;
const RETRY_PAUSE_MS = 50;
const MAX_APPLIES = 5;
/** Refusals after which the apply is run again. */
const RETRIED = ['quorum', 'rollout-halted'];
const ABANDON_MS = 30_000;
const READ_BACK_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML manifests and monitoring JSON
type Doc = Record<string, any>;

export interface MemberTime {
  host: string;
  /** 1: restarted first. */
  position: number;
  /** The member's apply as natsfleet reports it (lock, stage, config test, restart, verify, gate, settle). */
  seconds: number;
  /** systemd's stop of the server (lame duck until the container exited), from the host's journal. */
  stopSeconds: number;
  /** From the start of the new container to "Server is ready" in its log. */
  startSeconds: number;
  /** The server held client connections when it entered lame duck (it then waits the grace period). */
  hadClients: boolean;
  /** The JetStream meta leader before the upgrade. */
  wasLeader: boolean;
  /** When systemd began to stop the old server, and when the new one was ready (epoch ms). */
  stoppingAt: number;
  readyAt: number;
}

interface Ack {
  seq: number;
  duplicate: boolean;
  at: number;
}

export interface Anomaly {
  /** When the message was acknowledged (epoch ms). */
  at: number;
  text: string;
}

export interface UpgradeRound {
  coldStartSeconds: number;
  /** From the first upgrade apply's start to the end of the one that succeeded. */
  totalSeconds: number;
  /** `natsfleet apply` runs the upgrade took (more than 1: natsfleet refused a member, see refusals). */
  applies: number;
  refusals: string[];
  members: MemberTime[];
  acked: number;
  publishRate: number;
  failedAttempts: number;
  longestGapMs: number;
  /** When the longest gap began (epoch ms: the acknowledgement before it). */
  longestGapAt: number;
  /** The member whose server logged "new stream leader" for the stream as the longest gap ended, if one did. */
  gapEndedByElection?: string;
  /** The publisher gave up a message it could not get acknowledged within 30 s after it was stopped. */
  abandoned: boolean;
  /** Why the upgrade failed (natsfleet's errors), when it did: its times are not in the medians. */
  failed?: string;
  /** Acknowledged messages not in the stream (read back in full); undefined when it could not be read. */
  lost?: number;
  /** Messages stored more than once. */
  duplicates?: number;
  readBackError?: string;
  /** Each member's message count of the stream (its replica), from its /jsz. */
  replicaMessages: number[];
  /** Each member's replica: messages, first and last sequence, deleted. */
  replicaStates: string[];
  /** Messages missing or stored twice, the first 10, each with when it was acknowledged. */
  anomalies: Anomaly[];
}

export interface ClusterBench {
  from: string;
  to: string;
  /** The natsfleet measured: the commit, and whether controller/ had uncommitted changes. */
  revision: string;
  rounds: UpgradeRound[];
}

const run = promisify(execFile);

function revision(): string {
  const git = (...a: string[]) => execFileSync('git', ['-C', ROOT, ...a], { encoding: 'utf8' }).trim();
  const dirty = git('status', '--porcelain', '--', 'controller', 'bin').length > 0;
  return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted changes to controller/' : ''}`;
}

/** The CLI as an operator runs it: its own process (so the publisher's timing is not the CLI's). */
async function natsfleet(fleet: Fleet, dir: string, ...args: string[]) {
  const t = performance.now();
  const argv = [join(ROOT, 'bin/natsfleet.js'), ...args, '--hosts', dir, '--ssh-key', fleet.privateKeyPath];
  try {
    const r = await run('node', [...argv, '--secrets-dir', fleet.secretsDir], { maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr, seconds: (performance.now() - t) / 1000 };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: x.code ?? 1, stdout: x.stdout ?? '', stderr: x.stderr ?? String(e), seconds: 0 };
  }
}

function manifests(fleet: Fleet, dir: string) {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const h of fleet.hosts) {
    const d = load(readFileSync(join(fleet.hostsDir, `${h.name}.yaml`), 'utf8')) as Doc;
    // The cluster's, one line for all; monitoring stays on the host (no proxy), as in the e2e test.
    delete d.spec.nats.image;
    delete d.spec.nats.jetstream;
    delete d.spec.proxy;
    d.spec.nats.httpBind = '127.0.0.1';
    writeFileSync(join(dir, `${h.name}.yaml`), dump(d));
  }
  const cluster = load(readFileSync(fleet.clusterManifest!, 'utf8')) as Doc;
  // The default lame duck (30 s duration, 10 s grace period): no lameDuck here.
  cluster.spec.rollout = { maxUnavailable: 1, settle: SETTLE, timeout: '3m' };
  return (image: string) => {
    cluster.spec.nats = { image, jetstream: { enabled: true, maxMemory: '64MB', maxFile: '256MB' } };
    writeFileSync(join(dir, `${cluster.metadata.name}.yaml`), dump(cluster));
  };
}

/** One systemd stop and start of nats.service in a host's journal (`journalctl -o short-unix`). */
export function restartTimes(journal: string) {
  const at = (re: RegExp) => {
    const line = journal.split('\n').find((l) => re.test(l));
    if (!line) throw new Error(`not in the journal: ${re}\n${journal.slice(-3000)}`);
    return Number(line.split(' ')[0]);
  };
  const stopping = at(/systemd\[1\]: Stopping nats\.service/);
  const stopped = at(/systemd\[1\]: Stopped nats\.service/);
  const started = at(/systemd\[1\]: Started nats\.service/);
  const ready = at(/Server is ready/);
  return {
    stoppingAt: stopping * 1000,
    readyAt: ready * 1000,
    stopSeconds: stopped - stopping,
    startSeconds: ready - started,
    hadClients: /Closing existing clients/.test(journal),
  };
}

/**
 * Every message of the stream read back (an acknowledged one missing: lost; one stored twice: duplicated)
 * and each member's message count of its replica, from its /jsz. Bounded: a cluster left broken by a
 * failed rollout may not answer (then readBackError says why).
 */
async function readBack(
  js: JetStreamClient,
  jsm: JetStreamManager,
  acks: Ack[],
  names: string[],
  monitor: (host: string, path: string) => Promise<Doc>,
): Promise<
  Pick<UpgradeRound, 'lost' | 'duplicates' | 'replicaMessages' | 'replicaStates' | 'anomalies' | 'readBackError'>
> {
  const acked = acks.length - 1;
  const states = () =>
    Promise.all(
      names.map(async (h) => {
        const jsz = await monitor(h, 'jsz?accounts=true&streams=true').catch(() => ({}) as Doc);
        const s = (jsz.account_details?.[0]?.stream_detail ?? []).find((x: Doc) => x.name === STREAM);
        return (s?.state as Doc | undefined) ?? {};
      }),
    );
  const replicas = async () => (await states()).map((x) => (x.messages as number) ?? -1);
  const replicaStates = async () =>
    (await states()).map(
      (x, i) =>
        `${names[i]}: ${x.messages ?? '?'} messages, seq ${x.first_seq ?? '?'}..${x.last_seq ?? '?'}, ${x.num_deleted ?? 0} deleted`,
    );
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READ_BACK_MS / 1000} s`)), READ_BACK_MS);
  });
  try {
    const info = await Promise.race([jsm.streams.info(STREAM), deadline]);
    const seen = new Map<number, number>();
    const bySeq = new Map<number, number>();
    const seqsOf = new Map<number, number[]>();
    if (info.state.messages > 0) {
      const messages = await Promise.race([(await js.consumers.get(STREAM)).consume(), deadline]);
      const read = (async () => {
        for await (const m of messages) {
          const i = Number(m.subject.split('.')[1]);
          seen.set(i, (seen.get(i) ?? 0) + 1);
          bySeq.set(m.seq, i);
          seqsOf.set(i, [...(seqsOf.get(i) ?? []), m.seq]);
          if (m.seq >= info.state.last_seq) break;
        }
      })();
      await Promise.race([read, deadline]).finally(() => messages.close());
    }
    // What went wrong, message by message (the first few): when it was acknowledged and as which sequence.
    const anomalies: Anomaly[] = [];
    for (let i = 1; i <= acked; i++) {
      if (seen.has(i)) continue;
      const a = acks[i];
      const there = bySeq.get(a.seq);
      anomalies.push({
        at: a.at,
        text:
          `m-${i} missing: acknowledged as seq ${a.seq}${a.duplicate ? ' (a duplicate of an earlier attempt)' : ''}; ` +
          `seq ${a.seq} now holds ${there === undefined ? 'nothing' : `m-${there}`}`,
      });
    }
    for (const [i, seqs] of seqsOf)
      if (seqs.length > 1)
        anomalies.push({
          at: acks[i]?.at ?? 0,
          text: `m-${i} stored ${seqs.length} times: seqs ${seqs.join(', ')} (acknowledged as seq ${acks[i]?.seq ?? '-'})`,
        });
    let replicaMessages = await replicas();
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(500)) {
      if (replicaMessages.every((n) => n === info.state.messages)) break;
      replicaMessages = await replicas();
    }
    return {
      lost: anomalies.filter((a) => a.text.includes(' missing: ')).length,
      duplicates: [...seen.values()].reduce((a, n) => a + n - 1, 0),
      replicaMessages,
      replicaStates: await replicaStates(),
      anomalies: anomalies.slice(0, 10),
    };
  } catch (e) {
    return {
      replicaMessages: await replicas(),
      replicaStates: await replicaStates(),
      anomalies: [],
      readBackError: (e as Error).message,
    };
  } finally {
    clearTimeout(timer);
  }
}

async function upgradeRound(fleet: Fleet, dir: string, cluster: (image: string) => void, round: number) {
  const { old, next } = fleet.natsImages;
  const names = fleet.hosts.map((h) => h.name);
  const shells = new Map<string, SshSession>();
  const privateKey = readFileSync(fleet.privateKeyPath);
  for (const h of fleet.hosts)
    shells.set(
      h.name,
      await SshSession.connect(
        { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
        { privateKey },
      ),
    );
  const sh = async (host: string, cmd: string) => {
    const r = await shells.get(host)!.exec(cmd);
    if (r.code !== 0) throw new Error(`${host}: ${cmd}: exit ${r.code}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const monitor = async (host: string, path: string): Promise<Doc> =>
    JSON.parse(await sh(host, `curl -s '127.0.0.1:8222/${path}'`));
  const tunnels: { close(): Promise<void> }[] = [];
  try {
    // From nothing (what test/e2e/helpers.ts wipe() removes), then a cold start on the old image.
    await Promise.all(
      names.map((h) =>
        sh(
          h,
          'systemctl disable --now nats.service 2>/dev/null || true; docker rm -f nats >/dev/null 2>&1 || true; ' +
            'rm -rf /etc/nats /var/lib/nats /var/lib/natsfleet /etc/systemd/system/nats.service; systemctl daemon-reload',
        ),
      ),
    );
    cluster(old);
    const cold = await natsfleet(fleet, dir, 'apply');
    if (cold.code !== 0) throw new Error(`cold start failed (exit ${cold.code}):\n${cold.stdout}\n${cold.stderr}`);

    const token = readFileSync(fleet.tokenPath, 'utf8').trim();
    const ports: number[] = [];
    for (const h of names) {
      const t = await openTunnel(shells.get(h)!, 4222);
      tunnels.push(t);
      ports.push(t.port);
    }
    // A client of every member at once (it reconnects to the others while one restarts).
    const nc = await connect({
      servers: ports.map((p) => `127.0.0.1:${p}`),
      token,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200,
      ignoreClusterUpdates: true,
      timeout: 5000,
    });
    tunnels.push({ close: () => nc.close() });
    const jsm = await nc.jetstreamManager();
    for (let attempt = 0; ; attempt++) {
      try {
        await jsm.streams.add({ name: STREAM, subjects: ['orders.>'], num_replicas: 3 });
        break;
      } catch (e) {
        if (attempt >= 20) throw e;
        await sleep(500);
      }
    }
    const js = nc.jetstream();
    const leaderBefore = (await monitor(names[0], 'jsz')).meta_cluster?.leader as string;

    let acked = 0;
    let failedAttempts = 0;
    let longestGapMs = 0;
    let longestGapAt = 0;
    let running = true;
    let stoppedAt = 0;
    let abandoned = false;
    let firstAck = 0;
    const acks: Ack[] = [];
    const publisher = (async () => {
      let lastAck = 0;
      for (let i = 1; running; i++) {
        const sent = Date.now();
        // The same message id until acknowledged: a retry is deduplicated by the stream. Once stopped,
        // a message still not acknowledged after ABANDON_MS is given up (not counted as acknowledged).
        for (;;) {
          try {
            const ack = await js.publish(`orders.${i}`, `order ${i}`, { msgID: `m-${i}`, timeout: ACK_TIMEOUT_MS });
            acks[i] = { seq: ack.seq, duplicate: ack.duplicate, at: Date.now() };
            break;
          } catch {
            failedAttempts++;
            if (!running && Date.now() - stoppedAt > ABANDON_MS) abandoned = true;
            if (abandoned) return;
            await sleep(RETRY_PAUSE_MS);
          }
        }
        const now = Date.now();
        if (!lastAck) firstAck = now;
        else if (now - lastAck > longestGapMs) {
          longestGapMs = now - lastAck;
          longestGapAt = lastAck;
        }
        lastAck = now;
        acked = i;
        await sleep(Math.max(0, PUBLISH_EVERY_MS - (now - sent)));
      }
    })();
    await sleep(2000);

    cluster(next);
    const since = Math.floor(Date.now() / 1000);
    const before = await Promise.all(names.map((h) => sh(h, "docker inspect --format '{{.State.StartedAt}}' nats")));
    // natsfleet refuses a member it cannot take down now (reason quorum) and halts the rollout there: the
    // apply is run again, as an operator would (the controller retries such a host on its own). Any other
    // failure ends the round (recorded, the next round starts over).
    const t0 = performance.now();
    const applied = new Map<string, Doc>();
    const refusals: string[] = [];
    let applies = 0;
    let failed: string | undefined;
    for (;;) {
      const up = await natsfleet(fleet, dir, 'apply', '--output', 'json');
      applies++;
      writeFileSync(join(dir, '..', 'logs', `apply-${round}-${applies}.json`), `${up.stdout}\n${up.stderr}`);
      let results: Doc[] = [];
      try {
        results = (JSON.parse(up.stdout) as Doc[]).map((r) => r.result as Doc).filter(Boolean);
      } catch {
        // no JSON: the apply failed before any host (stderr says why)
      }
      for (const r of results) if (r.outcome === 'applied') applied.set(r.host, r);
      if (up.code === 0) break;
      const refused = results.filter((r) => r.outcome !== 'applied' && r.outcome !== 'unchanged');
      if (applies < MAX_APPLIES && refused.length && refused.every((r) => RETRIED.includes(r.reason))) {
        refusals.push(...refused.filter((r) => r.reason === 'quorum').map((r) => r.error as string));
        await sleep(1000);
        continue;
      }
      const first = refused.filter((r) => r.reason !== 'rollout-halted');
      failed =
        first.map((r) => `${r.host} ${r.outcome}: ${r.error}`).join('; ') ||
        `apply ${applies} exit ${up.code}: ${up.stderr.trim().slice(-500)}`;
      break;
    }
    const totalSeconds = (performance.now() - t0) / 1000;
    await sleep(2000);
    running = false;
    stoppedAt = Date.now();
    await publisher;
    const publishRate = acked / ((Date.now() - firstAck) / 1000);

    const journals = new Map<string, string>();
    for (const h of names) {
      journals.set(h, await sh(h, `journalctl -u nats.service --since @${since} -o short-unix --no-pager`));
      writeFileSync(join(dir, '..', 'logs', `journal-${round}-${h}.log`), journals.get(h)!);
    }
    // A stream leader elected (its server logs it) within a second before the longest gap ended.
    const gapEnd = longestGapAt + longestGapMs;
    const gapEndedByElection = names.find((h) =>
      journals
        .get(h)!
        .split('\n')
        .some((l) => {
          const at = Number(l.split(' ')[0]) * 1000;
          return l.includes(`new stream leader for '$G > ${STREAM}'`) && at > gapEnd - 1000 && at <= gapEnd + 200;
        }),
    );
    const members: MemberTime[] = [];
    if (!failed) {
      // Restarted one at a time: the order is the containers' start order.
      const after = await Promise.all(names.map((h) => sh(h, "docker inspect --format '{{.State.StartedAt}}' nats")));
      const versions = await Promise.all(names.map(async (h) => (await monitor(h, 'varz')).version as string));
      const order = [...names].sort(
        (a, b) => Date.parse(after[names.indexOf(a)]) - Date.parse(after[names.indexOf(b)]),
      );
      if (after.some((t, i) => t === before[i]) || versions.some((v) => !next.endsWith(`:${v}`)))
        failed = `natsfleet succeeded but the members run ${versions.join(', ')}, started at ${after.join(', ')}`;
      else
        for (const [i, host] of order.entries())
          members.push({
            host,
            position: i + 1,
            seconds: applied.get(host)!.durationMs / 1000,
            ...restartTimes(journals.get(host)!),
            wasLeader: host === leaderBefore,
          });
    }
    const check = await readBack(js, jsm, acks.slice(0, acked + 1), names, monitor);
    return {
      coldStartSeconds: cold.seconds,
      totalSeconds,
      applies,
      refusals,
      ...(failed ? { failed } : {}),
      members,
      acked,
      abandoned,
      publishRate,
      failedAttempts,
      longestGapMs,
      longestGapAt,
      ...(gapEndedByElection ? { gapEndedByElection } : {}),
      ...check,
    };
  } finally {
    for (const t of tunnels.reverse()) await t.close().catch(() => {});
    for (const s of shells.values()) s.close();
  }
}

/** `at` (epoch ms) against the restarts: the last member whose server began to stop by `until`. */
function placeOf(members: readonly MemberTime[], at: number, until = at): string {
  const m = [...members].reverse().find((x) => x.stoppingAt <= until);
  if (!m) return 'before the first restart';
  const from = (at - m.stoppingAt) / 1000;
  const when = from < 0 ? `${(-from).toFixed(1)} s before` : `${from.toFixed(1)} s after`;
  const ready = ((m.readyAt - m.stoppingAt) / 1000).toFixed(1);
  return `${when} member ${m.position}'s server began to stop (it was ready again ${ready} s after)`;
}

/** Where the longest publish gap fell, and whether a stream leader election ended it. */
export function gapPlace(r: UpgradeRound): string {
  if (r.failed) return '(the rollout failed)';
  const elected = r.gapEndedByElection ? `; ended as ${r.gapEndedByElection} was elected the stream's leader` : '';
  return `began ${placeOf(r.members, r.longestGapAt, r.longestGapAt + r.longestGapMs)}${elected}`;
}

/** An anomaly with when its message was acknowledged. */
const anomalyText = (r: UpgradeRound, a: Anomaly) =>
  `${a.text}; acknowledged ${new Date(a.at).toISOString().slice(11, 23)}${r.failed ? '' : `, ${placeOf(r.members, a.at)}`}`;

/** The longest gap began before a member's server began to stop and ended with a stream leader elected. */
function handOverGap(r: UpgradeRound): boolean {
  const m = [...r.members].reverse().find((x) => x.stoppingAt <= r.longestGapAt + r.longestGapMs);
  return Boolean(m && r.longestGapAt < m.stoppingAt && r.gapEndedByElection);
}

/** The longest gap began as a server that held the publisher's connection closed it (its grace period over). */
function evictionGap(r: UpgradeRound): boolean {
  return r.members.some(
    (m) => m.hadClients && r.longestGapAt >= m.stoppingAt + 9_000 && r.longestGapAt <= m.readyAt + 1_000,
  );
}

/** What the read-back found, in a few words. */
const data = (r: UpgradeRound) =>
  r.lost === undefined
    ? `stream not read back (${r.readBackError})`
    : `${r.lost} lost, ${r.duplicates} duplicated${r.abandoned ? ', the last message given up unacknowledged' : ''}`;

/** Runs the scenario on its own 3-host fleet (fleet id bench-cluster), removed afterwards. */
export async function clusterBench(work: string, rounds: number, log: (s: string) => void): Promise<ClusterBench> {
  const dir = join(work, 'cluster');
  log('starting 3 sandbox hosts for the cluster rollout');
  const fleet = await fleetUp({ hosts: 3, id: CLUSTER_FLEET, dir, cluster: 'core', log });
  // Each apply's JSON and each member's journal of the upgrade, for a look afterwards.
  rmSync(join(dir, 'logs'), { recursive: true, force: true });
  mkdirSync(join(dir, 'logs'));
  try {
    const cluster = manifests(fleet, join(dir, 'manifests'));
    const result: ClusterBench = {
      from: fleet.natsImages.old,
      to: fleet.natsImages.next,
      revision: revision(),
      rounds: [],
    };
    for (let r = 0; r < rounds; r++) {
      const x = await upgradeRound(fleet, join(dir, 'manifests'), cluster, r + 1);
      result.rounds.push(x);
      const members = x.members.map(
        (m) =>
          `${m.host} ${fmt(m.seconds)} s: stop ${fmt(m.stopSeconds)} s, start ${fmt(m.startSeconds)} s` +
          `${m.hadClients ? ', had clients' : ''}${m.wasLeader ? ', meta leader' : ''}`,
      );
      log(
        `cluster upgrade round ${r + 1}: ${x.failed ? `FAILED (${x.failed})` : `${fmt(x.totalSeconds)} s (${members.join('; ')})`}; ` +
          `${x.acked} acked, ${data(x)}, replicas ${x.replicaMessages.join('/')}; longest publish gap ${x.longestGapMs} ms ` +
          `${gapPlace(x)}; ${x.applies} applies, ${x.failedAttempts} failed publish attempts, ${x.publishRate.toFixed(1)} msg/s`,
      );
      for (const a of x.anomalies) log(`  round ${r + 1}: ${anomalyText(x, a)}`);
      if (x.anomalies.length || new Set(x.replicaMessages).size > 1)
        log(`  round ${r + 1}: ${x.replicaStates.join('; ')}`);
    }
    return result;
  } finally {
    await fleetDown(CLUSTER_FLEET);
  }
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
export const fmt = (x: number) => (x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** median (min–max) */
const spread = (xs: number[], f = fmt) =>
  xs.length ? `${f(median(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})` : '-';

/** For prose: the one value, or the median and the range. */
const inProse = (xs: number[], f: (x: number) => string) =>
  xs.length === 1 ? f(xs[0]) : `median ${f(median(xs))}, ${f(Math.min(...xs))} to ${f(Math.max(...xs))}`;

export const CLUSTER_HEADING = '## Rolling upgrade of a 3-member JetStream cluster';

export function clusterSection(
  b: ClusterBench,
  machine: { cores: number; cpu: string; memGiB: number; node: string; date: string },
): { md: string; summary: string } {
  const rs = b.rounds.filter((r) => !r.failed);
  const failed = b.rounds.filter((r) => r.failed);
  const read = b.rounds.filter((r) => r.lost !== undefined);
  const all = rs.flatMap((r) => r.members);
  const at = (p: number) => rs.map((r) => r.members[p - 1].seconds);
  const settle = Number.parseFloat(SETTLE);
  const withClients = all.filter((m) => m.hadClients);
  const without = all.filter((m) => !m.hadClients);
  const rest = all.map((m) => m.seconds - m.stopSeconds - m.startSeconds - settle);
  const lost = read.reduce((a, r) => a + r.lost!, 0);
  const duplicates = read.reduce((a, r) => a + r.duplicates!, 0);
  const leaderLast = rs.filter((r) => r.members[2].wasLeader).length;
  const refusals = [...new Set(b.rounds.flatMap((r) => r.refusals))];
  // The longest gap, by what made it: a reconnection (the ack timeout), or a stream without a leader.
  const reconnect = rs.filter((r) => evictionGap(r) && !r.gapEndedByElection);
  const election = rs.filter((r) => r.gapEndedByElection);
  const electionAtEviction = election.filter((r) => evictionGap(r)).length;
  const electionAtHandOver = election.filter((r) => handOverGap(r)).length;
  const other = rs.length - reconnect.length - election.length;
  const secs = (x: number) => `${fmt(x)} s`;
  const ms = (x: number) => `${Math.round(x)} ms`;
  const parts = [
    ['lame-duck stop of a server with clients', median(withClients.map((m) => m.stopSeconds))],
    ['settle', settle],
    ['the rest of natsfleet’s apply (see below)', median(rest)],
    ['lame-duck stop of a server without clients', median(without.map((m) => m.stopSeconds))],
    ['start to ready', median(all.map((m) => m.startSeconds))],
  ]
    .filter(([, v]) => !Number.isNaN(v))
    .sort((x, y) => (y[1] as number) - (x[1] as number));
  const table = [
    `| what (${rs.length} rounds that succeeded${failed.length ? `; ${failed.length} failed, see below` : ''}) | median (min–max) |`,
    '| --- | ---: |',
    `| whole upgrade: \`natsfleet apply\`, 3 members one at a time | ${spread(
      rs.map((r) => r.totalSeconds),
      secs,
    )} |`,
    `| member restarted 1st | ${spread(at(1), secs)} |`,
    `| member restarted 2nd | ${spread(at(2), secs)} |`,
    `| member restarted 3rd (the meta leader: last in ${leaderLast} of ${rs.length} rounds) | ${spread(at(3), secs)} |`,
    `| per member, all ${all.length} | ${spread(
      all.map((m) => m.seconds),
      secs,
    )} |`,
    `| of which: server stop (lame duck), server holding the publisher's connection (${withClients.length}) | ${spread(
      withClients.map((m) => m.stopSeconds),
      secs,
    )} |`,
    `| of which: server stop (lame duck), server without clients (${without.length}) | ${spread(
      without.map((m) => m.stopSeconds),
      secs,
    )} |`,
    `| of which: new server started to "Server is ready" | ${spread(
      all.map((m) => m.startSeconds),
      secs,
    )} |`,
    `| of which: settle | ${secs(settle)} (fixed) |`,
    `| of which: the rest (lock, staging, config test, verification, catch-up polling) | ${spread(rest, secs)} |`,
    `| **longest publish gap** (between two acknowledgements) | **${spread(
      rs.map((r) => r.longestGapMs),
      ms,
    )}** |`,
    `| **acknowledged messages lost** (every round${failed.length ? ', failed ones too' : ''}) | **${lost}** of ${read.reduce((a, r) => a + r.acked, 0)} (${b.rounds.map((r) => r.lost ?? 'not read').join(', ')}) |`,
    `| publish attempts that failed (retried) | ${spread(
      rs.map((r) => r.failedAttempts),
      String,
    )} |`,
    `| publisher rate, gaps included | ${spread(
      rs.map((r) => r.publishRate),
      (x) => `${x.toFixed(1)} msg/s`,
    )} |`,
    `| cold start of the 3 members on ${b.from} (before each round) | ${spread(
      rs.map((r) => r.coldStartSeconds),
      secs,
    )} |`,
  ].join('\n');
  const member = (m: MemberTime) =>
    `${fmt(m.seconds)} (stop ${fmt(m.stopSeconds)}${m.hadClients ? ', clients' : ''}${m.wasLeader ? ', leader' : ''})`;
  const rounds = [
    '| round | upgrade | member 1 | member 2 | member 3 | applies | acked | lost | duplicated | each replica | longest gap | where |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...b.rounds.map(
      (r, i) =>
        `| ${i + 1} | ${r.failed ? '**failed**' : fmt(r.totalSeconds)} | ${(r.failed ? ['-', '-', '-'] : r.members.map(member)).join(' | ')} | ${r.applies} | ${r.acked} | ${r.lost ?? 'not read'} | ${r.duplicates ?? '-'} | ${r.replicaMessages.join(' / ')} | ${r.longestGapMs} ms | ${gapPlace(r)} |`,
    ),
  ].join('\n');
  const md = `${CLUSTER_HEADING} (${b.from} -> ${b.to})

Produced by \`npm run bench\` (this section alone: \`node --import tsx bench/run.ts cluster\`) on ${machine.date};
machine: ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, Node ${machine.node}; natsfleet ${b.revision}.
${b.rounds.length} rounds (BENCH_CLUSTER_ROUNDS, default ${DEFAULT_ROUNDS}); medians over the rounds that succeeded.

How (bench/cluster.ts, modelled on test/e2e/cluster.test.ts test 2): a sandbox fleet of 3 hosts of its own,
NatsHost manifests without image, JetStream or proxy, and a NatsCluster manifest with
\`nats: {image, jetstream}\` and \`rollout: {maxUnavailable: 1, settle: ${SETTLE}, timeout: 3m}\`; the **settle
window is ${SETTLE}** and the lame duck is natsfleet's default (**duration 30 s, grace period 10 s**). Each round
starts from wiped hosts (natsfleet refuses the JetStream downgrade back, ${b.to.split(':')[1]} -> ${b.from.split(':')[1]}
being below the documented floor): a cold start of all three on ${b.from} (\`natsfleet apply\`), an R3 stream
created through a NATS client connected to all three members through SSH tunnels, and a publisher on that
client (one connection) that sends a message every ${PUBLISH_EVERY_MS} ms and waits for its acknowledgement, retrying the
same message (same msgID, deduplicated by the stream) ${RETRY_PAUSE_MS} ms after a failure or its ${ACK_TIMEOUT_MS} ms ack timeout (as
the e2e test: the gap then measures unavailability more than the client's timeout).
2 s after the publisher starts, the cluster's image is changed to ${b.to} and \`natsfleet apply --output json\`
runs in its own process; the publisher stops 2 s after the apply ends. Measured: the apply's wall time; each
member's \`result.durationMs\` (lock to recorded: staging, config test with the new image, install, restart,
verification, then the rollout gate: caught up with its peers, the settle window, caught up again); from
each host's journal, systemd's stop of the old server (lame duck until the container exited) and the new
server's start to "Server is ready"; the longest time between two acknowledgements; then every message of
the stream read back (an acknowledged message missing: lost) and each member's message count of its
replica (/jsz). The order of the members is their containers' start order.

${table}

Per round (member n: its apply in seconds, restarted n-th; "clients": its server held the publisher's
connection when it entered lame duck; "leader": the JetStream meta leader before the upgrade):

${rounds}

What dominates a member's time, largest first (medians): ${parts.map(([k, v]) => `${k} ${fmt(v as number)} s`).join(', ')}.
In lame duck, nats-server stops accepting clients at once; a server that still holds client connections
waits the whole grace period (10 s) before it closes them (spread over the rest of the 30 s duration; one
connection here, closed at once) and exits, while one without clients exits almost at once. So a member whose
server holds the publisher's connection takes about 10 s more than the others; the 30 s duration would
matter only with many clients. Which servers hold it is chance (the client picks a member at random, and
another when its server closes it): 1 to 3 per round, hence the spread of the whole upgrade. The settle window
(${SETTLE}) is waited on every member. The rest is natsfleet's own work over SSH and polling for the member to be
caught up (every 1 s).

The longest publish gap, by what made it. In ${reconnect.length} of ${rs.length} rounds (${inProse(
    reconnect.map((r) => r.longestGapMs),
    ms,
  )}) a server in lame duck closed the publisher's connection at the end of its grace period: the message then
in flight got no acknowledgement (the connection closed under it) and was sent again, through another member,
after the ${ACK_TIMEOUT_MS} ms ack timeout.${
    election.length
      ? ` In ${election.length} of ${rs.length} rounds (${inProse(
          election.map((r) => r.longestGapMs),
          ms,
        )}) the stream had no leader: the gap ended only as a member logged its election as the stream's leader. It
began ${[
          electionAtHandOver
            ? `in ${electionAtHandOver}, shortly before a member's server began to stop, as natsfleet asked the stream's
leader on that member to step down (its hand-over of leaderships before a restart)`
            : '',
          electionAtEviction
            ? `in ${electionAtEviction}, as a server in lame duck closed its clients and shut down while it led the stream`
            : '',
          election.length - electionAtHandOver - electionAtEviction
            ? `in ${election.length - electionAtHandOver - electionAtEviction}, elsewhere (see "where")`
            : '',
        ]
          .filter(Boolean)
          .join('; ')}.`
      : ''
  }${other > 0 ? ` In ${other} other round(s) see "where" above.` : ''}${
    refusals.length
      ? `

natsfleet refused to take down a member in ${b.rounds.filter((r) => r.refusals.length).length} of ${b.rounds.length} rounds and halted the rollout there
(exit 1); the apply was run again 1 s later, as an operator would (the controller retries such a host), and
the upgrade time above includes it. Its reasons: ${refusals.map((x) => `"${x}"`).join('; ')}.`
      : ''
  }${
    b.rounds.some((r) => r.anomalies.length || new Set(r.replicaMessages).size > 1)
      ? `

**Acknowledged messages lost or stored twice, replicas that differ** (the stream read back through its leader;
m-i is the publisher's i-th message, acknowledged as the sequence its PubAck named):
${b.rounds
  .flatMap((r, i) =>
    r.anomalies.length || new Set(r.replicaMessages).size > 1
      ? [
          `- round ${i + 1}: ${[...r.anomalies.map((a) => anomalyText(r, a)), `replicas: ${r.replicaStates.join('; ')}`].join('; ')}`,
        ]
      : [],
  )
  .join('\n')}`
      : ''
  }${
    failed.length
      ? `

**${failed.length} of ${b.rounds.length} upgrades failed** (not in the times above; the next round started over from wiped
hosts; each apply's JSON and the members' journals are kept in .sandbox/bench/cluster/logs):
${failed.map((r) => `round ${b.rounds.indexOf(r) + 1}: ${r.failed}; publisher: ${r.acked} acked, ${data(r)}`).join('\n')}`
      : ''
  }
`;
  const summary =
    `rolling upgrade ${b.from} -> ${b.to} of 3 members (${rs.length} of ${b.rounds.length} rounds succeeded, settle ${SETTLE}): ` +
    `${fmt(median(rs.map((r) => r.totalSeconds)))} s, per member ${fmt(median(all.map((m) => m.seconds)))} s; ` +
    `longest publish gap ${Math.round(median(rs.map((r) => r.longestGapMs)))} ms (max ${Math.max(...b.rounds.map((r) => r.longestGapMs))}); ` +
    `${lost} acked messages lost, ${duplicates} duplicated (${read.length} of ${b.rounds.length} streams read back)`;
  return { md, summary };
}
