// Owns the GitOps loop: poll the branch and deploy what changed (merge-to-deploy, results on the
// pull request), plan open pull requests against live hosts read-only (one comment per PR, edited in
// place, and a commit status per host), and sweep for drift (one issue per host, self-heal when the
// manifest allows). GitHub is optional: without it, everything goes to the log.
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
  type Target,
} from '../reconcile/reconcile.js';
import type { SessionPool } from '../reconcile/pool.js';
import { desiredFingerprint, planOffline } from '../plan/offline.js';
import type { HostPlan } from '../plan/types.js';
import type { RolloutPlan } from '../plan/rollout.js';
import type { GitSource } from '../source/git-source.js';
import type { GitHubReporter, StatusState } from '../report/github.js';
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
  unmanagedHosts,
  outOfBandDrift,
  splitSuspended,
  suspendItem,
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
import type { BatchPolicy } from '../plan/batches.js';
import { packageVersion } from '../package-root.js';
import type { ControllerState, StateStore } from './state.js';

export interface ControllerDeps {
  source: GitSource;
  github?: GitHubReporter;
  pool: SessionPool;
  store: StateStore;
  /** The operator's path and secret policies (the controller's configuration). */
  policy?: LoadPolicy;
  /** Where `{env}` secrets are read (default: the process environment). */
  env?: Readonly<Record<string, string | undefined>>;
  log: Logger;
  concurrency: number;
  driftIntervalMs: number;
  /** Plan pull requests that change SSH targets, add hosts or come from forks against live hosts anyway. */
  planUntrustedLive?: boolean;
  /** Standalone hosts deployed in batches (a canary first, stopping on failures). */
  rollout?: BatchPolicy;
  now?: () => number;
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
  private readonly now: () => number;
  private readonly policy: LoadPolicy;
  private readonly env: Readonly<Record<string, string | undefined>>;

  constructor(private readonly d: ControllerDeps) {
    this.state = d.store.load();
    if (d.store.recovered) d.log.warn(d.store.recovered);
    this.now = d.now ?? Date.now;
    this.policy = d.policy ?? DEFAULT_LOAD_POLICY;
    this.env = d.env ?? process.env;
  }

  private save() {
    this.d.store.save(this.state);
  }

  private async status(sha: string, context: string, state: StatusState, description: string) {
    await this.d.github
      ?.setStatus(sha, context, state, oneLine(description))
      .catch((e: Error) => this.d.log.warn({ err: oneLine(e.message), context }, 'commit status failed'));
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
    try {
      let head: string;
      try {
        head = await this.d.source.fetchBranch();
      } catch (e) {
        this.metrics.errors++;
        throw e;
      }
      const ok = [await this.phase('deploy', () => this.deploy(head))];
      if (this.d.github) ok.push(await this.phase('pull-requests', () => this.planPulls(head)));
      if (this.now() - this.lastDrift >= this.d.driftIntervalMs) {
        this.lastDrift = this.now();
        ok.push(await this.phase('drift', () => this.driftSweep(head)));
      }
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
    const dueRetries = Object.entries(this.state.retries).filter(([, r]) => r.nextAttemptAt <= this.now());
    if (head === this.state.appliedRevision && dueRetries.length === 0) return;
    if (head === this.state.invalidRevision) return;
    const started = this.now();
    const log = this.d.log.child({ revision: shortRev(head) });
    const loaded = await this.load(head);
    if (loaded.errors.length) {
      const errors = loaded.errors;
      log.error({ errors }, 'revision is invalid: nothing applied');
      await this.status(head, STATUS_CONTEXT, 'failure', `invalid manifests: ${errors[0]}`);
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
    // Suspended hosts (spec.policy.suspend) are not deployed; a suspended member holds its whole cluster.
    const split = splitSuspended(prepared.targets.map(suspendItem));
    const targets = split.active.map((x) => x.t);
    this.metrics.setSuspended(split.suspended.map((x) => x.name));
    const newRevision = head !== this.state.appliedRevision;
    const now = this.now();
    const held: string[] = [];
    for (const x of split.suspended) {
      if (!shouldDeploy(undefined, head, now, desiredFingerprint(x.t.desired), this.state.hostFingerprints[x.name]))
        continue;
      held.push(x.name);
      log.info({ host: x.name }, 'suspended: not deployed');
      await this.status(head, hostContext(x.name), 'success', 'suspended (spec.policy.suspend): not deployed');
    }
    const due = targets.filter((t) =>
      shouldDeploy(
        this.state.retries[t.desired.name],
        head,
        now,
        desiredFingerprint(t.desired),
        this.state.hostFingerprints[t.desired.name],
      ),
    );
    const named = (t: Target) => ({ name: t.desired.name, cluster: t.spec.cluster?.name, t });
    const todo = withWholeClusters(due.map(named), targets.map(named)).map((x) => x.t);
    // A host that cannot be rendered (a secret refused or missing) fails on its own, with backoff.
    const failing = failures.filter((f) => shouldDeploy(this.state.retries[f.host], head, now, undefined, undefined));
    // A retry the branch no longer asks for (a revert of the failing commit, a host removed) is dropped.
    const desiredNow = new Map<string, string | undefined>(loaded.hosts.map((h) => [h.name, undefined]));
    for (const t of prepared.targets) desiredNow.set(t.desired.name, desiredFingerprint(t.desired));
    for (const name of staleRetries(this.state.retries, head, desiredNow, this.state.hostFingerprints)) {
      log.info({ host: name }, 'retry dropped: the branch no longer asks for what failed');
      delete this.state.retries[name];
    }
    log.info({ hosts: todo.map((t) => t.desired.name) }, todo.length ? 'deploying' : 'revision changes no host');
    for (const t of todo) await this.status(head, hostContext(t.desired.name), 'pending', 'deploying');
    const runs: HostRun[] = await reconcileAll(todo, {
      pool: this.d.pool,
      revision: head,
      apply: true,
      concurrency: this.d.concurrency,
      batches: this.d.rollout,
    });
    runs.push(
      ...failing.map((f) => ({ host: f.host, error: f.error, reason: 'secret-unavailable' as const, durationMs: 0 })),
    );
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
    const failed = Object.keys(this.state.retries).length;
    await this.status(
      head,
      STATUS_CONTEXT,
      failed ? 'failure' : 'success',
      failed ? `${failed} host(s) failed` : `${loaded.hosts.length} host(s) in sync`,
    );
    if (runs.length > 0 || newRevision) await this.reportDeploy(head, runs, held);
    this.state.appliedRevision = head;
    if (!failed) this.state.lastSuccessfulSync = new Date(this.now()).toISOString();
    if (!failed) this.metrics.lastSuccessfulSync = this.now();
    this.save();
    this.metrics.observeDuration('deploy', (this.now() - started) / 1000);
    log.info({ applied: runs.filter((r) => r.apply?.outcome === 'applied').length, failed }, 'deploy finished');
  }

  private async reportDeploy(head: string, runs: HostRun[], suspended: readonly string[]) {
    if (!this.d.github || (runs.length === 0 && suspended.length === 0)) return;
    // A retry's hosts join the revision's earlier results: the one comment is edited, never replaced by a part.
    const report = mergeDeployReport(
      this.state.lastDeploy,
      head,
      runs.filter((r) => r.apply).map((r) => r.apply!),
      runs.filter((r) => r.error).map((r) => ({ host: r.host, error: r.error! })),
    );
    this.state.lastDeploy = report; // saved with the deploy's state, right after
    const body = deployComment(
      head,
      report.results,
      report.unreachable,
      distinctRollouts(runs),
      suspended,
      nextRetryAt(this.state.retries, head),
    );
    for (const pr of await this.d.github.pullsForCommit(head))
      await this.d.github.ensureComment(pr, DEPLOY_MARKER(head), body);
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
        await this.status(head, STATUS_CONTEXT, 'failure', `natsfleet could not plan this pull request: ${why}`);
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
      await this.status(head, STATUS_CONTEXT, 'failure', `invalid manifests: ${pull.errors[0]}`);
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
    const overall = overallPlanStatus(plans);
    const note = posted.length < plans.length ? ` (${plans.length} hosts: see the comment)` : '';
    await this.status(head, STATUS_CONTEXT, overall.state, `${overall.description}${note}`);
    log.info({ hosts: plans.map((p) => `${p.host}:${p.sync}`), offline: Boolean(offline) }, 'planned pull request');
    const unmanaged = unmanagedHosts(
      base.hosts.map((h) => h.name),
      pull.hosts.map((h) => h.name),
    );
    // A pull request that touches no manifest gets its success status and no comment.
    if (!plans.length && !unmanaged.length) return undefined;
    return planComment({ sha: head, plans, offline, rollouts, unmanaged, conflicts: merged === undefined });
  }

  async driftSweep(head: string): Promise<void> {
    if (head !== this.state.appliedRevision) return;
    const started = this.now();
    const loaded = await this.load(head);
    if (loaded.errors.length) return;
    const { targets, failures } = await this.prepare(loaded.hosts);
    for (const f of failures)
      this.d.log.warn({ host: f.host, error: oneLine(f.error) }, 'drift sweep: host not rendered');
    const runs = await reconcileAll(targets, {
      pool: this.d.pool,
      revision: head,
      apply: false,
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
    // A suspended host's drift is reported, never corrected.
    const selfHeal = t.spec.policy.selfHeal && !t.spec.policy.suspend;
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
      const options = { pool: this.d.pool, revision: head, apply: true, concurrency: this.d.concurrency };
      // A cluster member heals through its cluster's rollout: the same quorum gates as a deploy.
      const cluster = t.spec.cluster?.name;
      const healed = cluster
        ? (
            await reconcileAll(
              all.filter((x) => x.spec.cluster?.name === cluster),
              options,
            )
          ).find((r) => r.host === name)!
        : await reconcileOne(t, { ...options, concurrency: 1 });
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
