// Owns rolling a cluster's plans over its members (the executing side of plan/rollout.ts): observe every
// member, plan each, plan the rollout, then run its batches in order. Before a batch that takes servers
// down the whole cluster is observed again and must be able to lose them; after each member's apply the
// member must become healthy and caught up (routes, meta leader, every stream and consumer current) and
// stay so for the settle window, else it is rolled back and the rollout halts: members not yet reached
// are left untouched.
import { applyHost } from '../apply/apply.js';
import { isSuccessful, notRun } from '../apply/result.js';
import { observeHost } from '../observe/observe.js';
import { clusterHealth, cannotLose, leaderStepDowns, notCaughtUp, type MemberFacts } from '../plan/cluster.js';
import { planHost } from '../plan/plan.js';
import { certificateFirst } from '../plan/tls.js';
import { isDisruptive, planRollout, type RolloutPlan } from '../plan/rollout.js';
import { mapLimit } from './pool.js';
import { removeMetaPeer, stepDownLeaders } from '../apply/nats-probe.js';
import {
  connectionFailure,
  observeFresh,
  unknownPlan,
  type HostRun,
  type ReconcileOptions,
  type Target,
} from './host.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 1000;
/** How many more looks (POLL_MS apart) a failing gate gets before it blocks. */
const GATE_LOOKS = 5;

/** Every member's facts now (a member that cannot be observed has none). */
async function observeAll(members: readonly Target[], o: ReconcileOptions): Promise<MemberFacts[]> {
  return Promise.all(
    members.map(async (t) => {
      const base = { host: t.spec.name, serverName: t.desired.nats.serverName };
      try {
        const session = await o.pool.get(t.spec);
        return { ...base, facts: await observeHost(session, t.desired) };
      } catch {
        await o.pool.drop(t.spec);
        return base;
      }
    }),
  );
}

/**
 * Waits until `hosts` are healthy and caught up, then for the settle window, then checks again.
 * Returns what is still missing when the timeout passes (empty: ready).
 */
export async function awaitCaughtUp(
  members: readonly Target[],
  hosts: readonly string[],
  o: ReconcileOptions,
  jetstream: boolean,
  settleMs: number,
  timeoutMs: number,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  let last: string[] = [];
  for (;;) {
    const h = clusterHealth(await observeAll(members, o), jetstream);
    last = hosts.flatMap((x) => notCaughtUp(h, x));
    if (last.length === 0) {
      await sleep(settleMs);
      const again = clusterHealth(await observeAll(members, o), jetstream);
      last = hosts.flatMap((x) => notCaughtUp(again, x));
      if (last.length === 0) return [];
      last = last.map((p) => `${p} (after the ${settleMs / 1000} s settle)`);
    }
    if (Date.now() + POLL_MS > deadline) return last;
    await sleep(POLL_MS);
  }
}

/**
 * Before `t`'s server goes down: asks every replicated stream and consumer it leads to elect another
 * leader, and waits (up to 10 s) until none is led by it, so that publishers wait for a planned hand-over
 * rather than for an election after a timeout. Needs natsfleet's client credentials (not a bcrypt hash).
 */
async function handOverLeaderships(t: Target, o: ReconcileOptions): Promise<string[]> {
  if (!t.credentials || !('token' in t.credentials || 'user' in t.credentials)) return [];
  const session = await o.pool.get(t.spec);
  const led = async () => leaderStepDowns(await observeHost(session, t.desired), t.desired.nats.serverName);
  const subjects = await led();
  if (!subjects.length) return [];
  const refused = await stepDownLeaders(session, t.desired.nats.clientPort, t.credentials, subjects);
  const deadline = Date.now() + 10_000;
  while ((await led()).length && Date.now() < deadline) await sleep(250);
  return refused.length ? [`not every leadership was handed over before the restart: ${refused.join('; ')}`] : [];
}

/** Plans (and with `o.apply`, rolls out) one cluster; `members` must be all of its members. */
export async function reconcileCluster(all: readonly Target[], o: ReconcileOptions): Promise<HostRun[]> {
  const started = Date.now();
  const c = all[0].spec.cluster!;
  const jetstream = all.some((t) => t.desired.verify.jetstream);
  const observed = await mapLimit(all, o.concurrency, async (t) => {
    try {
      const facts = (await observeFresh(t, o.pool)).facts;
      // A member enabling TLS with the proxy's certificate takes its first step in this rollout (the proxy
      // obtains the certificate); the next run (a deploy or the self-heal sweep) makes its port TLS-only.
      const first = certificateFirst(t.desired, facts);
      return { t: first ? { ...t, desired: first } : t, facts };
    } catch (e) {
      await o.pool.drop(t.spec);
      return { t, error: e as Error };
    }
  });
  const members = observed.map((x) => x.t);
  const runs: HostRun[] = observed.map(({ t, facts, error }) =>
    facts
      ? { host: t.spec.name, facts, plan: planHost(t.desired, facts, o.revision, o.compare), durationMs: 0 }
      : {
          host: t.spec.name,
          plan: unknownPlan(t, o.revision, error!.message),
          error: error!.message,
          reason: connectionFailure(error),
          durationMs: 0,
        },
  );
  const settings = { ...c.rollout, systemAccount: Boolean(c.systemAccount), routeTls: Boolean(c.tls) };
  const plans = runs.map((r) => r.plan!);
  let rollout: RolloutPlan = planRollout(
    c.name,
    settings,
    plans,
    observed.map(({ t, facts }) => ({ host: t.spec.name, serverName: t.desired.nats.serverName, facts })),
    jetstream,
  );
  // One look can catch a replica a message behind under load (in flight, not behind): a gate that fails
  // is looked at again for a few seconds before anything is blocked on it.
  for (let i = 0; i < GATE_LOOKS && Object.values(rollout.blocked).some((b) => b.reason === 'quorum'); i++) {
    await sleep(POLL_MS);
    rollout = planRollout(c.name, settings, plans, await observeAll(members, o), jetstream);
  }
  for (const r of runs) {
    r.rollout = rollout;
    // A member that answers /healthz but misses routes or the meta leader is not healthy as a member.
    if (r.plan!.health === 'Healthy' && rollout.health.members[r.host]?.length) r.plan!.health = 'Degraded';
    const b = rollout.blocked[r.host];
    if (b) r.plan!.blocked.push(...b.why);
  }
  const done = () => {
    for (const r of runs) r.durationMs = Date.now() - started;
    return runs;
  };
  if (!o.apply) return done();

  const run = (host: string) => runs.find((r) => r.host === host)!;
  const target = (host: string) => members.find((t) => t.spec.name === host)!;
  // Members outside every batch: unchanged, blocked (by their own plan or by quorum) or unknown.
  const inBatch = new Set(rollout.batches.flat());
  for (const r of runs) {
    if (inBatch.has(r.host) || r.error) continue;
    const b = rollout.blocked[r.host];
    if (b) {
      r.apply = notRun(r.host, 'blocked', r.plan!.blocked.join('; '), b.reason);
      r.apply.health = r.plan!.health;
      continue;
    }
    const session = await o.pool.get(target(r.host).spec);
    r.apply = await applyHost(session, {
      ...target(r.host),
      facts: r.facts!,
      plan: r.plan!,
      revision: o.revision,
      by: o.by,
      lockLease: o.lockLease,
    });
  }
  let halted: string | undefined;
  for (const batch of rollout.batches) {
    if (halted) {
      for (const h of batch) {
        const a = notRun(
          h,
          'blocked',
          `rollout of cluster ${c.name} halted: ${halted}; ${h} was not touched`,
          'rollout-halted',
        );
        a.health = run(h).plan!.health;
        run(h).apply = a;
      }
      continue;
    }
    const disruptive = batch.some((h) => isDisruptive(rollout.members.find((m) => m.host === h)!.action));
    if (disruptive && !rollout.coldStart) {
      let why = cannotLose(clusterHealth(await observeAll(members, o), jetstream), batch);
      for (let i = 0; i < GATE_LOOKS && why.length; i++) {
        await sleep(POLL_MS);
        why = cannotLose(clusterHealth(await observeAll(members, o), jetstream), batch);
      }
      if (why.length) {
        halted = `cluster ${c.name} cannot lose ${batch.join(', ')} now: ${why.join('; ')}`;
        for (const h of batch) {
          const a = notRun(h, 'blocked', halted, 'quorum');
          a.health = run(h).plan!.health;
          run(h).apply = a;
        }
        continue;
      }
    }
    const results = await Promise.all(
      batch.map(async (h) => {
        const t = target(h);
        const r = run(h);
        try {
          const session = await o.pool.get(t.spec);
          return await applyHost(session, {
            ...t,
            facts: r.facts!,
            plan: r.plan!,
            revision: o.revision,
            by: o.by,
            lockLease: o.lockLease,
            verifyTimeoutSec: Math.ceil(c.rollout.timeoutMs / 1000),
            gate: () => awaitCaughtUp(members, batch, o, jetstream, c.rollout.settleMs, c.rollout.timeoutMs),
            beforeDisruption: rollout.coldStart ? undefined : () => handOverLeaderships(t, o),
            onPhase: o.onPhase ? (p) => o.onPhase!(h, p) : undefined,
          });
        } catch (e) {
          return notRun(h, 'failed', (e as Error).message, connectionFailure(e));
        }
      }),
    );
    results.forEach((a, i) => (run(batch[i]).apply = a));
    const failed = results.find((a) => !isSuccessful(a));
    if (failed) halted = `${failed.host} ${failed.outcome}: ${failed.error ?? failed.health}`;
  }
  if (!halted && rollout.removePeers.length) {
    const notes = await removeFormerMembers(members, rollout.removePeers, o, jetstream, c.rollout.timeoutMs);
    const first = runs.find((r) => r.apply);
    if (first?.apply) first.apply.notes = [...(first.apply.notes ?? []), ...notes];
  }
  return done();
}

/**
 * Removes former members from the JetStream meta group once the meta leader sees them offline (a host
 * decommissioned in the same run stops meanwhile), as natsfleet's system account user. Returns what
 * happened, in words, for the run's notes.
 */
async function removeFormerMembers(
  members: readonly Target[],
  peers: readonly string[],
  o: ReconcileOptions,
  jetstream: boolean,
  timeoutMs: number,
): Promise<string[]> {
  const via = members.find((t) => t.systemCredentials);
  if (!via) return [];
  const notes: string[] = [];
  const deadline = Date.now() + timeoutMs;
  for (const peer of peers) {
    for (;;) {
      const h = clusterHealth(await observeAll(members, o), jetstream);
      const stranger = h.strangers.find((x) => x.name === peer);
      if (!stranger) {
        notes.push(`${peer} is no longer a peer of the JetStream meta group`);
        break;
      }
      if (stranger.offline) {
        try {
          const session = await o.pool.get(via.spec);
          await removeMetaPeer(session, via.desired.nats.clientPort, via.systemCredentials!, peer);
          notes.push(`removed ${peer} (no longer a member) from the JetStream meta group`);
        } catch (e) {
          notes.push(`could not remove ${peer} from the JetStream meta group: ${(e as Error).message}`);
        }
        break;
      }
      if (Date.now() + POLL_MS > deadline) {
        notes.push(`${peer} is no longer a member but still online: not removed from the JetStream meta group`);
        break;
      }
      await sleep(POLL_MS);
    }
  }
  return notes;
}
