// Leader election and host sharding decisions on plain values (controller/ha/leases.ts, shard.ts).
import { describe, expect, it } from 'vitest';
import { leaderAction, leaseTiming, liveReplicas, shardActions, type SeenLease } from '../../controller/ha/leases.js';
import { ownerOf, shardKey } from '../../controller/ha/shard.js';

const t = leaseTiming(15_000);

describe('leaseTiming', () => {
  it('renews every third of the TTL and gives up after two thirds: a holder stops before others take over', () => {
    expect(t).toEqual({ ttlMs: 15_000, renewDeadlineMs: 10_000, renewEveryMs: 5_000 });
    expect(t.renewDeadlineMs).toBeLessThan(t.ttlMs);
  });
});

describe('liveReplicas', () => {
  const beats = new Map([
    ['a', 100_000],
    ['b', 86_000],
    ['c', 84_999],
  ]);
  it.each([
    ['self renewed just now', 99_000, ['a', 'b', 'me']],
    ['self past its renew deadline', 89_000, ['a', 'b']],
    ['self never renewed', undefined, ['a', 'b']],
  ])('%s', (_, selfAt, want) => {
    expect(liveReplicas(beats, 'me', selfAt, 100_000, t)).toEqual(want);
  });
  it('judges a heartbeat by when it was seen changing here, not by any clock of its writer', () => {
    expect(liveReplicas(new Map([['x', 0]]), 'me', undefined, 14_999, t)).toEqual(['x']);
    expect(liveReplicas(new Map([['x', 0]]), 'me', undefined, 15_000, t)).toEqual([]);
  });
});

describe('leaderAction', () => {
  const seen = (replica: string, seenAt: number): SeenLease => ({ replica, revision: 7, seenAt });
  it.each([
    ['no leader yet: create', undefined, true, 0, { action: 'create', key: 'leader' }],
    ['held here: renew', seen('me', 0), true, 1_000, { action: 'renew', key: 'leader', revision: 7 }],
    ['held by a live other: nothing', seen('b', 0), true, 14_999, undefined],
    [
      'held by a silent other for the TTL: take over',
      seen('b', 0),
      true,
      15_000,
      { action: 'take-over', key: 'leader', revision: 7, from: 'b' },
    ],
    ['not alive itself: nothing, whatever it sees', undefined, false, 0, undefined],
    ['not alive itself: no renewal either', seen('me', 0), false, 0, undefined],
  ])('%s', (_, lease, alive, now, want) => {
    expect(leaderAction(lease, 'me', alive, now, t)).toEqual(want);
  });
});

describe('shardActions', () => {
  const live = ['a', 'b', 'c'];
  const shards = Array.from({ length: 30 }, (_, i) => shardKey(`h${i}`));
  const mineOf = (r: string) => shards.filter((k) => ownerOf(k, live) === r);

  it('creates the leases of its share only; the three shares cover every shard once', () => {
    const all = live.flatMap((r) => shardActions(shards, new Map(), live, r, new Set()).map((a) => a.key));
    expect(all.sort()).toEqual([...shards].sort());
    for (const r of live) expect(mineOf(r).length).toBeGreaterThan(3);
  });

  it('takes over the leases of a replica no longer alive, never those of a live one', () => {
    const key = mineOf('a')[0];
    const heldByC = new Map([[key, { replica: 'c', revision: 3, seenAt: 0 }]]);
    expect(shardActions([key], heldByC, ['a', 'b'], 'a', new Set())).toEqual([
      { action: 'take-over', key, revision: 3, from: 'c' },
    ]);
    // c alive: the key is a's by the shares, but c holds it: a waits for c to give it back.
    expect(shardActions([key], heldByC, live, 'a', new Set())).toEqual([]);
  });

  it('gives back a lease that is another live replica share, unless one of its hosts is being applied', () => {
    const key = mineOf('b')[0];
    const heldByA = new Map([[key, { replica: 'a', revision: 4, seenAt: 0 }]]);
    expect(shardActions([key], heldByA, live, 'a', new Set())).toEqual([{ action: 'release', key, revision: 4 }]);
    expect(shardActions([key], heldByA, live, 'a', new Set([key]))).toEqual([]);
  });

  it('gives back the lease of a host that left the fleet', () => {
    const gone = new Map([['host/old', { replica: 'a', revision: 9, seenAt: 0 }]]);
    expect(shardActions([], gone, live, 'a', new Set())).toEqual([{ action: 'release', key: 'host/old', revision: 9 }]);
  });

  it('a replica that is not alive itself takes and gives back nothing', () => {
    expect(shardActions(shards, new Map(), ['b', 'c'], 'a', new Set())).toEqual([]);
  });
});

describe('ownerOf (rendezvous hashing)', () => {
  it('moves only the leaving replica hosts when a replica leaves', () => {
    const keys = Array.from({ length: 300 }, (_, i) => shardKey(`host-${i}`));
    const before = new Map(keys.map((k) => [k, ownerOf(k, ['r1', 'r2', 'r3'])]));
    for (const k of keys) {
      const after = ownerOf(k, ['r1', 'r3']);
      if (before.get(k) !== 'r2') expect(after).toBe(before.get(k));
      else expect(['r1', 'r3']).toContain(after);
    }
  });
  it('keeps a cluster members together: one shard key per cluster', () => {
    expect(shardKey('nats-1', 'prod')).toBe(shardKey('nats-2', 'prod'));
    expect(shardKey('nats-1')).not.toBe(shardKey('nats-2'));
  });
  it('has no owner without replicas', () => expect(ownerOf('host/x', [])).toBeUndefined());
});
