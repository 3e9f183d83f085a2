// `natsfleet revert REV` against a real Git repository (a bare origin and a clone) and the GitHub double:
// the revert branch holds REV's manifest changes reversed on main's tip (nothing else of REV, nothing
// after it undone), the pull request says what it reverts, the clone's own branch, index and files are
// untouched; and every refusal (no manifest, not on main, a conflict, undone already, the branch exists,
// no token) is one line, exit 1, with nothing pushed or opened.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GitHubDouble } from '../github/double.js';
import { cli } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'nf-revert-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const run = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();
const git = (...args: string[]) => run(work, ...args);
const atOrigin = (...args: string[]) => run(origin, ...args);
const gh = new GitHubDouble();

function write(path: string, text: string) {
  mkdirSync(join(work, path, '..'), { recursive: true });
  writeFileSync(join(work, path), text);
}
function commit(message: string): string {
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
}
const manifest = (payload: string, logtime = true) => `name: nats-1\nmaxPayload: ${payload}\nlogtime: ${logtime}\n`;
const revert = (...args: string[]) =>
  cli('revert', ...args, '--repo', work, '--github-repository', gh.repository, '--github-api-url', gh.url);

let a = '';
let b = '';
let readmeOnly = '';
const savedToken = process.env.GITHUB_TOKEN;

beforeAll(async () => {
  await gh.start();
  process.env.GITHUB_TOKEN = gh.token;
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
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work], { stdio: 'ignore' });
  git('checkout', '-q', '-b', 'main');
  git('config', 'user.name', 'dev');
  git('config', 'user.email', 'dev@example.com');
  write('hosts/nats-1.yaml', manifest('1MB'));
  write('README.md', 'hosts\n');
  a = commit('one host');
  write('hosts/nats-1.yaml', manifest('2MB'));
  write('README.md', 'hosts, bigger payloads\n');
  b = commit('bigger payloads');
  write('hosts/nats-2.yaml', manifest('1MB'));
  commit('a second host');
  write('README.md', 'the hosts of this fleet\n');
  readmeOnly = commit('a README');
  git('push', '-q', 'origin', 'main');
});
afterAll(async () => {
  await gh.stop();
  if (savedToken === undefined) delete process.env.GITHUB_TOKEN;
  else process.env.GITHUB_TOKEN = savedToken;
});

describe('natsfleet revert', () => {
  it("opens a pull request whose branch reverses the revision's manifest changes on main's tip", async () => {
    const head = git('rev-parse', 'HEAD');
    const r = await revert(b);
    expect(r.code, r.err).toBe(0);
    const branch = `natsfleet/revert-${b.slice(0, 12)}`;
    expect(r.out).toContain(`reverting ${b.slice(0, 12)} (bigger payloads) on main: hosts/nats-1.yaml`);
    expect(r.out).toContain('kept (outside hosts/): README.md');
    const [pr] = gh.pulls;
    expect(r.out).toContain(`opened pull request #${pr.number}: https://github.com/acme/hosts/pull/${pr.number}`);
    expect(pr).toMatchObject({ state: 'open', headRef: branch, baseRef: 'main' });
    expect(pr.title).toBe(`Revert ${b.slice(0, 12)}: bigger payloads`);
    expect(pr.body).toContain(`This reverts the manifest changes of ${b}`);
    expect(pr.body).toContain('It is planned like any other pull request');
    // The branch on the remote: main's tip as parent, the manifest as before b, everything else as on main.
    const tip = atOrigin('rev-parse', branch);
    expect(pr.headSha).toBe(tip);
    expect(atOrigin('rev-parse', `${branch}^`)).toBe(head);
    expect(atOrigin('show', `${branch}:hosts/nats-1.yaml`)).toBe(run(origin, 'show', `${a}:hosts/nats-1.yaml`));
    expect(atOrigin('show', `${branch}:README.md`)).toBe('the hosts of this fleet');
    expect(atOrigin('show', `${branch}:hosts/nats-2.yaml`)).toBe(manifest('1MB').trim());
    expect(atOrigin('diff', '--name-only', 'main', branch)).toBe('hosts/nats-1.yaml');
    expect(atOrigin('log', '-1', '--format=%B', branch)).toContain(`This reverts the manifest changes of commit ${b}`);
    // The clone: same branch, same commit, nothing staged or changed.
    expect(git('rev-parse', '--abbrev-ref', 'HEAD')).toBe('main');
    expect(git('rev-parse', 'HEAD')).toBe(head);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('refuses a revert that is proposed already (its branch exists): nothing pushed or opened', async () => {
    const pulls = gh.pulls.length;
    const r = await revert(b);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error: natsfleet/revert-${b.slice(0, 12)} exists on origin already: a revert of ${b.slice(0, 12)} is ` +
        'proposed there (delete that branch to propose it again)',
    );
    expect(gh.pulls).toHaveLength(pulls);
  });

  it('refuses a revision that touches no manifest', async () => {
    const r = await revert(readmeOnly.slice(0, 10));
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error: ${readmeOnly.slice(0, 12)} (a README) changes no manifest under hosts/: nothing to revert ` +
        '(it changes README.md)',
    );
  });

  it('refuses a revision that is not on the base branch', async () => {
    git('checkout', '-q', '-b', 'unmerged');
    write('hosts/nats-1.yaml', manifest('8MB'));
    const side = commit('never merged');
    git('checkout', '-q', 'main');
    const r = await revert(side);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      new RegExp(`^error: ${side.slice(0, 12)} is not on main \\(origin/main is at [0-9a-f]{12}\\)`),
    );
    expect(atOrigin('branch', '--list', `natsfleet/revert-${side.slice(0, 12)}`)).toBe('');
  });

  it('refuses a revert that conflicts with later changes, naming the file', async () => {
    write('hosts/nats-2.yaml', manifest('1MB', false));
    const logtime = commit('no log time on nats-2');
    write('hosts/nats-2.yaml', manifest('4MB', true));
    commit('nats-2: bigger payloads, log time back');
    git('push', '-q', 'origin', 'main');
    const r = await revert(logtime);
    expect(r.code).toBe(1);
    expect(r.err).toBe(
      `error: the revert of ${logtime.slice(0, 12)} does not apply cleanly on main: hosts/nats-2.yaml changed ` +
        'since; revert those changes by hand',
    );
    expect(atOrigin('branch', '--list', 'natsfleet/*')).toBe(`natsfleet/revert-${b.slice(0, 12)}`);
    expect(git('status', '--porcelain')).toBe('');
  });

  it('refuses a revision whose manifest changes are undone already', async () => {
    write('hosts/nats-1.yaml', manifest('2MB', false));
    const off = commit('no log time on nats-1');
    write('hosts/nats-1.yaml', manifest('2MB', true));
    commit('log time back on nats-1');
    git('push', '-q', 'origin', 'main');
    const r = await revert(off);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: ${off.slice(0, 12)}'s manifest changes are already undone on main: nothing to revert`);
  });

  it('refuses without a GitHub token, before anything is pushed', async () => {
    delete process.env.GITHUB_TOKEN;
    try {
      const r = await revert(a);
      expect(r.code).toBe(1);
      expect(r.err).toBe('error: GITHUB_TOKEN is not set: natsfleet revert opens a pull request with it');
    } finally {
      process.env.GITHUB_TOKEN = gh.token;
    }
    expect(atOrigin('branch', '--list', `natsfleet/revert-${a.slice(0, 12)}`)).toBe('');
  });

  it('refuses a revision git does not know', async () => {
    const r = await revert('no-such-revision');
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: no-such-revision is not a commit of ${work}`);
  });

  it('refuses a remote or base that git would read as an option (--upload-pack=...): git never runs it', async () => {
    const marker = join(root, 'upload-pack-ran');
    for (const args of [[`--remote=--upload-pack=touch ${marker}`], [`--base=--upload-pack=touch ${marker}`]]) {
      const r = await revert(b, ...args);
      expect(r.code, r.out).toBe(1);
      expect(r.err).toMatch(/^error: --(remote|base) --upload-pack=.*: must not start with -$/);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('every request was valid for the GitHub API, and so was every answer of the double', () => {
    expect(gh.violations).toEqual([]);
  });
});
