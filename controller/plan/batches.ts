// Owns the batches of a standalone-host rollout (hosts that are not NatsCluster members): a canary
// first, then batches of a fixed size or a share of the hosts, stopping when more hosts failed than
// the policy tolerates; and the controller's policies per label (hosts grouped by the first selector
// that matches them, each group rolled in its own batches). Pure; reconcile/ runs the batches in order.
import { matches, parseSelector } from '../manifest/selector.js';
import type { HostPlan } from './types.js';

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

/**
 * Whether a host's change is rolled in batches: it restarts, starts or stops NATS, or the host could not
 * be planned (it takes its place in a batch, where it counts as a failure). A reload or a file alone
 * goes at once.
 */
export const rollsInBatches = (p: HostPlan | undefined) =>
  !p || p.sync === 'Unknown' || p.steps.some((s) => s.step === 'restart' || s.step === 'start' || s.step === 'stop');

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

/** A policy for the hosts a label selector matches (`env=prod,tier=edge`, as `-l` reads it). */
export interface LabelPolicy extends BatchPolicy {
  selector: string;
}

/**
 * The controller's rollout: the default policy, and policies per label (the first whose selector matches
 * a host is that host's; a host matching none gets the default).
 */
export interface RolloutPolicy extends BatchPolicy {
  byLabel?: readonly LabelPolicy[];
}

/** The hosts of one policy, rolled in batches of their own. `selector` is undefined for the default. */
export interface PolicyGroup {
  selector?: string;
  policy: BatchPolicy;
  hosts: string[];
}

/** A policy's own settings: a LabelPolicy without its selector, a RolloutPolicy without byLabel. */
function own(p: BatchPolicy): BatchPolicy {
  const { size, percent, canary, pauseSec, maxFailures } = p;
  const set = Object.entries({ size, percent, canary, pauseSec, maxFailures }).filter(([, v]) => v !== undefined);
  return Object.fromEntries(set);
}

/**
 * Hosts grouped by their policy (first matching selector wins; the default for the rest), groups in the
 * order of `byLabel`, the default's last, hosts in the order given; groups without hosts are left out.
 */
export function groupByPolicy(
  hosts: readonly { name: string; labels: Readonly<Record<string, string>> }[],
  p: RolloutPolicy,
): PolicyGroup[] {
  const rules = (p.byLabel ?? []).map((l) => ({ l, selector: parseSelector(l.selector) }));
  const groups: PolicyGroup[] = [
    ...rules.map(({ l }) => ({ selector: l.selector, policy: own(l), hosts: [] as string[] })),
    { policy: own(p), hosts: [] },
  ];
  for (const h of hosts) {
    const i = rules.findIndex((r) => matches(r.selector, h.labels));
    groups[i < 0 ? rules.length : i].hosts.push(h.name);
  }
  return groups.filter((g) => g.hosts.length);
}

/**
 * A group's batches in a reviewer's words, as the plan comment shows them:
 * "batch 1 (canary): nats-a; batch 2: nats-b, nats-c; 30 s between batches; stops after 1 failure".
 */
export function describeBatches(batches: readonly (readonly string[])[], p: BatchPolicy): string {
  const parts = batches.map((b, i) => `batch ${i + 1}${i === 0 && p.canary ? ' (canary)' : ''}: ${b.join(', ')}`);
  if (batches.length > 1 && p.pauseSec) parts.push(`${p.pauseSec} s between batches`);
  const failures = (p.maxFailures ?? 0) + 1;
  if (batches.length > 1) parts.push(`stops after ${failures} failure${failures === 1 ? '' : 's'}`);
  return parts.join('; ');
}

/** One policy's hosts in their batches, as a plan shows them. */
export interface GroupBatches {
  selector?: string;
  policy: BatchPolicy;
  batches: string[][];
}

/** The batches of each policy's hosts (groupByPolicy, then standaloneBatches). */
export const batchesByPolicy = (
  hosts: readonly { name: string; labels: Readonly<Record<string, string>> }[],
  p: RolloutPolicy,
): GroupBatches[] =>
  groupByPolicy(hosts, p).map((g) => ({
    ...(g.selector ? { selector: g.selector } : {}),
    policy: g.policy,
    batches: standaloneBatches(g.hosts, g.policy),
  }));
