// Batches of a standalone-host rollout: canary first, then a size or a share; when the rollout stops;
// which changes roll in batches; hosts grouped by the controller's policies per label; the plan's words.
import { describe, expect, it } from 'vitest';
import {
  batchesByPolicy,
  describeBatches,
  formatBatches,
  groupByPolicy,
  rolloutStops,
  rollsInBatches,
  standaloneBatches,
  type PolicyGroup,
  type RolloutPolicy,
} from '../../controller/plan/batches.js';
import { hostPlan } from '../helpers/plans.js';
import type { HostPlan } from '../../controller/plan/types.js';

const six = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];

describe('standaloneBatches', () => {
  it.each([
    [{}, [six]],
    [
      { size: 2 },
      [
        ['h1', 'h2'],
        ['h3', 'h4'],
        ['h5', 'h6'],
      ],
    ],
    [
      { size: 4 },
      [
        ['h1', 'h2', 'h3', 'h4'],
        ['h5', 'h6'],
      ],
    ],
    [{ canary: 1, size: 2 }, [['h1'], ['h2', 'h3'], ['h4', 'h5'], ['h6']]],
    [
      { percent: 50 },
      [
        ['h1', 'h2', 'h3'],
        ['h4', 'h5', 'h6'],
      ],
    ],
    [{ percent: 10 }, six.map((h) => [h])],
    [{ canary: 10 }, [six]],
    [{ size: 0 }, six.map((h) => [h])],
  ])('%j', (policy, want) => {
    expect(standaloneBatches(six, policy)).toEqual(want);
  });

  it('no hosts, no batches', () => {
    expect(standaloneBatches([], { size: 2 })).toEqual([]);
  });
});

describe('rolloutStops', () => {
  it.each([
    [0, {}, false],
    [1, {}, true],
    [1, { maxFailures: 1 }, false],
    [2, { maxFailures: 1 }, true],
  ])('%i failed with %j: %s', (failed, policy, stops) => {
    expect(rolloutStops(failed, policy)).toBe(stops);
  });
});

it('formatBatches', () => {
  expect(formatBatches([['h1'], ['h2', 'h3']])).toBe('batches: [h1] -> [h2, h3]');
});

describe('groupByPolicy: the first policy whose selector matches a host is its own; the default for the rest', () => {
  const hosts: { name: string; labels: Record<string, string> }[] = [
    { name: 'edge-1', labels: { env: 'prod', tier: 'edge' } },
    { name: 'core-1', labels: { env: 'prod', tier: 'core' } },
    { name: 'stage-1', labels: { env: 'stage' } },
    { name: 'edge-2', labels: { env: 'prod', tier: 'edge' } },
    { name: 'bare', labels: {} },
  ];
  it.each<[string, RolloutPolicy, PolicyGroup[]]>([
    [
      'no policy per label: one group, the default',
      { size: 2 },
      [{ policy: { size: 2 }, hosts: ['edge-1', 'core-1', 'stage-1', 'edge-2', 'bare'] }],
    ],
    [
      'a label policy and the default',
      { size: 10, byLabel: [{ selector: 'env=prod,tier=edge', canary: 1, size: 1 }] },
      [
        { selector: 'env=prod,tier=edge', policy: { canary: 1, size: 1 }, hosts: ['edge-1', 'edge-2'] },
        { policy: { size: 10 }, hosts: ['core-1', 'stage-1', 'bare'] },
      ],
    ],
    [
      'first match wins: edge hosts match both, they take the first',
      {
        byLabel: [
          { selector: 'tier=edge', percent: 50 },
          { selector: 'env=prod', maxFailures: 2 },
        ],
      },
      [
        { selector: 'tier=edge', policy: { percent: 50 }, hosts: ['edge-1', 'edge-2'] },
        { selector: 'env=prod', policy: { maxFailures: 2 }, hosts: ['core-1'] },
        { policy: {}, hosts: ['stage-1', 'bare'] },
      ],
    ],
    [
      'a policy no host matches and an empty default: left out',
      {
        byLabel: [
          { selector: 'env=dev', size: 1 },
          { selector: 'env', size: 3 },
        ],
      },
      [
        { selector: 'env', policy: { size: 3 }, hosts: ['edge-1', 'core-1', 'stage-1', 'edge-2'] },
        { policy: {}, hosts: ['bare'] },
      ],
    ],
    [
      'negations select the others',
      { byLabel: [{ selector: 'env!=prod', size: 5 }] },
      [
        { selector: 'env!=prod', policy: { size: 5 }, hosts: ['stage-1', 'bare'] },
        { policy: {}, hosts: ['edge-1', 'core-1', 'edge-2'] },
      ],
    ],
  ])('%s', (_t, policy, want) => {
    expect(groupByPolicy(hosts, policy)).toEqual(want);
  });

  it('no hosts, no groups', () => {
    expect(groupByPolicy([], { byLabel: [{ selector: 'env=prod', size: 1 }] })).toEqual([]);
  });
});

describe('rollsInBatches: changes that restart, start or stop NATS, and hosts not planned', () => {
  const step = (s: string) => ({ step: s, reason: 'x' }) as HostPlan['steps'][number];
  it.each<[string, HostPlan | undefined, boolean]>([
    ['a restart', hostPlan({ steps: [step('restart')] }), true],
    ['a first start', hostPlan({ steps: [step('start')] }), true],
    ['a decommission (stop)', hostPlan({ steps: [step('stop'), step('disable')] }), true],
    ['not reached', hostPlan({ sync: 'Unknown', error: 'timeout' }), true],
    ['no plan', undefined, true],
    ['a reload goes at once', hostPlan({ steps: [step('test-config'), step('reload')] }), false],
    ['nothing to do', hostPlan({}), false],
  ])('%s: %s', (_t, plan, want) => {
    expect(rollsInBatches(plan)).toBe(want);
  });
});

describe("describeBatches: the plan comment's words", () => {
  it.each<[string, string[][], Parameters<typeof describeBatches>[1], string]>([
    [
      'a canary, then batches, stop at the first failure',
      [['nats-a'], ['nats-b', 'nats-c']],
      { canary: 1, size: 2 },
      'batch 1 (canary): nats-a; batch 2: nats-b, nats-c; stops after 1 failure',
    ],
    [
      'a pause, two failures tolerated',
      [['a', 'b'], ['c']],
      { size: 2, pauseSec: 30, maxFailures: 2 },
      'batch 1: a, b; batch 2: c; 30 s between batches; stops after 3 failures',
    ],
    ['one batch: nothing to stop', [['a', 'b']], {}, 'batch 1: a, b'],
  ])('%s', (_t, batches, policy, want) => {
    expect(describeBatches(batches, policy)).toBe(want);
  });
});

it("batchesByPolicy: each policy's hosts in their own batches", () => {
  const hosts = ['e1', 'e2', 'e3', 'c1', 'c2'].map((name) => ({
    name,
    labels: { tier: name[0] === 'e' ? 'edge' : 'core' },
  }));
  expect(batchesByPolicy(hosts, { size: 5, byLabel: [{ selector: 'tier=edge', canary: 1, size: 1 }] })).toEqual([
    { selector: 'tier=edge', policy: { canary: 1, size: 1 }, batches: [['e1'], ['e2'], ['e3']] },
    { policy: { size: 5 }, batches: [['c1', 'c2']] },
  ]);
});
