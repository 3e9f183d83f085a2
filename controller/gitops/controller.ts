// Owns the GitOps loop: poll the branch and deploy what changed (merge-to-deploy, results on the
// pull request), plan open pull requests against live hosts read-only (one comment per PR, edited in
// place, and a commit status per host), and sweep for drift (one issue per host, self-heal when the
// manifest allows). GitHub is optional: without it, everything goes to the log.
import { sha256 } from '../shell/hash.js';
import type { Logger } from 'pino';
import { loadManifests } from '../manifest/load.js';
import { formatProblem } from '../manifest/problems.js';
import type { HostSpec } from '../manifest/host-spec.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { renderHost } from '../render/desired.js';
import { prepareTargets, reconcileAll, reconcileOne, type HostRun, type Target } from '../reconcile/reconcile.js';
import type { SessionPool } from '../reconcile/pool.js';
import { desiredFingerprint, planOffline } from '../plan/offline.js';
import type { HostPlan } from '../plan/types.js';
import type { GitSource } from '../source/git-source.js';
import type { GitHubReporter, StatusState } from '../report/github.js';
import {
  deployComment,
  DEPLOY_MARKER,
  DRIFT_MARKER,
  driftIssueBody,
  PLAN_MARKER,
  planComment,
  serviceSummary,
} from '../report/markdown.js';
import type { ApplyResult } from '../apply/apply.js';
import { Metrics } from './metrics.js';
import type { ControllerState, StateStore } from './state.js';

export interface ControllerDeps {
  source: GitSource;
  github?: GitHubReporter;
  pool: SessionPool;
  store: StateStore;
  secrets: SecretResolver;
  log: Logger;
  concurrency: number;
  driftIntervalMs: number;
  /** Plan pull requests that change SSH targets, add hosts or come from forks against live hosts anyway. */
  planUntrustedLive?: boolean;
  now?: () => number;
}

const BACKOFF_BASE_MS = 15_000;
const BACKOFF_MAX_MS = 10 * 60_000;
export const STATUS_CONTEXT = 'natsfleet';
export const hostContext = (host: string) => `natsfleet/${host}`;

const okResult = (r: ApplyResult | undefined) =>
  Boolean(
    r && (r.outcome === 'applied' || r.outcome === 'unchanged') && (r.health === 'Healthy' || r.health === 'Missing'),
  );
const sha = (s: string) => sha256(s).slice(0, 16);
const placeholderSecrets: SecretResolver = (ref) =>
  `natsfleet-offline-${ref.env ? 'env' : ref.file ? 'file' : 'bcrypt'}-secret`;

export class Controller {
  state: ControllerState;
  readonly metrics = new Metrics();
  private lastDrift = 0;
  private readonly now: () => number;

  constructor(private readonly d: ControllerDeps) {
    this.state = d.store.load();
    this.now = d.now ?? Date.now;
  }

  private save() {
    this.d.store.save(this.state);
  }

  private async status(sha: string, context: string, state: StatusState, description: string) {
    await this.d.github
      ?.setStatus(sha, context, state, description)
      .catch((e) => this.d.log.warn({ err: e.message, context }, 'commit status failed'));
  }

  /** One pass of the loop: deploy the branch, plan pull requests, and sweep for drift when due. */
  async tick(): Promise<void> {
    const started = this.now();
    this.metrics.ticks++;
    try {
      const head = await this.d.source.fetchBranch();
      await this.deploy(head);
      if (this.d.github) await this.planPulls(head);
      if (this.now() - this.lastDrift >= this.d.driftIntervalMs) {
        this.lastDrift = this.now();
        await this.driftSweep(head);
      }
    } catch (e) {
      this.metrics.errors++;
      throw e;
    } finally {
      this.metrics.observeDuration('tick', (this.now() - started) / 1000);
    }
  }

  private async load(
    rev: string,
    secrets = this.d.secrets,
  ): Promise<{ targets?: Target[]; hosts?: HostSpec[]; errors: string[] }> {
    const { hosts, problems } = loadManifests(await this.d.source.manifestsAt(rev));
    const errors = problems.filter((p) => p.severity === 'error').map(formatProblem);
    if (errors.length) return { errors };
    try {
      return { targets: prepareTargets(hosts, secrets), hosts, errors: [] };
    } catch (e) {
      return { errors: [(e as Error).message] };
    }
  }

  async deploy(head: string): Promise<void> {
    const dueRetries = Object.entries(this.state.retries).filter(([, r]) => r.nextAttemptAt <= this.now());
    if (head === this.state.appliedRevision && dueRetries.length === 0) return;
    if (head === this.state.invalidRevision) return;
    const started = this.now();
    const log = this.d.log.child({ revision: head.slice(0, 12) });
    const { targets, errors } = await this.load(head);
    if (!targets) {
      log.error({ errors }, 'revision is invalid: nothing applied');
      await this.status(head, STATUS_CONTEXT, 'failure', `invalid manifests: ${errors[0]}`);
      for (const pr of (await this.d.github?.pullsForCommit(head)) ?? []) {
        await this.d.github!.ensureComment(
          pr,
          DEPLOY_MARKER(head),
          `### natsfleet did not deploy ${head.slice(0, 12)}\n\nThe manifests are invalid; nothing was applied.\n\n\`\`\`\n${errors.join('\n')}\n\`\`\``,
        );
      }
      this.state.invalidRevision = head;
      this.save();
      return;
    }
    const newRevision = head !== this.state.appliedRevision;
    const todo = targets.filter((t) => {
      const retry = this.state.retries[t.desired.name];
      if (retry && retry.revision === head) return retry.nextAttemptAt <= this.now();
      return desiredFingerprint(t.desired) !== this.state.hostFingerprints[t.desired.name];
    });
    for (const name of Object.keys(this.state.retries))
      if (!targets.some((t) => t.desired.name === name)) delete this.state.retries[name];
    log.info({ hosts: todo.map((t) => t.desired.name) }, todo.length ? 'deploying' : 'revision changes no host');
    for (const t of todo) await this.status(head, hostContext(t.desired.name), 'pending', 'deploying');
    const runs = await reconcileAll(todo, {
      pool: this.d.pool,
      revision: head,
      apply: true,
      concurrency: this.d.concurrency,
    });
    for (const [i, run] of runs.entries()) {
      const t = todo[i];
      const name = t.desired.name;
      this.metrics.setHost(
        name,
        run.error ? 'Unknown' : okResult(run.apply) ? 'Synced' : 'OutOfSync',
        run.error ? 'Unknown' : run.apply!.health,
      );
      if (okResult(run.apply)) {
        this.state.hostFingerprints[name] = desiredFingerprint(t.desired);
        delete this.state.retries[name];
        await this.status(
          head,
          hostContext(name),
          'success',
          run.apply!.outcome === 'applied' ? `applied: ${run.apply!.steps.join(', ') || 'files'}` : 'in sync',
        );
      } else {
        const prev = this.state.retries[name];
        const attempts = prev && prev.revision === head ? prev.attempts + 1 : 1;
        const error = run.error ?? run.apply?.error ?? run.apply?.outcome ?? 'failed';
        this.state.retries[name] = {
          revision: head,
          attempts,
          nextAttemptAt: this.now() + Math.min(BACKOFF_BASE_MS * 2 ** (attempts - 1), BACKOFF_MAX_MS),
          lastError: error,
        };
        log.warn({ host: name, attempts, error }, 'host failed; will retry with backoff');
        await this.status(head, hostContext(name), run.error ? 'error' : 'failure', error);
      }
    }
    const failed = Object.keys(this.state.retries).length;
    await this.status(
      head,
      STATUS_CONTEXT,
      failed ? 'failure' : 'success',
      failed ? `${failed} host(s) failed` : `${targets.length} host(s) in sync`,
    );
    if (runs.length > 0 || newRevision) await this.reportDeploy(head, runs);
    this.state.appliedRevision = head;
    if (!failed) this.state.lastSuccessfulSync = new Date(this.now()).toISOString();
    if (!failed) this.metrics.lastSuccessfulSync = this.now();
    this.save();
    this.metrics.observeDuration('deploy', (this.now() - started) / 1000);
    log.info({ applied: runs.filter((r) => r.apply?.outcome === 'applied').length, failed }, 'deploy finished');
  }

  private async reportDeploy(head: string, runs: HostRun[]) {
    if (!this.d.github || runs.length === 0) return;
    const results = runs.filter((r) => r.apply).map((r) => r.apply!);
    const unreachable = runs.filter((r) => r.error).map((r) => ({ host: r.host, error: r.error! }));
    for (const pr of await this.d.github.pullsForCommit(head)) {
      await this.d.github.ensureComment(pr, DEPLOY_MARKER(head), deployComment(head, results, unreachable));
    }
  }

  async planPulls(baseHead: string): Promise<void> {
    const github = this.d.github!;
    const started = this.now();
    const base = await this.load(baseHead, placeholderSecrets);
    const baseFiles = new Map((await this.d.source.manifestsAt(baseHead)).map((f) => [f.path, f.text]));
    for (const pr of await github.openPulls()) {
      if (this.state.pullHeads[pr.number] === pr.headSha) continue;
      const head = await this.d.source.fetchPull(pr.number);
      const log = this.d.log.child({ pull: pr.number, sha: head.slice(0, 12) });
      const files = await this.d.source.manifestsAt(head);
      const { hosts, problems } = loadManifests(files);
      const changed = hosts.filter((h) => baseFiles.get(h.file) !== files.find((f) => f.path === h.file)?.text);
      let body: string;
      let plans: HostPlan[] = [];
      if (problems.some((p) => p.severity === 'error')) {
        body = planComment({ sha: head, plans: [], problems });
        await this.status(
          head,
          STATUS_CONTEXT,
          'failure',
          `invalid manifests: ${formatProblem(problems.find((p) => p.severity === 'error')!)}`,
        );
        log.warn('pull request has invalid manifests');
      } else {
        const baseSpec = (name: string) => base.hosts?.find((b) => b.name === name);
        const untrusted = changed
          .map((h) => {
            const b = baseSpec(h.name);
            if (pr.fromFork) return 'the pull request comes from a fork';
            if (!b) return `it adds the host ${h.name}`;
            if (JSON.stringify(b.ssh) !== JSON.stringify(h.ssh))
              return `it changes the SSH address or host key of ${h.name}`;
            return undefined;
          })
          .find(Boolean);
        const offline =
          untrusted && !this.d.planUntrustedLive ? `${untrusted}, so it is not planned against live hosts.` : undefined;
        if (offline) {
          plans = changed.map((h) => {
            const b = baseSpec(h.name);
            return planOffline(b && renderHost(b, placeholderSecrets), renderHost(h, placeholderSecrets), head);
          });
        } else {
          const targets = prepareTargets(changed, this.d.secrets);
          const runs = await reconcileAll(targets, {
            pool: this.d.pool,
            revision: head,
            apply: false,
            concurrency: this.d.concurrency,
          });
          plans = runs.map((r) => r.plan!);
        }
        body = planComment({ sha: head, plans, offline });
        for (const p of plans) {
          const state: StatusState = p.sync === 'Unknown' ? 'error' : p.blocked.length ? 'failure' : 'success';
          const desc =
            p.sync === 'Unknown'
              ? `unreachable: ${p.error}`
              : p.blocked.length
                ? `blocked: ${p.blocked[0]}`
                : p.changes.length || p.steps.length
                  ? `${p.changes.length} change(s), ${serviceSummary(p)}`
                  : 'no changes';
          await this.status(head, hostContext(p.host), state, desc);
        }
        const bad = plans.filter((p) => p.sync === 'Unknown' || p.blocked.length).length;
        await this.status(
          head,
          STATUS_CONTEXT,
          bad ? 'failure' : 'success',
          bad
            ? `${bad} host(s) cannot be planned`
            : `plan: ${plans.filter((p) => p.sync === 'OutOfSync').length} host(s) change`,
        );
        log.info({ hosts: plans.map((p) => `${p.host}:${p.sync}`), offline: Boolean(offline) }, 'planned pull request');
      }
      this.state.planComments[pr.number] = await github.ensureComment(
        pr.number,
        PLAN_MARKER,
        body,
        this.state.planComments[pr.number],
      );
      this.state.pullHeads[pr.number] = head;
      this.save();
    }
    this.metrics.observeDuration('pull-plan', (this.now() - started) / 1000);
  }

  async driftSweep(head: string): Promise<void> {
    if (head !== this.state.appliedRevision) return;
    const started = this.now();
    const { targets } = await this.load(head);
    if (!targets) return;
    const runs = await reconcileAll(targets, {
      pool: this.d.pool,
      revision: head,
      apply: false,
      concurrency: this.d.concurrency,
    });
    for (const [i, run] of runs.entries()) {
      const t = targets[i];
      const name = t.desired.name;
      const plan = run.plan!;
      this.metrics.setHost(name, plan.sync, run.error ? 'Unknown' : plan.health);
      if (run.error) continue;
      const drifted = plan.drift.length > 0;
      const open = this.state.driftIssues[name];
      if (!drifted) {
        if (open && plan.sync === 'Synced') await this.closeDrift(name, open.number, 'The host is back in sync.');
        continue;
      }
      const fingerprint = sha(
        JSON.stringify([plan.drift, plan.changes.map((c) => [c.path, c.kind === 'file' ? c.diff : ''])]),
      );
      const selfHeal = t.spec.policy.selfHeal;
      this.d.log.warn({ host: name, drift: plan.drift, selfHeal }, 'drift detected');
      let issue: number | undefined = open?.number;
      if (this.d.github) {
        const body = `${driftIssueBody(plan, selfHeal, head)}\n\n${DRIFT_MARKER(name)}`;
        // After a restart without state, the issue is found by its marker: never a second one.
        if (issue === undefined) issue = (await this.d.github.findDriftIssue(DRIFT_MARKER(name)))?.number;
        if (issue === undefined) issue = await this.d.github.openIssue(`natsfleet: drift on ${name}`, body);
        else if (open?.fingerprint !== fingerprint) {
          await this.d.github.updateIssue(issue, body);
          if (open)
            await this.d.github.comment(issue, 'The drift on this host changed; the description above is up to date.');
        }
        this.state.driftIssues[name] = { number: issue, fingerprint };
        this.save();
      }
      if (selfHeal) {
        const healed = await reconcileOne(t, { pool: this.d.pool, revision: head, apply: true, concurrency: 1 });
        if (okResult(healed.apply)) {
          this.d.log.info({ host: name }, 'drift corrected (selfHeal)');
          if (issue !== undefined)
            await this.closeDrift(
              name,
              issue,
              `natsfleet corrected the drift (selfHeal): ${healed.apply!.steps.join(', ') || 'files restored'}.`,
            );
        } else {
          this.d.log.error({ host: name, error: healed.apply?.error ?? healed.error }, 'self-heal failed');
        }
      }
    }
    this.metrics.observeDuration('drift', (this.now() - started) / 1000);
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
