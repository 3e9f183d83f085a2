// Issue 16's HA proof, end to end: three `natsfleet controller` processes sharing their state and leases
// in a real nats-server's JetStream KV (Debian's, on 127.0.0.1), four sandbox hosts, a real Git
// repository and the GitHub double. The replicas share the hosts; killing the leader with SIGKILL in the
// middle of a deploy lets another replica finish that deploy within the lease TTL and a poll, with one
// deploy comment, a bounded number of statuses, no issue, and never two replicas applying one host at
// once; a replica cut off from NATS stops applying and the others take its hosts over.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dump, load } from 'js-yaml';
import { GitHubDouble } from '../github/double.js';
import { Scenario } from './helpers.js';
import { ROOT } from '../helpers/fixtures.js';
import { startNatsServer, startRelay, type NatsServer, type Relay } from '../helpers/nats-server.js';
import { ownerOf, shardKey } from '../../controller/ha/shard.js';

const fleet = inject('fleet');
const hosts = fleet.hosts.slice(2, 6);
const scenarios = hosts.map((h) => new Scenario(fleet, h));
const root = mkdtempSync(join(tmpdir(), 'nf-ha-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const gh = new GitHubDouble();
const TTL_SEC = 6;
const POLL_SEC = 1;
const API_TOKEN = 'ha-test-api-token-0123456789';

/** Three replica names whose shares of the four hosts are all non-empty (rendezvous hashing is fixed). */
function replicaNames(): string[] {
  for (let i = 0; ; i++) {
    const ids = ['a', 'b', 'c'].map((x) => `r${x}${i}`);
    const owners = hosts.map((h) => ownerOf(shardKey(h.name), ids));
    if (ids.every((id) => owners.includes(id))) return ids;
  }
}
const ids = replicaNames();

interface LogLine {
  time: number;
  msg: string;
  [k: string]: unknown;
}
interface Replica {
  id: string;
  child: ChildProcess;
  lines: LogLine[];
  url?: string;
}
const replicas: Replica[] = [];
let server: NatsServer;
let relay: Relay;

function startReplica(id: string, natsUrl: string): Replica {
  const child = spawn(
    'node',
    [
      join(ROOT, 'bin/natsfleet.js'),
      'controller',
      '--repo',
      origin,
      '--state-dir',
      join(root, `state-${id}`),
      '--ssh-key',
      fleet.privateKeyPath,
      '--poll-interval',
      String(POLL_SEC),
      '--drift-interval',
      '86400',
      '--concurrency',
      '4',
      '--listen',
      '127.0.0.1:0',
      '--github-repository',
      gh.repository,
      '--github-api-url',
      gh.url,
      '--state-nats',
      natsUrl,
      '--lease-ttl',
      String(TTL_SEC),
      '--replica-id',
      id,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        GITHUB_TOKEN: gh.token,
        NATSFLEET_API_TOKEN: API_TOKEN,
        NATSFLEET_SECRETS_DIR: fleet.secretsDir,
      },
    },
  );
  const r: Replica = { id, child, lines: [] };
  let buf = '';
  const onData = (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        const j = JSON.parse(line) as LogLine;
        r.lines.push(j);
        if (j.msg === 'controller started' && typeof j.listen === 'string') r.url = j.listen;
      } catch {
        r.lines.push({ time: Date.now(), msg: `(text) ${line}` });
      }
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  replicas.push(r);
  return r;
}

async function until<T>(what: string, get: () => T | undefined | false | Promise<T | undefined | false>, ms: number) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v) return v;
    // A replica that exited on its own (not killed by the test) ends the wait at once.
    const died = replicas.find((r) => r.child.exitCode !== null);
    if (Date.now() > end || died) {
      const tail = replicas.map(
        (r) =>
          `--- ${r.id}\n${r.lines
            .slice(-25)
            .map((l) => JSON.stringify(l))
            .join('\n')}`,
      );
      const why = died ? `replica ${died.id} exited (${died.child.exitCode})` : `timed out after ${ms / 1000} s`;
      throw new Error(`${why} waiting for ${what}\n${tail.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const leaderNow = () =>
  replicas.find((r) => {
    const last = r.lines.filter((l) => /^replication: (not )?leading$/.test(l.msg)).at(-1);
    return r.child.exitCode === null && r.child.signalCode === null && last?.msg === 'replication: leading';
  });

function editAll(edit: (d: Record<string, unknown>) => void) {
  for (const h of hosts) {
    const path = join(work, 'hosts', `${h.name}.yaml`);
    const doc = load(readFileSync(path, 'utf8')) as Record<string, unknown>;
    edit(doc);
    writeFileSync(path, dump(doc));
  }
}

/** As a pull request merged into main would: its branch commit, then main fast-forwarded to it. */
function mergePull(number: number, message: string): string {
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  const sha = git('rev-parse', 'HEAD');
  git('push', '-q', 'origin', `HEAD:refs/heads/pr-${number}`, `HEAD:refs/pull/${number}/head`);
  gh.openPull(number, sha, `pr-${number}`);
  git('push', '-q', 'origin', 'HEAD:main');
  gh.mergePull(number, sha);
  return sha;
}

/** The deploy comments of `sha` on pull request `pr`, once the first is there and a few polls later. */
async function deployComments(pr: number, sha: string) {
  const of = () => gh.commentsOn(pr).filter((c) => c.body.includes(`natsfleet:deploy:${sha}`));
  await until('the deploy comment', () => of().length > 0, 30_000);
  await new Promise((r) => setTimeout(r, 3 * POLL_SEC * 1000));
  return of();
}

const maxPayload = async (s: Scenario) => JSON.parse(await s.sh('curl -s 127.0.0.1:8222/varz')).max_payload as number;

/** Every `host apply` log line of a replica for `host`: [start, end] in ms, and its outcome. */
const appliesOf = (r: Replica, host: string) =>
  r.lines
    .filter((l) => l.msg === 'host apply' && l.host === host)
    .map((l) => ({
      start: l.time - Number(l.durationMs ?? 0),
      end: l.time,
      outcome: String(l.outcome),
      replica: r.id,
    }));

beforeAll(async () => {
  server = await startNatsServer();
  relay = await startRelay(server.port);
  await gh.start();
  for (const s of scenarios) await s.wipe();
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  git('checkout', '-q', '-b', 'main');
  writeFileSync(join(work, 'README.md'), 'hosts\n');
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', 'empty');
  git('push', '-q', 'origin', 'main');
  // The first replica leads; the others join it. The third reaches NATS through a relay the test cuts.
  const first = startReplica(ids[0], server.url);
  await until('the first replica to lead', () => first.lines.some((l) => l.msg === 'replication: leading'), 60_000);
  startReplica(ids[1], server.url);
  startReplica(ids[2], relay.url);
  await until('three replicas started', () => replicas.every((r) => r.url), 60_000);
  // Their heartbeats seen by one another before there are hosts to share.
  await new Promise((r) => setTimeout(r, (TTL_SEC * 1000) / 2));
});

afterAll(async () => {
  // Each replica's log, for a failure's post-mortem.
  for (const r of replicas)
    writeFileSync(join(root, `replica-${r.id}.log`), r.lines.map((l) => JSON.stringify(l)).join('\n'));
  console.log(`replica logs: ${root}`);
  for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGTERM');
  await Promise.all(
    replicas.map(
      (r) =>
        new Promise<void>((resolve) => {
          if (r.child.exitCode !== null || r.child.signalCode !== null) return resolve();
          const t = setTimeout(() => {
            r.child.kill('SIGKILL');
            resolve();
          }, 10_000);
          r.child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
        }),
    ),
  );
  await relay?.close();
  await server?.stop();
  await gh.stop();
  for (const s of scenarios) await s.close();
});

describe('controller replicas on NATS JetStream KV', () => {
  it('share the hosts: each deploys its own, the leader reports the whole deploy once', async () => {
    mkdirSync(join(work, 'hosts'));
    for (const h of hosts) cpSync(join(fleet.hostsDir, `${h.name}.yaml`), join(work, 'hosts', `${h.name}.yaml`));
    editAll((d) => ((d.spec as { nats: Record<string, unknown> }).nats.maxPayload = '1MB'));
    const sha = mergePull(1, 'four NATS hosts');
    await until('the deploy verdict', () => gh.latestStatus(sha, 'natsfleet')?.state === 'success', 120_000);
    expect(gh.latestStatus(sha, 'natsfleet')?.description).toBe('4 host(s) in sync');
    for (const s of scenarios) expect(await maxPayload(s)).toBe(1024 * 1024);
    const comments = await deployComments(1, sha);
    expect(comments).toHaveLength(1);
    for (const h of hosts) expect(comments[0].body).toMatch(new RegExp(`\\| ${h.name} \\| :white_check_mark: applied`));
    // Who applied what: every replica applied its share, and the hosts' own history says so.
    const by = await Promise.all(
      scenarios.map(async (s) => JSON.parse((await s.sh('tail -n 1 /var/lib/natsfleet/history.jsonl')) || '{}').by),
    );
    expect(new Set(by)).toEqual(new Set(ids.map((id) => `controller/${id}`)));
    // `natsfleet status --controller` reads which replica holds which host from the API.
    const view = (await (
      await fetch(`${replicas[1].url}/api/v1/hosts`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
    ).json()) as { hosts: { host: string; replica: string }[] };
    expect(new Set(view.hosts.map((h) => h.replica))).toEqual(new Set(ids));
    for (const [i, h] of hosts.entries())
      expect(view.hosts.find((x) => x.host === h.name)?.replica).toBe(by[i].slice(11));
  });

  it('kill -9 of the leader mid-deploy: another replica finishes it within the TTL and a poll', async () => {
    const leader = leaderNow()!;
    // The hosts it holds, as the API says.
    const view = (await (
      await fetch(`${leader.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
    ).json()) as { hosts: { host: string; replica: string }[] };
    const mine = view.hosts.filter((h) => h.replica === leader.id).map((h) => h.host);
    expect(mine.length).toBeGreaterThan(0);
    editAll((d) => ((d.spec as { nats: Record<string, unknown> }).nats.maxPayload = '2MB'));
    const from = leader.lines.length;
    const sha = mergePull(2, 'bigger payloads');
    // The leader has started applying its share: it is killed there.
    await until(
      'the leader deploying',
      () => leader.lines.slice(from).some((l) => l.msg === 'deploying' && (l.hosts as string[]).length > 0),
      60_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    leader.child.kill('SIGKILL');
    const killedAt = Date.now();
    await until('the deploy verdict', () => gh.latestStatus(sha, 'natsfleet')?.state === 'success', 120_000);
    const took = (Date.now() - killedAt) / 1000;
    console.log(`[ha] the deploy the killed leader had started was finished ${took.toFixed(1)} s after the kill`);
    // The lease TTL, a poll, then applying the dead leader's hosts (a reload each) and reporting.
    expect(took).toBeLessThan(TTL_SEC + POLL_SEC + 30);
    for (const s of scenarios) expect(await maxPayload(s)).toBe(2 * 1024 * 1024);
    const newLeader = leaderNow()!;
    expect(newLeader.id).not.toBe(leader.id);
    // Its metrics say so.
    const metrics = await (await fetch(`${newLeader.url}/metrics`)).text();
    expect(metrics).toContain(`natsfleet_replica_leading{replica="${newLeader.id}"} 1`);
    expect(metrics).toMatch(new RegExp(`natsfleet_replica_hosts_held\\{replica="${newLeader.id}"\\} [0-4]`));
    // One deploy comment naming every host, no flood of statuses, no issue.
    const comments = await deployComments(2, sha);
    expect(comments).toHaveLength(1);
    for (const h of hosts) expect(comments[0].body).toContain(`| ${h.name} |`);
    for (const h of hosts) {
      const n = gh.statuses.filter((s) => s.sha === sha && s.context === `natsfleet/${h.name}`).length;
      expect(n, h.name).toBeLessThanOrEqual(4);
    }
    expect(gh.statuses.filter((s) => s.sha === sha && s.context === 'natsfleet').length).toBeLessThanOrEqual(2);
    expect(gh.issues).toEqual([]);
    // Never two replicas applying one host at once: the killed leader's hosts were applied by another
    // replica only after its lease expired: the TTL after its last renewal, which was at most a third of
    // the TTL before the kill.
    for (const h of mine) {
      const others = replicas.filter((r) => r !== leader).flatMap((r) => appliesOf(r, h));
      for (const a of others.filter((x) => x.end > killedAt))
        expect(a.start, `${h} applied by ${a.replica}`).toBeGreaterThanOrEqual(
          killedAt + (TTL_SEC * 1000 * 2) / 3 - 100,
        );
    }
    // The hosts' locks are free again, and the lock of an apply names its replica (lock and lease agree).
    for (const s of scenarios) expect(await s.sh('ls /var/lib/natsfleet | grep -c "^lock" || true')).toBe('0');
  });

  it('a replica cut off from NATS stops applying; the others take its hosts over', async () => {
    const cut = replicas.find((r) => r.id === ids[2])!;
    const others = replicas.filter((r) => r !== cut && r.child.exitCode === null && r.child.signalCode === null);
    const its = hosts.filter((h) => cut.lines.length && appliesOf(cut, h.name).length > 0).map((h) => h.name);
    expect(its.length).toBeGreaterThan(0);
    relay.cut();
    const cutAt = Date.now();
    // It knows it is cut off within the renew deadline (two thirds of the TTL): it holds nothing then.
    await until(
      'the cut-off replica to give up',
      () =>
        cut.lines.some(
          (l) => l.msg === 'replication: shards held' && l.time > cutAt && (l.shards as string[]).length === 0,
        ),
      TTL_SEC * 1000 * 2,
    );
    editAll((d) => ((d.spec as { nats: Record<string, unknown> }).nats.maxPayload = '3MB'));
    const sha = mergePull(3, 'even bigger payloads');
    await until('the deploy verdict', () => gh.latestStatus(sha, 'natsfleet')?.state === 'success', 120_000);
    for (const s of scenarios) expect(await maxPayload(s)).toBe(3 * 1024 * 1024);
    // Nothing was applied by the cut-off replica after it lost NATS; its hosts were applied by the others.
    expect(cut.lines.filter((l) => l.msg === 'host apply' && l.time > cutAt)).toEqual([]);
    for (const h of its) {
      const s = scenarios[hosts.findIndex((x) => x.name === h)];
      const last = JSON.parse(await s.sh('tail -n 1 /var/lib/natsfleet/history.jsonl')) as { by: string };
      expect(others.map((r) => `controller/${r.id}`)).toContain(last.by);
    }
    expect(await deployComments(3, sha)).toHaveLength(1);
  });
});
