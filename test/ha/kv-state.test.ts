// The replicas' state split into KV documents and back, and the three-way merge of a conflicting write.
import { describe, expect, it } from 'vitest';
import { CONTROLLER_KEY, hostKey, joinState, mergeDoc, splitState } from '../../controller/ha/kv-state.js';
import { emptyState, type ControllerState } from '../../controller/gitops/state.js';

const state: ControllerState = {
  ...emptyState(),
  appliedRevision: 'abc',
  pullHeads: { '7': 'def' },
  planComments: { '7': 12 },
  hostFingerprints: { n1: 'f1', n2: 'f2' },
  retries: { n2: { revision: 'abc', attempts: 2, nextAttemptAt: 5, lastError: 'x' } },
  driftIssues: { n1: { number: 3, fingerprint: 'd' } },
  suspended: { n1: { since: '2026-11-27T00:00:00Z' } },
  results: { n2: { revision: 'abc', error: 'unreachable' } },
};

describe('splitState / joinState', () => {
  it('puts the fleet-wide fields in one document and each host in its own', () => {
    const docs = splitState(state);
    expect([...docs.keys()].sort()).toEqual([CONTROLLER_KEY, hostKey('n1'), hostKey('n2')]);
    expect(docs.get(hostKey('n1'))).toEqual({
      fingerprint: 'f1',
      driftIssue: { number: 3, fingerprint: 'd' },
      suspended: { since: '2026-11-27T00:00:00Z' },
    });
    expect(docs.get(CONTROLLER_KEY)).not.toHaveProperty('hostFingerprints');
    expect(docs.get(CONTROLLER_KEY)).toMatchObject({ appliedRevision: 'abc', pullHeads: { '7': 'def' } });
  });
  it('joins back to the same state', () => {
    expect(joinState(splitState(state))).toEqual(state);
  });
  it('an empty bucket is a fresh state', () => expect(joinState(new Map())).toEqual(emptyState()));
});

describe('mergeDoc', () => {
  it.each([
    ['their field survives a write of another field', { a: 1 }, { a: 1, b: 2 }, { a: 1, c: 3 }, { a: 1, b: 2, c: 3 }],
    ['our change wins on the field we changed', { a: 1 }, { a: 2 }, { a: 5 }, { a: 2 }],
    ['a field we did not touch is theirs', { a: 1, b: 1 }, { a: 1, b: 2 }, { a: 9, b: 1 }, { a: 9, b: 2 }],
    ['a field we removed is removed', { a: 1, b: 1 }, { b: 1 }, { a: 1, b: 7 }, { b: 7 }],
    ['nothing left: the document goes', { a: 1 }, undefined, { a: 1 }, undefined],
    ['a new document meets one written meanwhile', undefined, { a: 1 }, { b: 2 }, { a: 1, b: 2 }],
  ])('%s', (_, base, ours, theirs, want) => {
    expect(mergeDoc(base, ours, theirs)).toEqual(want);
  });
});
