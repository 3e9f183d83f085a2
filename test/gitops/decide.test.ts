// The controller's decisions as tables (gitops-engine style): plain values in, decisions out; no Git,
// SSH or GitHub.
import { describe, expect, it } from 'vitest';
import {
  BACKOFF_BASE_MS,
  BACKOFF_MAX_MS,
  deployStatus,
  distinctRollouts,
  driftDecision,
  driftFingerprint,
  hostStatusesToPost,
  isSuccessful,
  MAX_PLAN_HOST_STATUSES,
  nextRetry,
  oneLine,
  overallPlanStatus,
  planStatus,
  shouldDeploy,
  staleRetries,
  untrustedReason,
  unmanagedHosts,
  mergeDeployReport,
  nextRetryAt,
  splitSuspended,
  outOfBandDrift,
} from '../../controller/gitops/decide.js';
import type { ApplyResult, FailureReason } from '../../controller/apply/result.js';
import type { HostPlan } from '../../controller/plan/types.js';
import { hostPlan } from '../helpers/plans.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import type { RolloutPlan } from '../../controller/plan/rollout.js';

const result = (r: Partial<ApplyResult>): ApplyResult => ({
  host: 'h',
  outcome: 'applied',
  health: 'Healthy',
  steps: [],
  changedFiles: [],
  durationMs: 1,
  ...r,
});
const plan = hostPlan;
const change = { kind: 'file', path: '/etc/nats/nats-server.conf', action: 'update', reason: 'x', drift: false };

describe('isSuccessful: one definition of success', () => {
  it.each<[string, Partial<ApplyResult> | undefined, boolean]>([
    ['applied and healthy', {}, true],
    ['unchanged and healthy', { outcome: 'unchanged' }, true],
    ['decommissioned (Missing)', { health: 'Missing' }, true],
    ['applied but degraded', { health: 'Degraded' }, false],
    ['rolled back, even if healthy again', { outcome: 'rolled-back' }, false],
    ['blocked', { outcome: 'blocked' }, false],
    ['failed', { outcome: 'failed', health: 'Degraded' }, false],
    ['no result', undefined, false],
  ])('%s', (_t, r, want) => expect(isSuccessful(r && result(r))).toBe(want));
});

describe('retries: backoff doubles per attempt on one revision, capped, and restarts on a new revision', () => {
  it.each<[string, Parameters<typeof nextRetry>[0], string, number]>([
    ['first failure', undefined, 'r1', BACKOFF_BASE_MS],
    [
      'second on the same revision',
      { revision: 'r1', attempts: 1, nextAttemptAt: 0, lastError: '' },
      'r1',
      2 * BACKOFF_BASE_MS,
    ],
    ['sixth', { revision: 'r1', attempts: 5, nextAttemptAt: 0, lastError: '' }, 'r1', 32 * BACKOFF_BASE_MS],
    ['tenth: capped', { revision: 'r1', attempts: 9, nextAttemptAt: 0, lastError: '' }, 'r1', BACKOFF_MAX_MS],
    [
      'a new revision starts over',
      { revision: 'r1', attempts: 9, nextAttemptAt: 0, lastError: '' },
      'r2',
      BACKOFF_BASE_MS,
    ],
  ])('%s', (_t, prev, rev, delay) => {
    const r = nextRetry(prev, rev, 1000, 'boom');
    expect(r.nextAttemptAt - 1000).toBe(delay);
    expect(r).toMatchObject({ revision: rev, lastError: 'boom' });
  });
});

describe('shouldDeploy', () => {
  const retry = (revision: string, nextAttemptAt: number) => ({ revision, attempts: 1, nextAttemptAt, lastError: '' });
  it.each<[string, Parameters<typeof shouldDeploy>, boolean]>([
    ['a new desired state', [undefined, 'r', 0, 'fp2', 'fp1'], true],
    ['the same desired state', [undefined, 'r', 0, 'fp1', 'fp1'], false],
    ['never applied', [undefined, 'r', 0, 'fp1', undefined], true],
    ['not renderable (no fingerprint)', [undefined, 'r', 0, undefined, undefined], true],
    ['a retry not yet due', [retry('r', 100), 'r', 50, 'fp1', 'fp0'], false],
    ['a retry due', [retry('r', 100), 'r', 100, 'fp1', 'fp1'], true],
    ['a retry of an older revision: judged by fingerprint', [retry('old', 1e12), 'r', 0, 'fp1', 'fp1'], false],
  ])('%s', (_t, args, want) => expect(shouldDeploy(...args)).toBe(want));
});

describe('the pull-request trust rule', () => {
  const spec = (name: string, host = '203.0.113.1', hostKey = 'ssh-ed25519 AAAA'): HostSpec =>
    ({ name, ssh: { host, port: 22, user: 'root', hostKey } }) as HostSpec;
  const base = (name: string) => (name === 'a' ? spec('a') : undefined);
  it.each<[string, boolean, HostSpec[], string | undefined]>([
    ['same repository, same SSH target', false, [spec('a')], undefined],
    ['from a fork', true, [spec('a')], 'the pull request comes from a fork'],
    ['from a fork, no host changed', true, [], undefined],
    ['adds a host', false, [spec('b')], 'it adds the host b'],
    ['changes the address', false, [spec('a', '198.51.100.7')], 'it changes the SSH address or host key of a'],
    [
      'changes the key',
      false,
      [spec('a', '203.0.113.1', 'ssh-ed25519 BBBB')],
      'it changes the SSH address or host key of a',
    ],
  ])('%s', (_t, fork, changed, want) => expect(untrustedReason(fork, changed, base)).toBe(want));
});

describe('statuses', () => {
  it.each<[string, Partial<HostPlan>, string, string]>([
    ['no changes', {}, 'success', 'no changes'],
    [
      'a reload',
      { sync: 'OutOfSync', changes: [change as never], steps: [{ step: 'reload', reason: '' }] },
      'success',
      '1 change(s), reload',
    ],
    [
      'a restart',
      { sync: 'OutOfSync', changes: [change as never], steps: [{ step: 'restart', reason: '' }] },
      'success',
      '1 change(s), restart',
    ],
    ['blocked', { blocked: ['port 4222 is held'] }, 'failure', 'blocked: port 4222 is held'],
    [
      'unreachable',
      { sync: 'Unknown', error: 'no SSH banner within 15 s' },
      'error',
      'unreachable: no SSH banner within 15 s',
    ],
  ])('plan: %s', (_t, p, state, description) => expect(planStatus(plan(p))).toEqual({ state, description }));

  it('overall: failure when any host cannot be planned', () => {
    expect(overallPlanStatus([plan({}), plan({ sync: 'OutOfSync' })])).toEqual({
      state: 'success',
      description: 'plan: 1 host(s) change',
    });
    expect(overallPlanStatus([plan({}), plan({ blocked: ['x'] }), plan({ sync: 'Unknown' })])).toEqual({
      state: 'failure',
      description: '2 host(s) cannot be planned',
    });
  });

  it('a large pull request gets statuses only for hosts that need attention, bounded', () => {
    const few = Array.from({ length: MAX_PLAN_HOST_STATUSES }, (_, i) => plan({ host: `h${i}` }));
    expect(hostStatusesToPost(few)).toHaveLength(MAX_PLAN_HOST_STATUSES);
    const many = Array.from({ length: 300 }, (_, i) => plan({ host: `h${i}`, blocked: i % 10 === 0 ? ['x'] : [] }));
    const posted = hostStatusesToPost(many);
    expect(posted).toHaveLength(MAX_PLAN_HOST_STATUSES);
    expect(posted.every((p) => p.blocked.length)).toBe(true);
    expect(hostStatusesToPost(Array.from({ length: 300 }, (_, i) => plan({ host: `h${i}` })))).toEqual([]);
  });

  it.each<[string, Partial<ApplyResult> | undefined, string | undefined, string, string]>([
    ['applied', { steps: ['test-config', 'reload'] }, undefined, 'success', 'applied: test-config, reload'],
    ['applied files only', {}, undefined, 'success', 'applied: files'],
    ['unchanged', { outcome: 'unchanged' }, undefined, 'success', 'in sync'],
    ['failed', { outcome: 'failed', error: 'staging files failed' }, undefined, 'failure', 'staging files failed'],
    ['unreachable', undefined, 'no SSH banner', 'error', 'no SSH banner'],
  ])('deploy: %s', (_t, r, error, state, description) =>
    expect(deployStatus(r && result(r), error)).toEqual({ state, description }),
  );

  it('texts for statuses and comments are one line, bounded', () => {
    expect(oneLine('a\n  b\tc')).toBe('a b c');
    expect(oneLine('x'.repeat(400), 100)).toHaveLength(100);
  });
});

describe('staleRetries: a retry the branch no longer asks for is dropped', () => {
  const r = (revision: string) => ({ revision, attempts: 3, nextAttemptAt: 0, lastError: 'x' });
  it.each<
    [string, Record<string, ReturnType<typeof r>>, [string, string | undefined][], Record<string, string>, string[]]
  >([
    ['a revert restores what was applied', { a: r('bad') }, [['a', 'fp-ok']], { a: 'fp-ok' }, ['a']],
    ['the failing revision is still the head', { a: r('head') }, [['a', 'fp-ok']], { a: 'fp-ok' }, []],
    ['the branch still asks for something new', { a: r('bad') }, [['a', 'fp-new']], { a: 'fp-ok' }, []],
    ['the host is gone', { a: r('bad') }, [], {}, ['a']],
    ['not renderable now: kept', { a: r('bad') }, [['a', undefined]], { a: 'fp-ok' }, []],
  ])('%s', (_t, retries, desired, applied, want) =>
    expect(staleRetries(retries, 'head', new Map(desired), applied)).toEqual(want),
  );
});

describe('retries differ by reason: what a retry cannot cure is not retried like a network blip', () => {
  it.each<[FailureReason | undefined, number]>([
    ['unreachable', BACKOFF_BASE_MS],
    ['verify-failed', BACKOFF_BASE_MS],
    [undefined, BACKOFF_BASE_MS],
    ['host-key-mismatch', BACKOFF_MAX_MS],
    ['auth-failed', BACKOFF_MAX_MS],
    ['config-rejected', BACKOFF_MAX_MS],
    ['secret-unavailable', BACKOFF_MAX_MS],
  ])('%s: first retry after %i ms', (reason, delay) => {
    const r = nextRetry(undefined, 'r', 0, 'x', reason);
    expect(r.nextAttemptAt).toBe(delay);
    expect(r.reason).toBe(reason);
  });
});

describe('drift: one issue per host, no re-notice of the same drift, closed when back in sync, selfHeal as allowed', () => {
  const drifted = plan({ sync: 'OutOfSync', drift: ['/etc/nats/nats-server.conf: content changed on the host'] });
  const fp = driftFingerprint(drifted);
  it.each<[string, HostPlan, boolean, { number: number; fingerprint: string } | undefined, boolean, object]>([
    ['unreachable: nothing decided', drifted, true, { number: 7, fingerprint: fp }, true, { kind: 'unreachable' }],
    ['in sync, no issue', plan({}), false, undefined, false, { kind: 'in-sync' }],
    [
      'back in sync: the open issue is closed',
      plan({}),
      false,
      { number: 7, fingerprint: fp },
      false,
      { kind: 'in-sync', close: 7 },
    ],
    [
      'no drift but out of sync (a desired change): the issue stays',
      plan({ sync: 'OutOfSync' }),
      false,
      { number: 7, fingerprint: fp },
      false,
      { kind: 'in-sync' },
    ],
    [
      'new drift: an issue is opened',
      drifted,
      false,
      undefined,
      false,
      { kind: 'drifted', issue: 'open', fingerprint: fp, selfHeal: false },
    ],
    [
      'the same drift: kept, not re-notified',
      drifted,
      false,
      { number: 7, fingerprint: fp },
      false,
      { kind: 'drifted', issue: 'keep' },
    ],
    [
      'the drift changed: updated',
      drifted,
      false,
      { number: 7, fingerprint: 'other' },
      false,
      { kind: 'drifted', issue: 'update' },
    ],
    ['selfHeal on', drifted, false, undefined, true, { kind: 'drifted', selfHeal: true }],
  ])('%s', (_t, p, unreachable, open, selfHeal, want) =>
    expect(driftDecision(p, unreachable, open, selfHeal)).toMatchObject(want),
  );
});

describe('distinctRollouts', () => {
  const rollout = (cluster: string) => ({ cluster }) as RolloutPlan;
  const core = rollout('core');
  const edge = rollout('edge');
  // Another plan of a cluster named alike (another run) is another value: identity, not the name, tells.
  const again = rollout('core');
  it.each<[string, { rollout?: RolloutPlan }[], RolloutPlan[]]>([
    ['no cluster member', [{}, {}], []],
    ['every member carries the same value: once', [{ rollout: core }, { rollout: core }, { rollout: core }], [core]],
    [
      'in the order of first members, standalone hosts skipped',
      [{ rollout: edge }, {}, { rollout: core }, { rollout: edge }],
      [edge, core],
    ],
    ['two values are two rollouts', [{ rollout: core }, { rollout: again }], [core, again]],
  ])('%s', (_, runs, want) => {
    const got = distinctRollouts(runs);
    expect(got).toHaveLength(want.length);
    got.forEach((r, i) => expect(r).toBe(want[i]));
  });
});

describe('unmanagedHosts: manifests a change deletes', () => {
  it.each([
    [['a', 'b'], ['a', 'b'], []],
    [['a', 'b', 'c'], ['a'], ['b', 'c']],
    [['a'], ['a', 'new'], []],
    [['b', 'a'], [], ['a', 'b']],
  ])('%j -> %j: %j', (before, after, want) => {
    expect(unmanagedHosts(before, after)).toEqual(want);
  });
});

describe('outOfBandDrift: an apply from outside the branch', () => {
  const plan = (applied: string | undefined, work: boolean): HostPlan =>
    hostPlan({
      revision: 'head',
      steps: work ? [{ step: 'reload', reason: 'config' }] : [],
      sync: work ? 'OutOfSync' : 'Synced',
      applied: applied ? { revision: applied, at: '2026-11-26T10:00:00Z' } : undefined,
    });
  it.each([
    ['on the branch, differs (a deploy is due)', plan('abc', true), true, undefined],
    ['off the branch, equal to it', plan('abc-dirty', false), false, undefined],
    ['never applied', plan(undefined, true), false, undefined],
    [
      'off the branch and different',
      plan('abc-dirty', true),
      false,
      'the host was last applied from abc-dirty (2026-11-26T10:00:00Z), which is not on branch main, and differs ' +
        'from the branch: an apply from an unmerged branch or by hand',
    ],
  ])('%s', (_, p, onBranch, want) => {
    expect(outOfBandDrift(p, onBranch, 'main')).toBe(want);
  });
});

describe('splitSuspended: spec.policy.suspend', () => {
  const item = (name: string, suspend = false, cluster?: string) => ({ name, suspend, cluster });
  it.each([
    ['nothing suspended', [item('a'), item('b')], ['a', 'b'], []],
    ['one standalone host', [item('a', true), item('b')], ['b'], ['a']],
    [
      'a suspended member holds its whole cluster, other clusters go on',
      [item('c1', true, 'core'), item('c2', false, 'core'), item('e1', false, 'edge'), item('s')],
      ['e1', 's'],
      ['c1', 'c2'],
    ],
  ])('%s', (_, items, active, suspended) => {
    const r = splitSuspended(items);
    expect([r.active.map((x) => x.name), r.suspended.map((x) => x.name)]).toEqual([active, suspended]);
  });
});

describe('mergeDeployReport and nextRetryAt: one deploy comment per revision, edited as retries recover', () => {
  const r = (host: string, outcome: ApplyResult['outcome']): ApplyResult => ({
    host,
    outcome,
    health: outcome === 'applied' ? 'Healthy' : 'Degraded',
    steps: [],
    changedFiles: [],
    durationMs: 1,
  });
  it('a retry replaces its hosts rows and keeps the others; a new revision starts over', () => {
    const first = mergeDeployReport(
      undefined,
      'rev1',
      [r('a', 'applied'), r('b', 'failed')],
      [{ host: 'c', error: 'down' }],
    );
    const retried = mergeDeployReport(first, 'rev1', [r('b', 'applied'), r('c', 'applied')], []);
    expect(retried.results.map((x) => `${x.host}:${x.outcome}`)).toEqual(['a:applied', 'b:applied', 'c:applied']);
    expect(retried.unreachable).toEqual([]);
    expect(mergeDeployReport(retried, 'rev2', [r('a', 'unchanged')], []).results.map((x) => x.host)).toEqual(['a']);
  });
  it('the next retry of a revision is its earliest', () => {
    const retry = (revision: string, nextAttemptAt: number) => ({
      revision,
      attempts: 1,
      nextAttemptAt,
      lastError: '',
    });
    expect(nextRetryAt({ a: retry('rev1', 300), b: retry('rev1', 200), c: retry('rev0', 100) }, 'rev1')).toBe(200);
    expect(nextRetryAt({}, 'rev1')).toBeUndefined();
  });
});
