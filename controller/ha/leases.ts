// Owns the decisions of leader election and host sharding between controller replicas, on plain values:
// which replicas are alive, whether this one leads, which shard leases it takes, takes over or gives back.
// No clock of another machine is trusted: a lease is held as long as its record keeps changing, and a
// record is judged by when THIS replica last saw it change (a monotonic time), as Kubernetes' leader
// election does. A holder stops acting `ttl - renewDeadline` before anyone may take its lease over.
import { ownerOf } from './shard.js';

export interface LeaseTiming {
  /** A record unchanged this long (as seen here) is expired: its lease may be taken over. */
  ttlMs: number;
  /** A holder whose last successful renewal is older than this acts no more (it is below ttlMs). */
  renewDeadlineMs: number;
  /** How often holders renew and everyone re-decides. */
  renewEveryMs: number;
}

/** The timing for a lease TTL: renew every third of it, give up after two thirds of it. */
export function leaseTiming(ttlMs: number): LeaseTiming {
  return { ttlMs, renewDeadlineMs: Math.floor((ttlMs * 2) / 3), renewEveryMs: Math.max(100, Math.floor(ttlMs / 3)) };
}

/** A lease record as this replica last saw it. */
export interface SeenLease {
  /** The replica that holds it. */
  replica: string;
  /** The KV revision of the record (the compare-and-set token). */
  revision: number;
  /** When this replica saw the record change last (monotonic ms). */
  seenAt: number;
}

/** Whether a record unchanged since `seenAt` has expired at `now`. */
export const expired = (seenAt: number, now: number, t: LeaseTiming): boolean => now - seenAt >= t.ttlMs;

/**
 * The replicas alive at `now`: those whose heartbeat changed within the TTL, and this one while its own
 * last renewal is within the renew deadline. Sorted, so every replica computes the same shares.
 */
export function liveReplicas(
  heartbeats: ReadonlyMap<string, number>,
  self: string,
  selfRenewedAt: number | undefined,
  now: number,
  t: LeaseTiming,
): string[] {
  const live = [...heartbeats].filter(([id, seenAt]) => id !== self && !expired(seenAt, now, t)).map(([id]) => id);
  if (selfRenewedAt !== undefined && now - selfRenewedAt < t.renewDeadlineMs) live.push(self);
  return live.sort();
}

/** What to do with one lease record this round. */
export type LeaseAction =
  | { action: 'create'; key: string }
  | { action: 'take-over'; key: string; revision: number; from: string }
  | { action: 'renew'; key: string; revision: number }
  | { action: 'release'; key: string; revision: number };

/**
 * The leader lease: renew it while held, create it when there is none, take it over when its holder's
 * record has not changed for the TTL. A replica that is not alive itself does nothing.
 */
export function leaderAction(
  seen: SeenLease | undefined,
  self: string,
  selfAlive: boolean,
  now: number,
  t: LeaseTiming,
): LeaseAction | undefined {
  if (!selfAlive) return undefined;
  if (!seen) return { action: 'create', key: 'leader' };
  if (seen.replica === self) return { action: 'renew', key: 'leader', revision: seen.revision };
  if (expired(seen.seenAt, now, t))
    return { action: 'take-over', key: 'leader', revision: seen.revision, from: seen.replica };
  return undefined;
}

/**
 * The shard leases: each shard key belongs to one live replica (rendezvous hashing over the live ones).
 * Take the ones that are ours and free, or held by a replica no longer alive; give back the ones held
 * here that are another live replica's now (not while a host of them is being applied: `busy`). A shard
 * lease needs no renewal of its own: it lives as long as its holder's heartbeat (as leases attached to an
 * etcd lease do).
 */
export function shardActions(
  shards: readonly string[],
  leases: ReadonlyMap<string, SeenLease>,
  live: readonly string[],
  self: string,
  busy: ReadonlySet<string>,
): LeaseAction[] {
  if (!live.includes(self)) return [];
  const out: LeaseAction[] = [];
  const wanted = new Set(shards);
  for (const key of shards) {
    const owner = ownerOf(key, live);
    const held = leases.get(key);
    if (owner === self) {
      if (!held) out.push({ action: 'create', key });
      else if (held.replica !== self && !live.includes(held.replica))
        out.push({ action: 'take-over', key, revision: held.revision, from: held.replica });
      // Held by another live replica: it gives it back at its next round.
    } else if (held?.replica === self && !busy.has(key)) {
      out.push({ action: 'release', key, revision: held.revision });
    }
  }
  // Leases of shards that left the fleet are given back by their holder.
  for (const [key, held] of leases)
    if (!wanted.has(key) && held.replica === self && !busy.has(key))
      out.push({ action: 'release', key, revision: held.revision });
  return out;
}
