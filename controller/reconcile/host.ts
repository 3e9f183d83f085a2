// Owns reconciling one standalone host: observe it in one round trip (once more on a fresh connection
// when a pooled one died), plan, and optionally apply; and the values a reconcile run returns.
import type { LockLease } from '../apply/lock.js';
import type { HostSpec } from '../manifest/host-spec.js';
import type { DesiredHost } from '../render/artifact.js';
import { observeHost } from '../observe/observe.js';
import type { HostFacts } from '../observe/facts.js';
import { planHost, type CompareMode } from '../plan/plan.js';
import { certificateFirst } from '../plan/tls.js';
import { shQuote } from '../shell/quote.js';
import type { HostPlan } from '../plan/types.js';
import type { RolloutPlan } from '../plan/rollout.js';
import type { RolloutPolicy } from '../plan/batches.js';
import { applyHost, type ApplyInput } from '../apply/apply.js';
import { isSuccessful, type ApplyResult, type FailureReason } from '../apply/result.js';
import type { Credentials } from '../apply/nats-probe.js';
import type { SessionPool } from './pool.js';
import { BecomeError, HostKeyError, SshError, type SshSession } from '../transport/ssh.js';

export interface Target {
  spec: HostSpec;
  desired: DesiredHost;
  credentials?: Credentials;
  /** natsfleet's system account user of the host's cluster (peer removal), when it has one. */
  systemCredentials?: { user: string; pass: string };
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
  /** A cluster member: its cluster's rollout plan (the same value on every member's run). */
  rollout?: RolloutPlan;
  durationMs: number;
}

export interface ReconcileOptions {
  pool: SessionPool;
  revision: string;
  apply: boolean;
  concurrency: number;
  /** Who applies, for the hosts' history: `controller`, or (the default) the CLI's user@machine. */
  by?: string;
  /** A controller replica's lease, written into the host's apply lock (see apply/lock.ts LockLease). */
  lockLease?: LockLease;
  /**
   * Keep each standalone host's observed facts in its run (default true). A drift sweep only needs the
   * plan: without the facts, a 10,000-host sweep holds far less memory.
   */
  keepFacts?: boolean;
  /** How plans compare secret-bearing files: `display` for pull requests (no secret resolved). */
  compare?: CompareMode;
  /**
   * Standalone hosts applied in batches (a canary first, stop on failures), per label policy when it has
   * some; all at once without.
   */
  batches?: RolloutPolicy;
  /** Called as each host's run is complete (a cluster's members together, when its rollout ends). */
  onHostDone?: (run: HostRun) => void;
  /**
   * Asked right before a host (or a cluster) is applied: why it may not be, if so (a controller replica
   * that no longer holds the host's lease). The host is then reported not run, with reason `lease-lost`.
   */
  mayApply?: (host: string) => string | undefined;
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
export async function observeFresh(t: Target, pool: SessionPool) {
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
  // The host answered and authenticated us; its sudo refused: a credentials matter, not the network.
  if (e instanceof BecomeError) return 'auth-failed';
  if (/authentication|auth methods failed/i.test((e as Error).message)) return 'auth-failed';
  return 'unreachable';
}

/** How long the proxy's certbot may take to obtain a first certificate. */
const CERTIFICATE_WAIT_SEC = 180;

/** Waits on the host until certbot's lineage for the domain exists; false when it did not in time. */
async function awaitCertificate(session: SshSession, lineage: string): Promise<boolean> {
  const polls = CERTIFICATE_WAIT_SEC / 2;
  const script = `i=0; while [ ! -f ${shQuote(lineage)} ]; do i=$((i+1)); [ $i -gt ${polls} ] && exit 3; sleep 2; done`;
  return (await session.runScript(script, (CERTIFICATE_WAIT_SEC + 20) * 1000)).code === 0;
}

export async function reconcileOne(t: Target, o: ReconcileOptions): Promise<HostRun> {
  const started = Date.now();
  try {
    const { session, facts } = await observeFresh(t, o.pool);
    // TLS with the proxy's certificate, enabled for the first time: the certificate first (a desired state
    // without the tls block), then the whole desired state, whose one reload makes the client port TLS-only.
    const first = certificateFirst(t.desired, facts);
    const plan = planHost(first ?? t.desired, facts, o.revision, o.compare);
    if (!o.apply)
      return {
        host: t.desired.name,
        plan,
        ...(o.keepFacts === false ? {} : { facts }),
        durationMs: Date.now() - started,
      };
    const onPhase = o.onPhase
      ? (p: Parameters<NonNullable<ApplyInput['onPhase']>>[0]) => o.onPhase!(t.desired.name, p)
      : undefined;
    const apply = await applyHost(session, {
      ...t,
      desired: first ?? t.desired,
      facts,
      plan,
      revision: o.revision,
      by: o.by,
      lockLease: o.lockLease,
      onPhase,
    });
    if (apply.outcome === 'failed') await o.pool.drop(t.spec);
    if (!first || !isSuccessful(apply))
      return { host: t.desired.name, plan, facts, apply, durationMs: Date.now() - started };
    const waited = Date.now();
    if (!(await awaitCertificate(session, first.tls!.lineagePath!))) {
      const why =
        `the proxy obtained no certificate for ${first.tls!.serverName} within ${CERTIFICATE_WAIT_SEC} s: ` +
        "the client port stays without TLS (see the proxy container's log)";
      return {
        host: t.desired.name,
        plan,
        facts,
        apply: { ...apply, outcome: 'failed', error: why, reason: 'verify-failed' },
        durationMs: Date.now() - started,
      };
    }
    const again = await observeHost(session, t.desired);
    const second = planHost(t.desired, again, o.revision, o.compare);
    second.warnings = [
      ...(plan.changes.length || plan.steps.length
        ? [
            `first step applied without TLS (${plan.changes.length} change(s)); certbot obtained the ` +
              `certificate in ${Math.round((Date.now() - waited) / 1000)} s`,
          ]
        : []),
      ...(second.warnings ?? []),
    ];
    const applied = await applyHost(session, {
      ...t,
      facts: again,
      plan: second,
      revision: o.revision,
      by: o.by,
      lockLease: o.lockLease,
      onPhase,
    });
    if (applied.outcome === 'failed') await o.pool.drop(t.spec);
    const both: ApplyResult = {
      ...applied,
      steps: [...apply.steps, ...applied.steps],
      changedFiles: [...new Set([...apply.changedFiles, ...applied.changedFiles])],
      durationMs: apply.durationMs + applied.durationMs,
    };
    return { host: t.desired.name, plan: second, facts: again, apply: both, durationMs: Date.now() - started };
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
