// The rollout of a cluster as a value: cluster health from members' facts (routes by server id or name,
// meta leader, stream currency as the leader sees it), the quorum gates, the order and batches. Tables,
// no network: facts are the converged host's captured facts with the cluster answers set per member.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cannotLose,
  clusterHealth,
  clusterProblems,
  leaderStepDowns,
  notCaughtUp,
  type MemberFacts,
} from '../../controller/plan/cluster.js';
import { batchSize, memberAction, planRollout } from '../../controller/plan/rollout.js';
import type { HostFacts, ReplicaFact } from '../../controller/observe/facts.js';
import type { HostPlan, Step } from '../../controller/plan/types.js';
import { desiredFrom, factsFrom } from '../helpers/observed.js';
import { ROOT } from '../helpers/fixtures.js';

const BASE = factsFrom(desiredFrom());
const NAMES = ['a', 'b', 'c'];

interface Opts {
  down?: boolean;
  leader?: string;
  clusterSize?: number;
  /** Peers this member has routes to (default: every other member). */
  routesTo?: string[];
  byName?: boolean;
  metaReplicas?: ReplicaFact[];
  stream?: { leader: string; replicas: ReplicaFact[] };
}

function member(host: string, o: Opts = {}, all = NAMES): MemberFacts {
  const f: HostFacts = structuredClone(BASE);
  f.container = { ...f.container, running: !o.down };
  f.healthz = o.down ? undefined : { status: 200, body: '{"status":"ok"}' };
  f.varz = { ...f.varz, server_id: `ID-${host}`, server_name: host };
  f.routez = {
    routes: (o.routesTo ?? all.filter((x) => x !== host)).map((p) =>
      o.byName ? { remote_id: `OTHER-${p}`, remote_name: p } : { remote_id: `ID-${p}` },
    ),
  };
  f.jsz = {
    ...f.jsz,
    meta_cluster: {
      name: 'core',
      leader: o.leader ?? 'c',
      cluster_size: o.clusterSize ?? all.length,
      ...(o.metaReplicas ? { replicas: o.metaReplicas } : {}),
    },
    account_details: o.stream
      ? [{ name: '$G', stream_detail: [{ name: 'ORDERS', cluster: o.stream }] }]
      : [{ name: '$G', stream_detail: [] }],
  };
  return { host, serverName: host, facts: o.down ? { ...f, container: { exists: true, running: false } } : f };
}

const healthy = (over: Record<string, Opts> = {}, all = NAMES) => all.map((h) => member(h, over[h] ?? {}, all));

function plan(host: string, steps: Step[], extra: Partial<HostPlan> = {}): HostPlan {
  return {
    host,
    revision: 'r1',
    state: 'present',
    blocked: [],
    changes: [],
    steps: steps.map((step) => ({ step, reason: 'test' })),
    drift: [],
    sync: steps.length ? 'OutOfSync' : 'Synced',
    health: 'Healthy',
    ...extra,
  };
}

const SETTINGS = { maxUnavailable: 1, settle: '10s', timeout: '5m' };

describe('cluster health', () => {
  it('is healthy when every member is up, routed to every peer, and agrees on a meta leader', () => {
    const h = clusterHealth(healthy(), true);
    expect(h).toMatchObject({ size: 3, up: NAMES, down: [], metaLeader: 'c', behind: [] });
    expect(Object.values(h.members).flat()).toEqual([]);
  });

  const CASES: [string, MemberFacts[], RegExp][] = [
    ['a missing route (2.9: routes name only server ids)', healthy({ a: { routesTo: ['b'] } }), /a no route to c/],
    ['routes named by server name (2.10+) count', healthy({ a: { byName: true } }), /^$/],

    ['members that disagree on the meta leader', healthy({ a: { leader: 'b' } }), /sees meta leader b/],
    ['no meta leader', healthy({ a: { leader: '' }, b: { leader: '' }, c: { leader: '' } }), /sees no JetStream meta/],
    [
      'a running member not yet in the meta group',
      healthy({ a: { clusterSize: 2 } }),
      /a its JetStream meta group has 2 peers, 3 members are running/,
    ],
    [
      'a meta peer behind, as the meta leader sees it',
      healthy({
        c: {
          metaReplicas: [
            { name: 'a', current: false },
            { name: 'b', current: true },
          ],
        },
      }),
      /c meta group peers not current: a/,
    ],
  ];
  it.each(CASES)('%s', (_n, members, problem) => {
    const h = clusterHealth(members, true);
    const all = Object.entries(h.members).flatMap(([host, ps]) => ps.map((p) => `${host} ${p}`));
    expect(all.join('\n')).toMatch(problem);
  });

  it('reports routes to a server that is no member (one just removed), without holding any gate on them', () => {
    const h = clusterHealth(healthy({ a: { routesTo: ['b', 'c', 'zz'] } }), true);
    expect(h.foreignRoutes).toEqual({ a: ['ID-zz'] });
    expect(clusterProblems(h)).toEqual(['a has routes to servers that are not members: ID-zz']);
    expect(notCaughtUp(h, 'a')).toEqual([]);
    expect(cannotLose(h, ['a'])).toEqual([]);
  });

  it("judges a stream by its leader's view: a follower's stale view of its peers does not count", () => {
    const stream = (replicas: ReplicaFact[]) => ({ leader: 'b', replicas });
    const members = healthy({
      a: { stream: stream([{ name: 'c', current: false, lag: 6 }]) }, // a follower's stale view
      b: {
        stream: stream([
          { name: 'a', current: true },
          { name: 'c', current: true },
        ]),
      },
    });
    expect(clusterHealth(members, true).behind).toEqual([]);
    const lagging = healthy({
      b: {
        stream: stream([
          { name: 'a', current: true },
          { name: 'c', current: false, lag: 40 },
        ]),
      },
    });
    expect(clusterHealth(lagging, true).behind).toEqual(['stream $G/ORDERS: replica c is not current (lag 40)']);
  });

  it('a member that is itself the one behind may go down (its restart is the remedy); another member may not', () => {
    const members = healthy({
      b: {
        stream: {
          leader: 'b',
          replicas: [
            { name: 'a', current: false },
            { name: 'c', current: true },
          ],
        },
      },
      c: {
        metaReplicas: [
          { name: 'a', current: false },
          { name: 'b', current: true },
        ],
      },
    });
    const h = clusterHealth(members, true);
    // What the stuck member's own restart cannot make worse: the current replicas and quorum stay.
    expect(cannotLose(h, ['a'])).toEqual([]);
    expect(cannotLose(h, ['b'])).toEqual([
      'c meta group peers not current: a',
      'behind: stream $G/ORDERS: replica a is not current',
    ]);
    // After its restart, the gate still waits for it to catch up.
    expect(notCaughtUp(h, 'a')).toEqual(['behind: stream $G/ORDERS: replica a is not current']);
  });

  it('reports a stream whose leader is not observed', () => {
    const members = healthy({ a: { stream: { leader: 'zz', replicas: [] } } });
    expect(clusterHealth(members, true).behind).toEqual(['stream $G/ORDERS: its leader zz is not observed']);
  });

  it('leaves JetStream out of a cluster without it', () => {
    expect(clusterHealth(healthy({ a: { leader: '' } }), false).members.a).toEqual([]);
  });
});

describe('former members still in the JetStream meta group', () => {
  const withFormer = (offline: boolean) =>
    healthy({
      c: {
        clusterSize: 4,
        metaReplicas: [
          { name: 'a', current: true },
          { name: 'b', current: true },
          { name: 'd', current: !offline, ...(offline ? { offline: true } : {}) },
        ],
      },
    });

  it('are strangers as the meta leader sees them, and count against quorum', () => {
    const h = clusterHealth(withFormer(true), true);
    expect(h.strangers).toEqual([{ name: 'd', offline: true }]);
    expect(h.metaSize).toBe(4);
    // 4 peers: quorum 3; with d gone, losing one more member leaves 2.
    expect(cannotLose(h, ['a']).join()).toMatch(/would leave 2 of 4 JetStream meta peers running \(quorum 3/);
  });

  it('are not lagging members: a member is caught up while a former one is offline', () => {
    const h = clusterHealth(withFormer(true), true);
    expect(notCaughtUp(h, 'a')).toEqual([]);
    expect(h.members.c).toEqual([]);
  });

  it('are removed after the rollout when natsfleet has a system account user, else named with what to do', () => {
    const plans = NAMES.map((h) => plan(h, ['reload']));
    const r = planRollout('core', { ...SETTINGS, systemAccount: true }, plans, withFormer(true), true);
    expect(r.removePeers).toEqual(['d']);
    expect(r.gates.join('\n')).toMatch(
      /then d \(no longer a member\) is removed from the JetStream meta group once offline/,
    );
    const without = planRollout('core', SETTINGS, plans, withFormer(true), true);
    expect(without.gates.join('\n')).toMatch(/d is still a peer of the JetStream meta group .* set spec.systemAccount/);
  });
});

describe('the quorum gates', () => {
  it('lets a healthy cluster of 3 lose one member, never two', () => {
    const h = clusterHealth(healthy(), true);
    expect(cannotLose(h, ['a'])).toEqual([]);
    expect(cannotLose(h, ['a', 'b']).join()).toMatch(
      /quorum: taking down a, b would leave 1 of 3 members running \(quorum 2/,
    );
  });

  it('refuses to take another member down while one is down, naming quorum and the member', () => {
    const h = clusterHealth(healthy({ b: { down: true } }), true);
    expect(cannotLose(h, ['a']).join()).toMatch(/quorum: taking down a would leave 1 of 3 .*b: not running/);
  });

  it('refuses while a stream is behind', () => {
    const h = clusterHealth(
      healthy({ b: { stream: { leader: 'b', replicas: [{ name: 'a', current: false }] } } }),
      true,
    );
    expect(cannotLose(h, ['c']).join()).toMatch(/behind: stream \$G\/ORDERS: replica a is not current/);
  });

  it('waits for a restarted member: down, then not routed, then caught up', () => {
    expect(notCaughtUp(clusterHealth(healthy({ a: { down: true } }), true), 'a').join()).toMatch(/a: not running/);
    expect(notCaughtUp(clusterHealth(healthy({ a: { routesTo: [] } }), true), 'a').join()).toMatch(/no route to b, c/);
    expect(notCaughtUp(clusterHealth(healthy(), true), 'a')).toEqual([]);
  });
});

describe('the rollout plan', () => {
  const restartAll = NAMES.map((h) => plan(h, ['test-config', 'restart']));

  it('restarts followers first, one at a time, and the meta leader last', () => {
    const r = planRollout('core', SETTINGS, restartAll, healthy(), true);
    expect(r.batches).toEqual([['a'], ['b'], ['c']]);
    expect(r.members.map((m) => [m.host, m.action, m.metaLeader])).toEqual([
      ['a', 'restart', false],
      ['b', 'restart', false],
      ['c', 'restart', true],
    ]);
    expect(r.blocked).toEqual({});
    expect(r.gates.join('\n')).toMatch(/quorum kept[\s\S]*10s settle \(timeout 5m/);
  });

  it('turning route TLS on or off in a running cluster is refused for every member (no mixed routes)', () => {
    const on = planRollout('core', { ...SETTINGS, routeTls: true }, restartAll, healthy(), true);
    expect(on.batches).toEqual([]);
    expect(Object.keys(on.blocked)).toEqual(NAMES);
    expect(on.blocked.a.reason).toBe('blocked');
    expect(on.blocked.a.why[0]).toMatch(/^cluster core: turning route TLS on in a running cluster is not rolled out/);
    // Already on: rolled out as usual.
    const running = healthy().map((m) => {
      m.facts!.varz = { ...m.facts!.varz, cluster: { tls_required: true } };
      return m;
    });
    const same = planRollout('core', { ...SETTINGS, routeTls: true }, restartAll, running, true);
    expect(same.blocked).toEqual({});
    expect(same.batches).toEqual([['a'], ['b'], ['c']]);
    expect(planRollout('core', SETTINGS, restartAll, running, true).blocked.a.why[0]).toMatch(/route TLS off/);
  });

  it('puts the meta leader last whatever its place in the manifest', () => {
    const r = planRollout(
      'core',
      SETTINGS,
      restartAll,
      healthy({ a: { leader: 'a' }, b: { leader: 'a' }, c: { leader: 'a' } }),
      true,
    );
    expect(r.batches).toEqual([['b'], ['c'], ['a']]);
  });

  it('with one member down: starts it first and blocks every restart of another, naming quorum', () => {
    const plans = [plan('a', ['restart']), plan('b', ['start']), plan('c', ['restart'])];
    const r = planRollout('core', SETTINGS, plans, healthy({ b: { down: true } }), true);
    expect(r.batches).toEqual([['b']]);
    expect(Object.keys(r.blocked)).toEqual(['a', 'c']);
    expect(r.blocked.a).toMatchObject({ reason: 'quorum' });
    expect(r.blocked.a.why.join()).toMatch(/cluster core: a cannot be taken down now: quorum/);
  });

  it('starts every member together when none runs (a cold start needs quorum)', () => {
    const plans = NAMES.map((h) => plan(h, ['enable', 'start']));
    const r = planRollout(
      'core',
      SETTINGS,
      plans,
      healthy({ a: { down: true }, b: { down: true }, c: { down: true } }),
      true,
    );
    expect(r.coldStart).toBe(true);
    expect(r.batches).toEqual([['a', 'b', 'c']]);
  });

  it('reloads member by member before any restart, and leaves unchanged members out', () => {
    const plans = [plan('a', ['reload']), plan('b', []), plan('c', ['reload'])];
    const r = planRollout('core', SETTINGS, plans, healthy(), true);
    expect(r.batches).toEqual([['a'], ['c']]);
  });

  it('never takes down more than the cluster can lose, whatever maxUnavailable says', () => {
    expect(batchSize(3, { ...SETTINGS, maxUnavailable: 2 })).toBe(1);
    expect(batchSize(5, { ...SETTINGS, maxUnavailable: 2 })).toBe(2);
    expect(batchSize(5, { ...SETTINGS, maxUnavailable: 9 })).toBe(2);
    expect(batchSize(2, SETTINGS)).toBe(1);
    const five = ['a', 'b', 'c', 'd', 'e'];
    const r = planRollout(
      'core',
      { ...SETTINGS, maxUnavailable: 2 },
      five.map((h) => plan(h, ['restart'])),
      healthy({}, five),
      true,
    );
    expect(r.batches).toEqual([['a', 'b'], ['d', 'e'], ['c']]);
  });

  it('reloads every member at once when route credentials change (alone, a member would lose its routes)', () => {
    const keys = ['cluster.authorization.password', 'cluster.routes'];
    const plans = NAMES.map((h) => plan(h, ['test-config', 'reload'], { configKeys: keys }));
    const r = planRollout('core', SETTINGS, plans, healthy(), true);
    expect(r.batches).toEqual([['a', 'b', 'c']]);
    expect(r.gates.join('\n')).toMatch(/route credentials change: the members reload together/);
  });

  it('refuses to rename a running JetStream cluster member by member', () => {
    const plans = NAMES.map((h) => plan(h, ['test-config', 'reload'], { configKeys: ['cluster.name'] }));
    const r = planRollout('core', SETTINGS, plans, healthy(), true);
    expect(r.batches).toEqual([]);
    expect(r.blocked.a).toMatchObject({ reason: 'blocked' });
    expect(r.blocked.a.why.join()).toMatch(/renaming a running JetStream cluster is not rolled out/);
  });

  it.each([
    [plan('x', ['restart', 'reload']), 'restart'],
    [plan('x', ['stop']), 'stop'],
    [plan('x', ['daemon-reload', 'start']), 'start'],
    [plan('x', ['reload']), 'reload'],
    [
      plan('x', [], { changes: [{ kind: 'dir', path: '/x', action: 'update', reason: 'mode', drift: false }] }),
      'files',
    ],
    [plan('x', []), 'none'],
    [plan('x', ['restart'], { blocked: ['port 4222 is held'] }), 'blocked'],
    [plan('x', [], { sync: 'Unknown' }), 'unknown'],
  ] as const)('a member plan is read as %#', (p, action) => {
    expect(memberAction(p)).toBe(action);
  });
});

describe('cluster health from real answers of each NATS version (test/fixtures/nats)', () => {
  const read = (v: string, f: string) =>
    JSON.parse(readFileSync(join(ROOT, 'test/fixtures/nats', v, `${f}.json`), 'utf8')) as HostFacts['jsz'];
  const real = (host: string, jsz: HostFacts['jsz'], down = false): MemberFacts => {
    const m = member(host, { down }, ['n1', 'n2', 'n3']);
    if (m.facts && !down) m.facts.jsz = jsz;
    return m;
  };
  // Who answered each recording: the leader of stream S, a follower of S, and the third server.
  const VERSIONS = [
    { v: '2.9.10', leader: 'n2', follower: 'n1', third: 'jsz-follower' },
    { v: '2.10.27', leader: 'n1', follower: 'n2', third: 'jsz-follower' },
    { v: '2.15.1', leader: 'n2', follower: 'n1', third: 'jsz' },
  ];

  it.each(VERSIONS)(
    "$v: all up; a follower's stale view of the stream is ignored",
    ({ v, leader, follower, third }) => {
      const h = clusterHealth(
        [
          real(leader, read(v, 'jsz-streams')),
          real(follower, read(v, 'jsz-streams-follower')),
          real('n3', read(v, third)),
        ],
        true,
      );
      expect(h.metaLeader).toBeDefined();
      expect(h.behind).toEqual([]);
      expect(Object.values(h.members).flat()).toEqual([]);
    },
  );

  it.each(VERSIONS)(
    '$v: a member just restarted is not caught up (it claims every stream)',
    ({ v, leader, follower }) => {
      const h = clusterHealth(
        [
          real(leader, read(v, 'jsz-streams')),
          real(follower, read(v, 'jsz-streams-follower')),
          real('n3', read(v, 'jsz-streams-restarting')),
        ],
        true,
      );
      const why = notCaughtUp(h, 'n3').join('\n');
      expect(why).toMatch(/n3 sees no JetStream meta leader/);
      expect(why).toMatch(
        new RegExp(`stream \\$G/S: members disagree on its leader \\((${leader}, n3|n3, ${leader})\\)`),
      );
    },
  );

  it.each(VERSIONS)('$v: the leaderships a member hands over before it goes down', ({ v, leader, follower }) => {
    const facts = (f: string) => ({ ...structuredClone(BASE), jsz: read(v, f) });
    expect(leaderStepDowns(facts('jsz-streams'), leader)).toEqual(['$JS.API.STREAM.LEADER.STEPDOWN.S']);
    expect(leaderStepDowns(facts('jsz-streams'), follower)).toEqual([]);
    // A member just restarted claims every stream, with no replicas: nothing to hand over.
    expect(leaderStepDowns(facts('jsz-streams-restarting'), 'n3')).toEqual([]);
  });

  it.each(VERSIONS)('$v: a member down: its replicas are behind; no other may go down', ({ v, leader, follower }) => {
    const h = clusterHealth(
      [
        real(leader, read(v, 'jsz-streams-member-down')),
        real(follower, read(v, 'jsz-streams-follower')),
        real('n3', undefined, true),
      ],
      true,
    );
    expect(h.behind.join('\n')).toMatch(/stream \$G\/S: replica n3 is not current/);
    expect(cannotLose(h, [follower]).join('\n')).toMatch(
      /quorum: taking down n[12] would leave 1 of 3 members running/,
    );
  });
});
