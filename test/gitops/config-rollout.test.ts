// The controller's `prune` and `rollout.byLabel` settings: read from the config file (and NATSFLEET_PRUNE),
// each problem naming the file, the line and the key; a policy per label names its hosts with a selector.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../controller/gitops/config.js';

const dir = mkdtempSync(join(tmpdir(), 'nf-config-rollout-'));
let n = 0;
const base = 'repo: https://example.com/hosts.git\nsshKey: /k\n';

/** The configuration of a file of `text`, or its problems. */
function read(text: string, env: NodeJS.ProcessEnv = {}) {
  const path = join(dir, `c-${n++}.yaml`);
  writeFileSync(path, base + text);
  try {
    return { cfg: resolveConfig({}, env, path), path };
  } catch (e) {
    if (e instanceof ConfigError) return { problems: e.problems, path };
    throw e;
  }
}

describe('prune', () => {
  it.each<[string, string, NodeJS.ProcessEnv, boolean]>([
    ['off by default', '', {}, false],
    ['on in the file', 'prune: true\n', {}, true],
    ['on from NATSFLEET_PRUNE', '', { NATSFLEET_PRUNE: 'true' }, true],
    ['the environment wins over the file', 'prune: true\n', { NATSFLEET_PRUNE: 'false' }, false],
  ])('%s', (_t, text, env, want) => {
    expect(read(text, env).cfg?.prune).toBe(want);
  });

  it('refuses what is not a boolean, naming the line', () => {
    const r = read('prune: yes please\n');
    expect(r.problems).toEqual([`${r.path}:3: prune: must be true or false`]);
  });
});

describe('rollout.byLabel', () => {
  it('reads the default policy and the policies per label, in their order', () => {
    const r = read(
      [
        'rollout:',
        '  batchSize: 5',
        '  byLabel:',
        '    - selector: env=prod,tier=edge',
        '      canary: 1',
        '      batchPercent: 10',
        '      pauseSec: 120',
        '    - selector: env=stage',
        '      maxFailures: 2',
        '',
      ].join('\n'),
    );
    expect(r.cfg?.rollout).toEqual({
      size: 5,
      byLabel: [
        { selector: 'env=prod,tier=edge', canary: 1, percent: 10, pauseSec: 120 },
        { selector: 'env=stage', maxFailures: 2 },
      ],
    });
  });

  it('policies per label without a default', () => {
    expect(read('rollout:\n  byLabel:\n    - selector: tier=edge\n      batchSize: 1\n').cfg?.rollout).toEqual({
      byLabel: [{ selector: 'tier=edge', size: 1 }],
    });
  });

  it.each([
    [
      'a selector that is not one',
      'rollout:\n  byLabel:\n    - selector: "env=prod,,x"\n',
      (p: string) => `${p}:4: rollout.byLabel[0].selector: "env=prod,,x": empty selector term`,
    ],
    [
      'an entry without a selector',
      'rollout:\n  byLabel:\n    - batchSize: 2\n',
      (p: string) =>
        `${p}:5: rollout.byLabel[0]: must be a mapping of selector, batchSize, batchPercent, canary, pauseSec, ` +
        'maxFailures (selector required)',
    ],
    [
      'an unknown key in an entry',
      'rollout:\n  byLabel:\n    - selector: env=prod\n      batches: 2\n',
      (p: string) => `${p}:6: rollout.byLabel[0].batches: unknown key`,
    ],
    [
      'a setting out of range',
      'rollout:\n  byLabel:\n    - selector: env=prod\n      batchPercent: 0\n',
      (p: string) => `${p}:6: rollout.byLabel[0].batchPercent: must be an integer from 1 to 100`,
    ],
  ])('refuses %s, naming the line and the key', (_t, text, want) => {
    const r = read(text);
    expect(r.problems).toEqual([want(r.path)]);
  });
});
