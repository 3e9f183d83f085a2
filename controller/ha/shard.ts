// Owns how hosts are shared between controller replicas: rendezvous (highest random weight) hashing of a
// host's shard key over the live replicas. A cluster's members share one key (the cluster's name), so one
// replica rolls a whole cluster and its quorum gate sees every member; a standalone host is its own key.
// Pure: the same inputs give the same owner on every replica, and a replica leaving moves only its hosts.
import { createHash } from 'node:crypto';

/** The shard key of a host: its cluster's name when it is a member, else its own name. */
export const shardKey = (host: string, cluster?: string): string => (cluster ? `cluster/${cluster}` : `host/${host}`);

const weight = (key: string, replica: string): bigint =>
  createHash('sha256').update(key).update('\0').update(replica).digest().readBigUInt64BE(0);

/** The replica that should own `key` among `replicas` (undefined when there is none). */
export function ownerOf(key: string, replicas: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1n;
  for (const r of replicas) {
    const w = weight(key, r);
    if (w > bestWeight || (w === bestWeight && best !== undefined && r < best)) [best, bestWeight] = [r, w];
  }
  return best;
}
