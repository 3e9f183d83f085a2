// Owns reconciling a set of hosts: render (secrets resolved up front: a missing secret stops
// everything before any host is touched), then per host with bounded parallelism: observe in one
// round trip, plan, and optionally apply. Used by the CLI and by the controller loop.
import type { HostSpec } from '../manifest/host-spec.js';
import type { DesiredHost } from '../render/artifact.js';
import { renderHost } from '../render/desired.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { observeHost } from '../observe/observe.js';
import type { HostFacts } from '../observe/facts.js';
import { planHost } from '../plan/plan.js';
import type { HostPlan } from '../plan/types.js';
import { applyHost, type ApplyInput, type ApplyResult } from '../apply/apply.js';
import type { Credentials } from '../apply/nats-probe.js';
import { mapLimit, type SessionPool } from './pool.js';
import { SshError } from '../transport/ssh.js';

export interface Target {
  spec: HostSpec;
  desired: DesiredHost;
  credentials?: Credentials;
}

export interface HostRun {
  host: string;
  plan?: HostPlan;
  facts?: HostFacts;
  apply?: ApplyResult;
  /** Connection or observe failure: the host's state is Unknown. */
  error?: string;
  durationMs: number;
}

/** Renders every host; throws (naming host and field) before anything is contacted. */
export function prepareTargets(hosts: readonly HostSpec[], resolve: SecretResolver): Target[] {
  return hosts.map((spec) => {
    let credentials: Credentials | undefined;
    const tracking: SecretResolver = (ref, field) => {
      const v = resolve(ref, field);
      if (ref.bcrypt === undefined) {
        if (field.endsWith('token')) credentials = { token: v };
        if (field.endsWith('password')) credentials = { user: spec.nats.auth!.user!, pass: v };
      }
      return v;
    };
    try {
      return { spec, desired: renderHost(spec, tracking), credentials };
    } catch (e) {
      throw new Error(`${spec.file}: ${(e as Error).message}`);
    }
  });
}

export interface ReconcileOptions {
  pool: SessionPool;
  revision: string;
  apply: boolean;
  concurrency: number;
  onPhase?: (host: string, phase: Parameters<NonNullable<ApplyInput['onPhase']>>[0]) => void | Promise<void>;
}

export function unknownPlan(t: Target, revision: string, error: string): HostPlan {
  return {
    host: t.desired.name,
    revision,
    state: t.desired.state,
    blocked: [],
    changes: [],
    steps: [],
    drift: [],
    sync: 'Unknown',
    health: 'Missing',
    error,
  };
}

/** A pooled session can die between two uses (network, sshd restart): observe once more on a new one. */
async function observeFresh(t: Target, pool: SessionPool) {
  const session = await pool.get(t.spec);
  try {
    return { session, facts: await observeHost(session, t.desired) };
  } catch (e) {
    if (!(e instanceof SshError) && !/not connected|ECONNRESET|EPIPE|channel/i.test((e as Error).message)) throw e;
    await pool.drop(t.spec);
    const again = await pool.get(t.spec);
    return { session: again, facts: await observeHost(again, t.desired) };
  }
}

export async function reconcileOne(t: Target, o: ReconcileOptions): Promise<HostRun> {
  const started = Date.now();
  try {
    const { session, facts } = await observeFresh(t, o.pool);
    const plan = planHost(t.desired, facts, o.revision);
    if (!o.apply) return { host: t.desired.name, plan, facts, durationMs: Date.now() - started };
    const apply = await applyHost(session, {
      ...t,
      facts,
      plan,
      revision: o.revision,
      onPhase: o.onPhase ? (p) => o.onPhase!(t.desired.name, p) : undefined,
    });
    if (apply.outcome === 'failed') await o.pool.drop(t.spec);
    return { host: t.desired.name, plan, facts, apply, durationMs: Date.now() - started };
  } catch (e) {
    await o.pool.drop(t.spec);
    const error = (e as Error).message;
    return { host: t.desired.name, plan: unknownPlan(t, o.revision, error), error, durationMs: Date.now() - started };
  }
}

export function reconcileAll(targets: readonly Target[], o: ReconcileOptions): Promise<HostRun[]> {
  return mapLimit(targets, o.concurrency, (t) => reconcileOne(t, o));
}
