// Owns the controller's decisions as pure functions of plain values (state, revision, plans, results,
// time): which hosts a revision deploys, which hosts whose manifest left the branch it decommissions
// (prune), retries and their backoff, the pull-request trust rule, the
// commit statuses of plans and deploys with their wording. The Controller class only executes them;
// tests feed these tables, without Git, SSH or GitHub.
import type { HostSpec } from '../manifest/host-spec.js';
import { endpointKey } from '../manifest/load.js';
import type { HostPlan } from '../plan/types.js';
import type { RolloutPlan } from '../plan/rollout.js';
import { isSuccessful, NEEDS_A_PERSON, type ApplyResult, type FailureReason } from '../apply/result.js';
import { hasWork, planVerdict } from '../plan/types.js';
import { sha256 } from '../util/hash.js';
import type { StatusState } from '../report/github.js';
import type { DeployReport, HostRetry, Suspension } from './state.js';

export const BACKOFF_BASE_MS = 15_000;
export const BACKOFF_MAX_MS = 10 * 60_000;

/** One definition of success lives with ApplyResult; re-exported for the controller's rules. */
export { isSuccessful };

/**
 * The next retry of a failed host: attempts count per revision, the delay doubles up to the cap. A
 * failure a retry soon cannot cure (a wrong host key, refused credentials, a refused config, a missing
 * secret, a blocked host) waits the longest delay at once: it is not retried like a network blip.
 */
export function nextRetry(
  prev: HostRetry | undefined,
  revision: string,
  now: number,
  error: string,
  reason?: FailureReason,
): HostRetry {
  const attempts = prev && prev.revision === revision ? prev.attempts + 1 : 1;
  const delay =
    reason && NEEDS_A_PERSON.includes(reason)
      ? BACKOFF_MAX_MS
      : Math.min(BACKOFF_BASE_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS);
  return { revision, attempts, nextAttemptAt: now + delay, lastError: error, ...(reason ? { reason } : {}) };
}

/**
 * The hosts a deploy takes: those due, and every other member of a cluster one of them is in (a rollout
 * judges quorum on all members; members with nothing to do stay unchanged).
 */
export function withWholeClusters<T extends { name: string; cluster?: string }>(
  due: readonly T[],
  all: readonly T[],
): T[] {
  const clusters = new Set(due.flatMap((h) => (h.cluster ? [h.cluster] : [])));
  const names = new Set(due.map((h) => h.name));
  return all.filter((h) => names.has(h.name) || (h.cluster !== undefined && clusters.has(h.cluster)));
}

/**
 * The rollouts of a run's clusters, each once, in the order their first member comes (every member's
 * run carries the same value: the same object, so identity tells them apart).
 */
export function distinctRollouts(runs: readonly { rollout?: RolloutPlan }[]): RolloutPlan[] {
  return [...new Set(runs.flatMap((r) => (r.rollout ? [r.rollout] : [])))];
}

/** Whether a host of revision `head` is deployed now: a due retry, or a desired state not yet applied. */
export function shouldDeploy(
  retry: HostRetry | undefined,
  head: string,
  now: number,
  fingerprint: string | undefined,
  applied: string | undefined,
): boolean {
  if (retry && retry.revision === head) return retry.nextAttemptAt <= now;
  return fingerprint === undefined || fingerprint !== applied;
}

/**
 * Hosts suspended in Git (spec.policy.suspend) are not deployed; a cluster with a suspended member is
 * suspended whole (a rollout judges quorum over every member and would take the member down too).
 */
export function splitSuspended<T extends { name: string; cluster?: string; suspend: boolean }>(
  items: readonly T[],
): { active: T[]; suspended: T[] } {
  const clusters = new Set(items.filter((x) => x.suspend && x.cluster).map((x) => x.cluster!));
  const held = (x: T) => x.suspend || (x.cluster !== undefined && clusters.has(x.cluster));
  return { active: items.filter((x) => !held(x)), suspended: items.filter(held) };
}

/** A host to deploy as splitSuspended reads it: suspended in Git, or through the API. */
export const suspendItem = <T extends { spec: HostSpec }>(t: T, api: Readonly<Record<string, Suspension>> = {}) => ({
  name: t.spec.name,
  cluster: t.spec.cluster?.name,
  suspend: t.spec.policy.suspend || api[t.spec.name] !== undefined,
  t,
});

/** Why a host is suspended, in words (undefined: it is not). */
export function suspensionText(inGit: boolean, api: Suspension | undefined): string | undefined {
  if (api) return `suspended with natsfleet suspend since ${api.since}${api.reason ? ` (${api.reason})` : ''}`;
  return inGit ? 'suspended in Git (spec.policy.suspend)' : undefined;
}

/** The hosts a `natsfleet sync` asks for, as the branch has them: what runs, what is unknown, what is held. */
export interface SyncSelection {
  hosts: string[];
  unknown: string[];
  suspended: string[];
}

/**
 * Which hosts a sync request deploys: the named ones (every host when none is named), except hosts the
 * branch does not have and suspended ones (a suspended member holds its whole cluster, as in a deploy).
 */
export function syncSelection(
  requested: readonly string[],
  hosts: readonly { name: string; cluster?: string; suspend: boolean }[],
): SyncSelection {
  const known = new Set(hosts.map((h) => h.name));
  const unknown = [...new Set(requested.filter((r) => !known.has(r)))];
  const asked = requested.length ? hosts.filter((h) => requested.includes(h.name)) : [...hosts];
  const held = new Set(splitSuspended(hosts).suspended.map((h) => h.name));
  return {
    hosts: asked.filter((h) => !held.has(h.name)).map((h) => h.name),
    unknown,
    suspended: asked.filter((h) => held.has(h.name)).map((h) => h.name),
  };
}

/**
 * Retries the branch no longer asks for: a retry of an older revision for a host whose desired state
 * at `head` is what was last applied successfully (a revert of the failing commit), or for a host that
 * is gone. Returns the host names whose retry is dropped.
 */
export function staleRetries(
  retries: Readonly<Record<string, HostRetry>>,
  head: string,
  desired: ReadonlyMap<string, string | undefined>,
  applied: Readonly<Record<string, string>>,
): string[] {
  return Object.entries(retries)
    .filter(([host, r]) => {
      if (!desired.has(host)) return true;
      const fp = desired.get(host);
      return r.revision !== head && fp !== undefined && fp === applied[host];
    })
    .map(([host]) => host);
}

/**
 * Why a pull request may not be planned against live hosts (so it is planned offline, from the
 * repository alone), or undefined: it comes from a fork, adds a host, or changes a host's SSH target.
 */
export function untrustedReason(
  fromFork: boolean,
  changed: readonly HostSpec[],
  base: (name: string) => HostSpec | undefined,
): string | undefined {
  if (fromFork && changed.length) return 'the pull request comes from a fork';
  for (const h of changed) {
    const b = base(h.name);
    if (!b) return `it adds the host ${h.name}`;
    if (JSON.stringify(b.ssh) !== JSON.stringify(h.ssh)) return `it changes the SSH address or host key of ${h.name}`;
  }
  return undefined;
}

export interface StatusDecision {
  state: StatusState;
  description: string;
}

/** The commit status of one host's plan. */
export function planStatus(p: HostPlan): StatusDecision {
  const verdict = planVerdict(p);
  if (verdict === 'unknown') return { state: 'error', description: `unreachable: ${p.error}` };
  if (verdict === 'blocked') return { state: 'failure', description: `blocked: ${p.blocked[0]}` };
  if (verdict === 'change') {
    const restart = p.steps.some((s) => s.step === 'restart' || s.step === 'start');
    const reload = p.steps.some((s) => s.step === 'reload');
    return {
      state: 'success',
      description: `${p.changes.length} change(s), ${restart ? 'restart' : reload ? 'reload' : 'no restart'}`,
    };
  }
  return { state: 'success', description: 'no changes' };
}

/** The overall status of a pull request's plan. */
export function overallPlanStatus(plans: readonly HostPlan[]): StatusDecision {
  const bad = plans.filter((p) => ['unknown', 'blocked'].includes(planVerdict(p))).length;
  if (bad) return { state: 'failure', description: `${bad} host(s) cannot be planned` };
  return {
    state: 'success',
    description: `plan: ${plans.filter((p) => p.sync === 'OutOfSync').length} host(s) change`,
  };
}

/** Per-host statuses a pull request's plan gets at most: beyond, only hosts that need attention get one. */
export const MAX_PLAN_HOST_STATUSES = 20;

/**
 * The plans whose host gets its own commit status: all of them for a usual pull request; for a large
 * one (a fleet-wide change), only those that are not plain successes, at most MAX_PLAN_HOST_STATUSES,
 * so that a 300-host pull request does not flood the commit with statuses (the comment has them all).
 */
export function hostStatusesToPost(plans: readonly HostPlan[]): HostPlan[] {
  if (plans.length <= MAX_PLAN_HOST_STATUSES) return [...plans];
  return plans.filter((p) => planStatus(p).state !== 'success').slice(0, MAX_PLAN_HOST_STATUSES);
}

/** The commit status of one host after a deploy. */
export function deployStatus(r: ApplyResult | undefined, error: string | undefined): StatusDecision {
  if (error) return { state: 'error', description: error };
  if (isSuccessful(r)) {
    return {
      state: 'success',
      description: r!.outcome === 'applied' ? `applied: ${r!.steps.join(', ') || 'files'}` : 'in sync',
    };
  }
  return { state: 'failure', description: r?.error ?? r?.outcome ?? 'failed' };
}

/** What the drift sweep does about one host. */
export type DriftDecision =
  | { kind: 'unreachable' }
  | { kind: 'in-sync'; close?: number }
  | {
      kind: 'drifted';
      fingerprint: string;
      /** open: find by marker, else open one; update: the drift changed; keep: the same drift, no new notice. */
      issue: 'open' | 'update' | 'keep';
      selfHeal: boolean;
    };

/** What identifies one drift: the same fingerprint is never notified twice. */
export const driftFingerprint = (p: HostPlan) =>
  sha256(JSON.stringify([p.drift, p.changes.map((c) => [c.path, c.kind === 'file' ? c.diff : ''])])).slice(0, 16);

/**
 * The drift rules (one issue per host; unchanged drift is not re-notified; an issue is closed once the
 * host is back in sync; selfHeal corrects the host when its manifest allows).
 */
export function driftDecision(
  plan: HostPlan,
  unreachable: boolean,
  open: { number: number; fingerprint: string } | undefined,
  selfHeal: boolean,
): DriftDecision {
  if (unreachable) return { kind: 'unreachable' };
  if (plan.drift.length === 0)
    return open && plan.sync === 'Synced' ? { kind: 'in-sync', close: open.number } : { kind: 'in-sync' };
  const fingerprint = driftFingerprint(plan);
  const issue = !open ? 'open' : open.fingerprint !== fingerprint ? 'update' : 'keep';
  return { kind: 'drifted', fingerprint, issue, selfHeal };
}

/**
 * Hosts whose manifest the change removes (by name: a manifest moved to another file is not removed).
 * They stop being managed; nothing runs on them (a decommission is `state: absent`, merged first).
 */
export function unmanagedHosts(before: readonly string[], after: readonly string[]): string[] {
  const kept = new Set(after);
  return [...new Set(before.filter((h) => !kept.has(h)))].sort();
}

/** What becomes of hosts whose manifest left the branch (the controller's `prune` setting). */
export interface PruneDecision {
  /** Decommissioned as `state: absent` would (data kept), with their manifest of the earlier revision. */
  decommission: string[];
  /** Left running, no longer managed, each with why. */
  unmanaged: { host: string; why: string }[];
}

export const PRUNE_OFF_WHY = 'prune is off in the controller configuration: it keeps running, unmanaged';
export const clusterMemberWhy = (cluster: string) =>
  `it was a member of NatsCluster ${cluster}, and decommissioning a member alone could break its quorum: ` +
  'it keeps running, unmanaged. To decommission it, remove it from the cluster with `state: absent` in one ' +
  "change (the cluster's rollout takes it out), then delete its manifest";
export const endpointTakenWhy = (endpoint: string, by: string) =>
  `its SSH address ${endpoint} is now ${by}'s: natsfleet deploys ${by} there and never decommissions it ` +
  'under another name';

/** A host as the prune decision reads it: its name, its cluster, its SSH endpoint (endpointKey). */
export interface PruneItem {
  name: string;
  cluster?: string;
  endpoint: string;
}

export const pruneItem = (h: HostSpec): PruneItem => ({
  name: h.name,
  cluster: h.cluster?.name,
  endpoint: endpointKey(h.ssh.host, h.ssh.port).key,
});

/**
 * Hosts of the earlier revision (`before`, as they were there) whose manifest is not in the new one
 * (`after`, by name): with `prune` they are decommissioned, except NatsCluster members (taking one down
 * on its own could break the cluster's quorum) and hosts whose SSH endpoint a host of the new revision
 * has (a rename: that host is deployed there), which are left unmanaged with why; without `prune`, all
 * keep running unmanaged. Sorted by name.
 */
export function pruneDecision(
  before: readonly PruneItem[],
  after: readonly Omit<PruneItem, 'cluster'>[],
  prune: boolean,
): PruneDecision {
  const out: PruneDecision = { decommission: [], unmanaged: [] };
  const gone = unmanagedHosts(
    before.map((h) => h.name),
    after.map((h) => h.name),
  );
  for (const host of gone) {
    const was = before.find((h) => h.name === host)!;
    const taken = after.find((h) => h.endpoint === was.endpoint);
    if (!prune) out.unmanaged.push({ host, why: PRUNE_OFF_WHY });
    else if (was.cluster) out.unmanaged.push({ host, why: clusterMemberWhy(was.cluster) });
    else if (taken) out.unmanaged.push({ host, why: endpointTakenWhy(was.endpoint, taken.name) });
    else out.decommission.push(host);
  }
  return out;
}

/**
 * The pending decommissions (host -> revision of the manifest used) to run now: those whose manifest is
 * not back on the branch (a host back is managed again: its decommission is dropped) and whose failed
 * attempt, if any, is due again. Returns the hosts to run and those to drop.
 */
export function prunesDue(
  pending: Readonly<Record<string, string>>,
  retries: Readonly<Record<string, HostRetry>>,
  now: number,
  branch: readonly string[],
): { run: string[]; drop: string[] } {
  const back = new Set(branch);
  const hosts = Object.keys(pending).sort();
  return {
    run: hosts.filter((h) => !back.has(h) && (retries[h] === undefined || retries[h].nextAttemptAt <= now)),
    drop: hosts.filter((h) => back.has(h)),
  };
}

/**
 * Out-of-band changes (argo-cd#5351): the host runs what an apply from outside the branch wrote (an
 * unmerged branch, a dirty working tree, by hand) and differs from the branch. That is drift, although
 * the host still holds what its last apply wrote. A host equal to the branch is in sync, whoever wrote it.
 */
export function outOfBandDrift(plan: HostPlan, onBranch: boolean, branch: string): string | undefined {
  if (!plan.applied || onBranch || !hasWork(plan)) return undefined;
  return (
    `the host was last applied from ${plan.applied.revision} (${plan.applied.at}), which is not on branch ` +
    `${branch}, and differs from the branch: an apply from an unmerged branch or by hand`
  );
}

/**
 * The deploy report of `revision` after a run: a retry's hosts replace their earlier rows (a host that
 * recovered is no longer failed or unreachable); a new revision starts a new report.
 */
export function mergeDeployReport(
  prev: DeployReport | undefined,
  revision: string,
  results: readonly ApplyResult[],
  unreachable: readonly { host: string; error: string }[],
): DeployReport {
  const keep = prev?.revision === revision ? prev : { revision, results: [], unreachable: [] };
  const now = new Set([...results.map((r) => r.host), ...unreachable.map((u) => u.host)]);
  return {
    revision,
    results: [...keep.results.filter((r) => !now.has(r.host)), ...results],
    unreachable: [...keep.unreachable.filter((u) => !now.has(u.host)), ...unreachable],
  };
}

/** When the next retry of `revision` is due (the earliest of its failed hosts), if any. */
export function nextRetryAt(retries: Readonly<Record<string, HostRetry>>, revision: string): number | undefined {
  const due = Object.values(retries)
    .filter((r) => r.revision === revision)
    .map((r) => r.nextAttemptAt);
  return due.length ? Math.min(...due) : undefined;
}

/** A short, single-line text for statuses and comments: never a stack, never longer than `max`. */
export function oneLine(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 3)}...` : line;
}
