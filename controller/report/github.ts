// Owns talking to GitHub with octokit: find-or-update one comment by a hidden marker (Renovate's
// ensureComment), commit statuses with one context per host, pull requests of a commit (and opening
// one: natsfleet revert), one drift issue per host (label natsfleet:drift), opened, updated, closed,
// and, as a GitHub App, one check run per commit (created, or found by name and updated in place;
// annotations sent 50 a request, never one GitHub already has).
import { App, Octokit } from 'octokit';

export interface GitHubConfig {
  repository: string;
  token?: string;
  app?: { appId: number; privateKey: string; installationId: number };
  apiUrl?: string;
}

export interface PullInfo {
  number: number;
  headSha: string;
  fromFork: boolean;
  baseRef: string;
}

export type StatusState = 'pending' | 'success' | 'failure' | 'error';
export const DRIFT_LABEL = 'natsfleet:drift';
const MAX_STATUS_DESCRIPTION = 140;

export interface GitHubClient {
  octokit: Octokit;
  /** The login natsfleet's comments carry (a user for a token, `<slug>[bot]` for an App). */
  whoAmI: () => Promise<string | undefined>;
  /** The GitHub App natsfleet runs as (only an App may use the checks API); none with a token. */
  app?: { id: number };
}

/** The name of natsfleet's check run on a commit. */
export const CHECK_NAME = 'natsfleet';
/** The most annotations GitHub takes in one request (create or update); more are sent in further updates. */
export const MAX_ANNOTATIONS_PER_REQUEST = 50;
/** GitHub's limit on a check run's summary and text. */
export const CHECK_OUTPUT_LIMIT = 65_535;

export type AnnotationLevel = 'notice' | 'warning' | 'failure';
export interface CheckAnnotation {
  /** The file's path in the repository. */
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: AnnotationLevel;
  title: string;
  message: string;
}
/** One check run's state: in progress, or completed with its conclusion. */
export interface CheckRunReport {
  status: 'in_progress' | 'completed';
  conclusion?: 'success' | 'failure';
  title: string;
  /** Markdown, at most CHECK_OUTPUT_LIMIT characters. */
  summary: string;
  text?: string;
  annotations: CheckAnnotation[];
}

/** What tells two annotations apart: one GitHub already has is not sent again (GitHub appends them). */
const annotationKey = (a: {
  path: string;
  start_line: number;
  annotation_level: string | null;
  message: string | null;
}) => JSON.stringify([a.path, a.start_line, a.annotation_level, a.message]);

export async function makeOctokit(cfg: GitHubConfig): Promise<GitHubClient> {
  const Client = Octokit.defaults({ baseUrl: cfg.apiUrl ?? 'https://api.github.com', userAgent: 'natsfleet' });
  if (cfg.app) {
    const app = new App({ appId: cfg.app.appId, privateKey: cfg.app.privateKey, Octokit: Client });
    const octokit = await app.getInstallationOctokit(cfg.app.installationId);
    return {
      octokit,
      whoAmI: () =>
        app.octokit.rest.apps.getAuthenticated().then((r) => (r.data?.slug ? `${r.data.slug}[bot]` : undefined)),
      app: { id: cfg.app.appId },
    };
  }
  if (!cfg.token) throw new Error('GitHub needs a token or a GitHub App (app id, private key, installation id)');
  const octokit = new Client({ auth: cfg.token });
  return { octokit, whoAmI: () => tokenLogin(octokit) };
}

/** The login of a token's user. */
export const tokenLogin = (octokit: Octokit) => octokit.rest.users.getAuthenticated().then((r) => r.data.login);

export class GitHubReporter {
  readonly owner: string;
  readonly repo: string;
  /** Requests made, by kind: tests and metrics read it. */
  readonly calls = { commentsCreated: 0, commentsUpdated: 0, commentsSkipped: 0, checksCreated: 0, checksUpdated: 0 };
  /** Whether natsfleet reports with check runs (a GitHub App) rather than an overall commit status (a token). */
  readonly checks: boolean;

  private self?: Promise<string | undefined>;

  /**
   * @param whoAmI natsfleet's own login: only comments it wrote are ever found by their marker and
   * edited (anyone can post a comment carrying a marker). Default: the token's user.
   */
  constructor(
    private readonly octokit: Octokit,
    repository: string,
    private readonly whoAmI: () => Promise<string | undefined> = () => tokenLogin(octokit),
    /** The GitHub App natsfleet runs as: then it reports with check runs (makeOctokit's `app`). */
    private readonly app?: { id: number },
  ) {
    [this.owner, this.repo] = repository.split('/');
    this.checks = app !== undefined;
  }

  /** A reporter for a client made by makeOctokit: check runs when it is a GitHub App. */
  static of(client: GitHubClient, repository: string): GitHubReporter {
    return new GitHubReporter(client.octokit, repository, client.whoAmI, client.app);
  }

  /** natsfleet's own login, asked once (undefined when GitHub does not say: then nothing is trusted by marker). */
  private me(): Promise<string | undefined> {
    this.self ??= this.whoAmI().catch(() => undefined);
    return this.self;
  }

  private get r() {
    return { owner: this.owner, repo: this.repo };
  }

  async openPulls(): Promise<PullInfo[]> {
    const pulls = await this.octokit.paginate(this.octokit.rest.pulls.list, {
      ...this.r,
      state: 'open',
      per_page: 100,
    });
    return pulls.map((p) => ({
      number: p.number,
      headSha: p.head.sha,
      fromFork: (p.head.repo?.full_name ?? '') !== `${this.owner}/${this.repo}`,
      baseRef: p.base.ref,
    }));
  }

  async pullsForCommit(sha: string): Promise<number[]> {
    const { data } = await this.octokit.rest.repos.listPullRequestsAssociatedWithCommit({ ...this.r, commit_sha: sha });
    return data.map((p) => p.number);
  }

  /** Opens a pull request of branch `head` into `base` (natsfleet revert); returns its number and page. */
  async openPull(head: string, base: string, title: string, body: string): Promise<{ number: number; url: string }> {
    const { data } = await this.octokit.rest.pulls.create({ ...this.r, head, base, title, body });
    return { number: data.number, url: data.html_url };
  }

  /** Creates, or edits in place, the one comment carrying `marker`; skips the call when unchanged. */
  async ensureComment(issueNumber: number, marker: string, body: string, knownId?: number): Promise<number> {
    const full = `${body}\n\n${marker}`;
    let existing: { id: number; body?: string } | undefined;
    if (knownId) {
      const me = await this.me();
      existing = await this.octokit.rest.issues.getComment({ ...this.r, comment_id: knownId }).then(
        (r) => (me !== undefined && r.data.user?.login === me ? r.data : undefined),
        () => undefined,
      );
    }
    if (!existing) {
      const me = await this.me();
      const comments = await this.octokit.paginate(this.octokit.rest.issues.listComments, {
        ...this.r,
        issue_number: issueNumber,
        per_page: 100,
      });
      // Only natsfleet's own comment: a marker posted by someone else is never edited or trusted.
      existing = comments.find((c) => c.body?.includes(marker) && me !== undefined && c.user?.login === me);
    }
    if (existing?.body === full) {
      this.calls.commentsSkipped++;
      return existing.id;
    }
    if (existing) {
      await this.octokit.rest.issues.updateComment({ ...this.r, comment_id: existing.id, body: full });
      this.calls.commentsUpdated++;
      return existing.id;
    }
    const { data } = await this.octokit.rest.issues.createComment({ ...this.r, issue_number: issueNumber, body: full });
    this.calls.commentsCreated++;
    return data.id;
  }

  async comment(issueNumber: number, body: string): Promise<void> {
    await this.octokit.rest.issues.createComment({ ...this.r, issue_number: issueNumber, body });
  }

  async setStatus(sha: string, context: string, state: StatusState, description: string): Promise<void> {
    const d =
      description.length > MAX_STATUS_DESCRIPTION
        ? `${description.slice(0, MAX_STATUS_DESCRIPTION - 3)}...`
        : description;
    await this.octokit.rest.repos.createCommitStatus({ ...this.r, sha, context, state, description: d });
  }

  /**
   * Publishes natsfleet's check run on `sha`: the app's run of that name is updated in place (found on
   * GitHub, so a restart does not create a second one), else one is created. Annotations go 50 a
   * request; those the run already has are not sent again (GitHub appends, it never replaces them).
   */
  async publishCheck(sha: string, report: CheckRunReport): Promise<number> {
    const app = this.app;
    if (!app) throw new Error('check runs need natsfleet to run as a GitHub App (a token cannot use them)');
    const { data } = await this.octokit.rest.checks.listForRef({
      ...this.r,
      ref: sha,
      check_name: CHECK_NAME,
      app_id: app.id,
      filter: 'latest',
      per_page: 100,
    });
    const existing = data.check_runs
      .filter((c) => c.name === CHECK_NAME && c.head_sha === sha && (c.app?.id ?? app.id) === app.id)
      .sort((a, b) => b.id - a.id)[0];
    let wanted = report.annotations;
    if (existing && existing.output.annotations_count > 0) {
      const have = await this.octokit.paginate(this.octokit.rest.checks.listAnnotations, {
        ...this.r,
        check_run_id: existing.id,
        per_page: 100,
      });
      const known = new Set(have.map(annotationKey));
      wanted = wanted.filter((a) => !known.has(annotationKey(a)));
    }
    const batches: CheckAnnotation[][] = [];
    for (let i = 0; i < wanted.length; i += MAX_ANNOTATIONS_PER_REQUEST)
      batches.push(wanted.slice(i, i + MAX_ANNOTATIONS_PER_REQUEST));
    const output = (annotations: CheckAnnotation[] = []) => ({
      title: report.title,
      summary: report.summary,
      ...(report.text !== undefined ? { text: report.text } : {}),
      ...(annotations.length ? { annotations } : {}),
    });
    const state = {
      status: report.status,
      ...(report.conclusion ? { conclusion: report.conclusion } : {}),
    };
    let id: number;
    if (existing) {
      id = existing.id;
      await this.octokit.rest.checks.update({ ...this.r, check_run_id: id, ...state, output: output(batches[0]) });
      this.calls.checksUpdated++;
    } else {
      const { data: created } = await this.octokit.rest.checks.create({
        ...this.r,
        name: CHECK_NAME,
        head_sha: sha,
        ...state,
        output: output(batches[0]),
      });
      id = created.id;
      this.calls.checksCreated++;
    }
    for (const batch of batches.slice(1)) {
      await this.octokit.rest.checks.update({ ...this.r, check_run_id: id, output: output(batch) });
      this.calls.checksUpdated++;
    }
    return id;
  }

  /** The open drift issue of a host, found by its marker. */
  async findDriftIssue(marker: string): Promise<{ number: number; body: string } | undefined> {
    const issues = await this.octokit.paginate(this.octokit.rest.issues.listForRepo, {
      ...this.r,
      labels: DRIFT_LABEL,
      state: 'open',
      per_page: 100,
    });
    const me = await this.me();
    const hit = issues.find(
      (i) => !i.pull_request && i.body?.includes(marker) && me !== undefined && i.user?.login === me,
    );
    return hit ? { number: hit.number, body: hit.body ?? '' } : undefined;
  }

  async openIssue(title: string, body: string): Promise<number> {
    const { data } = await this.octokit.rest.issues.create({ ...this.r, title, body, labels: [DRIFT_LABEL] });
    return data.number;
  }

  async updateIssue(number: number, body: string): Promise<void> {
    await this.octokit.rest.issues.update({ ...this.r, issue_number: number, body });
  }

  async closeIssue(number: number): Promise<void> {
    await this.octokit.rest.issues.update({
      ...this.r,
      issue_number: number,
      state: 'closed',
      state_reason: 'completed',
    });
  }
}
