// Owns the batches of a standalone-host rollout (hosts that are not NatsCluster members): a canary
// first, then batches of a fixed size or a share of the hosts, stopping when more hosts failed than
// the policy tolerates. Pure; reconcile/ runs the batches in order.
export interface BatchPolicy {
  /** Hosts per batch (after the canary). */
  size?: number;
  /** Or a share of the hosts per batch, 1 to 100 (rounded up, at least one host). */
  percent?: number;
  /** Hosts in a first batch of their own (0: none). */
  canary?: number;
  /** Seconds to wait between two batches. */
  pauseSec?: number;
  /** The rollout stops once more hosts than this failed (default 0: at the first failure). */
  maxFailures?: number;
}

/** The hosts in batches, in the order given; one batch of all of them without a size or share. */
export function standaloneBatches(hosts: readonly string[], p: BatchPolicy): string[][] {
  if (!hosts.length) return [];
  const canary = Math.min(p.canary ?? 0, hosts.length);
  const rest = hosts.slice(canary);
  const size = p.size ?? (p.percent ? Math.max(1, Math.ceil((hosts.length * p.percent) / 100)) : rest.length);
  const out = canary ? [hosts.slice(0, canary)] : [];
  for (let i = 0; i < rest.length; i += Math.max(1, size)) out.push(rest.slice(i, i + Math.max(1, size)));
  return out;
}

/** Whether the rollout stops after a batch, given how many hosts failed so far. */
export const rolloutStops = (failedSoFar: number, p: BatchPolicy) => failedSoFar > (p.maxFailures ?? 0);

/** "batches: [a, b] -> [c, d] -> [e]" (the plan's line). */
export const formatBatches = (batches: readonly (readonly string[])[]) =>
  `batches: ${batches.map((b) => `[${b.join(', ')}]`).join(' -> ')}`;
