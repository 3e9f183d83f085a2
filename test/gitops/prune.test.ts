// Hosts whose manifest left the branch, as tables: with the controller's `prune: true` they are
// decommissioned (NatsCluster members excepted: left unmanaged, with why); without, they keep running
// unmanaged; a failed decommission is tried again when due, and dropped once the manifest is back.
import { describe, expect, it } from 'vitest';
import {
  clusterMemberWhy,
  endpointTakenWhy,
  PRUNE_OFF_WHY,
  pruneDecision,
  prunesDue,
  type PruneDecision,
  type PruneItem,
} from '../../controller/gitops/decide.js';
import type { HostRetry } from '../../controller/gitops/state.js';

const a = { name: 'nats-a', endpoint: '10.0.0.1:22' };
const b = { name: 'nats-b', endpoint: '10.0.0.2:22' };
const m1 = { name: 'core-1', cluster: 'core', endpoint: '10.0.1.1:22' };
const m2 = { name: 'core-2', cluster: 'core', endpoint: '10.0.1.2:22' };
/** The hosts of the new revision, by name (at the same endpoints as before). */
const at = (...names: string[]) => names.map((name) => [a, b, m1, m2].find((h) => h.name === name)!);

describe('pruneDecision', () => {
  it.each<[string, PruneItem[], PruneItem[], boolean, PruneDecision]>([
    ['nothing deleted', [a, b], at('nats-a', 'nats-b'), true, { decommission: [], unmanaged: [] }],
    ['a host added', [a], at('nats-a', 'nats-b'), true, { decommission: [], unmanaged: [] }],
    ['deleted, prune on: decommissioned', [a, b], at('nats-a'), true, { decommission: ['nats-b'], unmanaged: [] }],
    [
      'deleted, prune off: unmanaged',
      [a, b],
      at('nats-a'),
      false,
      { decommission: [], unmanaged: [{ host: 'nats-b', why: PRUNE_OFF_WHY }] },
    ],
    ['several deleted: sorted by name', [b, a], [], true, { decommission: ['nats-a', 'nats-b'], unmanaged: [] }],
    [
      'a cluster member deleted, prune on: unmanaged (quorum), never decommissioned',
      [a, m1, m2],
      at('nats-a', 'core-1'),
      true,
      { decommission: [], unmanaged: [{ host: 'core-2', why: clusterMemberWhy('core') }] },
    ],
    [
      'a whole cluster and a standalone host deleted, prune on',
      [a, m1, m2],
      at(),
      true,
      {
        decommission: ['nats-a'],
        unmanaged: [
          { host: 'core-1', why: clusterMemberWhy('core') },
          { host: 'core-2', why: clusterMemberWhy('core') },
        ],
      },
    ],
    ['a manifest renamed (same host name): nothing', [a], at('nats-a'), true, { decommission: [], unmanaged: [] }],
    [
      "a host renamed (its SSH endpoint now another name's): never decommissioned",
      [a, b],
      [a, { name: 'nats-c', endpoint: b.endpoint }],
      true,
      { decommission: [], unmanaged: [{ host: 'nats-b', why: endpointTakenWhy('10.0.0.2:22', 'nats-c') }] },
    ],
  ])('%s', (_t, before, after, prune, want) => {
    expect(pruneDecision(before, after, prune)).toEqual(want);
  });

  it('says why a member is kept and how to decommission it', () => {
    expect(clusterMemberWhy('core')).toBe(
      'it was a member of NatsCluster core, and decommissioning a member alone could break its quorum: it keeps ' +
        'running, unmanaged. To decommission it, remove it from the cluster with `state: absent` in one change ' +
        "(the cluster's rollout takes it out), then delete its manifest",
    );
  });
});

describe('prunesDue', () => {
  const retry = (nextAttemptAt: number): HostRetry => ({ revision: 'r2', attempts: 1, nextAttemptAt, lastError: 'x' });
  it.each<[string, Record<string, string>, Record<string, HostRetry>, string[], { run: string[]; drop: string[] }]>([
    ['none pending', {}, {}, [], { run: [], drop: [] }],
    ['pending, never tried', { 'nats-b': 'r1' }, {}, ['nats-a'], { run: ['nats-b'], drop: [] }],
    ['failed, retry due', { 'nats-b': 'r1' }, { 'nats-b': retry(1000) }, [], { run: ['nats-b'], drop: [] }],
    ['failed, retry not yet due', { 'nats-b': 'r1' }, { 'nats-b': retry(5000) }, [], { run: [], drop: [] }],
    [
      'the manifest is back: dropped',
      { 'nats-b': 'r1' },
      { 'nats-b': retry(0) },
      ['nats-b'],
      { run: [], drop: ['nats-b'] },
    ],
  ])('%s', (_t, pending, retries, branch, want) => {
    expect(prunesDue(pending, retries, 2000, branch)).toEqual(want);
  });
});
