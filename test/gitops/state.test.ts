// The controller's state file on a bad day: empty, truncated or of the wrong shape, it is moved aside
// with a reason and the controller starts fresh (never refuses to start, never fails every tick).
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyState, StateStore, stateShapeProblem } from '../../controller/gitops/state.js';

describe('StateStore', () => {
  it('round-trips the state, 0600 in a 0700 directory', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'nf-state-')), 'state');
    const store = new StateStore(dir);
    const st = {
      ...emptyState(),
      appliedRevision: 'abc',
      retries: { h: { revision: 'r', attempts: 1, nextAttemptAt: 5, lastError: 'x' } },
    };
    store.save(st);
    expect(new StateStore(dir).load()).toEqual(st);
    expect(statSync(join(dir, 'state.json')).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it.each<[string, string, RegExp]>([
    ['empty', '', /it is empty/],
    ['truncated', '{"appliedRevision": "abc", "retr', /not valid JSON/],
    ['an array', '[1,2]', /not an object/],
    ['a retry of the wrong shape', '{"retries": {"h": {"attempts": "three"}}}', /retries\.h has the wrong shape/],
    ['a revision that is a number', '{"appliedRevision": 7}', /appliedRevision is not a string/],
  ])('%s: moved aside with the reason, a fresh state returned', (_t, text, why) => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-state-'));
    writeFileSync(join(dir, 'state.json'), text);
    const store = new StateStore(dir);
    expect(store.load()).toEqual(emptyState());
    expect(store.recovered).toMatch(why);
    expect(store.recovered).toMatch(/moved to .*state\.json\.corrupt-/);
    expect(existsSync(join(dir, 'state.json'))).toBe(false);
    const aside = readdirSync(dir).find((f) => f.startsWith('state.json.corrupt-'))!;
    expect(readFileSync(join(dir, aside), 'utf8')).toBe(text);
  });

  it('accepts a state written by an older version (missing maps)', () => {
    expect(stateShapeProblem({ appliedRevision: 'a' })).toBeUndefined();
  });

  it.each([
    [{ revision: 'r', results: [], unreachable: [] }, undefined],
    [
      { revision: 'r', results: [{ host: 'h', outcome: 'applied' }], unreachable: [{ host: 'g', error: 'e' }] },
      undefined,
    ],
    [{ revision: 'r', results: {} }, 'lastDeploy has the wrong shape'],
    [{ revision: 'r', results: [{ host: 1 }], unreachable: [] }, 'lastDeploy.results has the wrong shape'],
    [{ revision: 'r', results: [], unreachable: ['h'] }, 'lastDeploy.unreachable has the wrong shape'],
  ])('lastDeploy %j: %s', (lastDeploy, problem) => {
    expect(stateShapeProblem({ lastDeploy })).toBe(problem);
  });
});
