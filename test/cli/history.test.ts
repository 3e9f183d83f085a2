// `natsfleet history HOST` without a host to reach: the table it prints (newest first as given, short
// revisions, a failure with its reason) and the one-line refusal of a host the manifests do not have.
// Reading a real host's history over SSH is proven in test/e2e/history.test.ts.
import { describe, expect, it } from 'vitest';
import { formatHistory } from '../../controller/cli/history.js';
import type { HistoryEntry } from '../../controller/apply/history.js';
import { cli } from '../helpers/cli.js';
import { join } from 'node:path';
import { ROOT } from '../helpers/fixtures.js';

const SHA = 'aaaaaaaaaaaabbbbbbbbbbbbccccccccccccdddd';

describe('the history table', () => {
  it('one row per apply in the order given: time to the second, short revision, outcome, steps, who', () => {
    const entries: HistoryEntry[] = [
      {
        at: '2026-11-27T02:00:05.123Z',
        revision: SHA,
        outcome: 'rolled-back',
        steps: ['test-config', 'restart'],
        reason: 'verify-failed',
        by: 'controller',
        version: '0.1.0',
      },
      {
        at: '2026-11-27T01:00:00.000Z',
        revision: '0123456789ab-dirty',
        outcome: 'applied',
        steps: [],
        by: 'alice@laptop',
        version: '0.1.0',
      },
    ];
    expect(formatHistory(entries)).toEqual([
      'TIME                  REVISION            OUTCOME                      STEPS                 BY            NATSFLEET',
      '2026-11-27T02:00:05Z  aaaaaaaaaaaa        rolled-back (verify-failed)  test-config, restart  controller    0.1.0',
      '2026-11-27T01:00:00Z  0123456789ab-dirty  applied                      -                     alice@laptop  0.1.0',
    ]);
  });
});

describe('the history table: the host writes the file', () => {
  it('a field with a newline cannot forge a row; a huge field is cut, not padded into every row', () => {
    const entry = (by: string): HistoryEntry => ({
      at: '2026-11-27T01:00:00.000Z',
      revision: SHA,
      outcome: 'applied',
      steps: [],
      by,
      version: '0.1.0',
    });
    const lines = formatHistory([entry('mallory\n2026-11-27T00:00:00Z  forged'), entry('x'.repeat(1_000_000))]);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toContain('mallory 2026-11-27T00:00:00Z forged');
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(300);
  });
});

describe('natsfleet history', () => {
  it('a host the manifests do not have: one line, exit 1, no host contacted', async () => {
    const dir = join(ROOT, 'test/fixtures/hosts');
    const r = await cli('history', 'no-such-host', '--hosts', dir);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: no valid host named no-such-host in ${dir} (natsfleet validate ${dir} says why)`);
  });
});
