// As a GitHub App, natsfleet reports each commit with one check run (the plan's headline, a line and an
// annotation per host on its manifest), updated in place; with a token, with commit statuses as before.
// No Docker: the Controller runs over a real bare Git repository and the GitHub double; its hosts are on
// a closed port (a deploy finds them unreachable), and a pull request from a fork is planned offline.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Controller } from '../../controller/gitops/controller.js';
import { StateStore } from '../../controller/gitops/state.js';
import { DEFAULT_LOAD_POLICY } from '../../controller/manifest/load.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import {
  GitHubReporter,
  makeOctokit,
  MAX_ANNOTATIONS_PER_REQUEST,
  type CheckAnnotation,
} from '../../controller/report/github.js';
import { GitSource } from '../../controller/source/git-source.js';
import { GitHubDouble } from '../github/double.js';

const root = mkdtempSync(join(tmpdir(), 'nf-checks-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const APP = { appId: 7, slug: 'natsfleet', publicKey: keys.publicKey, installationId: 42 };
let pool: SessionPool;

/** A host manifest whose metadata.name stands on line 6; its SSH port (1 for a, 2 for b) is closed. */
const manifest = (name: 'a' | 'b', extra = '') =>
  `# ${name}: a test host\n# (nothing listens on its SSH port)\napiVersion: natsfleet/v1alpha1\nkind: NatsHost\n` +
  `metadata:\n  name: ${name}\nspec:\n  ssh:\n    host: 127.0.0.1\n    port: ${name === 'a' ? 1 : 2}\n` +
  '    hostKey: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/Ke1fjU+ycPsTn/8TNDIy0scOjx3oWxZgIF+TiXIT1\n' +
  `  nats:\n    image: nats:2.10.22\n${extra}`;

function commit(message: string): string {
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
}

/** A pull request from a fork that changes the logging of host a, as GitHub publishes it. */
function openForkPull(gh: GitHubDouble, number: number, logging: string): string {
  git('checkout', '-q', '-b', `topic-${number}`, 'main');
  writeFileSync(join(work, 'hosts/a.yaml'), manifest('a', `    logging: ${logging}\n`));
  const sha = commit(`logging on a: ${logging}`);
  git('push', '-q', 'origin', `HEAD:refs/pull/${number}/head`);
  git('checkout', '-q', 'main');
  gh.openPull(number, sha, `topic-${number}`, 'someone/hosts');
  return sha;
}

function controller(github: GitHubReporter, stateDir: string): Controller {
  return new Controller({
    source: new GitSource(origin, join(stateDir, 'repo.git'), 'main'),
    github,
    pool,
    store: new StateStore(stateDir),
    policy: DEFAULT_LOAD_POLICY,
    log: pino({ level: 'silent' }),
    concurrency: 2,
    driftIntervalMs: 24 * 3600 * 1000,
  });
}

/** natsfleet's reporter as the controller builds it (run.ts): an App's when `app`, else a token's. */
async function reporter(gh: GitHubDouble, app: boolean): Promise<GitHubReporter> {
  const client = await makeOctokit({
    repository: gh.repository,
    apiUrl: gh.url,
    ...(app ? { app: { appId: APP.appId, privateKey, installationId: APP.installationId } } : { token: gh.token }),
  });
  return GitHubReporter.of(client, gh.repository);
}

beforeAll(() => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(root, 'key')]);
  pool = new SessionPool({ privateKey: readFileSync(join(root, 'key')) }, 5_000);
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  git('checkout', '-q', '-b', 'main');
  mkdirSync(join(work, 'hosts'));
  writeFileSync(join(work, 'hosts/a.yaml'), manifest('a'));
  writeFileSync(join(work, 'hosts/b.yaml'), manifest('b'));
  commit('two hosts');
  git('push', '-q', 'origin', 'main');
});
afterAll(() => pool.closeAll());

describe('natsfleet as a GitHub App', { timeout: 60_000 }, () => {
  const gh = new GitHubDouble();
  beforeAll(async () => {
    await gh.start();
    gh.enableApp(APP);
  });
  afterAll(() => gh.stop());
  const runsOn = (sha: string) => gh.checkRuns.filter((r) => r.headSha === sha);

  it('a pull request gets one check run: the headline, a line and an annotation per host; no status', async () => {
    const github = await reporter(gh, true);
    expect(github.checks).toBe(true);
    const ctl = controller(github, join(root, 'app-state-1'));
    const main = git('rev-parse', 'main');
    await ctl.tick(); // deploys main: its hosts are not reached
    const sha = openForkPull(gh, 1, '{debug: true}');
    await ctl.tick();
    const [run, ...more] = runsOn(sha);
    expect(more).toEqual([]);
    expect(run).toMatchObject({ name: 'natsfleet', status: 'completed', conclusion: 'success' });
    expect(run.title).toBe('plan: 1 host(s) change');
    expect(run.summary).toBe(
      '**1 host change: 1 reload. Merging deploys it.**\n\n- :white_check_mark: **a**: 1 change(s), reload',
    );
    expect(run.annotations).toEqual([
      {
        path: 'hosts/a.yaml',
        start_line: 6,
        end_line: 6,
        annotation_level: 'notice',
        title: 'a: change',
        message: '1 change(s), reload',
      },
    ]);
    // The plan comment is there as with a token, and is the check run's text; no commit status is (the
    // check run carries every host).
    expect(gh.commentsOn(1).map((c) => c.body)).toEqual([`${run.text}\n\n<!-- natsfleet:plan -->`]);
    expect(run.text).toContain('+debug: true');
    expect(gh.statuses).toEqual([]);
    // The deploy of main has its check run too: failed, an annotation on each host it did not reach.
    expect(runsOn(main)).toMatchObject([{ conclusion: 'failure', title: '2 host(s) failed' }]);
    expect(runsOn(main)[0].annotations.map((a) => [a.path, a.start_line, a.annotation_level])).toEqual([
      ['hosts/a.yaml', 6, 'failure'],
      ['hosts/b.yaml', 6, 'failure'],
    ]);
    expect(gh.violations).toEqual([]);
  });

  it('planned again after a restart without state, the same check run is updated in place', async () => {
    const sha = gh.pulls.find((p) => p.number === 1)!.headSha;
    const before = { ...runsOn(sha)[0], annotations: [...runsOn(sha)[0].annotations] };
    const github = await reporter(gh, true);
    await controller(github, join(root, 'app-state-2')).tick();
    const [run, ...more] = runsOn(sha);
    expect(more).toEqual([]);
    expect(run.id).toBe(before.id);
    expect(run.updates).toBeGreaterThan(before.updates);
    expect(run.summary).toBe(before.summary);
    // GitHub appends annotations: those the run has are not sent again.
    expect(run.annotations).toEqual(before.annotations);
    expect(github.calls.checksCreated).toBe(0);
    expect(gh.violations).toEqual([]);
  });

  it('the deploy after merge gets a check run on the merge commit', async () => {
    const pr = gh.pulls.find((p) => p.number === 1)!;
    git('merge', '-q', '--no-ff', '-m', 'Merge pull request #1', `topic-1`);
    const merge = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    gh.mergePull(1, merge);
    expect(pr.mergeSha).toBe(merge);
    await controller(await reporter(gh, true), join(root, 'app-state-2')).tick();
    const [run, ...more] = runsOn(merge);
    expect(more).toEqual([]);
    // b, which failed before, is deployed again with the new revision: neither is reached.
    expect(run).toMatchObject({ status: 'completed', conclusion: 'failure', title: '2 host(s) failed' });
    expect((run.summary ?? '').split('\n').slice(2)).toEqual([
      '- :x: **a**: root@127.0.0.1:1: connection refused: no SSH server listens on port 1',
      '- :x: **b**: root@127.0.0.1:2: connection refused: no SSH server listens on port 2',
    ]);
    expect(run.annotations.map((a) => [a.path, a.start_line, a.annotation_level])).toEqual([
      ['hosts/a.yaml', 6, 'failure'],
      ['hosts/b.yaml', 6, 'failure'],
    ]);
    // Created in progress when the deploy started, completed once it ended.
    expect(run.updates).toBe(1);
    expect(gh.statuses).toEqual([]);
    expect(gh.violations).toEqual([]);
  });

  it('invalid manifests in a pull request: a failed check run, annotated on the line of the problem', async () => {
    git('checkout', '-q', '-b', 'topic-3', 'main');
    writeFileSync(join(work, 'hosts/a.yaml'), manifest('a', '    clientPort: 99999\n'));
    const sha = commit('a port too high');
    git('push', '-q', 'origin', 'HEAD:refs/pull/3/head');
    git('checkout', '-q', 'main');
    gh.openPull(3, sha, 'topic-3');
    await controller(await reporter(gh, true), join(root, 'app-state-2')).tick();
    const [run, ...more] = runsOn(sha);
    expect(more).toEqual([]);
    expect(run).toMatchObject({
      conclusion: 'failure',
      title: 'invalid manifests: hosts/a.yaml:14: error: spec.nats.clientPort: must be a port number from 1 to 65535',
    });
    expect(run.annotations).toMatchObject([
      { path: 'hosts/a.yaml', start_line: 14, annotation_level: 'failure', title: 'spec.nats.clientPort' },
    ]);
    expect(gh.violations).toEqual([]);
  });

  it('sends annotations 50 a request, and never one the run already has', async () => {
    const github = await reporter(gh, true);
    const sha = 'e'.repeat(40);
    const notes: CheckAnnotation[] = Array.from({ length: 120 }, (_, i) => ({
      path: 'hosts/a.yaml',
      start_line: i + 1,
      end_line: i + 1,
      annotation_level: 'notice',
      title: `line ${i + 1}`,
      message: 'm',
    }));
    const report = { status: 'completed' as const, conclusion: 'success' as const, title: 't', summary: 's' };
    const id = await github.publishCheck(sha, { ...report, annotations: notes });
    expect(github.calls).toMatchObject({
      checksCreated: 1,
      checksUpdated: Math.ceil(120 / MAX_ANNOTATIONS_PER_REQUEST) - 1,
    });
    expect(runsOn(sha)[0].annotations).toHaveLength(120);
    expect(await github.publishCheck(sha, { ...report, annotations: notes })).toBe(id);
    expect(runsOn(sha)).toHaveLength(1);
    expect(runsOn(sha)[0].annotations).toHaveLength(120);
    expect(gh.violations).toEqual([]);
  });
});

describe('natsfleet with a token', { timeout: 60_000 }, () => {
  const gh = new GitHubDouble();
  beforeAll(() => gh.start());
  afterAll(() => gh.stop());

  it('posts commit statuses, a context per host and `natsfleet`, and no check run', async () => {
    const github = await reporter(gh, false);
    expect(github.checks).toBe(false);
    const ctl = controller(github, join(root, 'token-state'));
    const main = git('rev-parse', 'main');
    await ctl.tick();
    expect(gh.latestStatus(main, 'natsfleet')).toMatchObject({ state: 'failure', description: '2 host(s) failed' });
    expect(gh.latestStatus(main, 'natsfleet/a')?.state).toBe('error');
    const sha = openForkPull(gh, 2, '{debug: true, trace: true}');
    await ctl.tick();
    expect(gh.latestStatus(sha, 'natsfleet')).toMatchObject({
      state: 'success',
      description: 'plan: 1 host(s) change',
    });
    expect(gh.latestStatus(sha, 'natsfleet/a')?.state).toBe('success');
    expect(gh.checkRuns).toEqual([]);
    // A token never calls the checks API (the double refuses it to a token, and records it).
    expect(gh.requests.filter((r) => r.includes('check-runs'))).toEqual([]);
    expect(gh.violations).toEqual([]);
    await expect(
      github.publishCheck(sha, { status: 'completed', title: 't', summary: 's', annotations: [] }),
    ).rejects.toThrow(/GitHub App/);
  });
});
