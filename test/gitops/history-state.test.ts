// The applies the controller's state remembers per host: the last 20, applies and failures (a retry of
// the same failure counted on one entry, not filling the list), never unchanged or blocked runs; a state
// file written before the history existed still loads, and a history of the wrong shape is refused.
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CONTROLLER_HISTORY_LIMIT,
  emptyState,
  StateStore,
  stateShapeProblem,
  withApply,
  type AppliedEntry,
} from '../../controller/gitops/state.js';

const e = (revision: string, outcome = 'applied', reason?: string): AppliedEntry => ({
  revision,
  at: `2026-11-27T00:00:00Z`,
  outcome,
  steps: outcome === 'applied' ? ['reload'] : [],
  ...(reason ? { reason } : {}),
});

describe('withApply', () => {
  it.each<[string, AppliedEntry[], AppliedEntry, AppliedEntry[]]>([
    ['the first apply', [], e('a'), [e('a')]],
    ['another apply', [e('a')], e('b'), [e('a'), e('b')]],
    ['the same revision applied again (drift corrected)', [e('a')], e('a'), [e('a'), e('a')]],
    ['an unchanged run is not an apply', [e('a')], e('b', 'unchanged'), [e('a')]],
    ['a blocked run is not an apply', [e('a')], e('b', 'blocked', 'locked'), [e('a')]],
    ['a failure', [e('a')], e('b', 'failed', 'pull-failed'), [e('a'), e('b', 'failed', 'pull-failed')]],
    [
      'the same failure retried: counted on it',
      [e('a'), e('b', 'failed', 'pull-failed')],
      e('b', 'failed', 'pull-failed'),
      [e('a'), { ...e('b', 'failed', 'pull-failed'), attempts: 2 }],
    ],
    [
      'a third time',
      [{ ...e('b', 'rolled-back', 'verify-failed'), attempts: 2 }],
      e('b', 'rolled-back', 'verify-failed'),
      [{ ...e('b', 'rolled-back', 'verify-failed'), attempts: 3 }],
    ],
    [
      'another failure of the same revision: its own entry',
      [e('b', 'failed', 'pull-failed')],
      e('b', 'rolled-back', 'verify-failed'),
      [e('b', 'failed', 'pull-failed'), e('b', 'rolled-back', 'verify-failed')],
    ],
  ])('%s', (_t, before, added, after) => {
    expect(withApply(before, added)).toEqual(after);
  });

  it(`keeps the last ${CONTROLLER_HISTORY_LIMIT}, oldest first`, () => {
    let list: AppliedEntry[] | undefined;
    for (let i = 0; i < 30; i++) list = withApply(list, e(`r${i}`));
    expect(list!.map((x) => x.revision)).toEqual(Array.from({ length: 20 }, (_, i) => `r${i + 10}`));
  });
});

describe('the state file with histories', () => {
  it('round-trips; a state file from before the history loads as it is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-state-'));
    writeFileSync(join(dir, 'state.json'), JSON.stringify({ appliedRevision: 'abc', hostFingerprints: { h: 'f' } }));
    const store = new StateStore(dir);
    const old = store.load();
    expect(store.recovered).toBeUndefined();
    expect(old.appliedRevision).toBe('abc');
    expect(old.history).toBeUndefined();
    const st = { ...emptyState(), history: { h: [e('a'), e('b', 'failed', 'unreachable')] } };
    store.save(st);
    expect(new StateStore(dir).load()).toEqual(st);
  });

  it.each([
    [{ history: [] }, 'history is not an object'],
    [{ history: { h: {} } }, 'history.h has the wrong shape'],
    [{ history: { h: [{ revision: 'a', at: 't', outcome: 'applied' }] } }, 'history.h has the wrong shape'],
    [{ history: { h: [{ revision: 1, at: 't', outcome: 'applied', steps: [] }] } }, 'history.h has the wrong shape'],
  ])('refuses %j', (v, why) => {
    expect(stateShapeProblem(v)).toBe(why);
  });

  it('accepts histories of the right shape', () => {
    expect(stateShapeProblem({ history: { h: [e('a')], g: [] } })).toBeUndefined();
  });
});
