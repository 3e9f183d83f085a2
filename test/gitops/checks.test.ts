// The check run natsfleet publishes as a GitHub App, as tables: each host's mark and its annotation
// level, the manifest line an annotation goes on, and what a plan, a deploy or invalid manifests make.
import { describe, expect, it } from 'vitest';
import {
  ANNOTATION_LEVEL,
  deployCheck,
  deployMark,
  manifestPositions,
  nameLine,
  planCheck,
  planMark,
  problemsCheck,
  type HostMark,
} from '../../controller/gitops/checks.js';
import { planHeadline } from '../../controller/report/markdown.js';
import { CHECK_OUTPUT_LIMIT } from '../../controller/report/github.js';
import type { ApplyResult } from '../../controller/apply/result.js';
import type { FileChange } from '../../controller/plan/types.js';
import { hostPlan } from '../helpers/plans.js';

const file = (path: string): FileChange => ({
  kind: 'file',
  path,
  action: 'update',
  reason: 'content',
  drift: false,
  contentChanged: true,
});
const applied = (host: string, r: Partial<ApplyResult> = {}): ApplyResult =>
  ({
    host,
    revision: 'r',
    outcome: 'applied',
    health: 'Healthy',
    steps: ['reload'],
    changedFiles: ['/etc/nats/nats-server.conf'],
    durationMs: 1,
    ...r,
  }) as ApplyResult;

describe('annotation levels', () => {
  it.each<[HostMark, string]>([
    ['unreachable', 'failure'],
    ['blocked', 'failure'],
    ['failed', 'failure'],
    ['drift', 'warning'],
    ['restart', 'warning'],
    ['change', 'notice'],
    ['applied', 'notice'],
    ['unchanged', 'notice'],
  ])('%s is a %s', (mark, level) => expect(ANNOTATION_LEVEL[mark]).toBe(level));

  it('the vocabulary is closed: every mark has a level, and only those', () => {
    expect(Object.keys(ANNOTATION_LEVEL).sort()).toEqual(
      ['applied', 'blocked', 'change', 'drift', 'failed', 'restart', 'unchanged', 'unreachable'].sort(),
    );
  });

  it.each([
    ['not reached', hostPlan({ sync: 'Unknown', error: 'connection refused' }), 'unreachable'],
    ['blocked', hostPlan({ sync: 'OutOfSync', blocked: ['secret missing'], changes: [file('/a')] }), 'blocked'],
    ['drifted', hostPlan({ sync: 'OutOfSync', drift: ['edited by hand'], changes: [file('/a')] }), 'drift'],
    [
      'restarted',
      hostPlan({ sync: 'OutOfSync', changes: [file('/a')], steps: [{ step: 'restart', reason: 'image' }] }),
      'restart',
    ],
    ['started', hostPlan({ sync: 'OutOfSync', steps: [{ step: 'start', reason: 'new' }] }), 'restart'],
    ['stopped', hostPlan({ sync: 'OutOfSync', steps: [{ step: 'stop', reason: 'absent' }] }), 'restart'],
    [
      'reloaded',
      hostPlan({ sync: 'OutOfSync', changes: [file('/a')], steps: [{ step: 'reload', reason: 'conf' }] }),
      'change',
    ],
    ['in sync', hostPlan(), 'unchanged'],
  ])('a plan %s is marked %s', (_, plan, mark) => expect(planMark(plan)).toBe(mark));

  it.each([
    ['not reached', undefined, 'connection refused', 'unreachable'],
    ['failed', applied('h', { outcome: 'failed', error: 'refused' }), undefined, 'failed'],
    ['rolled back', applied('h', { outcome: 'rolled-back' }), undefined, 'failed'],
    ['applied but Degraded', applied('h', { health: 'Degraded' }), undefined, 'failed'],
    ['applied', applied('h'), undefined, 'applied'],
    ['unchanged', applied('h', { outcome: 'unchanged', steps: [] }), undefined, 'unchanged'],
  ])('a deploy %s is marked %s', (_, result, error, mark) => expect(deployMark(result, error)).toBe(mark));
});

describe('manifest positions', () => {
  it.each([
    ['metadata.name where it stands', '# a comment\napiVersion: v1\nkind: NatsHost\nmetadata:\n  name: a\n', 5],
    ['name before other metadata', 'metadata:\n  labels: {x: y}\n  name: a\n', 3],
    ['no metadata.name: line 1', 'kind: NatsHost\n', 1],
    ['YAML that does not parse: line 1', 'metadata: [\n', 1],
  ])('%s', (_, text, line) => expect(nameLine(text)).toBe(line));

  it("a host's manifest is its path in the repository", () => {
    const at = manifestPositions(
      [
        { name: 'a', file: 'fleet/hosts/a.yaml' },
        { name: 'gone', file: 'fleet/hosts/gone.yaml' },
      ],
      [{ path: 'fleet/hosts/a.yaml', text: 'metadata:\n  name: a\n' }],
    );
    expect(at.get('a')).toEqual({ path: 'fleet/hosts/a.yaml', line: 2 });
    expect(at.get('gone')).toEqual({ path: 'fleet/hosts/gone.yaml', line: 1 });
  });
});

describe('check runs', () => {
  const where = new Map([
    ['a', { path: 'hosts/a.yaml', line: 5 }],
    ['b', { path: 'hosts/b.yaml', line: 4 }],
  ]);
  const change = hostPlan({
    host: 'a',
    sync: 'OutOfSync',
    changes: [file('/etc/nats/nats-server.conf')],
    steps: [{ step: 'reload', reason: 'conf' }],
  });

  it("a plan: the comment's headline and a line per host, an annotation per host on its manifest line", () => {
    const blocked = hostPlan({ host: 'b', sync: 'OutOfSync', blocked: ['secret NATS_B is not set'] });
    const unplaced = hostPlan({ host: 'c' });
    const check = planCheck([change, blocked, unplaced], where, 'the comment');
    expect(check).toMatchObject({
      status: 'completed',
      conclusion: 'failure',
      title: '1 host(s) cannot be planned',
      text: 'the comment',
    });
    expect(check.summary.split('\n')).toEqual([
      planHeadline([change, blocked, unplaced]),
      '',
      '- :white_check_mark: **a**: 1 change(s), reload',
      '- :x: **b**: blocked: secret NATS_B is not set',
      '- :white_check_mark: **c**: no changes',
    ]);
    expect(check.annotations).toEqual([
      {
        path: 'hosts/a.yaml',
        start_line: 5,
        end_line: 5,
        annotation_level: 'notice',
        title: 'a: change',
        message: '1 change(s), reload',
      },
      {
        path: 'hosts/b.yaml',
        start_line: 4,
        end_line: 4,
        annotation_level: 'failure',
        title: 'b: blocked',
        message: 'blocked: secret NATS_B is not set',
      },
    ]);
    expect(planCheck([change], where)).toMatchObject({ conclusion: 'success', title: 'plan: 1 host(s) change' });
    expect(planCheck([change], where)).not.toHaveProperty('text');
  });

  it('a deploy: failure while a host fails, success once none does', () => {
    const failing = deployCheck(
      { results: [applied('a')], unreachable: [{ host: 'b', error: 'connection refused' }], total: 2, failed: 1 },
      where,
    );
    expect(failing).toMatchObject({ status: 'completed', conclusion: 'failure', title: '1 host(s) failed' });
    expect(failing.summary).toContain('- :x: **b**: connection refused');
    expect(failing.annotations.map((a) => [a.path, a.annotation_level, a.message])).toEqual([
      ['hosts/b.yaml', 'failure', 'connection refused'],
      ['hosts/a.yaml', 'notice', 'applied: reload'],
    ]);
    const ok = deployCheck({ results: [applied('a')], unreachable: [], total: 2, failed: 0, suspended: ['b'] }, where);
    expect(ok).toMatchObject({ conclusion: 'success', title: '2 host(s) in sync' });
    expect(ok.summary).toContain('- :pause_button: **b**: suspended, not deployed');
  });

  it('invalid manifests: failure, an annotation on the line of each error in a manifest', () => {
    const check = problemsCheck([
      { file: 'hosts/a.yaml', path: 'spec.nats.clientPort', line: 9, severity: 'error', message: 'must be <= 65535' },
      { file: 'hosts/b.yaml', path: '', severity: 'error', message: 'file is empty' },
      { file: 'hosts/c.yaml', path: 'spec.nats.auth', line: 3, severity: 'warning', message: 'no auth' },
      { file: 'hosts', path: '', severity: 'error', message: 'is a blob, not a directory of manifests' },
    ]);
    expect(check).toMatchObject({
      conclusion: 'failure',
      title: 'invalid manifests: hosts/a.yaml:9: error: spec.nats.clientPort: must be <= 65535',
    });
    expect(check.annotations.map((a) => [a.path, a.start_line, a.annotation_level, a.title])).toEqual([
      ['hosts/a.yaml', 9, 'failure', 'spec.nats.clientPort'],
      ['hosts/b.yaml', 1, 'failure', 'manifest'],
    ]);
    expect(check.summary).not.toContain('no auth');
  });

  it("a fleet-wide plan's summary stays within GitHub's limit and says how many hosts it leaves out", () => {
    const plans = Array.from({ length: 3000 }, (_, i) => ({ ...change, host: `nats-${i}-${'x'.repeat(40)}` }));
    const { summary } = planCheck(plans, new Map());
    expect(summary.length).toBeLessThanOrEqual(CHECK_OUTPUT_LIMIT);
    expect(summary).toMatch(/\n- \.\.\. and \d+ more host\(s\)$/);
  });
});
