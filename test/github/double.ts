// A GitHub API double for tests: a local HTTP server that checks EVERY request against GitHub's
// official OpenAPI description (@octokit/openapi, routed and validated by openapi-backend) and
// keeps pull requests, comments, commit statuses, check runs and issues in memory. A request the
// description rejects (or an endpoint the double does not serve) is answered with an error and
// recorded in `violations`, which tests assert to be empty; so is any response of the double's own
// that does not match the description (the status code it sends and that status's schema), so that
// what natsfleet is tested against is what GitHub answers. As a GitHub App (`enableApp`), it checks
// the app's JWT (RS256, signed by its private key) and issues installation tokens; the checks API is
// served to installation tokens only, as on GitHub.
import { createServer, type Server } from 'node:http';
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { OpenAPIBackend, type Context } from 'openapi-backend';
import addFormatsModule from 'ajv-formats';

const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: unknown) => unknown;
const require = createRequire(import.meta.url);

export const SERVED_OPERATIONS = [
  'pulls/list',
  'pulls/create',
  'users/get-authenticated',
  'issues/list-comments',
  'issues/get-comment',
  'issues/create-comment',
  'issues/update-comment',
  'repos/create-commit-status',
  'repos/list-commit-statuses-for-ref',
  'repos/list-pull-requests-associated-with-commit',
  'issues/list-for-repo',
  'issues/create',
  'issues/update',
  'checks/create',
  'checks/update',
  'checks/list-for-ref',
  'checks/list-annotations',
  'apps/get-authenticated',
  'apps/create-installation-access-token',
] as const;

export interface Pull {
  number: number;
  headSha: string;
  headRef: string;
  headRepo: string;
  state: 'open' | 'closed';
  mergeSha?: string;
  /** Set when it was opened through the API (pulls/create). */
  title?: string;
  body?: string;
  baseRef?: string;
}
export interface Comment {
  id: number;
  issue: number;
  body: string;
  updates: number;
  /** Who posted it; natsfleet's comments have none (they are BOT_LOGIN's). */
  author?: string;
}

/** The login the double's token belongs to: natsfleet's own. */
export const BOT_LOGIN = 'natsfleet[bot]';
export interface Status {
  sha: string;
  context: string;
  state: string;
  description?: string;
}
export interface Issue {
  number: number;
  title: string;
  body: string;
  labels: string[];
  state: 'open' | 'closed';
  comments: string[];
}
export interface Annotation {
  path: string;
  start_line: number;
  end_line: number;
  annotation_level: 'notice' | 'warning' | 'failure';
  message: string;
  title?: string;
}
export interface CheckRun {
  id: number;
  name: string;
  headSha: string;
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: string;
  title?: string;
  summary?: string;
  text?: string;
  /** Every annotation the run has: GitHub appends those of each request (create, then updates). */
  annotations: Annotation[];
  /** Requests that changed it after its creation. */
  updates: number;
}
/** A handler's answer: a status code and a JSON body. */
export interface Reply {
  status: number;
  body?: unknown;
}
/** The double as a GitHub App: its id and slug, the public half of its key, the installation it serves. */
export interface AppIdentity {
  appId: number;
  slug: string;
  publicKey: string | KeyObject;
  installationId: number;
}

const API = 'https://api.github.com';
const WEB = 'https://github.com';
const T0 = '2026-01-01T00:00:00Z';
const USER_URLS = [
  'followers',
  'following',
  'gists',
  'starred',
  'subscriptions',
  'organizations',
  'repos',
  'events',
  'received_events',
];
const REPO_URLS = [
  'archive',
  'assignees',
  'blobs',
  'branches',
  'collaborators',
  'comments',
  'commits',
  'compare',
  'contents',
  'contributors',
  'deployments',
  'downloads',
  'events',
  'forks',
  'git_commits',
  'git_refs',
  'git_tags',
  'hooks',
  'issue_comment',
  'issue_events',
  'issues',
  'keys',
  'labels',
  'languages',
  'merges',
  'milestones',
  'notifications',
  'pulls',
  'releases',
  'stargazers',
  'statuses',
  'subscribers',
  'subscription',
  'tags',
  'teams',
  'trees',
];
/** The `<name>_url` fields GitHub puts on an object, each a URL under `base`. */
const urls = (base: string, names: readonly string[]) =>
  Object.fromEntries(names.map((n) => [`${n}_url`, `${base}/${n.replace(/_/g, '-')}`]));

let spec: { paths: Record<string, Record<string, { operationId: string }>> } | undefined;
function githubSpec() {
  if (!spec) {
    const full = JSON.parse(readFileSync(require.resolve('@octokit/openapi/generated/api.github.com.json'), 'utf8'));
    const paths: Record<string, Record<string, unknown>> = {};
    for (const [p, item] of Object.entries(full.paths as Record<string, Record<string, { operationId?: string }>>)) {
      for (const [m, op] of Object.entries(item)) {
        if ((SERVED_OPERATIONS as readonly string[]).includes(op.operationId ?? '')) (paths[p] ??= {})[m] = op;
      }
    }
    // OpenAPI 3.0 allows `nullable` beside `$ref`/`allOf` without a `type`; ajv refuses to compile that.
    // A nullable enum admits null (a check run in progress has `conclusion: null`); ajv wants it listed.
    const strip = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(strip);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if ('nullable' in o && !('type' in o)) delete o.nullable;
        if (o.nullable === true && Array.isArray(o.enum) && !o.enum.includes(null)) o.enum.push(null);
        Object.values(o).forEach(strip);
      }
    };
    strip(full.components);
    strip(paths);
    spec = { ...full, paths } as typeof spec;
  }
  return spec!;
}

export class GitHubDouble {
  readonly pulls: Pull[] = [];
  readonly comments: Comment[] = [];
  readonly statuses: Status[] = [];
  readonly issues: Issue[] = [];
  readonly checkRuns: CheckRun[] = [];
  readonly violations: string[] = [];
  readonly requests: string[] = [];
  /** Installation tokens the double issued to its app (accepted like `token`). */
  readonly installationTokens: string[] = [];
  /** Handlers a test replaces, by operation id (to make the double answer wrongly, say). */
  readonly overrides = new Map<string, (c: Context) => Reply>();
  /**
   * What GitHub does with the head branch of a pull request opened through the API: resolve it to its
   * commit (and publish refs/pull/N/head). Returns the commit, or undefined when there is no such branch
   * (GitHub answers 422). A test sets it to look in its Git repository.
   */
  onCreatePull?: (branch: string, number: number) => string | undefined;
  private app?: AppIdentity;
  private nextId = 1000;
  private server?: Server;
  url = '';

  constructor(
    readonly repository = 'acme/hosts',
    readonly token = 'ghs_double_token',
  ) {}

  private user(login: string, id: number, type = 'User') {
    const url = `${API}/users/${encodeURIComponent(login)}`;
    return {
      login,
      id,
      node_id: `U_${id}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${id}`,
      gravatar_id: '',
      url,
      html_url: `${WEB}/${encodeURIComponent(login)}`,
      ...urls(url, USER_URLS),
      type,
      site_admin: false,
    };
  }

  private repoObj(full = this.repository) {
    const [owner, name] = full.split('/');
    const url = `${API}/repos/${full}`;
    return {
      id: full === this.repository ? 1 : 2,
      node_id: `R_${full}`,
      name,
      full_name: full,
      owner: this.user(owner, 1, 'Organization'),
      private: true,
      html_url: `${WEB}/${full}`,
      description: null,
      fork: full !== this.repository,
      url,
      ...urls(url, REPO_URLS),
      git_url: `git://github.com/${full}.git`,
      ssh_url: `git@github.com:${full}.git`,
      clone_url: `${WEB}/${full}.git`,
      svn_url: `${WEB}/${full}`,
      mirror_url: null,
      homepage: null,
      language: null,
      license: null,
      forks: 0,
      forks_count: 0,
      stargazers_count: 0,
      watchers_count: 0,
      watchers: 0,
      size: 1,
      default_branch: 'main',
      open_issues_count: 0,
      open_issues: 0,
      has_issues: true,
      has_projects: false,
      has_wiki: false,
      has_pages: false,
      has_downloads: false,
      archived: false,
      disabled: false,
      pushed_at: T0,
      created_at: T0,
      updated_at: T0,
    };
  }

  private pullObj(p: Pull) {
    const url = `${API}/repos/${this.repository}/pulls/${p.number}`;
    const issue = `${API}/repos/${this.repository}/issues/${p.number}`;
    const html = `${WEB}/${this.repository}/pull/${p.number}`;
    const statuses = `${API}/repos/${this.repository}/statuses/${p.headSha}`;
    const author = this.user('dev', 2);
    const [headOwner] = p.headRepo.split('/');
    return {
      url,
      id: p.number,
      node_id: `PR_${p.number}`,
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: issue,
      commits_url: `${url}/commits`,
      review_comments_url: `${url}/comments`,
      review_comment_url: `${API}/repos/${this.repository}/pulls/comments{/number}`,
      comments_url: `${issue}/comments`,
      statuses_url: statuses,
      number: p.number,
      state: p.state,
      locked: false,
      title: p.title ?? `PR ${p.number}`,
      user: author,
      body: p.body ?? null,
      labels: [],
      milestone: null,
      created_at: T0,
      updated_at: T0,
      closed_at: p.state === 'closed' ? T0 : null,
      merged_at: p.mergeSha ? T0 : null,
      merge_commit_sha: p.mergeSha ?? null,
      assignee: null,
      draft: false,
      head: {
        label: `${headOwner}:${p.headRef}`,
        ref: p.headRef,
        sha: p.headSha,
        repo: this.repoObj(p.headRepo),
        user: this.user(headOwner, 1, 'Organization'),
      },
      base: {
        label: `${this.repository.split('/')[0]}:${p.baseRef ?? 'main'}`,
        ref: p.baseRef ?? 'main',
        sha: '0'.repeat(40),
        repo: this.repoObj(),
        user: this.user(this.repository.split('/')[0], 1, 'Organization'),
      },
      _links: {
        self: { href: url },
        html: { href: html },
        issue: { href: issue },
        comments: { href: `${issue}/comments` },
        review_comments: { href: `${url}/comments` },
        review_comment: { href: `${API}/repos/${this.repository}/pulls/comments{/number}` },
        commits: { href: `${url}/commits` },
        statuses: { href: statuses },
      },
      author_association: 'MEMBER',
      auto_merge: null,
    };
  }

  private commentObj(c: Comment) {
    return {
      id: c.id,
      node_id: `IC_${c.id}`,
      url: `${API}/repos/${this.repository}/issues/comments/${c.id}`,
      body: c.body,
      user: c.author ? this.user(c.author, 4) : this.user(BOT_LOGIN, 3, 'Bot'),
      html_url: `${WEB}/${this.repository}/issues/${c.issue}#issuecomment-${c.id}`,
      issue_url: `${API}/repos/${this.repository}/issues/${c.issue}`,
      author_association: c.author ? 'MEMBER' : 'NONE',
      created_at: T0,
      updated_at: T0,
    };
  }

  private issueObj(i: Issue) {
    const url = `${API}/repos/${this.repository}/issues/${i.number}`;
    return {
      id: i.number,
      node_id: `I_${i.number}`,
      url,
      repository_url: `${API}/repos/${this.repository}`,
      labels_url: `${url}/labels{/name}`,
      comments_url: `${url}/comments`,
      events_url: `${url}/events`,
      html_url: `${WEB}/${this.repository}/issues/${i.number}`,
      number: i.number,
      title: i.title,
      body: i.body,
      state: i.state,
      labels: i.labels.map((name) => ({ name })),
      user: this.user(BOT_LOGIN, 3, 'Bot'),
      assignee: null,
      milestone: null,
      locked: false,
      comments: i.comments.length,
      closed_at: i.state === 'closed' ? T0 : null,
      created_at: T0,
      updated_at: T0,
      author_association: 'NONE',
    };
  }

  private statusObj(s: Status, id: number) {
    return {
      url: `${API}/repos/${this.repository}/statuses/${s.sha}`,
      avatar_url: null,
      id,
      node_id: `SC_${id}`,
      state: s.state,
      description: s.description ?? null,
      target_url: null,
      context: s.context,
      created_at: T0,
      updated_at: T0,
      creator: this.user(BOT_LOGIN, 3, 'Bot'),
    };
  }

  /** The app as GitHub describes it (`integration`): natsfleet's, or a stand-in when none is enabled. */
  private appObj() {
    const slug = this.app?.slug ?? 'natsfleet';
    return {
      id: this.app?.appId ?? 1,
      slug,
      node_id: `A_${slug}`,
      owner: this.user(this.repository.split('/')[0], 1, 'Organization'),
      name: slug,
      description: null,
      external_url: `${WEB}/apps/${slug}`,
      html_url: `${WEB}/apps/${slug}`,
      created_at: T0,
      updated_at: T0,
      permissions: { checks: 'write', statuses: 'write', issues: 'write', pull_requests: 'write', contents: 'read' },
      events: [],
    };
  }

  private checkRunObj(r: CheckRun) {
    const url = `${API}/repos/${this.repository}/check-runs/${r.id}`;
    return {
      id: r.id,
      node_id: `CR_${r.id}`,
      head_sha: r.headSha,
      external_id: '',
      url,
      html_url: `${WEB}/${this.repository}/runs/${r.id}`,
      details_url: null,
      status: r.status,
      conclusion: r.conclusion ?? null,
      started_at: T0,
      completed_at: r.status === 'completed' ? T0 : null,
      output: {
        title: r.title ?? null,
        summary: r.summary ?? null,
        text: r.text ?? null,
        annotations_count: r.annotations.length,
        annotations_url: `${url}/annotations`,
      },
      name: r.name,
      check_suite: { id: 1 },
      app: this.appObj(),
      pull_requests: this.pulls
        .filter((p) => p.state === 'open' && p.headSha === r.headSha && p.headRepo === this.repository)
        .map((p) => {
          // GitHub lists the pull requests of the run's head (of the same repository: a fork's are left out).
          const repo = (full: string) => ({
            id: this.repoObj(full).id,
            url: `${API}/repos/${full}`,
            name: full.split('/')[1],
          });
          return {
            id: p.number,
            number: p.number,
            url: `${API}/repos/${this.repository}/pulls/${p.number}`,
            head: { ref: p.headRef, sha: p.headSha, repo: repo(p.headRepo) },
            base: { ref: 'main', sha: '0'.repeat(40), repo: repo(this.repository) },
          };
        }),
    };
  }

  private annotationObj(a: Annotation) {
    return {
      path: a.path,
      start_line: a.start_line,
      end_line: a.end_line,
      start_column: null,
      end_column: null,
      annotation_level: a.annotation_level,
      title: a.title ?? null,
      message: a.message,
      raw_details: null,
      blob_href: `${WEB}/${this.repository}/blob/main/${a.path}`,
    };
  }

  private handlers(): Record<string, (c: Context) => Reply> {
    const num = (c: Context, k: string) => Number(c.request.params[k]);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the parsed JSON body of an API request
    const body = (c: Context) => c.request.requestBody as Record<string, any>;
    return {
      'pulls/list': (c) => ({
        status: 200,
        body: this.pulls
          .filter(
            (p) =>
              (c.request.query.state ?? 'open') === 'all' ||
              p.state === c.request.query.state ||
              (!c.request.query.state && p.state === 'open'),
          )
          .map((p) => this.pullObj(p)),
      }),
      'pulls/create': (c) => {
        const b = body(c);
        const branch = String(b.head).replace(/^[^:]*:/, '');
        const number = Math.max(0, ...this.pulls.map((p) => p.number), ...this.issues.map((i) => i.number)) + 1;
        const sha = this.onCreatePull?.(branch, number);
        if (!sha)
          return {
            status: 422,
            body: {
              message: 'Validation Failed',
              errors: [{ resource: 'PullRequest', field: 'head', code: 'invalid' }],
              documentation_url: 'https://docs.github.com/rest/pulls/pulls#create-a-pull-request',
            },
          };
        const p: Pull = {
          ...{ number, headSha: sha, headRef: branch, headRepo: this.repository, state: 'open' as const },
          ...{ title: b.title, body: b.body, baseRef: b.base },
        };
        this.pulls.push(p);
        const detail = { merged: false, mergeable: null, mergeable_state: 'unknown', merged_by: null };
        const counts = { comments: 0, review_comments: 0, commits: 1, additions: 0, deletions: 0, changed_files: 0 };
        return { status: 201, body: { ...this.pullObj(p), ...detail, ...counts, maintainer_can_modify: false } };
      },
      'users/get-authenticated': () => ({
        status: 200,
        body: {
          ...this.user(BOT_LOGIN, 3, 'Bot'),
          ...{ name: null, company: null, blog: null, location: null, email: null, hireable: null, bio: null },
          ...{ public_repos: 0, public_gists: 0, followers: 0, following: 0, created_at: T0, updated_at: T0 },
        },
      }),
      'issues/list-comments': (c) => ({
        status: 200,
        body: this.comments.filter((x) => x.issue === num(c, 'issue_number')).map((x) => this.commentObj(x)),
      }),
      'issues/get-comment': (c) => {
        const x = this.comments.find((y) => y.id === num(c, 'comment_id'));
        return x ? { status: 200, body: this.commentObj(x) } : { status: 404, body: { message: 'Not Found' } };
      },
      'issues/create-comment': (c) => {
        const issue = num(c, 'issue_number');
        const x: Comment = { id: this.nextId++, issue, body: body(c).body, updates: 0 };
        this.comments.push(x);
        this.issues.find((i) => i.number === issue)?.comments.push(x.body);
        return { status: 201, body: this.commentObj(x) };
      },
      'issues/update-comment': (c) => {
        const x = this.comments.find((y) => y.id === num(c, 'comment_id'));
        if (!x) return { status: 404, body: { message: 'Not Found' } };
        x.body = body(c).body;
        x.updates++;
        return { status: 200, body: this.commentObj(x) };
      },
      'repos/create-commit-status': (c) => {
        const s: Status = {
          sha: String(c.request.params.sha),
          context: body(c).context ?? 'default',
          state: body(c).state,
          description: body(c).description,
        };
        this.statuses.push(s);
        return { status: 201, body: this.statusObj(s, this.statuses.length) };
      },
      'repos/list-commit-statuses-for-ref': (c) => ({
        status: 200,
        body: this.statuses
          .flatMap((s, i) => (s.sha === c.request.params.ref ? [this.statusObj(s, i + 1)] : []))
          .reverse(),
      }),
      'repos/list-pull-requests-associated-with-commit': (c) => ({
        status: 200,
        body: this.pulls
          .filter((p) => p.mergeSha === c.request.params.commit_sha || p.headSha === c.request.params.commit_sha)
          .map((p) => this.pullObj(p)),
      }),
      'issues/list-for-repo': (c) => {
        const labels = String(c.request.query.labels ?? '')
          .split(',')
          .filter(Boolean);
        const state = String(c.request.query.state ?? 'open');
        return {
          status: 200,
          body: this.issues
            .filter((i) => (state === 'all' || i.state === state) && labels.every((l) => i.labels.includes(l)))
            .map((i) => this.issueObj(i)),
        };
      },
      'issues/create': (c) => {
        const i: Issue = {
          number: this.nextId++,
          title: body(c).title,
          body: body(c).body ?? '',
          labels: (body(c).labels ?? []).map((l: string | { name: string }) => (typeof l === 'string' ? l : l.name)),
          state: 'open',
          comments: [],
        };
        this.issues.push(i);
        return { status: 201, body: this.issueObj(i) };
      },
      'issues/update': (c) => {
        const i = this.issues.find((x) => x.number === num(c, 'issue_number'));
        if (!i) return { status: 404, body: { message: 'Not Found' } };
        if (body(c).body !== undefined) i.body = body(c).body;
        if (body(c).state) i.state = body(c).state;
        return { status: 200, body: this.issueObj(i) };
      },
      'checks/create': (c) => {
        const b = body(c);
        const r: CheckRun = {
          id: this.nextId++,
          name: b.name,
          headSha: b.head_sha,
          status: 'queued',
          annotations: [],
          updates: 0,
        };
        this.checkRuns.push(r);
        this.editCheckRun(r, b);
        return { status: 201, body: this.checkRunObj(r) };
      },
      'checks/update': (c) => {
        const r = this.checkRuns.find((x) => x.id === num(c, 'check_run_id'));
        if (!r) return { status: 404, body: { message: 'Not Found' } };
        this.editCheckRun(r, body(c));
        r.updates++;
        return { status: 200, body: this.checkRunObj(r) };
      },
      'checks/list-for-ref': (c) => {
        const q = c.request.query;
        const runs = this.checkRuns
          .filter((r) => r.headSha === c.request.params.ref)
          .filter((r) => q.check_name === undefined || r.name === q.check_name)
          .filter((r) => q.status === undefined || r.status === q.status)
          .reverse();
        return { status: 200, body: { total_count: runs.length, check_runs: runs.map((r) => this.checkRunObj(r)) } };
      },
      'checks/list-annotations': (c) => {
        const r = this.checkRuns.find((x) => x.id === num(c, 'check_run_id'));
        if (!r) return { status: 404, body: { message: 'Not Found' } };
        return { status: 200, body: r.annotations.map((a) => this.annotationObj(a)) };
      },
      'apps/get-authenticated': () => ({ status: 200, body: this.appObj() }),
      'apps/create-installation-access-token': (c) => {
        if (!this.app || num(c, 'installation_id') !== this.app.installationId)
          return { status: 404, body: { message: 'Not Found', documentation_url: `${WEB}/docs` } };
        const token = `ghs_installation_${this.installationTokens.length + 1}`;
        this.installationTokens.push(token);
        return {
          status: 201,
          body: {
            token,
            expires_at: new Date(Date.now() + 3600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
            permissions: { checks: 'write', statuses: 'write', issues: 'write', pull_requests: 'write' },
            repository_selection: 'selected',
          },
        };
      },
    };
  }

  /** A check run as GitHub edits it: fields given replace, annotations are appended, a conclusion completes it. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the parsed JSON body of an API request
  private editCheckRun(r: CheckRun, b: Record<string, any>) {
    if (b.status) r.status = b.status;
    if (b.conclusion) {
      r.conclusion = b.conclusion;
      r.status = 'completed';
    }
    if (b.output) {
      r.title = b.output.title ?? r.title;
      r.summary = b.output.summary ?? r.summary;
      r.text = b.output.text ?? r.text;
      r.annotations.push(...((b.output.annotations ?? []) as Annotation[]));
    }
  }

  /**
   * Serves as the GitHub App `app`: requests to /app carry its JWT, and the installation tokens it gets
   * are accepted like `token`.
   */
  enableApp(app: AppIdentity) {
    this.app = app;
  }

  /** Why a request's credentials are refused, or undefined when they are accepted. */
  private refused(path: string, authorization: string | undefined): { status: number; why: string } | undefined {
    if (path === '/app' || path.startsWith('/app/')) {
      const jwt = /^bearer (.+)$/i.exec(authorization ?? '')?.[1];
      const why = jwt ? this.badJwt(jwt) : 'a GitHub App endpoint needs the app JWT (Authorization: Bearer)';
      return why ? { status: 401, why } : undefined;
    }
    const token = /^(?:token|bearer) (.+)$/i.exec(authorization ?? '')?.[1];
    const installation = token !== undefined && this.installationTokens.includes(token);
    if (token !== this.token && !installation) return { status: 401, why: 'missing or wrong authorization' };
    if (path.includes('/check-runs') && !installation)
      return { status: 403, why: 'the checks API is for GitHub Apps (installation tokens) only' };
    return undefined;
  }

  /** Why a JWT is not the app's (RS256 with its key, issued by its id, not expired), or undefined. */
  private badJwt(jwt: string): string | undefined {
    if (!this.app) return 'no GitHub App is enabled on the double';
    const [h, p, sig] = jwt.split('.');
    if (!h || !p || !sig) return 'malformed JWT';
    const json = (x: string) => JSON.parse(Buffer.from(x, 'base64url').toString());
    const header = json(h);
    const payload = json(p);
    if (header.alg !== 'RS256') return `JWT alg ${header.alg}: GitHub wants RS256`;
    const key = typeof this.app.publicKey === 'string' ? createPublicKey(this.app.publicKey) : this.app.publicKey;
    if (!verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(sig, 'base64url')))
      return 'JWT signature does not verify with the app key';
    if (String(payload.iss) !== String(this.app.appId)) return `JWT issuer ${payload.iss} is not app ${this.app.appId}`;
    const now = Math.floor(Date.now() / 1000);
    if (!(payload.exp > now) || payload.exp - payload.iat > 600) return 'JWT expired or valid for over 10 minutes';
    return undefined;
  }

  /**
   * Checks a handler's answer against the description: its status code must be one the operation
   * documents, and its body must match that status's schema (as JSON, as it goes on the wire).
   */
  private checked(api: OpenAPIBackend, c: Context, reply: Reply): Reply {
    const op = c.operation;
    const where = `${c.request.method.toUpperCase()} ${c.request.path}`;
    const documented = op.responses?.[String(reply.status)] ?? op.responses?.default;
    if (!documented) {
      this.violations.push(`${where}: response ${reply.status} is not documented for ${op.operationId}`);
      return reply;
    }
    const wire = reply.body === undefined ? null : JSON.parse(JSON.stringify(reply.body));
    const v = api.validateResponse(wire, op, reply.status);
    if (!v.valid) this.violations.push(`${where}: invalid response ${reply.status}: ${JSON.stringify(v.errors)}`);
    return reply;
  }

  async start(): Promise<string> {
    const api = new OpenAPIBackend({
      definition: githubSpec() as never,
      validate: true,
      quick: true,
      // GitHub's description uses format: date-time, uri, email...: checked, not ignored with a warning.
      // `repo.nwo` (pulls/create's head_repo) is GitHub's own format: a repository's `owner/name`.
      customizeAjv: (ajv) =>
        (addFormats(ajv as never) as unknown as { addFormat: (n: string, f: RegExp) => unknown }).addFormat(
          'repo.nwo',
          /^[\w.-]+\/[\w.-]+$/,
        ) as never,
    });
    const violation = (c: Context, what: string) => {
      this.violations.push(`${c.request.method.toUpperCase()} ${c.request.path}: ${what}`);
      return { status: what.startsWith('no such') ? 404 : 422, body: { message: what } };
    };
    // Each answer is checked against the description; a test's override is served (and checked) instead.
    const served = Object.entries(this.handlers()).map(([id, handler]) => [
      id,
      (c: Context) => this.checked(api, c, (this.overrides.get(id) ?? handler)(c)),
    ]);
    api.register({
      ...Object.fromEntries(served),
      validationFail: (c: Context) => violation(c, `invalid request: ${JSON.stringify(c.validation.errors)}`),
      notFound: (c: Context) => violation(c, 'no such endpoint in the GitHub API (or not served by the double)'),
      notImplemented: (c: Context) => violation(c, `operation ${c.operation?.operationId} is not served by the double`),
    });
    await api.init();
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const raw = Buffer.concat(chunks).toString();
        const url = new URL(req.url ?? '/', 'http://localhost');
        this.requests.push(`${req.method} ${url.pathname}`);
        let result: Reply;
        const refused = this.refused(url.pathname, req.headers.authorization);
        if (refused) {
          this.violations.push(`${req.method} ${url.pathname}: ${refused.why}`);
          result = {
            status: refused.status,
            body: { message: refused.status === 401 ? 'Bad credentials' : refused.why },
          };
        } else {
          try {
            result = await api.handleRequest({
              method: req.method ?? 'GET',
              path: url.pathname,
              query: Object.fromEntries(url.searchParams),
              headers: req.headers as Record<string, string>,
              body: raw ? JSON.parse(raw) : undefined,
            });
          } catch (e) {
            this.violations.push(`${req.method} ${url.pathname}: the double failed: ${(e as Error).message}`);
            result = { status: 500, body: { message: (e as Error).message } };
          }
        }
        res.writeHead(result.status, { 'content-type': 'application/json' });
        res.end(result.body === undefined ? '' : JSON.stringify(result.body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}`;
    return this.url;
  }

  async stop() {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }

  // Test-side actions, as a person on github.com would do them.
  openPull(number: number, headSha: string, headRef: string, headRepo = this.repository) {
    this.pulls.push({ number, headSha, headRef, headRepo, state: 'open' });
  }
  pushToPull(number: number, headSha: string) {
    this.pulls.find((p) => p.number === number)!.headSha = headSha;
  }
  closePull(number: number) {
    this.pulls.find((x) => x.number === number)!.state = 'closed';
  }
  mergePull(number: number, mergeSha: string) {
    const p = this.pulls.find((x) => x.number === number)!;
    p.state = 'closed';
    p.mergeSha = mergeSha;
  }
  /** Someone else comments on an issue or pull request (not through the API under test). */
  postComment(issue: number, body: string, author: string): Comment {
    const c: Comment = { id: this.nextId++, issue, body, updates: 0, author };
    this.comments.push(c);
    return c;
  }
  commentsOn(issue: number) {
    return this.comments.filter((c) => c.issue === issue);
  }
  latestStatus(sha: string, context: string) {
    return [...this.statuses].reverse().find((s) => s.sha === sha && s.context === context);
  }
}
