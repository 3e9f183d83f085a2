// Owns applying one host's plan: lock, stage, test the new NATS config with the target image (staging,
// pull and test are one remote script; the test runs in the running container when it runs the target
// image with the same mounts), install atomically, run the service steps, verify, and roll back when
// verification fails. An apply
// that changed the host (applied or rolled back) is appended to the host's history (history.ts) by the
// script that records it. Apply with nothing to do writes nothing on the host.
import { posix } from 'node:path';
import { sha256 } from '../util/hash.js';
import type { DesiredHost } from '../render/artifact.js';
import { PROXY_COMPOSE_FILE } from '../render/proxy.js';
import type { AppliedRecord, HostFacts, LockInfo } from '../observe/facts.js';
import { monitorLookup } from '../observe/fact-table.js';
import { parseMarked, STEP } from '../observe/protocol.js';
import { hasWork, type HealthStatus, type HostPlan } from '../plan/types.js';
import { HostKeyError, SshError, type SshSession } from '../transport/ssh.js';
import {
  CONFIG_REJECTED,
  LOCK_HELD,
  LOCK_LOST,
  execConfigTest,
  finalizeScript,
  installScript,
  prepareScript,
  PULL_FAILED,
  rollbackScript,
  testConfigScript,
  unstageScript,
  clearPendingScript,
  BEFORE_INSTALL,
  CONTAINER_STEPS,
  verifyBudgetSec,
  verifyScript,
} from './commands.js';
import { acquireLock, heldLock, LockError, newLockInfo, type HeldLock, type LockLease } from './lock.js';
import { verificationIn, verifyHost, verifyScriptFor, type VerifyInput } from './verify.js';
import { forwardRefusal, type Credentials } from './nats-probe.js';
import type { ApplyResult, FailureReason, Outcome } from './result.js';
import { cliActor, historyEntry } from './history.js';

export interface ApplyInput {
  desired: DesiredHost;
  facts: HostFacts;
  plan: HostPlan;
  credentials?: Credentials;
  revision: string;
  /** Who applies, for the host's history: `controller`, or (the default) the CLI's user@machine. */
  by?: string;
  /** A controller replica's lease, written into the host's apply lock (see lock.ts LockLease). */
  lockLease?: LockLease;
  /** How long the server may take to answer /healthz 200 after the service steps (default 60 s). */
  verifyTimeoutSec?: number;
  /**
   * A last check once the host verified, before the apply is recorded (a cluster member: healthy and
   * caught up with its peers, then settled). Problems fail the apply, which is rolled back.
   */
  gate?: () => Promise<string[]>;
  /**
   * Called just before the steps when the server is about to go down (restart, stop): a cluster member
   * hands its RAFT leaderships over. Returns notes; never fails the apply.
   */
  beforeDisruption?: () => Promise<string[]>;
  /**
   * Called at each phase ('locked': right before the script that takes the lock and stages); tests use it to
   * cut the connection mid-apply.
   */
  onPhase?: (phase: 'locked' | 'staged' | 'installing' | 'verifying') => void | Promise<void>;
}

const run = (session: SshSession, script: string, timeoutMs = 300_000) => session.runScript(script, timeoutMs);
const lastLines = (text: string) => text.trim().split('\n').slice(-3).join(' ');

/**
 * What is said of a refused config: never the output of the image (it may be a pull request's image,
 * and could print anything it can read), only the line number nats-server named.
 */
export function configTestFailure(stdout: string, stderr: string): string {
  const line = /\.conf[^:\s]*:(\d+):\d+/.exec(`${stdout}\n${stderr}`)?.[1];
  const staged = /natsfleet: .*(not \d+ bytes as rendered|differs from the rendering)/.exec(stderr);
  if (staged) return 'the staged config is not the rendered one (not installed; the running server is untouched)';
  return (
    `config test failed${line ? ` at line ${line}` : ''}: ` +
    'nats-server rejected the new config (not installed; the running server is untouched)'
  );
}

/** A first deploy: no unit by the service's name (its file is created) and no container ran before it. */
const nothingBefore = (x: ApplyInput) =>
  x.desired.state === 'present' &&
  x.plan.changes.some((c) => c.kind === 'file' && c.path === x.desired.nats.unitPath && c.action === 'create') &&
  x.facts.unit.loadState !== 'loaded' &&
  !x.facts.container.exists;

/** /healthz answers 200 within `timeoutSec` (no check of the desired name or limits). */
async function healthyAfter(session: SshSession, d: DesiredHost, timeoutSec: number): Promise<boolean> {
  const r = await session.runScript(verifyScript({ lookup: monitorLookup(d), timeoutSec }), (timeoutSec + 20) * 1000);
  return r.code === 0;
}

export async function applyHost(session: SshSession, x: ApplyInput): Promise<ApplyResult> {
  const started = Date.now();
  const { desired: d, plan } = x;
  const steps = plan.steps.map((s) => s.step);
  const fileChanges = plan.changes.filter((c) => c.kind === 'file');
  const changedFiles = fileChanges.map((c) => c.path);
  const notes: string[] = [];
  const result = (outcome: Outcome, health: HealthStatus, error?: string, reason?: FailureReason): ApplyResult => ({
    host: d.name,
    outcome,
    health,
    steps: outcome === 'applied' ? steps : [],
    changedFiles: outcome === 'applied' ? changedFiles : [],
    error,
    ...(reason ? { reason } : {}),
    ...(notes.length ? { notes } : {}),
    durationMs: Date.now() - started,
  });
  if (plan.blocked.length) {
    return result('blocked', plan.health, `prerequisites failed: ${plan.blocked.join('; ')}`, 'blocked');
  }
  if (!hasWork(plan)) return result('unchanged', plan.health);

  const install = fileChanges.filter((c) => c.action !== 'delete').map((c) => c.path);
  const remove = fileChanges.filter((c) => c.action === 'delete').map((c) => c.path);
  const composeKind = x.facts.compose === 'plugin' ? 'plugin' : 'standalone';
  const artifacts = d.state === 'present' ? d.files.filter((f) => install.includes(f.path)) : [];
  // The prepare script takes the lock itself (one round trip less). The lock is this apply's from the start:
  // a connection lost meanwhile leaves a lock this process may hold, abandoned (see lock.ts), not forgotten.
  const info = newLockInfo(new Date(), x.lockLease);
  let lock: HeldLock = heldLock(session, info);
  const unstage = () => run(session, unstageScript(install, lock.token));
  try {
    await x.onPhase?.('locked');
    // Staging, the pull and the config test: one round trip. The test runs in the running container when
    // that resolves the config exactly as the server that loads it will (execConfigTest), else in a new one.
    const test = steps.includes('test-config');
    const exec = test ? execConfigTest(d, x.facts, install, steps) : undefined;
    const prepare = (lockInfo?: LockInfo) =>
      run(
        session,
        prepareScript(d, artifacts, lock.token, { pull: steps.includes('pull'), test, exec, lock: lockInfo }),
        420_000,
      );
    // Verified through a port forward after the change: a host whose sshd refuses it is told so before
    // anything is installed (asked beside the staging, on its own channel: no round trip of its own).
    const forwarding = d.state === 'present' ? forwardRefusal(session, d.nats.clientPort) : undefined;
    let prepared = await prepare(info);
    const locked = parseMarked(prepared.stdout, STEP).some((m) => m.name === 'locked');
    if (prepared.code === LOCK_HELD && !locked) {
      // Another holds the lock (nothing was staged): taken over when it is provably abandoned, else refused.
      try {
        lock = await acquireLock(session, new Date(), x.lockLease);
      } catch (e) {
        if (e instanceof LockError) return result('blocked', plan.health, e.message, 'locked');
        throw e;
      }
      if (lock.tookOver) notes.push(lock.tookOver);
      prepared = await prepare();
    } else if (prepared.code !== 0 && !locked) {
      // The script may have ended right after taking it (killed): released when it is this apply's.
      lock.abandon();
      await lock.release().catch(() => {});
      const why = `could not take the lock (exit ${prepared.code}): ${lastLines(prepared.stderr)}`;
      return result('blocked', plan.health, why, 'locked');
    }
    let tested = prepared;
    // Refused in the running container: tested again in a new one, whose verdict counts. The container may
    // have gone away meanwhile, or see other files than the host (a directory mounted over since it started).
    if (prepared.code === CONFIG_REJECTED && exec)
      tested = await run(session, testConfigScript(d, lock.token), 120_000);
    const refused = (why: string, reason: FailureReason) =>
      unstage()
        .then(() => lock.release())
        .then(() => result('failed', plan.health, why, reason));
    const noForwarding = await forwarding;
    if (noForwarding)
      return await unstage()
        .then(() => lock.release())
        .then(() => result('blocked', plan.health, `prerequisites failed: ${noForwarding}`, 'blocked'));
    if (prepared.code === PULL_FAILED)
      return await refused(
        `pulling ${d.nats.image} failed: ${prepared.stdout.trim().split('\n').slice(-2).join(' ')}`,
        'pull-failed',
      );
    // Past the marker, staging is done: a failure is the config test's (or the staged config is not the
    // rendered one, checked right before the test), never installed.
    const reachedTest = prepared.stdout.split('\n').includes('@@step test-config');
    const testOutput = tested.stdout.slice(Math.max(0, tested.stdout.indexOf('@@step test-config')));
    if (tested.code !== 0 && (tested !== prepared || reachedTest))
      return await refused(configTestFailure(testOutput, tested.stderr), 'config-rejected');
    // (Staging went through when only the test in the running container failed and the new one passed.)
    if (prepared.code !== 0 && !(tested !== prepared && tested.code === 0))
      return await refused(`staging files failed (nothing installed): ${lastLines(prepared.stderr)}`, 'staging-failed');
    await x.onPhase?.('staged');
    // From 2.11 nats-server prints the digest of the config it accepted (only a hash is read from it).
    const configDigest = test ? /\(sha256:([0-9a-f]{64})\)/.exec(testOutput)?.[1] : undefined;

    if (x.beforeDisruption && (steps.includes('restart') || steps.includes('stop')))
      notes.push(...(await x.beforeDisruption().catch((e: Error) => [`leaders not handed over: ${e.message}`])));
    await x.onPhase?.('installing');
    const reloadedFrom =
      steps.includes('reload') && !steps.includes('restart') ? x.facts.varz?.config_load_time : undefined;
    const verifyInput: VerifyInput = {
      desired: d,
      credentials: x.credentials,
      reloadedFrom,
      timeoutSec: x.verifyTimeoutSec,
      configDigest: configDigest && `sha256:${configDigest}`,
    };
    // The same container before and after (no step starts or stops it): monitoring answers where observed.
    const sameContainer = !steps.some((s) => (CONTAINER_STEPS as readonly string[]).includes(s));
    const c = x.facts.container;
    const monitorAt = sameContainer && c.exists && c.running ? c.monitorAddress : undefined;
    // /healthz, /varz, /jsz and the proxy are asked by the install script itself once its steps went through.
    const inst = await run(
      session,
      installScript(d, {
        install: artifacts,
        remove,
        token: lock.token,
        steps,
        composeKind,
        pending: { revision: x.revision, since: new Date().toISOString(), actions: steps },
        verify: d.state === 'present' ? verifyScriptFor(verifyInput, monitorAt) : undefined,
      }),
      (300 + verifyBudgetSec(x.verifyTimeoutSec ?? 60)) * 1000,
    );
    let failure: string | undefined;
    let failureReason: FailureReason = 'step-failed';
    let configLoadTime: string | undefined;
    // The lock was taken over (this replica lost the host's lease meanwhile): nothing was changed, and
    // nothing of the apply that holds it now (its pending record, its backups) may be touched.
    if (inst.code === LOCK_LOST) {
      await unstage();
      return result(
        'failed',
        plan.health,
        'the apply lock was taken over before the install: nothing changed',
        'locked',
      );
    }
    // Nothing was replaced until the install marker: backups and the pending record come first.
    const reached = parseMarked(inst.stdout, STEP).map((m) => m.name);
    if (
      inst.code !== 0 &&
      !reached.includes('install') &&
      !reached.some((m) => (BEFORE_INSTALL as readonly string[]).includes(m))
    ) {
      await unstage();
      await run(session, clearPendingScript());
      await lock.release();
      return result(
        'failed',
        plan.health,
        `preparing the install failed (nothing changed): ${lastLines(inst.stderr || inst.stdout)}`,
        'step-failed',
      );
    }
    if (inst.code !== 0) {
      const step = reached.pop() ?? 'install';
      failure = `${step} failed: ${lastLines(inst.stderr || inst.stdout)}`;
    } else if (d.state === 'present') {
      await x.onPhase?.('verifying');
      const answered = verificationIn(inst.stdout);
      // A verification that could not finish (its deadline passed) is a failed one: rolled back.
      const v = await verifyHost(session, verifyInput, answered).catch((e: Error) => ({
        ok: false,
        problems: [`it did not finish: ${e.message}`],
        varz: undefined,
      }));
      const gate = v.ok && x.gate ? await x.gate() : [];
      if (!v.ok) {
        failure = `verification failed: ${v.problems.join('; ')}`;
        failureReason = 'verify-failed';
      } else if (gate.length) {
        failure = `not healthy and caught up: ${gate.join('; ')}`;
        failureReason = 'verify-failed';
      } else if (typeof v.varz?.config_load_time === 'string') configLoadTime = v.varz.config_load_time;
    }
    const history = (outcome: Outcome, reason?: FailureReason) =>
      historyEntry({
        revision: x.revision,
        outcome,
        steps,
        reason,
        by: x.by ?? cliActor(),
        durationMs: Date.now() - started,
      });
    if (failure) {
      // The previous proxy's compose file, when this apply deleted it (natsfleet's own file: its name is fixed).
      const composeBefore = remove.find((p) => posix.basename(p) === PROXY_COMPOSE_FILE);
      const proxyTouched =
        composeBefore !== undefined ||
        steps.includes('proxy-down') ||
        install.some((p) => d.files.find((f) => f.path === p)?.id.startsWith('proxy'));
      const fresh = nothingBefore(x);
      const rb = await run(
        session,
        rollbackScript(d, {
          install,
          remove,
          composeKind,
          proxyTouched,
          nothingBefore: fresh,
          proxyBefore: x.facts.proxy.container.exists,
          proxyDirBefore: composeBefore && posix.dirname(composeBefore),
          enabledBefore: x.facts.unit.unitFileState === 'enabled',
          watchBefore: steps.includes('tls-unwatch') && x.facts.tlsWatch?.unitFileState === 'enabled',
          token: lock.token,
          history: history('rolled-back', failureReason),
        }),
      );
      if (rb.code === LOCK_LOST)
        return result(
          'failed',
          'Degraded',
          `${failure}; not rolled back: the apply lock was taken over (the apply holding it now decides)`,
          'locked',
        );
      if (fresh) {
        // A first deploy: rolled back to nothing, and nothing runs (no health to wait for).
        await lock.release();
        const how =
          rb.code === 0
            ? 'nothing of it is left running'
            : `some rollback steps failed: check that ${d.nats.unit} and container ${d.nats.containerName} are gone`;
        return result(
          'rolled-back',
          rb.code === 0 ? 'Missing' : 'Degraded',
          `${failure}; rolled back: ${how}`,
          failureReason,
        );
      }
      // The previous state is judged by health alone: it has its own name, version and limits.
      const healthy = d.state === 'present' ? await healthyAfter(session, d, 30).catch(() => false) : rb.code === 0;
      await lock.release();
      const after =
        rb.code !== 0 ? ' (some rollback steps failed)' : healthy ? '' : ' (the previous state is not healthy either)';
      return result(
        'rolled-back',
        healthy ? 'Healthy' : 'Degraded',
        `${failure}; rolled back to the previous files${after}`,
        failureReason,
      );
    }

    const record: AppliedRecord = {
      revision: x.revision,
      appliedAt: new Date().toISOString(),
      by: lock.token.slice(0, 8),
      image: d.nats.image,
      files: Object.fromEntries(
        (d.state === 'present' ? d.files : []).map((f) => [f.path, { sha256: sha256(f.content), mode: f.mode }]),
      ),
      rendered: Object.fromEntries((d.state === 'present' ? d.files : []).map((f) => [f.path, f.display])),
      configLoadTime,
    };
    const fin = await run(session, finalizeScript(record, lock.token, history('applied')));
    if (fin.code !== 0) throw new Error(`recording the applied state failed: ${fin.stderr.trim()}`);
    return result('applied', d.state === 'present' ? 'Healthy' : 'Missing');
  } catch (e) {
    // The connection may be gone: the lock cannot be released, but it is known to be ours.
    lock.abandon();
    if (session.isOpen) await lock.release().catch(() => {});
    const reason = e instanceof SshError || e instanceof HostKeyError ? 'unreachable' : 'internal';
    return result('failed', 'Degraded', (e as Error).message, reason);
  }
}
