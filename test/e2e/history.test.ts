// Issue 15's history and rollback, end to end: a bare Git repository, the GitHub double and the controller
// deploying one sandbox host (the fleet's third: other files use the first two). Two revisions deployed,
// `natsfleet history` lists both applies as the host recorded them (newest first, revisions right, by the
// controller); `natsfleet revert` opens a pull request whose branch reverses the second; the controller
// plans it like any other, and merging it deploys the first revision's config again.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { Octokit } from 'octokit';
import { GitHubDouble } from '../github/double.js';
import { Controller } from '../../controller/gitops/controller.js';
import { GitSource } from '../../controller/source/git-source.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { GitHubReporter } from '../../controller/report/github.js';
import { StateStore } from '../../controller/gitops/state.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';

const fleet = inject('fleet');
const host = fleet.hosts[2];
const root = mkdtempSync(join(tmpdir(), 'nf-history-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const manifestPath = join(work, 'hosts', `${host.name}.yaml`);
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const atOrigin = (...args: string[]) => execFileSync('git', ['-C', origin, ...args], { encoding: 'utf8' }).trim();
const gh = new GitHubDouble();
const s = new Scenario(fleet, host);
const sshFlags = ['--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir];
let pool: SessionPool;
let ctl: Controller;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest as the test edits it
function edit(change: (d: Record<string, any>) => void) {
  const doc = load(readFileSync(manifestPath, 'utf8')) as Record<string, unknown>;
  change(doc);
  writeFileSync(manifestPath, dump(doc));
}
function commit(message: string): string {
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
}
const maxPayload = async () => JSON.parse(await s.sh('curl -s 127.0.0.1:8222/varz')).max_payload as number;
const history = async () => {
  const r = await cli('history', host.name, '--hosts', join(work, 'hosts'), ...sshFlags, '-o', 'json');
  expect(r.code, r.err).toBe(0);
  return (JSON.parse(r.out) as { history: { revision: string; outcome: string; steps: string[]; by: string }[] })
    .history;
};

beforeAll(async () => {
  await gh.start();
  // As GitHub does with a new pull request: its head is the branch's commit, published as refs/pull/N/head.
  gh.onCreatePull = (branch, number) => {
    try {
      const sha = atOrigin('rev-parse', '--verify', `refs/heads/${branch}`);
      atOrigin('update-ref', `refs/pull/${number}/head`, sha);
      return sha;
    } catch {
      return undefined;
    }
  };
  pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
  await s.wipe();
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work], { stdio: 'ignore' });
  git('checkout', '-q', '-b', 'main');
  git('config', 'user.name', 'dev');
  git('config', 'user.email', 'dev@example.com');
  mkdirSync(join(work, 'hosts'));
  writeFileSync(manifestPath, readFileSync(join(fleet.hostsDir, `${host.name}.yaml`), 'utf8'));
  // No proxy: its certificate is not what this file is about (and it makes the first deploy slower).
  edit((d) => delete d.spec.proxy);
  ctl = new Controller({
    source: new GitSource(origin, join(root, 'state', 'repo.git'), 'main'),
    github: new GitHubReporter(new Octokit({ baseUrl: gh.url, auth: gh.token }), gh.repository),
    pool,
    store: new StateStore(join(root, 'state')),
    policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
    log: pino({ level: 'silent' }),
    concurrency: 1,
    driftIntervalMs: 24 * 3600 * 1000,
  });
});
afterAll(async () => {
  await gh.stop();
  await pool.closeAll();
  await s.close();
});

describe('history and rollback', () => {
  let a = '';
  let b = '';
  let pr = 0;

  it('a host natsfleet never changed has no history, and says so', async () => {
    const r = await cli('history', host.name, '--hosts', manifestPath.replace(/\/[^/]+$/, ''), ...sshFlags);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(
      `${host.name}: no applies recorded (natsfleet has not changed this host since it keeps a history)`,
    );
  });

  it('two revisions deployed: the history lists both applies, newest first, by the controller', async () => {
    a = commit(`${host.name}, as the sandbox made it`);
    git('push', '-q', 'origin', 'main');
    await ctl.tick();
    expect(await maxPayload()).toBe(1024 * 1024);
    // B arrives as GitHub merges a pull request: a merge commit.
    git('checkout', '-q', '-b', 'payloads');
    edit((d) => (d.spec.nats.maxPayload = '2MB'));
    commit('bigger payloads');
    git('checkout', '-q', 'main');
    git('merge', '-q', '--no-ff', '-m', 'Merge pull request #1 from acme/payloads', 'payloads');
    b = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    await ctl.tick();
    expect(await maxPayload()).toBe(2 * 1024 * 1024);

    const entries = await history();
    expect(entries.map((e) => [e.revision, e.outcome, e.by])).toEqual([
      [b, 'applied', 'controller'],
      [a, 'applied', 'controller'],
    ]);
    expect(entries[0].steps).toEqual(['test-config', 'reload']);
    expect(entries[1].steps).toContain('start');
    const text = await cli('history', host.name, '--hosts', join(work, 'hosts'), ...sshFlags);
    const lines = text.out.split('\n');
    expect(lines[0]).toBe(`${host.name}: 2 apply(s), newest first`);
    expect(lines[1]).toMatch(/^TIME +REVISION +OUTCOME +STEPS +BY +NATSFLEET$/);
    expect(lines[2]).toMatch(new RegExp(`^\\S+Z  ${b.slice(0, 12)}  applied +test-config, reload +controller`));
    expect(lines[3]).toMatch(new RegExp(`^\\S+Z  ${a.slice(0, 12)}  applied `));
    // The controller's state keeps them too.
    expect(ctl.state.history?.[host.name]?.map((e) => [e.revision, e.outcome])).toEqual([
      [a, 'applied'],
      [b, 'applied'],
    ]);
  });

  it("revert opens a pull request whose branch reverses the revision's manifest change", async () => {
    const saved = process.env.GITHUB_TOKEN;
    process.env.GITHUB_TOKEN = gh.token;
    let r;
    try {
      r = await cli('revert', b, '--repo', work, '--github-repository', gh.repository, '--github-api-url', gh.url);
    } finally {
      if (saved === undefined) delete process.env.GITHUB_TOKEN;
      else process.env.GITHUB_TOKEN = saved;
    }
    expect(r.code, r.err).toBe(0);
    const branch = `natsfleet/revert-${b.slice(0, 12)}`;
    const opened = gh.pulls.find((p) => p.headRef === branch)!;
    expect(opened).toMatchObject({
      state: 'open',
      baseRef: 'main',
      title: `Revert ${b.slice(0, 12)}: ${'Merge pull request #1 from acme/payloads'}`,
    });
    pr = opened.number;
    // The branch exists in the repository, with the manifest as it was at A.
    expect(atOrigin('show', `${branch}:hosts/${host.name}.yaml`)).toBe(
      atOrigin('show', `${a}:hosts/${host.name}.yaml`),
    );
  });

  it('the controller plans it like any other pull request; merging it deploys A again', async () => {
    await ctl.tick();
    const [plan, ...more] = gh.commentsOn(pr);
    expect(more).toEqual([]);
    expect(plan.body).toContain('<!-- natsfleet:plan -->');
    expect(plan.body).toMatch(new RegExp(`\\| ${host.name} \\| update \\| reload \\|`));
    expect(plan.body).toContain('-max_payload: 2MB');
    expect(await maxPayload()).toBe(2 * 1024 * 1024);

    git('fetch', '-q', 'origin', `natsfleet/revert-${b.slice(0, 12)}`);
    git('merge', '-q', '--no-ff', '-m', `Merge pull request #${pr}`, 'FETCH_HEAD');
    const merge = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    gh.mergePull(pr, merge);
    await ctl.tick();
    expect(await maxPayload()).toBe(1024 * 1024);
    expect(await s.sh('grep -c max_payload /etc/nats/nats-server.conf || true')).toBe('0');
    expect((await history()).map((e) => [e.revision, e.outcome])).toEqual([
      [merge, 'applied'],
      [b, 'applied'],
      [a, 'applied'],
    ]);
    expect(gh.commentsOn(pr).some((c) => c.body.includes(`<!-- natsfleet:deploy:${merge} -->`))).toBe(true);
  });

  it('every request was valid for the GitHub API', () => {
    expect(gh.violations).toEqual([]);
  });
});
