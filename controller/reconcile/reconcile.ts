// Owns reconciling a set of hosts: render (secrets resolved up front, per host: a host whose secret is
// refused or missing is never contacted), then per host with bounded parallelism: observe in one
// round trip, plan, and optionally apply. Used by the CLI and by the controller loop.
import type { HostSpec } from '../manifest/host-spec.js';
import type { DesiredHost } from '../render/artifact.js';
import { renderHost } from '../render/desired.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { observeHost } from '../observe/observe.js';
import type { HostFacts } from '../observe/facts.js';
import { planHost, type CompareMode } from '../plan/plan.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from '../manifest/path-policy.js';
import type { HostPlan } from '../plan/types.js';
import { applyHost, type ApplyInput } from '../apply/apply.js';
import type { ApplyResult } from '../apply/result.js';
import type { Credentials } from '../apply/nats-probe.js';
import { mapLimit, type SessionPool } from './pool.js';
import { HostKeyError, SshError } from '../transport/ssh.js';
import type { FailureReason } from '../apply/result.js';

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
  /** Why the host could not be reached or rendered (with `error`). */
  reason?: FailureReason;
  durationMs: number;
}

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
  const tracking: SecretResolver = (ref, field) => {
    const v = resolve(ref, field);
    if (ref.bcrypt === undefined) {
      if (field.endsWith('token')) credentials = { token: v };
      if (field.endsWith('password')) credentials = { user: spec.nats.auth!.user!, pass: v };
    }
    return v;
  };
  return { spec, desired: renderHost(spec, tracking, paths), credentials };
}

export interface ReconcileOptions {
  pool: SessionPool;
  revision: string;
  apply: boolean;
  concurrency: number;
  /** How plans compare secret-bearing files: `display` for pull requests (no secret resolved). */
  compare?: CompareMode;
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
    // Only a connection found dead is tried again; a host that does not answer within the deadline is not
    // given a second deadline (it is reported Unknown now).
    const message = (e as Error).message;
    if (/timed out|within \d/i.test(message)) throw e;
    if (!(e instanceof SshError) && !/not connected|ECONNRESET|EPIPE|channel/i.test(message)) throw e;
    await pool.drop(t.spec);
    const again = await pool.get(t.spec);
    return { session: again, facts: await observeHost(again, t.desired) };
  }
}

/** The reason of a failure to reach or observe a host: a wrong key and refused credentials are not blips. */
export function connectionFailure(e: unknown): FailureReason {
  if (e instanceof HostKeyError) return 'host-key-mismatch';
  if (/authentication|auth methods failed/i.test((e as Error).message)) return 'auth-failed';
  return 'unreachable';
}

export async function reconcileOne(t: Target, o: ReconcileOptions): Promise<HostRun> {
  const started = Date.now();
  try {
    const { session, facts } = await observeFresh(t, o.pool);
    const plan = planHost(t.desired, facts, o.revision, o.compare);
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
    return {
      host: t.desired.name,
      plan: unknownPlan(t, o.revision, error),
      error,
      reason: connectionFailure(e),
      durationMs: Date.now() - started,
    };
  }
}

export function reconcileAll(targets: readonly Target[], o: ReconcileOptions): Promise<HostRun[]> {
  return mapLimit(targets, o.concurrency, (t) => reconcileOne(t, o));
}
