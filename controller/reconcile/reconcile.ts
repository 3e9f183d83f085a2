// Owns reconciling a set of hosts: render (secrets resolved up front, per host: a host whose secret is
// refused or missing is never contacted), then standalone hosts with bounded parallelism (host.ts) and
// each cluster as a rollout over its members (rollout.ts). Used by the CLI and by the controller loop.
import type { HostSpec } from '../manifest/host-spec.js';
import { renderHost } from '../render/desired.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from '../manifest/path-policy.js';
import type { Credentials } from '../apply/nats-probe.js';
import { mapLimit } from './pool.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSuccessful, notRun } from '../apply/result.js';
import { groupByPolicy, rolloutStops, rollsInBatches, standaloneBatches, type RolloutPolicy } from '../plan/batches.js';
import { systemPasswordField } from '../manifest/secret-policy.js';
import { reconcileCluster } from './rollout.js';
import { reconcileOne, unknownPlan, type HostRun, type ReconcileOptions, type Target } from './host.js';

export {
  connectionFailure,
  reconcileOne,
  unknownPlan,
  type HostRun,
  type ReconcileOptions,
  type Target,
} from './host.js';

export interface PreparedTargets {
  targets: Target[];
  /** Hosts that could not be rendered (a secret refused or missing), with the reason naming file and field. */
  failures: { host: string; error: string }[];
}

/** Renders every host that can be rendered; each failure names the host's file and the field. */
export function prepareEach(
  hosts: readonly HostSpec[],
  resolve: SecretResolver,
  paths: PathPolicy = DEFAULT_PATH_POLICY,
): PreparedTargets {
  const out: PreparedTargets = { targets: [], failures: [] };
  for (const spec of hosts) {
    try {
      out.targets.push(prepareOne(spec, resolve, paths));
    } catch (e) {
      out.failures.push({ host: spec.name, error: `${spec.file}: ${(e as Error).message}` });
    }
  }
  return out;
}

/** Renders every host; throws (naming file and field) before anything is contacted when any fails. */
export function prepareTargets(
  hosts: readonly HostSpec[],
  resolve: SecretResolver,
  paths: PathPolicy = DEFAULT_PATH_POLICY,
): Target[] {
  const { targets, failures } = prepareEach(hosts, resolve, paths);
  if (failures.length) throw new Error(failures.map((f) => f.error).join('; '));
  return targets;
}

function prepareOne(spec: HostSpec, resolve: SecretResolver, paths: PathPolicy): Target {
  let credentials: Credentials | undefined;
  let systemCredentials: Target['systemCredentials'];
  const tracking: SecretResolver = (ref, field) => {
    const v = resolve(ref, field);
    if (ref.bcrypt === undefined) {
      if (field.endsWith('token')) credentials = { token: v };
      if (field.endsWith('password')) credentials = { user: spec.nats.auth!.user!, pass: v };
      if (spec.cluster?.systemAccount && field === systemPasswordField(spec))
        systemCredentials = { user: spec.cluster!.systemAccount!.user, pass: v };
    }
    return v;
  };
  const desired = renderHost(spec, tracking, paths);
  return { spec, desired, credentials, ...(systemCredentials ? { systemCredentials } : {}) };
}

/** A host not applied because this controller replica may not apply it now (`mayApply`). */
const leaseLost = (t: Target, revision: string, why: string): HostRun => ({
  host: t.spec.name,
  plan: unknownPlan(t, revision, why),
  error: why,
  reason: 'lease-lost',
  durationMs: 0,
});

/** Standalone hosts with bounded parallelism, each reported as it is done. */
const each = (targets: readonly Target[], o: ReconcileOptions) =>
  mapLimit(targets, o.concurrency, async (t) => {
    const refused = o.apply ? o.mayApply?.(t.spec.name) : undefined;
    const r = refused ? leaseLost(t, o.revision, refused) : await reconcileOne(t, o);
    o.onHostDone?.(r);
    return r;
  });

/**
 * Standalone hosts in batches: planned first; those whose change does not restart (rollsInBatches) are
 * applied at once, the others per policy (groupByPolicy: the first label selector that matches a host,
 * else the default), one group after the other: each batch applied (bounded parallelism), then the next
 * after the pause; once more hosts of a group failed than its policy tolerates, the rest of that group
 * are only planned and reported as not applied (`rollout-halted`), with where its rollout stopped.
 */
async function inBatches(targets: readonly Target[], o: ReconcileOptions, rollout: RolloutPolicy): Promise<HostRun[]> {
  const byName = new Map(targets.map((t) => [t.spec.name, t]));
  const planned = await each(targets, { ...o, apply: false, onHostDone: undefined });
  const plans = new Map(planned.map((r) => [r.host, r]));
  const batched = new Set(planned.filter((r) => rollsInBatches(r.plan)).map((r) => r.host));
  const runs: HostRun[] = await each(
    targets.filter((t) => !batched.has(t.spec.name)),
    o,
  );
  const groups = groupByPolicy(
    targets.filter((t) => batched.has(t.spec.name)).map((t) => ({ name: t.spec.name, labels: t.spec.labels })),
    rollout,
  );
  for (const { selector, policy: p, hosts } of groups) {
    const batches = standaloneBatches(hosts, p);
    const rolloutOf = selector ? `the rollout of ${selector}` : 'the rollout';
    let failed = 0;
    let stop: string | undefined;
    for (const [i, batch] of batches.entries()) {
      const group = batch.map((h) => byName.get(h)!);
      if (stop) {
        // Not applied: reported with the plan made before the rollout.
        for (const h of batch) {
          const r = plans.get(h)!;
          r.apply = notRun(r.host, 'blocked', `not applied: ${stop}`, 'rollout-halted', r.plan?.health ?? 'Missing');
          o.onHostDone?.(r);
          runs.push(r);
        }
        continue;
      }
      const done = await each(group, o);
      runs.push(...done);
      failed += done.filter((r) => !isSuccessful(r.apply)).length;
      if (rolloutStops(failed, p))
        stop = `${rolloutOf} stopped after batch ${i + 1} of ${batches.length}: ${failed} host(s) failed`;
      else if (i < batches.length - 1 && p.pauseSec && done.some((r) => r.apply?.outcome === 'applied'))
        await sleep(p.pauseSec * 1000);
    }
  }
  return runs;
}

/**
 * Reconciles standalone hosts with bounded parallelism, and each cluster as a rollout over its members.
 * A cluster is handled only with all its members among `targets`: otherwise its members are reported
 * Unknown (a rollout cannot judge quorum without every member). Runs come back in `targets` order.
 */
export async function reconcileAll(targets: readonly Target[], o: ReconcileOptions): Promise<HostRun[]> {
  const standalone = targets.filter((t) => !t.spec.cluster);
  const clusters = new Map<string, Target[]>();
  for (const t of targets)
    if (t.spec.cluster) clusters.set(t.spec.cluster.name, [...(clusters.get(t.spec.cluster.name) ?? []), t]);
  const [alone, ...grouped] = await Promise.all([
    o.apply && o.batches ? inBatches(standalone, o, o.batches) : each(standalone, o),
    ...[...clusters.values()].map(async (members) => {
      const c = members[0].spec.cluster!;
      const missing = c.members.filter((m) => !members.some((t) => t.spec.name === m));
      const error = `cluster ${c.name}: ${missing.join(', ')} could not be prepared: a rollout needs every member`;
      const refused = o.apply ? o.mayApply?.(members[0].spec.name) : undefined;
      const runs = missing.length
        ? members.map((t) => ({ host: t.spec.name, plan: unknownPlan(t, o.revision, error), error, durationMs: 0 }))
        : refused
          ? members.map((t) => leaseLost(t, o.revision, refused))
          : await reconcileCluster(members, o);
      for (const r of runs) o.onHostDone?.(r);
      return runs;
    }),
  ]);
  const byHost = new Map<string, HostRun>();
  for (const r of [...alone, ...grouped.flat()]) if (!byHost.has(r.host)) byHost.set(r.host, r);
  return targets.map((t) => byHost.get(t.spec.name)!);
}
