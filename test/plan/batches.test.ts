// Batches of a standalone-host rollout: canary first, then a size or a share; when the rollout stops.
import { describe, expect, it } from 'vitest';
import { formatBatches, rolloutStops, standaloneBatches } from '../../controller/plan/batches.js';

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
