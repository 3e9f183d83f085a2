// A GitHub API double for tests: a local HTTP server that checks EVERY request against GitHub's
// official OpenAPI description (@octokit/openapi, routed and validated by openapi-backend) and
// keeps pull requests, comments, commit statuses and issues in memory. A request the description
// rejects (or an endpoint the double does not serve) is answered with an error and recorded in
// `violations`, which tests assert to be empty.
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { OpenAPIBackend, type Context } from 'openapi-backend';
import addFormatsModule from 'ajv-formats';

const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: unknown) => unknown;
const require = createRequire(import.meta.url);

export const SERVED_OPERATIONS = [
  'pulls/list',
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
] as const;

export interface Pull {
  number: number;
  headSha: string;
  headRef: string;
  headRepo: string;
  state: 'open' | 'closed';
  mergeSha?: string;
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
    const strip = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(strip);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if ('nullable' in o && !('type' in o)) delete o.nullable;
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
  readonly violations: string[] = [];
  readonly requests: string[] = [];
  private nextId = 1000;
  private server?: Server;
  url = '';

  constructor(
    readonly repository = 'acme/hosts',
    readonly token = 'ghs_double_token',
  ) {}

  private repoObj(full = this.repository) {
    const [owner, name] = full.split('/');
    return { id: 1, name, full_name: full, owner: { login: owner, id: 1, type: 'Organization' }, private: true };
  }

  private pullObj(p: Pull) {
    return {
      id: p.number,
      number: p.number,
      state: p.state,
      title: `PR ${p.number}`,
      locked: false,
      draft: false,
      html_url: `https://github.com/${this.repository}/pull/${p.number}`,
      user: { login: 'dev', id: 2 },
      head: { sha: p.headSha, ref: p.headRef, label: p.headRef, repo: this.repoObj(p.headRepo) },
      base: { sha: '0'.repeat(40), ref: 'main', label: 'main', repo: this.repoObj() },
      merge_commit_sha: p.mergeSha ?? null,
      merged_at: p.mergeSha ? new Date().toISOString() : null,
    };
  }

  private commentObj(c: Comment) {
    return {
      id: c.id,
      node_id: `C${c.id}`,
      body: c.body,
      user: { login: c.author ?? BOT_LOGIN, id: c.author ? 4 : 3 },
      html_url: `https://github.com/${this.repository}/issues/${c.issue}#issuecomment-${c.id}`,
      created_at: '',
      updated_at: '',
    };
  }

  private issueObj(i: Issue) {
    return {
      id: i.number,
      number: i.number,
      title: i.title,
      body: i.body,
      state: i.state,
      labels: i.labels.map((name) => ({ name })),
      user: { login: BOT_LOGIN, id: 3 },
      html_url: `https://github.com/${this.repository}/issues/${i.number}`,
    };
  }

  private handlers(): Record<string, (c: Context) => { status: number; body?: unknown }> {
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
      'users/get-authenticated': () => ({ status: 200, body: { login: BOT_LOGIN, id: 3, type: 'Bot' } }),
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
        return { status: 201, body: { id: this.nextId++, ...s, url: '', created_at: '', updated_at: '' } };
      },
      'repos/list-commit-statuses-for-ref': (c) => ({
        status: 200,
        body: this.statuses.filter((s) => s.sha === c.request.params.ref).reverse(),
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
    };
  }

  async start(): Promise<string> {
    const api = new OpenAPIBackend({
      definition: githubSpec() as never,
      validate: true,
      quick: true,
      // GitHub's description uses format: date-time, uri, email...: checked, not ignored with a warning.
      customizeAjv: (ajv) => addFormats(ajv as never) as never,
    });
    const violation = (c: Context, what: string) => {
      this.violations.push(`${c.request.method.toUpperCase()} ${c.request.path}: ${what}`);
      return { status: what.startsWith('no such') ? 404 : 422, body: { message: what } };
    };
    api.register({
      ...this.handlers(),
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
        let result: { status: number; body?: unknown };
        if (req.headers.authorization !== `token ${this.token}`) {
          this.violations.push(`${req.method} ${url.pathname}: missing or wrong authorization`);
          result = { status: 401, body: { message: 'Bad credentials' } };
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
