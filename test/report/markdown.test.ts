// The Markdown posted on GitHub stays under GitHub's 65,536 characters, marker included, whatever
// the number of hosts and the size of their diffs and errors; a table too long is summarised.
import { describe, expect, it } from 'vitest';
import type { ApplyResult } from '../../controller/apply/result.js';
import type { Problem } from '../../controller/manifest/problems.js';
import type { FileChange, HostPlan, Step } from '../../controller/plan/types.js';
import {
  COMMENT_BODY_LIMIT,
  DEPLOY_MARKER,
  DRIFT_MARKER,
  GITHUB_COMMENT_LIMIT,
  PLAN_MARKER,
  deployComment,
  driftIssueBody,
  planComment,
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
  const base: HostPlan = {
    host,
    revision: SHA,
    state: 'present',
    blocked: [],
    changes: [],
    steps: [],
    drift: [],
    sync: 'OutOfSync',
    health: 'Healthy',
  };
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
        `### natsfleet deployed ${SHA.slice(0, 12)}`,
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
