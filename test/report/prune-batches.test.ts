// The plan comment says what merging does to hosts whose manifest is deleted under the controller's
// `prune` setting, and shows the batches the standalone hosts whose change restarts roll in; the deploy
// comment says which hosts were decommissioned, which are not yet, and which were left unmanaged (why).
import { describe, expect, it } from 'vitest';
import type { ApplyResult } from '../../controller/apply/result.js';
import { hostPlan } from '../helpers/plans.js';
import type { HostPlan } from '../../controller/plan/types.js';
import { batchesSection, deployComment, planComment, pruneOutcome } from '../../controller/report/markdown.js';

const SHA = 'b'.repeat(40);
const step = (s: string) => ({ step: s, reason: 'x' }) as HostPlan['steps'][number];
const result = (host: string, r: Partial<ApplyResult> = {}): ApplyResult => ({
  host,
  outcome: 'applied',
  health: 'Missing',
  steps: ['stop', 'disable', 'remove-container', 'daemon-reload'],
  changedFiles: ['/etc/systemd/system/nats.service'],
  durationMs: 1,
  ...r,
});

describe('the plan of a pull request that deletes manifests, with prune: true', () => {
  it('says the host will be decommissioned, with the manifest of before the merge, data kept', () => {
    expect(planComment({ sha: SHA, plans: [], prune: { decommission: ['nats-b'], unmanaged: [] } })).toBe(
      [
        `### natsfleet plan for ${SHA.slice(0, 12)}`,
        '',
        ":wastebasket: **nats-b will be decommissioned** when this is merged (the controller's `prune: true`): " +
          'natsfleet stops and disables NATS and removes its unit, container and proxy, reaching the host with ' +
          'its manifest of the branch before the merge; its data is kept. Then natsfleet forgets it.',
        '',
      ].join('\n'),
    );
  });

  it('several hosts, and a cluster member left unmanaged with why', () => {
    const body = planComment({
      sha: SHA,
      plans: [],
      prune: { decommission: ['nats-a', 'nats-b'], unmanaged: [{ host: 'core-3', why: 'it was a member' }] },
    });
    expect(body).toContain(':wastebasket: **nats-a, nats-b will be decommissioned** when this is merged');
    expect(body).toContain('reaching each host with their manifest of the branch before the merge; their data is kept');
    expect(body).toContain(':wave: **core-3 will no longer be managed**: it was a member.');
    expect(body).not.toContain('No host manifest changed');
  });
});

describe('the batches of standalone hosts in the plan comment', () => {
  it.each([
    [
      'the default policy: one line',
      [{ policy: { canary: 1, size: 2 }, batches: [['nats-a'], ['nats-b', 'nats-c']] }],
      'rollout: batch 1 (canary): nats-a; batch 2: nats-b, nats-c; stops after 1 failure',
    ],
    [
      'policies per label: a line each, the default as the other hosts',
      [
        { selector: 'env=prod,tier=edge', policy: { canary: 1, pauseSec: 60 }, batches: [['e1'], ['e2', 'e3']] },
        { policy: {}, batches: [['x1', 'x2']] },
      ],
      '- `env=prod,tier=edge`: batch 1 (canary): e1; batch 2: e2, e3; 60 s between batches; stops after 1 failure\n' +
        '- other hosts: batch 1: x1, x2',
    ],
  ])('%s', (_t, groups, lines) => {
    expect(batchesSection(groups)).toBe(
      `#### Rollout of standalone hosts\n\n${lines}\n\nChanges that only reload or write files go at once.`,
    );
  });

  it('a host name cannot open HTML or mention anyone', () => {
    expect(batchesSection([{ policy: {}, batches: [['<b>@team']] }])).toContain('rollout: batch 1: &lt;b>@\u200bteam');
  });

  it('is part of the plan comment, after the table', () => {
    const plans = ['nats-a', 'nats-b'].map((host) => hostPlan({ host, sync: 'OutOfSync', steps: [step('restart')] }));
    const body = planComment({
      sha: SHA,
      plans,
      batches: [{ policy: { size: 1 }, batches: [['nats-a'], ['nats-b']] }],
    });
    expect(body).toContain('\n\n#### Rollout of standalone hosts\n\nrollout: batch 1: nats-a; batch 2: nats-b; stops');
    expect(body.indexOf('| nats-b |')).toBeLessThan(body.indexOf('#### Rollout of standalone hosts'));
  });
});

describe('the deploy comment of a revision that deleted manifests', () => {
  it('says which host was decommissioned, with its row in the table', () => {
    const body = deployComment(SHA, [result('nats-b')], [], [], [], undefined, { decommissioned: ['nats-b'] });
    expect(body).toContain('| nats-b | :white_check_mark: applied | Missing | stop | 1 |');
    expect(body).toContain(
      ":wastebasket: **Decommissioned, its manifest deleted** (the controller's `prune: true`): nats-b. NATS is " +
        'stopped and disabled, its unit, container and proxy removed; its data is kept. natsfleet no longer ' +
        'manages it.',
    );
  });

  it.each<[string, ApplyResult[], { host: string; error: string }[], string[]]>([
    [
      'one done, one unreachable: the latter not yet',
      [result('nats-a')],
      [{ host: 'nats-b', error: 'timed out' }],
      [
        ":wastebasket: **Decommissioned, its manifest deleted** (the controller's `prune: true`): nats-a. NATS " +
          'is stopped and disabled, its unit, container and proxy removed; its data is kept. natsfleet no longer ' +
          'manages it.',
        ':x: **Not decommissioned yet**: nats-b (manifest deleted, `prune: true`): tried again with backoff ' +
          'until done, or until the manifest is back.',
      ],
    ],
    [
      'a failed apply is not decommissioned',
      [result('nats-a', { outcome: 'failed', health: 'Degraded', error: 'x' })],
      [],
      [
        ':x: **Not decommissioned yet**: nats-a (manifest deleted, `prune: true`): tried again with backoff ' +
          'until done, or until the manifest is back.',
      ],
    ],
  ])('%s', (_t, results, unreachable, want) => {
    const hosts = [...results.map((r) => r.host), ...unreachable.map((u) => u.host)];
    expect(pruneOutcome({ decommissioned: hosts }, results, unreachable)).toEqual(want);
  });

  it('hosts left unmanaged are named with why', () => {
    expect(
      pruneOutcome({ unmanaged: [{ host: 'core-3', why: 'it was a member of NatsCluster core' }] }, [], []),
    ).toEqual([':wave: core-3 keeps running, unmanaged: it was a member of NatsCluster core.']);
  });

  it('nothing deleted: nothing said', () => {
    expect(pruneOutcome({}, [result('nats-a')], [])).toEqual([]);
    expect(deployComment(SHA, [result('nats-a')], [])).not.toContain('Decommissioned');
  });
});
