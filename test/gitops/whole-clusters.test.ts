// Which hosts a deploy or a pull-request plan takes: the due ones, and every member of a cluster one of
// them is in (a rollout judges quorum on all members). Matched by name, whatever objects carry them.
import { describe, expect, it } from 'vitest';
import { withWholeClusters } from '../../controller/gitops/decide.js';

const ALL = [
  { name: 'eu-1' },
  { name: 'core-1', cluster: 'core' },
  { name: 'core-2', cluster: 'core' },
  { name: 'edge-1', cluster: 'edge' },
  { name: 'us-1' },
];
const names = (xs: { name: string }[]) => xs.map((x) => x.name);
const copies = (...n: string[]) => ALL.filter((h) => n.includes(h.name)).map((h) => ({ ...h }));

describe('withWholeClusters', () => {
  it.each([
    [[], []],
    [['eu-1'], ['eu-1']],
    [
      ['eu-1', 'us-1'],
      ['eu-1', 'us-1'],
    ],
    [['core-2'], ['core-1', 'core-2']],
    [
      ['core-1', 'us-1'],
      ['core-1', 'core-2', 'us-1'],
    ],
    [['edge-1'], ['edge-1']],
  ])('due %j -> %j (in the fleet order)', (due, want) => {
    expect(names(withWholeClusters(copies(...due), ALL))).toEqual(want);
  });
});
