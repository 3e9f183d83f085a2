// Owns the GitOps loop: poll the branch and deploy what changed (merge-to-deploy, results on the
// pull request; with `prune`, decommission hosts whose manifest left it), plan open pull requests
// against live hosts read-only (one comment per PR, edited in place, and a commit status per host; as a
// GitHub App, one check run per commit instead), and sweep for drift (one issue per host, self-heal when
// the manifest allows). GitHub is optional: without it, everything goes to the log.
// Failure domains: each phase of a tick, each pull request and each host fails on its own; one bad
// PR or host never stops the others. Pull requests never resolve a secret (plans compare displays).
import type { Logger } from 'pino';
import { shortRev } from '../util/rev.js';
import { DEFAULT_LOAD_POLICY, loadManifests, type LoadPolicy, type ManifestFile } from '../manifest/load.js';
import { formatProblem, type Problem } from '../manifest/problems.js';
import type { HostSpec } from '../manifest/host-spec.js';
import { policyResolver, secretPresenceProblems } from '../secrets/resolve.js';
import { placeholderSecrets, renderHost } from '../render/desired.js';
import {
  prepareEach,
  reconcileAll,
  reconcileOne,
  unknownPlan,
  type HostRun,
  type ReconcileOptions,
  type Target,
} from '../reconcile/reconcile.js';
import type { SessionPool } from '../reconcile/pool.js';
import { desiredFingerprint, planOffline } from '../plan/offline.js';
import { planVerdict, type HostPlan } from '../plan/types.js';
import type { RolloutPlan } from '../plan/rollout.js';
import type { GitSource } from '../source/git-source.js';
import type { CheckRunReport, GitHubReporter, StatusState } from '../report/github.js';
import {
  deployComment,
  DEPLOY_MARKER,
  DRIFT_MARKER,
  driftIssueBody,
  PLAN_MARKER,
  planComment,
} from '../report/markdown.js';
import {
  deployStatus,
  distinctRollouts,
  driftDecision,
  hostStatusesToPost,
  isSuccessful,
  nextRetry,
  endpointTakenWhy,
  pruneDecision,
  pruneItem,
  prunesDue,
  type PruneDecision,
  outOfBandDrift,
  splitSuspended,
  suspendItem,
  suspensionText,
  syncSelection,
  mergeDeployReport,
  nextRetryAt,
  oneLine,
  overallPlanStatus,
  planStatus,
  shouldDeploy,
  withWholeClusters,
  staleRetries,
  untrustedReason,
} from './decide.js';
import { Metrics } from './metrics.js';
import { deployCheck, deployingCheck, failedCheck, manifestPositions, planCheck, problemsCheck } from './checks.js';
import { batchesByPolicy, rollsInBatches, type RolloutPolicy } from '../plan/batches.js';
import { packageVersion } from '../package-root.js';
import type { ControllerState, HostRetry, StateBackend, Suspension } from './state.js';
import type { Replication } from '../ha/coordinator.js';
import { withApply } from './state.js';
import { CONTROLLER_ACTOR } from '../apply/history.js';
import type { ApplyResult } from '../apply/result.js';
import { byCodePoint } from '../util/order.js';

export interface ControllerDeps {
  source: GitSource;
  github?: GitHubReporter;
  pool: SessionPool;
  store: StateBackend;
  /**
   * Replicas sharing the work through NATS JetStream KV: this one deploys, heals and sweeps only the hosts
   * whose lease it holds, and does the Git and GitHub work only while it leads. None: one controller.
   */
  replication?: Replication;
  /** The operator's path and secret policies (the controller's configuration). */
  policy?: LoadPolicy;
  /** Where `{env}` secrets are read (default: the process environment). */
  env?: Readonly<Record<string, string | undefined>>;
  log: Logger;
  concurrency: number;
  driftIntervalMs: number;
  /** Plan pull requests that change SSH targets, add hosts or come from forks against live hosts anyway. */
  planUntrustedLive?: boolean;
  /** Standalone hosts deployed in batches (a canary first, stopping on failures), per label when set so. */
  rollout?: RolloutPolicy;
  /** Decommission hosts whose manifest left the branch (see pruneDecision); off: they run on, unmanaged. */
  prune?: boolean;
  now?: () => number;
}

/** A host the API names that the branch does not have. */
export class UnknownHostError extends Error {
  constructor(
    readonly host: string,
    branch: string,
  ) {
    super(`no host ${host} on ${branch}`);
    this.name = 'UnknownHostError';
  }
}

/** The API asked before the loop read the branch once. */
export class NotReadyError extends Error {
  constructor() {
    super('the controller has not read the branch yet: try again after its first poll');
    this.name = 'NotReadyError';
  }
}

/** A sync asked for a revision whose manifests are invalid: nothing ran. */
export class InvalidRevisionError extends Error {
  constructor(
    readonly revision: string,
    readonly errors: string[],
  ) {
    super(`the manifests of ${shortRev(revision)} are invalid, nothing was applied: ${errors[0]}`);
    this.name = 'InvalidRevisionError';
  }
}

/** What a sync did: the revision, a run per host it reconciled, the names it could not take. */
export interface SyncOutcome {
  revision: string;
  runs: HostRun[];
  unknown: string[];
  suspended: string[];
  /** With replicas: hosts asked for that another replica holds (not synced here), and which one. */
  elsewhere?: { host: string; replica: string }[];
}

export const STATUS_CONTEXT = 'natsfleet';
export const hostContext = (host: string) => `natsfleet/${host}`;

interface Loaded {
  files: ManifestFile[];
  hosts: HostSpec[];
  problems: Problem[];
  errors: string[];
}

export class Controller {
  state: ControllerState;
  readonly metrics = new Metrics({ version: packageVersion() });
  private lastDrift = 0;
  /** Hosts the last deploy held for Git's reasons (spec.policy.suspend), for the suspended metric. */
  private heldInGit: string[] = [];
  /** Resumes so far (in this process): a deploy under way when one comes does not mark its revision applied. */
  private resumes = 0;
  /** The branch's head as the loop last fetched it. */
  private lastHead?: string;
  private readonly now: () => number;
  private readonly policy: LoadPolicy;
  private readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * With replicas: the fingerprint each host of `head` should have ('' for one that could not be rendered),
   * and the hosts its manifest suspends, as this replica last read them. A tick skips the deploy only while
   * every host it holds has its fingerprint or waits for its retry: a host gained meanwhile (a takeover),
   * refused for a lost lease, or resumed (its fingerprint deleted) is deployed at the next tick.
   */
  private lastDesired?: { head: string; fp: Map<string, string>; gitSuspended: Set<string> };
  /** With replicas: what the leader last reported of a revision (its hosts' results), to report changes only. */
  private reported?: { head: string; sig: string };
  /** Commit statuses already posted for a revision (a leader waiting for the others posts them once). */
  private announced = new Set<string>();
  /** Host -> its cluster, as last loaded (for its shard lease). */
  private clusterOf = new Map<string, string | undefined>();

  constructor(private readonly d: ControllerDeps) {
    this.state = d.store.load();
    if (d.store.recovered) d.log.warn(d.store.recovered);
    this.now = d.now ?? Date.now;
    this.policy = d.policy ?? DEFAULT_LOAD_POLICY;
    this.env = d.env ?? process.env;
    const r = d.replication;
    if (r)
      this.metrics.replica = {
        id: r.id,
        leading: () => r.isLeader(),
        held: () => [...this.clusterOf.keys()].filter((h) => r.owns(h, this.clusterOf.get(h))).length,
      };
  }

  private save() {
    void this.d.store.save(this.state);
  }

  /** Who applies, for the hosts' history: the controller, and which replica of it. */
  private actor(): string {
    return this.d.replication ? `${CONTROLLER_ACTOR}/${this.d.replication.id}` : CONTROLLER_ACTOR;
  }

  /** Which cluster each host of the branch belongs to (its shard lease is its cluster's). */
  private learnClusters(hosts: readonly HostSpec[]) {
    this.clusterOf = new Map(hosts.map((h) => [h.name, h.cluster?.name]));
  }

  /** This controller leads (always, without replicas): the Git and GitHub work is its own. */
  private leads(): boolean {
    return !this.d.replication || this.d.replication.isLeader();
  }

  /** This controller may deploy the host now (always, without replicas: it holds its lease). */
  private mine(host: string): boolean {
    const r = this.d.replication;
    return !r || r.owns(host, this.clusterOf.get(host));
  }

  /** Why this replica may not apply a host now (its lease was lost meanwhile), for reconcileAll. */
  private readonly mayApply = (host: string): string | undefined =>
    this.mine(host) ? undefined : `replica ${this.d.replication!.id} does not hold the lease of ${host}`;

  /** With replicas: the check before each host is applied, and the lease written into the host's lock. */
  private leaseOptions(): Pick<ReconcileOptions, 'mayApply' | 'lockLease'> {
    const r = this.d.replication;
    if (!r) return {};
    return {
      mayApply: this.mayApply,
      lockLease: { replica: r.id, session: r.session, gone: (x, session) => !r.replicaAlive(x, session) },
    };
  }

  /** Once per revision and host: whether a status is still to post (always, without replicas). */
  private firstTime(head: string, what: string): boolean {
    if (!this.d.replication) return true;
    const key = `${head} ${what}`;
    if (this.announced.has(key)) return false;
    if (![...this.announced].some((k) => k.startsWith(`${head} `))) this.announced.clear();
    this.announced.add(key);
    return true;
  }

  private async status(sha: string, context: string, state: StatusState, description: string) {
    // As a GitHub App, the check run (verdict) carries every host: no commit status per host.
    if (this.d.github?.checks && context !== STATUS_CONTEXT) return;
    await this.d.github
      ?.setStatus(sha, context, state, oneLine(description))
      .catch((e: Error) => this.d.log.warn({ err: oneLine(e.message), context }, 'commit status failed'));
  }

  /** A commit's overall verdict: natsfleet's check run as a GitHub App, else the `natsfleet` commit status. */
  private async verdict(sha: string, state: StatusState, description: string, check: () => CheckRunReport) {
    // Checked right before writing: a replica deposed meanwhile stops before its lease can be taken.
    if (!this.leads()) return;
    if (!this.d.github?.checks) return this.status(sha, STATUS_CONTEXT, state, description);
    await this.d.github
      .publishCheck(sha, check())
      .catch((e: Error) => this.d.log.warn({ err: oneLine(e.message), sha: shortRev(sha) }, 'check run failed'));
  }

  /** Runs one phase of a tick in its own failure domain: an error is logged and counted, the tick goes on. */
  private async phase(name: string, fn: () => Promise<void>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      this.metrics.errors++;
      this.d.log.error({ phase: name, err: oneLine((e as Error).message) }, 'phase failed; the others go on');
      return false;
    }
  }

  /** One pass of the loop: deploy the branch, plan pull requests, and sweep for drift when due. */
  async tick(): Promise<void> {
    const started = this.now();
    this.metrics.ticks++;
    if (this.d.replication) {
      // The state the replicas share, as mirrored now (this one's own writes first).
      await this.d.store.flush?.();
      this.state = this.d.store.load();
    }
    try {
      let head: string;
      try {
        head = await this.d.source.fetchBranch();
        this.lastHead = head;
      } catch (e) {
        this.metrics.errors++;
        throw e;
      }
      const ok = [await this.phase('deploy', () => this.deploy(head))];
      if (this.d.github && this.leads()) ok.push(await this.phase('pull-requests', () => this.planPulls(head)));
      if (this.now() - this.lastDrift >= this.d.driftIntervalMs) {
        this.lastDrift = this.now();
        ok.push(await this.phase('drift', () => this.driftSweep(head)));
      }
      await this.d.store.flush?.();
      if (ok.includes(false)) throw new Error('a phase of this tick failed (see the log)');
    } finally {
      this.metrics.observeDuration('tick', (this.now() - started) / 1000);
    }
  }

  /** Manifests at a revision, checked against the operator's policies. Nothing is resolved or contacted. */
  private async load(rev: string): Promise<Loaded> {
    const files = await this.d.source.manifestsAt(rev);
    const { hosts, problems } = loadManifests(files, this.policy);
    return { files, hosts, problems, errors: problems.filter((p) => p.severity === 'error').map(formatProblem) };
  }

  /**
   * Renders hosts with their real secrets (read under the policy); a host whose secret fails is a
   * failure of its own.
   */
  private async prepare(hosts: readonly HostSpec[]) {
    const resolve = await policyResolver(hosts, this.policy.secrets, this.env);
    return prepareEach(hosts, resolve, this.policy.paths);
  }

  async deploy(head: string): Promise<void> {
    const r = this.d.replication;
    const dueRetries = Object.entries(this.state.retries).filter(([, x]) => x.nextAttemptAt <= this.now());
    // A replica deploys the hosts it holds; the leader reports the whole revision once every host has a result.
    if (r) {
      const mineDone = this.shareConverged(head);
      if (!this.leads() && mineDone) return;
      if (
        this.leads() &&
        mineDone &&
        head === this.state.appliedRevision &&
        this.resultsSig(head) === this.reported?.sig
      )
        return;
    } else if (head === this.state.appliedRevision && dueRetries.length === 0) return;
    if (head === this.state.invalidRevision) return;
    const started = this.now();
    // Read now: a resume during this deploy deletes it (prune compares with the revision applied before).
    const before = this.state.appliedRevision;
    const resumes = this.resumes;
    const log = this.d.log.child({ revision: shortRev(head) });
    const loaded = await this.load(head);
    if (!loaded.errors.length) {
      this.learnClusters(loaded.hosts);
      r?.setHosts(loaded.hosts.map((h) => ({ name: h.name, cluster: h.cluster?.name })));
    }
    if (loaded.errors.length && !this.leads()) {
      this.lastDesired = { head, fp: new Map(), gitSuspended: new Set() };
      return;
    }
    if (loaded.errors.length) {
      const errors = loaded.errors;
      log.error({ errors }, 'revision is invalid: nothing applied');
      await this.verdict(head, 'failure', `invalid manifests: ${errors[0]}`, () => problemsCheck(loaded.problems));
      for (const pr of (await this.d.github?.pullsForCommit(head)) ?? []) {
        await this.d.github!.ensureComment(
          pr,
          DEPLOY_MARKER(head),
          `### natsfleet did not deploy ${shortRev(head)}\n\nThe manifests are invalid; nothing was applied.\n\n` +
            `\`\`\`\n${errors.join('\n').slice(0, 20_000)}\n\`\`\``,
        );
      }
      this.state.invalidRevision = head;
      this.save();
      return;
    }
    // Hosts whose manifest left the branch keep running, unmanaged: shown so in the metrics.
    this.metrics.markUnmanaged(loaded.hosts.map((h) => h.name));
    const prepared = await this.prepare(loaded.hosts);
    const failures = prepared.failures;
    if (r)
      this.lastDesired = {
        head,
        fp: new Map([
          ...prepared.targets.map((t): [string, string] => [t.desired.name, desiredFingerprint(t.desired)]),
          ...failures.map((f): [string, string] => [f.host, '']),
        ]),
        gitSuspended: new Set(prepared.targets.filter((t) => t.spec.policy.suspend).map((t) => t.desired.name)),
      };
    // Suspended hosts (spec.policy.suspend) are not deployed; a suspended member holds its whole cluster.
    const split = splitSuspended(prepared.targets.map((t) => suspendItem(t, this.state.suspended)));
    const targets = split.active.map((x) => x.t);
    this.heldInGit = split.suspended.filter((x) => !this.state.suspended[x.name]).map((x) => x.name);
    this.metrics.setSuspended(split.suspended.map((x) => x.name));
    const newRevision = head !== this.state.appliedRevision;
    const now = this.now();
    const held: string[] = [];
    for (const x of split.suspended) {
      if (!shouldDeploy(undefined, head, now, desiredFingerprint(x.t.desired), this.state.hostFingerprints[x.name]))
        continue;
      if (!this.mine(x.name) || !this.firstTime(head, `suspended ${x.name}`)) continue;
      held.push(x.name);
      log.info({ host: x.name }, 'suspended: not deployed');
      const why = this.state.suspended[x.name] ? 'natsfleet suspend' : 'spec.policy.suspend';
      await this.status(head, hostContext(x.name), 'success', `suspended (${why}): not deployed`);
    }
    const due = targets.filter(
      (t) =>
        this.mine(t.desired.name) &&
        shouldDeploy(
          this.state.retries[t.desired.name],
          head,
          now,
          desiredFingerprint(t.desired),
          this.state.hostFingerprints[t.desired.name],
        ),
    );
    const named = (t: Target) => ({ name: t.desired.name, cluster: t.spec.cluster?.name, t });
    const todo = withWholeClusters(due.map(named), targets.filter((t) => this.mine(t.desired.name)).map(named)).map(
      (x) => x.t,
    );
    // A host that cannot be rendered (a secret refused or missing) fails on its own, with backoff.
    const failing = failures.filter(
      (f) => this.mine(f.host) && shouldDeploy(this.state.retries[f.host], head, now, undefined, undefined),
    );
    // A retry the branch no longer asks for (a revert of the failing commit, a host removed) is dropped.
    const desiredNow = new Map<string, string | undefined>(loaded.hosts.map((h) => [h.name, undefined]));
    for (const t of prepared.targets) desiredNow.set(t.desired.name, desiredFingerprint(t.desired));
    // A decommission still to do (prune) keeps its retry.
    for (const h of Object.keys(this.state.pruning ?? {})) if (!desiredNow.has(h)) desiredNow.set(h, undefined);
    for (const name of staleRetries(this.state.retries, head, desiredNow, this.state.hostFingerprints).filter((h) =>
      this.mine(h),
    )) {
      log.info({ host: name }, 'retry dropped: the branch no longer asks for what failed');
      delete this.state.retries[name];
    }
    log.info({ hosts: todo.map((t) => t.desired.name) }, todo.length ? 'deploying' : 'revision changes no host');
    for (const t of todo) await this.status(head, hostContext(t.desired.name), 'pending', 'deploying');
    // As a GitHub App, the revision's check run shows the deploy in progress (a token gets per-host statuses).
    if (todo.length && newRevision && this.d.github?.checks && this.leads() && this.firstTime(head, 'deploying'))
      await this.verdict(head, 'pending', 'deploying', () => deployingCheck(todo.map((t) => t.desired.name)));
    const work = () => this.applyAll(head, todo, failing);
    const heldHosts = todo.map((t) => ({ name: t.desired.name, cluster: t.spec.cluster?.name }));
    // Hosts this replica lost meanwhile are not run here: their new holder deploys them.
    const runs = (r ? await r.busy(heldHosts, work) : await work()).filter((x) => x.reason !== 'lease-lost');
    await this.record(head, runs, todo, log);
    if (r && !this.leads()) {
      this.save();
      if (runs.length) log.info({ replica: r.id, hosts: runs.map((x) => x.host) }, 'share deployed');
      return;
    }
    if (r) {
      // The leader reports once every host of the revision has a result (or had nothing to change).
      const waiting = [
        ...targets.filter(
          (t) =>
            desiredFingerprint(t.desired) !== this.state.hostFingerprints[t.desired.name] &&
            this.state.retries[t.desired.name]?.revision !== head,
        ),
      ]
        .map((t) => t.desired.name)
        .concat(failures.filter((f) => this.state.retries[f.host]?.revision !== head).map((f) => f.host));
      if (waiting.length) {
        if (this.firstTime(head, `waiting ${waiting.join(' ')}`))
          log.info({ waiting }, 'waiting for the replicas holding these hosts');
        this.save();
        return;
      }
      // Every host's result of this revision, whichever replica ran it.
      runs.splice(0, runs.length, ...this.resultsOf(head, runs));
    }
    const reportedSig = r ? this.resultsSig(head) : '';
    const pruned = await this.prune(head, loaded, log, before);
    runs.push(...pruned.runs);
    const failed = Object.keys(this.state.retries).length;
    await this.verdict(
      head,
      failed ? 'failure' : 'success',
      failed ? `${failed} host(s) failed` : `${loaded.hosts.length} host(s) in sync`,
      () => {
        // Every host of the revision so far: a retry's hosts join the earlier attempts' rows.
        const report = mergeDeployReport(
          this.state.lastDeploy,
          head,
          runs.filter((r) => r.apply).map((r) => r.apply!),
          runs.filter((r) => r.error).map((r) => ({ host: r.host, error: r.error! })),
        );
        const at = manifestPositions(loaded.hosts, loaded.files);
        return deployCheck({ ...report, total: loaded.hosts.length, failed, suspended: held }, at);
      },
    );
    if (runs.length > 0 || newRevision) await this.reportDeploy(head, runs, held, pruned.decision);
    // Reported: the leader reports this revision again only when a replica records a new result of it.
    if (r) this.reported = { head, sig: reportedSig };
    // A host resumed meanwhile was held by this deploy: the next one looks at every host again.
    if (this.resumes === resumes) this.state.appliedRevision = head;
    if (!failed) this.state.lastSuccessfulSync = new Date(this.now()).toISOString();
    if (!failed) this.metrics.lastSuccessfulSync = this.now();
    this.save();
    this.metrics.observeDuration('deploy', (this.now() - started) / 1000);
    log.info({ applied: runs.filter((r) => r.apply?.outcome === 'applied').length, failed }, 'deploy finished');
  }

  /** With replicas: whether every host this replica holds has what `head` asks (or waits for its retry). */
  private shareConverged(head: string): boolean {
    const last = this.lastDesired;
    if (last?.head !== head) return false;
    const now = this.now();
    for (const [h, fp] of last.fp) {
      if (!this.mine(h) || last.gitSuspended.has(h) || this.state.suspended[h]) continue;
      if (fp !== '' && this.state.hostFingerprints[h] === fp) continue;
      const retry = this.state.retries[h];
      if (retry?.revision === head && retry.nextAttemptAt > now) continue;
      return false;
    }
    return true;
  }

  /** With replicas: the results of `head` the replicas recorded, as one string (a change is reported). */
  private resultsSig(head: string): string {
    return JSON.stringify(
      Object.entries(this.state.results ?? {})
        .filter(([, x]) => x.revision === head)
        .sort(([a], [b]) => byCodePoint(a, b)),
    );
  }

  /**
   * The runs of `head` for the deploy report when replicas share the work: this replica's own, and the
   * results the others recorded for the revision (a rollout's plan is only on the runs made here).
   */
  private resultsOf(head: string, own: readonly HostRun[]): HostRun[] {
    const out = [...own];
    for (const [host, x] of Object.entries(this.state.results ?? {})) {
      if (x.revision !== head || out.some((r) => r.host === host)) continue;
      out.push({ host, ...(x.apply ? { apply: x.apply } : {}), ...(x.error ? { error: x.error } : {}), durationMs: 0 });
    }
    return out;
  }

  /** Adds an apply to the host's history in the state (saved with the rest; unchanged runs are not kept). */
  private remember(host: string, revision: string, a: ApplyResult | undefined) {
    if (!a) return;
    const entry = {
      revision,
      at: new Date(this.now()).toISOString(),
      outcome: a.outcome,
      steps: a.steps,
      ...(a.reason ? { reason: a.reason } : {}),
    };
    this.state.history = { ...this.state.history, [host]: withApply(this.state.history?.[host], entry) };
  }

  /**
   * Applies `todo` (standalone hosts in the controller's batches, clusters in quorum-safe rollouts); a host
   * whose secret could not be read is a failed run of its own.
   */
  private async applyAll(
    head: string,
    todo: readonly Target[],
    unrendered: readonly { host: string; error: string }[],
  ): Promise<HostRun[]> {
    const runs: HostRun[] = await reconcileAll(todo, {
      pool: this.d.pool,
      revision: head,
      apply: true,
      concurrency: this.d.concurrency,
      batches: this.d.rollout,
      by: this.actor(),
      ...this.leaseOptions(),
    });
    return [
      ...runs,
      ...unrendered.map((f) => ({
        host: f.host,
        error: f.error,
        reason: 'secret-unavailable' as const,
        durationMs: 0,
      })),
    ];
  }

  /**
   * What a deploy or a sync learnt from its runs: metrics, one log line per host, fingerprints of
   * successes, retries with backoff for failures, and a commit status per host.
   */
  private async record(head: string, runs: readonly HostRun[], todo: readonly Target[], log: Logger): Promise<void> {
    for (const run of runs) {
      const name = run.host;
      const t = todo.find((x) => x.desired.name === name);
      const ok = !run.error && isSuccessful(run.apply);
      this.metrics.setHost(
        name,
        run.error ? 'Unknown' : ok ? 'Synced' : 'OutOfSync',
        run.error ? 'Unknown' : run.apply!.health,
      );
      if (run.apply) this.metrics.observeApply(name, run.apply.outcome, run.apply.durationMs / 1000, this.now());
      // One line per host per apply, with its outcome.
      log.info(
        {
          host: name,
          outcome: run.error ? 'unreachable' : run.apply!.outcome,
          health: run.error ? 'Unknown' : run.apply!.health,
          steps: run.apply?.steps ?? [],
          durationMs: run.apply?.durationMs ?? run.durationMs,
        },
        'host apply',
      );
      this.remember(name, head, run.apply);
      if (this.d.replication)
        this.state.results = {
          ...this.state.results,
          [name]: {
            revision: head,
            ...(run.apply ? { apply: run.apply } : {}),
            ...(run.error ? { error: run.error } : {}),
          },
        };
      const st = deployStatus(run.apply, run.error);
      if (ok && t) {
        this.state.hostFingerprints[name] = desiredFingerprint(t.desired);
        delete this.state.retries[name];
      } else {
        const reason = run.reason ?? run.apply?.reason;
        this.state.retries[name] = nextRetry(this.state.retries[name], head, this.now(), st.description, reason);
        log.warn(
          { host: name, attempts: this.state.retries[name].attempts, error: oneLine(st.description) },
          'host failed; will retry with backoff',
        );
      }
      await this.status(head, hostContext(name), st.state, st.description);
    }
  }

  private async reportDeploy(
    head: string,
    runs: HostRun[],
    suspended: readonly string[],
    prune: PruneDecision = { decommission: [], unmanaged: [] },
  ) {
    if (!this.d.github || (runs.length === 0 && suspended.length === 0) || !this.leads()) return;
    // A retry's hosts join the revision's earlier results: the one comment is edited, never replaced by a part.
    const prev = this.state.lastDeploy?.revision === head ? this.state.lastDeploy : undefined;
    const report = mergeDeployReport(
      this.state.lastDeploy,
      head,
      runs.filter((r) => r.apply).map((r) => r.apply!),
      runs.filter((r) => r.error).map((r) => ({ host: r.host, error: r.error! })),
    );
    const pruned = [...new Set([...(prev?.pruned ?? []), ...prune.decommission])];
    if (pruned.length) report.pruned = pruned;
    // Saved with the deploy's state, right after. With replicas, each host's result is in its own record
    // (the revision's report is built from them): the fleet-wide record stays small at any fleet size.
    this.state.lastDeploy = this.d.replication ? { ...report, results: [], unreachable: [] } : report;
    const body = deployComment(
      head,
      report.results,
      report.unreachable,
      distinctRollouts(runs),
      suspended,
      nextRetryAt(this.state.retries, head),
      { decommissioned: pruned, unmanaged: this.d.prune ? prune.unmanaged : [] },
    );
    for (const pr of await this.d.github.pullsForCommit(head))
      await this.d.github.ensureComment(pr, DEPLOY_MARKER(head), body);
  }

  /**
   * Hosts whose manifest left the branch since the revision applied before (pruneDecision): with `prune`,
   * each is decommissioned as `state: absent` would (data kept), reached with its manifest of that
   * revision (its SSH target and pinned host key, never one `head` names), then forgotten (fingerprint,
   * retry, metrics); a failed decommission is tried again with backoff, until its manifest comes back.
   * NatsCluster members and hosts without `prune` keep running unmanaged, logged with why.
   */
  private async prune(
    head: string,
    loaded: Loaded,
    log: Logger,
    prev: string | undefined,
  ): Promise<{ runs: HostRun[]; decision: PruneDecision }> {
    const pending = (this.state.pruning ??= {});
    const decision: PruneDecision = { decommission: [], unmanaged: [] };
    // The revision applied before may be gone (a force push, then git gc): then nothing is pruned, said so.
    const before =
      prev && prev !== head
        ? await this.load(prev).catch((e: Error) => {
            log.warn({ err: oneLine(e.message) }, 'cannot read the revision applied before: nothing is pruned');
            return undefined;
          })
        : undefined;
    if (prev && before) {
      const d = pruneDecision(before.hosts.map(pruneItem), loaded.hosts.map(pruneItem), this.d.prune ?? false);
      for (const u of d.unmanaged) log.warn({ host: u.host, why: u.why }, 'manifest deleted: the host is not managed');
      for (const h of d.decommission) pending[h] = prev;
      decision.unmanaged = d.unmanaged;
    }
    const due = prunesDue(
      pending,
      this.state.retries,
      this.now(),
      loaded.hosts.map((h) => h.name),
    );
    for (const h of due.drop) {
      log.info({ host: h }, 'manifest back on the branch: not decommissioned');
      delete pending[h];
    }
    const targets: Target[] = [];
    const failures: HostRun[] = [];
    const revisions = new Map<string, Promise<Loaded | undefined>>();
    for (const h of due.run) {
      const rev = pending[h];
      // A revision gone since (a force push, then git gc) drops its decommissions: it never fails the deploy.
      if (!revisions.has(rev))
        revisions.set(
          rev,
          this.load(rev).catch((e: Error) => {
            log.warn(
              { revision: shortRev(rev), err: oneLine(e.message) },
              'cannot read the revision of a decommission',
            );
            return undefined;
          }),
        );
      const spec = (await revisions.get(rev))?.hosts.find((x) => x.name === h);
      if (!spec) {
        log.warn({ host: h, revision: shortRev(rev) }, 'decommission dropped: the host is not in that revision now');
        delete pending[h];
        continue;
      }
      // An address the branch now gives another host (the machine renamed after a failed decommission) is
      // that host's: never decommissioned under the old name, whenever the retry comes.
      const endpoint = pruneItem(spec).endpoint;
      const taken = loaded.hosts.find((x) => pruneItem(x).endpoint === endpoint);
      if (taken) {
        log.warn({ host: h, why: endpointTakenWhy(endpoint, taken.name) }, 'decommission dropped');
        delete pending[h];
        delete this.state.retries[h];
        continue;
      }
      try {
        // Nothing is written on a decommissioned host: no secret is read (placeholders), only paths are used.
        const absent: HostSpec = { ...spec, state: 'absent' };
        targets.push({ spec: absent, desired: renderHost(absent, placeholderSecrets, this.policy.paths) });
      } catch (e) {
        failures.push({ host: h, error: `${spec.file}: ${(e as Error).message}`, durationMs: 0 });
      }
    }
    decision.decommission = [...targets.map((t) => t.spec.name), ...failures.map((f) => f.host)];
    if (!decision.decommission.length) return { runs: [], decision };
    log.info({ hosts: decision.decommission }, 'decommissioning hosts whose manifest was deleted (prune)');
    const runs = [
      ...(await reconcileAll(targets, {
        pool: this.d.pool,
        revision: head,
        apply: true,
        concurrency: this.d.concurrency,
        by: this.actor(),
      })),
      ...failures,
    ];
    for (const r of runs) {
      const ok = !r.error && isSuccessful(r.apply);
      const st = deployStatus(r.apply, r.error);
      log.info(
        {
          host: r.host,
          outcome: r.error ? 'unreachable' : r.apply!.outcome,
          steps: r.apply?.steps ?? [],
          durationMs: r.apply?.durationMs ?? r.durationMs,
        },
        ok ? 'host decommissioned (manifest deleted, prune)' : 'decommission failed; will retry with backoff',
      );
      this.remember(r.host, head, r.apply);
      if (ok) {
        delete pending[r.host];
        delete this.state.retries[r.host];
        delete this.state.hostFingerprints[r.host];
        this.metrics.forget(r.host);
        await this.status(head, hostContext(r.host), 'success', 'decommissioned: its manifest was deleted (prune)');
        const issue = this.state.driftIssues[r.host];
        if (issue)
          await this.closeDrift(r.host, issue.number, 'The host was decommissioned: its manifest was deleted.');
      } else {
        const reason = r.reason ?? r.apply?.reason;
        this.state.retries[r.host] = nextRetry(this.state.retries[r.host], head, this.now(), st.description, reason);
        await this.status(head, hostContext(r.host), st.state, `decommission failed: ${st.description}`);
      }
    }
    return { runs, decision };
  }

  /** The hosts of the branch as last deployed (else as last fetched): names for the API to check against. */
  private async branchHosts(): Promise<HostSpec[]> {
    // Never a fetch of its own: that is the loop's (two fetches into one mirror race on its refs).
    const rev = this.state.appliedRevision ?? this.lastHead;
    if (!rev) throw new NotReadyError();
    return (await this.load(rev)).hosts;
  }

  /** The suspended metric between deploys: held in Git at the last deploy, or through the API now. */
  private suspendedMetric() {
    this.metrics.setSuspended([...new Set([...this.heldInGit, ...Object.keys(this.state.suspended)])]);
  }

  /** Suspends deploys and self-heal of `host` until resume() (drift is still reported). */
  async suspend(host: string, reason?: string): Promise<Suspension> {
    if (!(await this.branchHosts()).some((h) => h.name === host))
      throw new UnknownHostError(host, this.d.source.branch);
    this.state.suspended[host] ??= { since: new Date(this.now()).toISOString(), ...(reason ? { reason } : {}) };
    this.save();
    this.suspendedMetric();
    this.d.log.warn({ host, reason }, 'host suspended through the API: no deploy or self-heal until resumed');
    return this.state.suspended[host];
  }

  /** Ends a suspension through the API; says whether there was one. The next deploy deploys the host. */
  async resume(host: string): Promise<boolean> {
    if (!(await this.branchHosts()).some((h) => h.name === host))
      throw new UnknownHostError(host, this.d.source.branch);
    const was = this.state.suspended[host] !== undefined;
    delete this.state.suspended[host];
    // With replicas, the replica holding the host sees it lacks its fingerprint and deploys it.
    if (was && this.d.replication) delete this.state.hostFingerprints[host];
    // The next deploy looks at every host again (one of an unchanged revision would return at once), so the
    // host gets what it missed while suspended; hosts already applied are left as they are.
    if (was) {
      delete this.state.appliedRevision;
      this.resumes++;
    }
    this.save();
    this.suspendedMetric();
    if (was) this.d.log.info({ host }, 'host resumed through the API');
    return was;
  }

  /** Every host of the branch with its suspension, if any (for `natsfleet status --controller`). */
  async hostsView(): Promise<{ host: string; suspended?: string; retry?: HostRetry; replica?: string }[]> {
    const r = this.d.replication;
    return (await this.branchHosts()).map((h) => ({
      host: h.name,
      // With replicas: which one holds the host's lease now (`none` between a replica's death and a takeover).
      ...(r ? { replica: r.holder(h.name, h.cluster?.name) ?? 'none' } : {}),
      ...(suspensionText(h.policy.suspend, this.state.suspended[h.name])
        ? { suspended: suspensionText(h.policy.suspend, this.state.suspended[h.name]) }
        : {}),
      ...(this.state.retries[h.name] ? { retry: this.state.retries[h.name] } : {}),
    }));
  }

  /**
   * Reconciles `hosts` (every host when empty) at the branch's head now: each is observed and whatever
   * differs is applied, also when its fingerprint says it was applied (drift is corrected) or a retry
   * waits for its backoff. Suspended hosts are not touched. The caller serialises it with tick().
   */
  async sync(hosts: readonly string[]): Promise<SyncOutcome> {
    const head = await this.d.source.fetchBranch();
    const log = this.d.log.child({ revision: shortRev(head), sync: true });
    const loaded = await this.load(head);
    if (loaded.errors.length) throw new InvalidRevisionError(head, loaded.errors);
    const prepared = await this.prepare(loaded.hosts);
    const items = prepared.targets.map((t) => suspendItem(t, this.state.suspended));
    const failedRender = prepared.failures.map((f) => ({ name: f.host, suspend: false }));
    const pick = syncSelection(hosts, [...items, ...failedRender]);
    // A name the branch does not have (a typo) runs nothing at all.
    if (pick.unknown.length) throw new UnknownHostError(pick.unknown.join(', '), this.d.source.branch);
    const named = (t: Target) => ({ name: t.desired.name, cluster: t.spec.cluster?.name, t });
    const chosen = prepared.targets.filter((t) => pick.hosts.includes(t.desired.name));
    const targets = items.filter((x) => !pick.suspended.includes(x.name)).map((x) => x.t);
    const all = withWholeClusters(chosen.map(named), targets.map(named)).map((x) => x.t);
    // With replicas, a host is synced by the one that holds it: the others are named, not run.
    this.learnClusters(loaded.hosts);
    const todo = all.filter((t) => this.mine(t.desired.name));
    const elsewhere = all
      .filter((t) => !this.mine(t.desired.name))
      .map((t) => ({
        host: t.desired.name,
        replica: this.d.replication?.holder(t.desired.name, t.spec.cluster?.name) ?? 'none',
      }));
    log.info({ hosts: todo.map((t) => t.desired.name), suspended: pick.suspended }, 'sync requested');
    const work = () =>
      this.applyAll(
        head,
        todo,
        prepared.failures.filter((f) => pick.hosts.includes(f.host) && this.mine(f.host)),
      );
    const held = todo.map((t) => ({ name: t.desired.name, cluster: t.spec.cluster?.name }));
    const runs = (this.d.replication ? await this.d.replication.busy(held, work) : await work()).filter(
      (x) => x.reason !== 'lease-lost',
    );
    await this.record(head, runs, todo, log);
    this.save();
    return {
      revision: head,
      runs,
      unknown: pick.unknown,
      suspended: pick.suspended,
      ...(elsewhere.length ? { elsewhere } : {}),
    };
  }

  async planPulls(baseHead: string): Promise<void> {
    const github = this.d.github!;
    const started = this.now();
    const base = await this.load(baseHead);
    const baseFiles = new Map(base.files.map((f) => [f.path, f.text]));
    for (const pr of await github.openPulls()) {
      if (this.state.pullHeads[pr.number] === pr.headSha) continue;
      // Each pull request is its own failure domain: a bad one gets its own failing status and comment.
      let head = pr.headSha;
      let body: string | undefined;
      try {
        head = await this.d.source.fetchPull(pr.number);
        body = await this.planPull(pr, head, baseHead, base, baseFiles);
        // No manifest touched: no comment, unless an earlier plan comment must now say so.
        if (body === undefined && this.state.planComments[pr.number] !== undefined)
          body = planComment({ sha: head, plans: [] });
      } catch (e) {
        const why = oneLine((e as Error).message, 500);
        this.d.log.error({ pull: pr.number, err: why }, 'planning the pull request failed');
        this.metrics.errors++;
        await this.verdict(head, 'failure', `natsfleet could not plan this pull request: ${why}`, () =>
          failedCheck('natsfleet could not plan this pull request', why),
        );
        body =
          `### natsfleet could not plan ${shortRev(head)}\n\n${why}\n\n` +
          'Nothing was applied. Push a fix to plan again.';
      }
      try {
        if (body !== undefined)
          this.state.planComments[pr.number] = await github.ensureComment(
            pr.number,
            PLAN_MARKER,
            body,
            this.state.planComments[pr.number],
          );
      } catch (e) {
        this.metrics.errors++;
        this.d.log.error({ pull: pr.number, err: oneLine((e as Error).message) }, 'plan comment failed');
        continue; // not recorded: tried again on the next tick
      }
      this.state.pullHeads[pr.number] = head;
      this.save();
    }
    this.metrics.observeDuration('pull-plan', (this.now() - started) / 1000);
  }

  /** Plans one pull request (statuses set) and returns its comment. Never resolves a secret. */
  private async planPull(
    pr: { number: number; fromFork: boolean },
    head: string,
    baseHead: string,
    base: Loaded,
    baseFiles: Map<string, string>,
  ): Promise<string | undefined> {
    const log = this.d.log.child({ pull: pr.number, sha: shortRev(head) });
    // Planned as merging would deploy it; a merge that conflicts is planned as the branch is.
    const merged = await this.d.source.mergePreview(baseHead, head);
    const pull = await this.load(merged ?? head);
    const fileChanged = (path: string) => baseFiles.get(path) !== pull.files.find((f) => f.path === path)?.text;
    // A host changes with its own manifest or its cluster's; a cluster is planned with all its members.
    const touched = pull.hosts.filter((h) => fileChanged(h.file) || (h.cluster && fileChanged(h.cluster.file)));
    const named = (h: HostSpec) => ({ name: h.name, cluster: h.cluster?.name, h });
    const changed = withWholeClusters(touched.map(named), pull.hosts.map(named)).map((x) => x.h);
    if (pull.errors.length) {
      await this.verdict(head, 'failure', `invalid manifests: ${pull.errors[0]}`, () => problemsCheck(pull.problems));
      log.warn({ errors: pull.errors.length }, 'pull request has invalid manifests');
      return planComment({ sha: head, plans: [], problems: pull.problems });
    }
    const baseSpec = (name: string) => base.hosts.find((b) => b.name === name);
    const untrusted = untrustedReason(pr.fromFork, changed, baseSpec);
    const offline =
      untrusted && !this.d.planUntrustedLive ? `${untrusted}, so it is not planned against live hosts.` : undefined;
    const render = (h: HostSpec) => renderHost(h, placeholderSecrets, this.policy.paths);
    let plans: HostPlan[];
    // Offline plans contact no host: no cluster health, so no rollout to show.
    let rollouts: RolloutPlan[] = [];
    if (offline) {
      plans = changed.map((h) => {
        const b = baseSpec(h.name);
        return planOffline(b && render(b), render(h), head);
      });
    } else {
      // Whether deploying would find each secret, without reading one: a host that would fail is blocked,
      // not contacted.
      const missing = new Map<string, string[]>();
      for (const h of changed) {
        const problems = await secretPresenceProblems(h, this.policy.secrets, this.env);
        if (problems.length)
          missing.set(
            h.name,
            problems.map((p) => `${h.file}: ${p.path}: ${p.message}`),
          );
      }
      const { targets } = prepareEach(
        changed.filter((h) => !missing.has(h.name)),
        placeholderSecrets,
        this.policy.paths,
      );
      const runs = await reconcileAll(targets, {
        pool: this.d.pool,
        revision: head,
        apply: false,
        concurrency: this.d.concurrency,
        compare: 'display',
      });
      rollouts = distinctRollouts(runs);
      plans = changed.map((h) => {
        const run = runs.find((r) => r.host === h.name);
        if (run?.plan) return run.plan;
        const target: Target = { spec: h, desired: render(h) };
        const blocked = missing.get(h.name) ?? ['not planned'];
        return { ...unknownPlan(target, head, ''), sync: 'OutOfSync', error: undefined, blocked };
      });
    }
    const posted = hostStatusesToPost(plans);
    for (const p of posted) {
      const st = planStatus(p);
      await this.status(head, hostContext(p.host), st.state, st.description);
    }
    // Deleted manifests: what merging does to their hosts under the controller's `prune` setting.
    const prune = this.d.prune ?? false;
    const gone = pruneDecision(base.hosts.map(pruneItem), pull.hosts.map(pruneItem), prune);
    const unmanaged = prune ? [] : gone.unmanaged.map((u) => u.host);
    const deleted = gone.decommission.length + gone.unmanaged.length;
    // The batches the deploy rolls the standalone hosts whose change restarts in (per rollout policy).
    const restarting = changed.filter((h) => {
      const p = plans.find((x) => x.host === h.name);
      return !h.cluster && p && planVerdict(p) === 'change' && rollsInBatches(p);
    });
    const batches = this.d.rollout ? batchesByPolicy(restarting, this.d.rollout) : [];
    // A pull request that touches no manifest gets its success verdict and no comment.
    const comment =
      !plans.length && !deleted
        ? undefined
        : planComment({
            sha: head,
            plans,
            offline,
            rollouts,
            unmanaged,
            ...(prune && deleted ? { prune: gone } : {}),
            batches,
            conflicts: merged === undefined,
          });
    const overall = overallPlanStatus(plans);
    const note = posted.length < plans.length ? ` (${plans.length} hosts: see the comment)` : '';
    // As a GitHub App: one check run, the comment as its text, an annotation per host on its manifest.
    await this.verdict(head, overall.state, `${overall.description}${note}`, () =>
      planCheck(plans, manifestPositions(pull.hosts, pull.files), comment),
    );
    log.info({ hosts: plans.map((p) => `${p.host}:${p.sync}`), offline: Boolean(offline) }, 'planned pull request');
    return comment;
  }

  async driftSweep(head: string): Promise<void> {
    if (head !== this.state.appliedRevision) return;
    const started = this.now();
    const loaded = await this.load(head);
    if (loaded.errors.length) return;
    this.learnClusters(loaded.hosts);
    const prepared = await this.prepare(loaded.hosts.filter((h) => this.mine(h.name)));
    const { targets, failures } = prepared;
    // Connections are kept between sweeps: those of hosts gone from the branch (or held by another
    // replica now) are closed.
    await this.d.pool.retain(loaded.hosts.filter((h) => this.mine(h.name)));
    for (const f of failures)
      this.d.log.warn({ host: f.host, error: oneLine(f.error) }, 'drift sweep: host not rendered');
    const runs = await reconcileAll(targets, {
      pool: this.d.pool,
      revision: head,
      apply: false,
      keepFacts: false,
      concurrency: this.d.concurrency,
    });
    // A host applied from outside the branch and different from it is drift (a revision checked once).
    const onBranch = new Map<string, Promise<boolean>>();
    for (const r of runs) {
      const rev = r.plan?.applied?.revision;
      if (!rev || r.error) continue;
      if (!onBranch.has(rev)) onBranch.set(rev, this.d.source.isOnBranch(rev, head));
      const drift = outOfBandDrift(r.plan!, await onBranch.get(rev)!, this.d.source.branch);
      if (drift) r.plan!.drift.push(drift);
    }
    if (
      failures.length === 0 &&
      Object.keys(this.state.retries).length === 0 &&
      runs.every((r) => r.plan?.sync === 'Synced')
    ) {
      // Every host is in sync: the last successful sync is now, also when no deploy ran.
      this.state.lastSuccessfulSync = new Date(this.now()).toISOString();
      this.metrics.lastSuccessfulSync = this.now();
      this.save();
    }
    for (const [i, run] of runs.entries()) {
      const t = targets[i];
      try {
        await this.driftOne(t, run, head, targets);
      } catch (e) {
        this.metrics.errors++;
        this.d.log.error({ host: t.desired.name, err: oneLine((e as Error).message) }, 'drift handling failed');
      }
    }
    this.metrics.observeDuration('drift', (this.now() - started) / 1000);
  }

  private async driftOne(t: Target, run: HostRun, head: string, all: readonly Target[]): Promise<void> {
    const name = t.desired.name;
    const plan = run.plan!;
    this.metrics.setHost(name, plan.sync, run.error ? 'Unknown' : plan.health);
    const open = this.state.driftIssues[name];
    // A suspended host's drift is reported, never corrected (nor is a member of a cluster one holds).
    const held = splitSuspended(all.map((x) => suspendItem(x, this.state.suspended))).suspended;
    const selfHeal = t.spec.policy.selfHeal && !held.some((x) => x.name === name);
    const decision = driftDecision(plan, Boolean(run.error), open, selfHeal);
    if (decision.kind === 'unreachable') {
      this.d.log.warn({ host: name, error: oneLine(run.error ?? '') }, 'drift sweep: host unreachable');
      return;
    }
    if (decision.kind === 'in-sync') {
      if (decision.close !== undefined) await this.closeDrift(name, decision.close, 'The host is back in sync.');
      return;
    }
    this.d.log.warn({ host: name, drift: plan.drift, selfHeal: decision.selfHeal }, 'drift detected');
    let issue: number | undefined = open?.number;
    if (this.d.github) {
      const body = `${driftIssueBody(plan, decision.selfHeal, head)}\n\n${DRIFT_MARKER(name)}`;
      // After a restart without state, the issue is found by its marker: never a second one.
      if (issue === undefined) issue = (await this.d.github.findDriftIssue(DRIFT_MARKER(name)))?.number;
      if (issue === undefined) issue = await this.d.github.openIssue(`natsfleet: drift on ${name}`, body);
      else if (decision.issue !== 'keep') {
        await this.d.github.updateIssue(issue, body);
        if (decision.issue === 'update') {
          await this.d.github.comment(issue, 'The drift on this host changed; the description above is up to date.');
        }
      }
      this.state.driftIssues[name] = { number: issue, fingerprint: decision.fingerprint };
      this.save();
    }
    if (decision.selfHeal) {
      const options = {
        pool: this.d.pool,
        revision: head,
        apply: true,
        concurrency: this.d.concurrency,
        by: this.actor(),
        ...this.leaseOptions(),
      };
      // A cluster member heals through its cluster's rollout: the same quorum gates as a deploy.
      const cluster = t.spec.cluster?.name;
      const heal = async () =>
        cluster
          ? (
              await reconcileAll(
                all.filter((x) => x.spec.cluster?.name === cluster),
                options,
              )
            ).find((r) => r.host === name)!
          : this.d.replication && !this.mine(name)
            ? undefined
            : await reconcileOne(t, { ...options, concurrency: 1 });
      const r = this.d.replication;
      const healed = r ? await r.busy([{ name, cluster }], heal) : await heal();
      // A lease lost meanwhile: the replica holding the host now heals it.
      if (!healed || healed.reason === 'lease-lost') return;
      this.remember(name, head, healed.apply);
      if (isSuccessful(healed.apply)) {
        this.d.log.info({ host: name }, 'drift corrected (selfHeal)');
        if (issue !== undefined) {
          const what = healed.apply!.steps.join(', ') || 'files restored';
          await this.closeDrift(name, issue, `natsfleet corrected the drift (selfHeal): ${what}.`);
        }
      } else {
        this.d.log.error({ host: name, error: oneLine(healed.apply?.error ?? healed.error ?? '') }, 'self-heal failed');
      }
    }
  }

  private async closeDrift(host: string, number: number, why: string) {
    if (this.d.github) {
      await this.d.github.comment(number, why);
      await this.d.github.closeIssue(number);
    }
    delete this.state.driftIssues[host];
    this.save();
  }
}
