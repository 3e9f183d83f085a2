// `npm run bench` (scenario `takeover`): how long until another controller replica leads, and holds the
// hosts of a replica killed with SIGKILL. Three replica processes (bench/replica.ts: the coordination of
// `natsfleet controller --state-nats`, without Git or SSH) share 300 simulated hosts through a real
// nats-server's JetStream KV (Debian's, started here on 127.0.0.1); the leader is killed; the time to a new
// leader and to every one of its hosts held by a survivor is measured, per lease TTL, over several rounds.
// The end-to-end version with real hosts and a deploy under way is test/e2e/ha.test.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { startNatsServer } from '../test/helpers/nats-server.js';

const ROOT = resolve(import.meta.dirname, '..');
const HOSTS = 300;
const ROUNDS = Number(process.env.BENCH_TAKEOVER_ROUNDS ?? 3);
const TTLS = [15, 4];

interface Event {
  id: string;
  at: number;
  leading: boolean;
  held: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

function replica(url: string, bucket: string, id: string, ttlMs: number, events: Event[]): ChildProcess {
  const child = spawn('node', ['--import', 'tsx', 'bench/replica.ts', url, bucket, id, String(ttlMs), String(HOSTS)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buf = '';
  child.stdout!.on('data', (b: Buffer) => {
    buf += b.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buf.slice(0, i)) as Event);
      buf = buf.slice(i + 1);
    }
  });
  return child;
}

/** The last event of each replica (what it leads and holds now). */
const current = (events: Event[]) => {
  const m = new Map<string, Event>();
  for (const e of events) m.set(e.id, e);
  return m;
};

async function until(what: string, ok: () => boolean, ms: number) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`takeover bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function round(url: string, ttl: number, n: number): Promise<{ leader: number; hosts: number }> {
  const events: Event[] = [];
  const bucket = `bench-${ttl}-${n}`;
  const ids = ['r1', 'r2', 'r3'];
  const children = new Map<string, ChildProcess>();
  try {
    children.set('r1', replica(url, bucket, 'r1', ttl * 1000, events));
    await until('r1 leading', () => current(events).get('r1')?.leading === true, 30_000);
    for (const id of ids.slice(1)) children.set(id, replica(url, bucket, id, ttl * 1000, events));
    await until(
      'every host held once, by all three',
      () => {
        const c = current(events);
        return (
          ids.every((id) => (c.get(id)?.held ?? 0) > 0) &&
          ids.reduce((a, id) => a + (c.get(id)?.held ?? 0), 0) === HOSTS
        );
      },
      ttl * 4000 + 30_000,
    );
    const killedAt = Date.now();
    children.get('r1')!.kill('SIGKILL');
    const rest = ids.slice(1);
    let leaderAt = 0;
    await until(
      'a new leader and every host held by the survivors',
      () => {
        const c = current(events);
        if (!leaderAt && rest.some((id) => c.get(id)?.leading)) leaderAt = Date.now();
        return leaderAt > 0 && rest.reduce((a, id) => a + (c.get(id)?.held ?? 0), 0) === HOSTS;
      },
      ttl * 4000 + 30_000,
    );
    return { leader: (leaderAt - killedAt) / 1000, hosts: (Date.now() - killedAt) / 1000 };
  } finally {
    for (const c of children.values()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

export async function takeoverBench(_work: string, log: (s: string) => void): Promise<{ md: string; summary: string }> {
  const server = await startNatsServer();
  const rows: string[] = [];
  const summary: string[] = [];
  try {
    for (const ttl of TTLS) {
      const rs: { leader: number; hosts: number }[] = [];
      for (let n = 0; n < ROUNDS; n++) {
        const r = await round(server.url, ttl, n);
        log(`takeover, TTL ${ttl} s, round ${n + 1}: leader ${r.leader.toFixed(2)} s, hosts ${r.hosts.toFixed(2)} s`);
        rs.push(r);
      }
      const [l, h] = [median(rs.map((r) => r.leader)), median(rs.map((r) => r.hosts))];
      rows.push(`| ${ttl} s${ttl === 15 ? ' (default)' : ''} | ${l.toFixed(2)} s | ${h.toFixed(2)} s | ${ROUNDS} |`);
      summary.push(`takeover (TTL ${ttl} s): leader ${l.toFixed(2)} s, hosts ${h.toFixed(2)} s`);
    }
  } finally {
    await server.stop();
  }
  const md = `## Takeover after the leader is killed (3 replicas, ${HOSTS} simulated hosts)

Produced by \`npm run bench\` (this section alone: \`node --import tsx bench/run.ts takeover\`). Three replica
processes (bench/replica.ts: the coordination of \`natsfleet controller --state-nats\`, without Git or SSH) share
${HOSTS} hosts through a nats-server ${"(Debian's, JetStream, on 127.0.0.1)"}; once every host is held by exactly one
replica, the leader is killed with SIGKILL. Measured from the kill: until a survivor leads, and until every host
is held by a survivor. Medians.

| lease TTL | new leader | all its hosts held again | rounds |
| --- | ---: | ---: | ---: |
${rows.join('\n')}

A replica takes a silent one's leases over once its record has not changed for the TTL as seen by the taker
(no clock of another machine is trusted), checked every third of the TTL. The TTL runs from the dead
replica's last renewal (every third of the TTL), not from the kill: expect TTL - TTL/3 to TTL + TTL/3 after
it. A replica that cannot renew stops acting two thirds of the TTL after its last renewal, before anyone
may take over. With
real hosts and a deploy under way (test/e2e/ha.test.ts, TTL 6 s, poll 1 s), the deploy the leader had started is
finished
and reported by another replica within the TTL, a poll and the time to apply the dead leader's hosts.
`;
  return { md, summary: summary.join('\n') };
}
