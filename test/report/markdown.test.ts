// The Markdown posted on GitHub stays under GitHub's 65,536 characters, marker included, whatever
// the number of hosts and the size of their diffs and errors; a table too long is summarised. A
// cluster's rollout reads as a reviewer needs it: order, gates and blocks in the plan, where a halted
// rollout stopped and why in the deploy result.
import { describe, expect, it } from 'vitest';
import type { ApplyResult } from '../../controller/apply/result.js';
import type { Problem } from '../../controller/manifest/problems.js';
import type { FileChange, HostPlan, Step } from '../../controller/plan/types.js';
import { hostPlan } from '../helpers/plans.js';
import type { MemberAction, RolloutPlan } from '../../controller/plan/rollout.js';
import {
  COMMENT_BODY_LIMIT,
  DEPLOY_MARKER,
  DRIFT_MARKER,
  GITHUB_COMMENT_LIMIT,
  PLAN_MARKER,
  deployComment,
  driftIssueBody,
  planComment,
  planHeadline,
  rolloutOutcome,
} from '../../controller/report/markdown.js';

const SHA = 'a'.repeat(40);
/** What the tests require: room for the marker the caller appends. */
const MAX = GITHUB_COMMENT_LIMIT - 200;

type Kind = 'restart' | 'reload' | 'unchanged' | 'blocked' | 'unknown';

/** A diff of `lines` lines of 80 characters, with a code fence inside to try to break ours. */
const longDiff = (lines: number) =>
  [
    '--- a/etc/nats/nats-server.conf',
    '+++ b/etc/nats/nats-server.conf',
    '@@ -1,3 +1,3 @@',
    '+```',
    ...Array.from({ length: lines }, (_, i) => `${i % 2 ? '+' : '-'}  max_payload: ${String(i).padStart(70, '0')}`),
  ].join('\n');

const change = (path: string, diffLines: number): FileChange =>
  ({
    kind: 'file',
    path,
    action: 'update',
    reason: 'content differs',
    after: { mode: '0644', owner: 'root', group: 'root', sha256: 'f'.repeat(64) },
    diff: longDiff(diffLines),
    drift: false,
    contentChanged: true,
  }) as FileChange;

/** A HostPlan of one kind, with long diffs and a long error. */
function plan(host: string, kind: Kind, diffLines = 400): HostPlan {
  const steps = (s: Step[]) => s.map((step) => ({ step, reason: `because ${step} is needed` }));
  const base = hostPlan({ host, revision: SHA, sync: 'OutOfSync' });
  switch (kind) {
    case 'restart':
      return {
        ...base,
        changes: [change('/etc/nats/nats-server.conf', diffLines), change('/etc/systemd/system/nats.service', 20)],
        steps: steps(['test-config', 'daemon-reload', 'restart']),
        drift: ['/etc/nats/nats-server.conf was changed by hand'],
      };
    case 'reload':
      return {
        ...base,
        changes: [change('/etc/nats/nats-server.conf', diffLines)],
        steps: steps(['test-config', 'reload']),
      };
    case 'unchanged':
      return { ...base, sync: 'Synced' };
    case 'blocked':
      return {
        ...base,
        blocked: [`port 4222 is used by another process | ${'x'.repeat(3_000)}\nsecond line`],
        changes: [change('/etc/nats/nats-server.conf', diffLines)],
        steps: steps(['test-config', 'reload']),
      };
    case 'unknown':
      return {
        ...base,
        sync: 'Unknown',
        health: 'Missing',
        error: `ssh: connect ECONNREFUSED | ${'e'.repeat(10_000)}\n\`\`\`\nstill the error`,
      };
  }
}

/** `n` hosts: one in 20 unchanged, one in 50 blocked, one in 100 unreachable, one in 10 of the rest restarts. */
function fleet(n: number, diffLines = 400): { plans: HostPlan[]; count: Record<Kind, number> } {
  const count: Record<Kind, number> = { restart: 0, reload: 0, unchanged: 0, blocked: 0, unknown: 0 };
  const plans = Array.from({ length: n }, (_, i) => {
    const kind: Kind =
      i % 100 === 99
        ? 'unknown'
        : i % 50 === 49
          ? 'blocked'
          : i % 20 === 19
            ? 'unchanged'
            : i % 10 === 0
              ? 'restart'
              : 'reload';
    count[kind]++;
    return plan(`nats-${String(i).padStart(4, '0')}.a-rather-long-host-name-to-fill-the-table`, kind, diffLines);
  });
  return { plans, count };
}

/** Every ``` opens or closes a fence at the start of a line, and they pair up. */
function expectBalancedFences(body: string) {
  const fences = body.split('\n').filter((l) => l.startsWith('```'));
  expect(fences.length % 2).toBe(0);
  expect((body.match(/```/g) ?? []).length).toBe(fences.length);
  expect((body.match(/<details>/g) ?? []).length).toBe((body.match(/<\/details>/g) ?? []).length);
}

const tableRows = (body: string) =>
  body.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| host') && !l.startsWith('| ---'));

/** Every table row is whole: it starts and ends with a pipe and has the header's number of cells. */
function expectWholeRows(body: string, cells: number) {
  for (const row of tableRows(body)) {
    expect(row.endsWith(' |')).toBe(true);
    expect(row.split(/(?<!\\)\|/).length - 2).toBe(cells);
  }
}

describe('planComment', () => {
  it.each([1, 10, 300, 2_000])('%i hosts with long diffs and errors: under the limit, marker included', (n) => {
    const { plans, count } = fleet(n);
    const body = planComment({ sha: SHA, plans });
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    expect(`${body}\n\n${PLAN_MARKER}`.length).toBeLessThanOrEqual(MAX);
    expectBalancedFences(body);
    expectWholeRows(body, 4);
    expect(body).toContain(`### natsfleet plan for ${SHA.slice(0, 12)}`);
    const rows = tableRows(body);
    const changing = count.restart + count.reload;
    const breakdown = [count.restart && `${count.restart} restart`, count.reload && `${count.reload} reload`]
      .filter(Boolean)
      .join(', ');
    const summary = `${n} hosts: ${changing} change (${breakdown}), ${count.unchanged} unchanged, ${count.blocked} blocked, ${count.unknown} unreachable`;
    if (rows.length === n) {
      // It fits: the full table as before, no summary.
      expect(body).not.toContain(summary);
      expect(body).not.toContain('more hosts');
    } else {
      expect(body).toContain(`\n${summary}\n`);
      expect(body).toContain(`\n\n... and ${n - rows.length} more hosts (run \`natsfleet plan\` for all)`);
      // The summary comes before the table, and the rows needing attention come first.
      expect(body.indexOf(summary)).toBeLessThan(body.indexOf('| host |'));
      expect(rows.filter((r) => r.includes('unknown:')).length).toBe(count.unknown);
      expect(rows.filter((r) => r.includes('blocked')).length).toBe(count.blocked);
      expect(rows.length).toBeGreaterThan(100);
    }
  });

  it('10 hosts: the full table, then a collapsed section per host with work', () => {
    const { plans } = fleet(10, 5);
    const body = planComment({ sha: SHA, plans });
    expect(tableRows(body)).toHaveLength(10);
    expect(body.match(/<details>/g)).toHaveLength(10);
    expect(body).not.toContain('Truncated');
    expect(body).toContain('| nats-0000.a-rather-long-host-name-to-fill-the-table | update | restart |');
  });

  it('truncates a host whose diffs are too long, saying how to see all of it', () => {
    const body = planComment({ sha: SHA, plans: [plan('big', 'reload', 20_000)] });
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    expect(body).toContain('Run `natsfleet plan --host big` for all of it.');
    expectBalancedFences(body);
  });

  it('an error cell keeps to one line, escaped and shortened', () => {
    const body = planComment({ sha: SHA, plans: [plan('down', 'unknown')] });
    const row = tableRows(body)[0];
    expect(row).toContain('unknown: ssh: connect ECONNREFUSED \\| eee');
    expect(row.length).toBeLessThan(500);
    expectWholeRows(body, 4);
    expectBalancedFences(body);
  });

  it('2,000 invalid manifests: the problems that fit, then a count of the others', () => {
    const problems: Problem[] = Array.from({ length: 2_000 }, (_, i) => ({
      file: `hosts/h${i}.yaml`,
      line: 3,
      path: 'spec.nats.image',
      severity: 'error',
      message: `must be a Docker image reference ${'z'.repeat(100)}\n\`\`\`injected`,
    }));
    const body = planComment({ sha: SHA, plans: [], problems });
    expect(body.length).toBeLessThanOrEqual(COMMENT_BODY_LIMIT);
    expectBalancedFences(body);
    const shown = body.split('\n').filter((l) => l.startsWith('hosts/h')).length;
    expect(shown).toBeGreaterThan(100);
    expect(body).toContain(`... and ${2_000 - shown} more problems (run \`natsfleet validate\` for all)`);
  });

  it('keeps the offline note and the empty case', () => {
    expect(planComment({ sha: SHA, plans: [], offline: 'it comes from a fork' })).toBe(
      `### natsfleet plan for ${SHA.slice(0, 12)}\n\n> :lock: Planned offline, from the repository only: it comes from a fork\n\nNo host manifest changed in this pull request.`,
    );
  });
});

describe('deployComment', () => {
  const result = (host: string, i: number): ApplyResult => {
    const failed = i % 25 === 24;
    const unchanged = !failed && i % 5 === 4;
    return {
      host,
      outcome: failed ? 'failed' : unchanged ? 'unchanged' : 'applied',
      health: failed ? 'Degraded' : 'Healthy',
      steps: unchanged ? [] : i % 10 === 0 ? ['test-config', 'restart'] : ['test-config', 'reload'],
      changedFiles: unchanged ? [] : ['/etc/nats/nats-server.conf'],
      error: failed ? `nats-server -t failed | ${'x'.repeat(5_000)}\nline two` : undefined,
      durationMs: 1_000,
    };
  };

  it.each([1, 10, 300, 2_000])('%i hosts: under the limit, counts first when the table does not fit', (n) => {
    const results = Array.from({ length: n }, (_, i) =>
      result(`nats-${i}.a-rather-long-host-name-to-fill-the-table`, i),
    );
    const unreachable = Array.from({ length: Math.floor(n / 100) }, (_, i) => ({
      host: `gone-${i}`,
      error: `timeout | ${'t'.repeat(2_000)}`,
    }));
    const body = deployComment(SHA, results, unreachable);
    expect(`${body}\n\n${DEPLOY_MARKER(SHA)}`.length).toBeLessThanOrEqual(MAX);
    expectBalancedFences(body);
    expectWholeRows(body, 5);
    const total = n + unreachable.length;
    const rows = tableRows(body);
    if (rows.length === total) {
      expect(body).not.toContain('more hosts');
    } else {
      const of = (o: string) => results.filter((r) => r.outcome === o).length;
      const applied = results.filter((r) => r.outcome === 'applied');
      const restart = applied.filter((r) => r.steps.includes('restart')).length;
      expect(body).toContain(
        `${total} hosts: ${of('applied')} applied (${restart} restart, ${applied.length - restart} reload), ${of('unchanged')} unchanged, ${of('failed')} failed, 0 rolled back, 0 blocked, ${unreachable.length} unreachable`,
      );
      expect(body).toContain(`... and ${total - rows.length} more hosts (run \`natsfleet status\` for all)`);
      // Failures first.
      expect(rows.filter((r) => r.includes(':x:')).length).toBe(of('failed') + unreachable.length);
    }
  });

  it('keeps the format when it fits', () => {
    const body = deployComment(SHA, [result('h1', 1)], [{ host: 'h2', error: 'connection refused' }]);
    expect(body).toBe(
      [
        `### natsfleet deploy of ${SHA.slice(0, 12)}: 1 of 2 hosts failed`,
        '',
        ':repeat: Failed hosts are retried with backoff (15 s doubling to 10 min). This comment is updated as they ' +
          'recover; the others are deployed.',
        '',
        '| host | result | health | service | files |',
        '| --- | --- | --- | --- | --- |',
        '| h1 | :white_check_mark: applied | Healthy | reload | 1 |',
        '| h2 | :x: unreachable: connection refused | Unknown | - | - |',
      ].join('\n'),
    );
  });
});

describe('driftIssueBody', () => {
  it('a host with thousands of differences and huge diffs stays under the limit', () => {
    const p = plan('nats-eu-1', 'restart', 30_000);
    p.drift = Array.from({ length: 5_000 }, (_, i) => `file ${i} changed by hand ${'d'.repeat(200)}`);
    const body = driftIssueBody(p, false, SHA);
    expect(`${body}\n\n${DRIFT_MARKER(p.host)}`.length).toBeLessThanOrEqual(MAX);
    expectBalancedFences(body);
    expect(body).toMatch(/- \.\.\. and \d+ more differences/);
    expect(body).toContain('Run `natsfleet plan --host nats-eu-1` for all of it.');
    expect(body).toContain('selfHeal is off');
  });

  it('a small drift is shown whole', () => {
    const p = plan('nats-eu-1', 'reload', 3);
    p.drift = ['/etc/nats/nats-server.conf was changed by hand'];
    const body = driftIssueBody(p, true, SHA);
    expect(body).toContain('- /etc/nats/nats-server.conf was changed by hand\n');
    expect(body).toContain('selfHeal is on');
    expect(body).not.toContain('Truncated');
    expect(body).not.toContain('more differences');
  });
});

// A three-member JetStream cluster as plan/rollout.ts would plan it; built by hand.
const [C1, C2, C3] = ['nats-core-1', 'nats-core-2', 'nats-core-3'];
const GATES = [
  'before a member goes down: every other member healthy with all its routes, one JetStream meta leader, ' +
    'no stream or consumer behind, quorum kept',
  'after each member: /healthz 200, routes to every running peer, every stream and consumer current, then 10s ' +
    'settle (timeout 2m; past it the member is rolled back and the rollout halts)',
];
const healthy = (hosts = [C1, C2, C3], metaLeader: string | undefined = C2): RolloutPlan['health'] => ({
  size: hosts.length,
  up: [...hosts],
  down: [],
  metaLeader,
  members: Object.fromEntries(hosts.map((h) => [h, []])),
  behind: [],
  behindReplicas: [],
  metaLagging: [],
  serverNames: Object.fromEntries(hosts.map((h) => [h, h])),
  strangers: [],
  foreignRoutes: {},
  metaSize: hosts.length,
  jetstream: true,
});
/** The upgrade of `core`: every member restarts, followers first, the meta leader (C2) last. */
const upgrade = (over: Partial<RolloutPlan> = {}) =>
  ({
    cluster: 'core',
    members: [
      { host: C1, action: 'restart', metaLeader: false },
      { host: C3, action: 'restart', metaLeader: false },
      { host: C2, action: 'restart', metaLeader: true },
    ],
    batches: [[C1], [C3], [C2]],
    coldStart: false,
    gates: GATES,
    blocked: {},
    removePeers: [],
    health: healthy(),
    ...over,
  }) as RolloutPlan;
/** What the plan comment says of a cluster's rollout (its section, up to the hosts' details). */
const rolloutPart = (body: string, cluster = 'core') => {
  const from = body.indexOf(`#### Rollout of cluster ${cluster}\n`);
  expect(from).toBeGreaterThan(0);
  const to = body.indexOf('\n\n<details>', from);
  const next = body.indexOf('\n\n#### ', from + 1);
  return body.slice(from, Math.min(...[to, next, body.length].filter((i) => i >= 0)));
};
const restartPlan = (host: string) => plan(host, 'restart', 3);

describe('planComment: cluster rollouts', () => {
  it('a 3-member upgrade: health in one line, the order with the meta leader last, the gates', () => {
    const body = planComment({ sha: SHA, plans: [C1, C2, C3].map(restartPlan), rollouts: [upgrade()] });
    expect(rolloutPart(body)).toBe(
      [
        '#### Rollout of cluster core',
        '',
        '3 of 3 members healthy, JetStream meta leader nats-core-2, every route up, nothing behind',
        '',
        'Order (each step waits until the one before is healthy and caught up):',
        '',
        '1. nats-core-1 (restart)',
        '2. nats-core-3 (restart)',
        '3. nats-core-2 (restart, meta leader, last)',
        '',
        'Gates:',
        '',
        `- ${GATES[0]}`,
        `- ${GATES[1]}`,
      ].join('\n'),
    );
    // After the host table, before the hosts' details.
    expect(body.indexOf('| nats-core-1 |')).toBeLessThan(body.indexOf('#### Rollout'));
    expect(body.indexOf('#### Rollout')).toBeLessThan(body.indexOf('<details>'));
    expectBalancedFences(body);
  });

  it('a cold start: said so, every member in one batch, the members down listed', () => {
    const r = upgrade({
      members: [C1, C2, C3].map((host) => ({ host, action: 'start' as const, metaLeader: false })),
      batches: [[C1, C2, C3]],
      coldStart: true,
      gates: ['cold start: all members start together, then every member must be healthy and current (timeout 2m)'],
      health: {
        ...healthy([]),
        size: 3,
        metaLeader: undefined,
        down: [C1, C2, C3].map((host) => ({ host, why: 'not running (service inactive)' })),
      },
    });
    expect(rolloutPart(planComment({ sha: SHA, plans: [C1, C2, C3].map(restartPlan), rollouts: [r] }))).toBe(
      [
        '#### Rollout of cluster core',
        '',
        '0 of 3 members healthy, JetStream meta leader none',
        '',
        '- :warning: nats-core-1: not running (service inactive)',
        '- :warning: nats-core-2: not running (service inactive)',
        '- :warning: nats-core-3: not running (service inactive)',
        '',
        ':snowflake: **Cold start**: no member is running, so all start together (a quorum must be up to elect a ' +
          'JetStream meta leader).',
        '',
        'Order (each step waits until the one before is healthy and caught up):',
        '',
        '1. together: nats-core-1 (start), nats-core-2 (start), nats-core-3 (start)',
        '',
        'Gates:',
        '',
        '- cold start: all members start together, then every member must be healthy and current (timeout 2m)',
      ].join('\n'),
    );
  });

  it('a member down: it starts first, the restarts wait for quorum, each with why', () => {
    const why = (h: string) =>
      `cluster core: ${h} cannot be taken down now: quorum: taking down ${h} would leave 1 of 3 members running ` +
      '(quorum 2, and every other member must be healthy first); nats-core-3: not running (service failed)';
    const r = upgrade({
      members: [
        { host: C3, action: 'start', metaLeader: false },
        { host: C1, action: 'restart', metaLeader: false },
        { host: C2, action: 'restart', metaLeader: true },
      ],
      batches: [[C3]],
      blocked: { [C1]: { reason: 'quorum', why: [why(C1)] }, [C2]: { reason: 'quorum', why: [why(C2)] } },
      health: { ...healthy([C1, C2]), size: 3, down: [{ host: C3, why: 'not running (service failed)' }] },
    });
    const part = rolloutPart(planComment({ sha: SHA, plans: [C1, C2, C3].map(restartPlan), rollouts: [r] }));
    expect(part).toContain('2 of 3 members healthy, JetStream meta leader nats-core-2\n\n');
    expect(part).toContain('- :warning: nats-core-3: not running (service failed)\n');
    expect(part).toContain('\n1. nats-core-3 (start)\n');
    expect(part).not.toContain('\n2. ');
    expect(part).toContain(
      `\n- :no_entry: nats-core-1 waits for quorum (may pass by itself once the cluster recovers): ${why(C1)}\n`,
    );
    expect(part).toContain(
      `\n- :no_entry: nats-core-2 waits for quorum (may pass by itself once the cluster recovers): ${why(C2)}\n`,
    );
  });

  it('a cluster-wide refusal is said once for all its members; nothing can go', () => {
    const why =
      'cluster core: renaming a running JetStream cluster is not rolled out: stop every member, rename, ' +
      'start them together';
    const r = upgrade({
      batches: [],
      blocked: Object.fromEntries([C1, C2, C3].map((h) => [h, { reason: 'blocked' as const, why: [why] }])),
    });
    const part = rolloutPart(planComment({ sha: SHA, plans: [C1, C2, C3].map(restartPlan), rollouts: [r] }));
    expect(part).toContain('\n\nNo member can go now.\n');
    expect(part).toContain(`\n- :no_entry: nats-core-1, nats-core-2, nats-core-3 blocked, needs a person: ${why}\n`);
    expect(part.match(/:no_entry:/g)).toHaveLength(1);
  });

  it.each<[MemberAction, boolean, string]>([
    ['reload', false, '1. nats-core-1 (reload)'],
    ['reload', true, '1. nats-core-1 (reload, meta leader)'],
    ['files', false, '1. nats-core-1 (files only, no restart)'],
    ['stop', true, '1. nats-core-1 (stop, meta leader, last)'],
    ['none', false, 'Unchanged: nats-core-1.'],
    ['unknown', false, 'Not observed, left out: nats-core-1.'],
    ['blocked', false, '- :no_entry: nats-core-1: blocked by its own plan (see its section below)'],
  ])('a member that does %s (meta leader: %s) reads "%s"', (action, metaLeader, line) => {
    const moves = !['none', 'unknown', 'blocked'].includes(action);
    const r = upgrade({ members: [{ host: C1, action, metaLeader }], batches: moves ? [[C1]] : [] });
    expect(rolloutPart(planComment({ sha: SHA, plans: [restartPlan(C1)], rollouts: [r] })).split('\n')).toContain(line);
  });

  it('text from hosts and errors cannot open HTML or mention anyone', () => {
    const r = upgrade({
      health: { ...healthy(), members: { [C1]: ['<img src=x> no route to @ops\nsecond line'] } },
    });
    const part = rolloutPart(planComment({ sha: SHA, plans: [restartPlan(C1)], rollouts: [r] }));
    expect(part).toContain('- :warning: nats-core-1 &lt;img src=x> no route to @\u200bops second line\n');
    expect(part).not.toContain('<img');
  });

  it('a cluster with many problems shows the first five and counts the others', () => {
    const r = upgrade({ health: { ...healthy(), behind: Array.from({ length: 50 }, (_, j) => `stream A/s${j}`) } });
    const part = rolloutPart(planComment({ sha: SHA, plans: [restartPlan(C1)], rollouts: [r] }));
    expect(part).toContain(
      '\n\n- :warning: behind: stream A/s0\n- :warning: behind: stream A/s1\n- :warning: behind: stream A/s2\n' +
        '- :warning: behind: stream A/s3\n- :warning: behind: stream A/s4\n' +
        '- ... and 45 more (run `natsfleet status`)\n\n',
    );
    expect(part).not.toContain('Truncated');
  });

  it('no rollouts: the comment is as before', () => {
    const plans = [C1, C2].map(restartPlan);
    expect(planComment({ sha: SHA, plans, rollouts: [] })).toBe(planComment({ sha: SHA, plans }));
  });

  it('300 clusters with long reasons and 900 hosts with long diffs: under the limit, the table first', () => {
    const long = 'x'.repeat(5_000);
    const rollouts = Array.from({ length: 300 }, (_, i) =>
      upgrade({
        cluster: `c${i}`,
        blocked: { [C1]: { reason: 'quorum', why: [long] } },
        health: { ...healthy(), behind: Array.from({ length: 50 }, (_, j) => `stream A/s${j} ${long}`) },
      }),
    );
    const { plans } = fleet(900);
    const body = planComment({ sha: SHA, plans, rollouts });
    expect(`${body}\n\n${PLAN_MARKER}`.length).toBeLessThanOrEqual(MAX);
    expectBalancedFences(body);
    expectWholeRows(body, 4);
    expect(tableRows(body).length).toBeGreaterThan(100);
    expect(body).toContain('#### Rollout of cluster c0\n');
    expect(body).toContain('_Truncated: run `natsfleet plan --host nats-core-1` for all of it._');
    expect(body).toMatch(/_The details of \d+ more cluster rollout\(s\) do not fit in one GitHub comment/);
  });
});

describe('deployComment: cluster rollouts', () => {
  const ok = (host: string, steps: Step[] = ['test-config', 'restart']): ApplyResult => ({
    host,
    outcome: 'applied',
    health: 'Healthy',
    steps,
    changedFiles: ['/etc/nats/nats-server.conf'],
    durationMs: 1,
  });
  const blocked = (host: string, reason: 'quorum' | 'rollout-halted' | 'blocked', error: string): ApplyResult => ({
    host,
    outcome: 'blocked',
    health: 'Healthy',
    steps: [],
    changedFiles: [],
    reason,
    error,
    durationMs: 0,
  });
  const rolledBack: ApplyResult = {
    ...ok(C3),
    outcome: 'rolled-back',
    reason: 'verify-failed',
    error: 'nats-core-3 not caught up after 2m: nats-core-3: not running (service failed); rolled back',
  };
  const haltedC2 = blocked(
    C2,
    'rollout-halted',
    `rollout of cluster core halted: nats-core-3 rolled-back: ${rolledBack.error}; nats-core-2 was not touched`,
  );

  it('a halted rollout: where it stopped and why at the top of the cluster, then its members in order', () => {
    const body = deployComment(SHA, [haltedC2, ok('edge-1', ['reload']), rolledBack, ok(C1)], [], [upgrade()]);
    expect(body).toBe(
      [
        `### natsfleet deploy of ${SHA.slice(0, 12)}: 2 of 4 hosts failed`,
        '',
        ':repeat: Failed hosts are retried with backoff (15 s doubling to 10 min). This comment is updated as they ' +
          'recover; the others are deployed.',
        '',
        '#### Cluster core',
        '',
        `:x: **The rollout halted at step 2 of 3: nats-core-3 rolled back**: ${rolledBack.error}`,
        '',
        'Not touched because of it: nats-core-2 (restart, meta leader, last).',
        '',
        '| host | result | health | service | files |',
        '| --- | --- | --- | --- | --- |',
        '| nats-core-1 | :white_check_mark: applied | Healthy | restart | 1 |',
        `| nats-core-3 | :x: rolled-back: ${rolledBack.error} | Healthy | restart | 1 |`,
        `| nats-core-2 | :x: blocked: ${haltedC2.error} | Healthy | - | 0 |`,
        '',
        '#### Other hosts',
        '',
        '| host | result | health | service | files |',
        '| --- | --- | --- | --- | --- |',
        '| edge-1 | :white_check_mark: applied | Healthy | reload | 1 |',
      ].join('\n'),
    );
  });

  it.each<[string, ApplyResult[], RolloutPlan, string[]]>([
    [
      'the quorum gate refused a batch',
      [
        ok(C1),
        blocked(C3, 'quorum', 'cluster core cannot lose nats-core-3 now: nats-core-1 no route to nats-core-2'),
        blocked(C2, 'rollout-halted', 'rollout of cluster core halted: cluster core cannot lose nats-core-3 now'),
      ],
      upgrade(),
      [
        ':no_entry: **The rollout halted at step 2 of 3: the cluster cannot lose nats-core-3 now (quorum)**: ' +
          'cluster core cannot lose nats-core-3 now: nats-core-1 no route to nats-core-2',
        'Not touched because of it: nats-core-2 (restart, meta leader, last).',
      ],
    ],
    [
      'a member waited for quorum from the plan on; the others rolled out',
      [ok(C1), blocked(C3, 'quorum', 'cluster core: nats-core-3 cannot be taken down now: quorum'), ok(C2)],
      upgrade({ batches: [[C1], [C2]], blocked: { [C3]: { reason: 'quorum', why: ['quorum'] } } }),
      [
        ':hourglass: nats-core-3 was not taken down (quorum; it may pass by itself once the cluster recovers): ' +
          'cluster core: nats-core-3 cannot be taken down now: quorum',
      ],
    ],
    [
      'the last member failed: nothing was left to halt',
      [ok(C1), ok(C3), { ...ok(C2), outcome: 'failed', reason: 'step-failed', error: 'docker: no such image' }],
      upgrade(),
      [':x: **The rollout halted at step 3 of 3: nats-core-2 failed**: docker: no such image'],
    ],
    [
      'a member applied but unhealthy',
      [ok(C1), { ...ok(C3), health: 'Degraded' }, blocked(C2, 'rollout-halted', 'halted')],
      upgrade(),
      [
        ':x: **The rollout halted at step 2 of 3: nats-core-3 applied but Degraded**',
        'Not touched because of it: nats-core-2 (restart, meta leader, last).',
      ],
    ],
    [
      'a cluster-wide refusal',
      [C1, C2, C3].map((h) => blocked(h, 'blocked', 'renaming a running JetStream cluster is not rolled out')),
      upgrade({ batches: [] }),
      [
        ':no_entry: nats-core-1, nats-core-3, nats-core-2 blocked: ' +
          'renaming a running JetStream cluster is not rolled out',
      ],
    ],
    [
      'every member applied',
      [ok(C1), ok(C3), ok(C2)],
      upgrade(),
      [':white_check_mark: Rolled out: 3 of 3 members applied, every member healthy.'],
    ],
    [
      'nothing to do',
      [C1, C2, C3].map((h) => ({ ...ok(h, []), outcome: 'unchanged' as const, changedFiles: [] })),
      upgrade({ batches: [] }),
      [':white_check_mark: Nothing to roll out: every member is unchanged and healthy.'],
    ],
  ])('%s', (_, results, r, lead) => {
    expect(rolloutOutcome(r, results, [])).toEqual(lead);
    expect(deployComment(SHA, results, [], [r])).toContain(`#### Cluster core\n\n${lead.join('\n\n')}\n\n| host |`);
  });

  it('a member not reached is said to be left out, and has its row in the cluster', () => {
    const body = deployComment(SHA, [ok(C1), ok(C2)], [{ host: C3, error: 'connect ECONNREFUSED' }], [upgrade()]);
    expect(body).toContain('\n\n:x: Left out of the rollout (not reached): nats-core-3.\n\n');
    expect(body).toContain('| nats-core-3 | :x: unreachable: connect ECONNREFUSED | Unknown | - | - |');
    expect(body).not.toContain('Other hosts');
  });

  it('clusters that need attention come first', () => {
    const good = upgrade({
      cluster: 'good',
      members: ['g1', 'g2', 'g3'].map((host) => ({ host, action: 'restart' as const, metaLeader: false })),
    });
    const body = deployComment(
      SHA,
      [ok('g1'), ok('g2'), ok('g3'), ok(C1), rolledBack, haltedC2],
      [],
      [good, upgrade()],
    );
    expect(body.indexOf('#### Cluster core')).toBeLessThan(body.indexOf('#### Cluster good'));
  });

  it('700 halted clusters with long errors: under the limit, the rest in the table of other hosts', () => {
    const rollouts: RolloutPlan[] = [];
    const results: ApplyResult[] = [];
    for (let i = 0; i < 700; i++) {
      const [a, b, c] = [`c${i}-1`, `c${i}-2`, `c${i}-3`];
      rollouts.push(
        upgrade({
          cluster: `c${i}`,
          members: [a, c, b].map((host) => ({ host, action: 'restart' as const, metaLeader: host === b })),
          batches: [[a], [c], [b]],
        }),
      );
      const long = `e | ${'x'.repeat(3_000)}\n\`\`\`\nmore`;
      results.push(ok(a), { ...rolledBack, host: c, error: long }, blocked(b, 'rollout-halted', long));
    }
    const body = deployComment(SHA, results, [{ host: 'gone', error: 'timeout' }], rollouts);
    expect(`${body}\n\n${DEPLOY_MARKER(SHA)}`.length).toBeLessThanOrEqual(MAX);
    expectBalancedFences(body);
    expectWholeRows(body, 5);
    const parts = body.match(/#### Cluster c\d+\n/g)!.length;
    expect(parts).toBeGreaterThan(10);
    expect(body).toContain(
      `_${700 - parts} more cluster(s) do not fit here: their members are in the table of other hosts._`,
    );
    expect(body).toContain('#### Other hosts');
    expect(body).toMatch(/\.\.\. and \d+ more hosts \(run `natsfleet status` for all\)/);
  });
});

describe('deploy notes', () => {
  it('lists what an operator should know although nothing failed', () => {
    const body = deployComment(
      'a'.repeat(40),
      [
        {
          host: 'nats-core-1',
          outcome: 'unchanged',
          health: 'Healthy',
          steps: [],
          changedFiles: [],
          notes: ['removed nats-core-4 (no longer a member) from the JetStream meta group'],
          durationMs: 1,
        },
      ],
      [],
    );
    expect(body).toMatch(
      /Notes:\n\n- nats-core-1: removed nats-core-4 \(no longer a member\) from the JetStream meta group/,
    );
  });
});

describe('planHeadline: one line saying what changes and what merging does', () => {
  const p = (host: string, edit: Partial<HostPlan> = {}): HostPlan => hostPlan({ host, revision: SHA, ...edit });
  const step = (s: string) => ({ step: s, reason: 'x' }) as HostPlan['steps'][number];
  it.each([
    [[p('a')], '**No host changes: merging deploys nothing.**'],
    [
      [p('a', { steps: [step('restart')] }), p('b', { steps: [step('reload')] }), p('c', { steps: [step('reload')] })],
      '**3 hosts change: 1 restart, 2 reload. Merging deploys them.**',
    ],
    [
      [p('a', { steps: [step('reload')] }), p('b', { blocked: ['x'] }), p('c', { sync: 'Unknown', error: 'e' })],
      '**1 host change: 1 reload. Merging deploys it. 1 host blocked: merging does not deploy it until fixed. ' +
        '1 host not reached: deployed after merge once reachable (retried).**',
    ],
  ])('%#', (plans, line) => {
    expect(planHeadline(plans)).toBe(line);
    expect(planComment({ sha: SHA, plans }).split('\n')[2]).toBe(line);
  });
});

describe('a pull request that deletes manifests', () => {
  it('says the hosts keep running unmanaged, and how to decommission instead', () => {
    expect(planComment({ sha: SHA, plans: [], unmanaged: ['nats-us-1'] })).toBe(
      [
        `### natsfleet plan for ${SHA.slice(0, 12)}`,
        '',
        ":wave: **nats-us-1 will no longer be managed**: it keeps running as it is (the controller's `prune` is " +
          'off); natsfleet stops deploying it and reporting drift. To decommission instead (stop NATS, remove its ' +
          'unit, container and proxy; data kept), merge the manifest with `state: absent` first, then delete it.',
        '',
      ].join('\n'),
    );
  });
});

describe('deployComment with suspended hosts', () => {
  it('names the hosts it did not deploy and how to resume', () => {
    const body = deployComment(SHA, [], [], [], ['nats-us-1']);
    expect(body.split('\n').at(-1)).toBe(
      ':pause_button: Suspended, not deployed: nats-us-1 (`spec.policy.suspend` in Git, or `natsfleet suspend`; ' +
        'resuming deploys this revision).',
    );
  });
});

describe('a pull request that does not merge cleanly', () => {
  it('says it is planned as the branch is', () => {
    expect(planComment({ sha: SHA, plans: [hostPlan({ host: 'a' })], conflicts: true })).toContain(
      '> :warning: The branch does not merge cleanly into its base: planned as the branch is, not as merging ' +
        'would deploy it. Rebase or merge the base to see the real plan.',
    );
  });
});

describe('deployComment: the next retry', () => {
  it('names when the next failed host is tried again', () => {
    const failed: ApplyResult = {
      host: 'h1',
      outcome: 'failed',
      health: 'Degraded',
      steps: [],
      changedFiles: [],
      error: 'x',
      durationMs: 1,
    };
    expect(deployComment(SHA, [failed], [], [], [], Date.UTC(2026, 10, 26, 23, 40, 12)).split('\n')[2]).toBe(
      ':repeat: Failed hosts are retried with backoff (15 s doubling to 10 min); the next attempt at 23:40:12 UTC. ' +
        'This comment is updated as they recover; the others are deployed.',
    );
  });
});
