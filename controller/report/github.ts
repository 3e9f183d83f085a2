// Owns talking to GitHub with octokit: find-or-update one comment by a hidden marker (Renovate's
// ensureComment), commit statuses with one context per host, pull requests of a commit, and one
// drift issue per host (label natsfleet:drift), opened, updated, closed.
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
}

export async function makeOctokit(cfg: GitHubConfig): Promise<GitHubClient> {
  const Client = Octokit.defaults({ baseUrl: cfg.apiUrl ?? 'https://api.github.com', userAgent: 'natsfleet' });
  if (cfg.app) {
    const app = new App({ appId: cfg.app.appId, privateKey: cfg.app.privateKey, Octokit: Client });
    const octokit = await app.getInstallationOctokit(cfg.app.installationId);
    return {
      octokit,
      whoAmI: () =>
        app.octokit.rest.apps.getAuthenticated().then((r) => (r.data?.slug ? `${r.data.slug}[bot]` : undefined)),
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
  readonly calls = { commentsCreated: 0, commentsUpdated: 0, commentsSkipped: 0 };

  private self?: Promise<string | undefined>;

  /**
   * @param whoAmI natsfleet's own login: only comments it wrote are ever found by their marker and
   * edited (anyone can post a comment carrying a marker). Default: the token's user.
   */
  constructor(
    private readonly octokit: Octokit,
    repository: string,
    private readonly whoAmI: () => Promise<string | undefined> = () => tokenLogin(octokit),
  ) {
    [this.owner, this.repo] = repository.split('/');
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
