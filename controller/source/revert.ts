// Owns the Git side of `natsfleet revert REV` in a local clone of the hosts repository: fetch the base
// branch, check REV is on it, reverse REV's manifest changes onto the base's tip (a three-way apply into a
// private index: the clone's working tree, index and branches are never touched), commit that as a new
// commit whose parent is the tip, and push it as the revert branch. Git runs through execFile with
// arguments (never a shell line), with literal pathspecs, without the controller's secrets in its
// environment. What to revert and the words are revert-plan.ts's.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shortRev } from '../util/rev.js';
import { isControllerSecretVar } from './git-source.js';
import {
  conflictedFiles,
  manifestPaths,
  normalizeDir,
  otherPaths,
  revertBranch,
  revertCommitMessage,
  RevertError,
} from './revert-plan.js';

/** git's id of the empty tree: the "parent" of a root commit. */
const EMPTY_TREE = '4b825dc642cb6eb9a060e54bf8d69288fbee4904';

/** Variables that would point git at another repository, index or object store than the clone's. */
const LOCATING = /^GIT_(DIR|WORK_TREE|INDEX_FILE|OBJECT_DIRECTORY|ALTERNATE_OBJECT_DIRECTORIES|COMMON_DIR|NAMESPACE)$/;

function gitEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !isControllerSecretVar(k) && !LOCATING.test(k)) env[k] = v;
  return { ...env, GIT_TERMINAL_PROMPT: '0', ...extra };
}

interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git in `repo`; never throws for git's own failures (the exit code says). */
function git(repo: string, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      ['--literal-pathspecs', '-C', repo, ...args],
      { env: gitEnv(extraEnv), maxBuffer: 64 * 1024 * 1024, timeout: 300_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        if (error && typeof error.code !== 'number') return reject(error); // git missing, a timeout
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** git's output, or a RevertError saying what failed with git's first line. */
async function gitOk(repo: string, args: readonly string[], what: string, env?: Record<string, string>) {
  const r = await git(repo, args, env);
  if (r.code !== 0) throw new RevertError(`${what}: ${firstLine(r.stderr || r.stdout)}`);
  return r.stdout;
}

const firstLine = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find(Boolean) ?? 'git failed';

export interface RevertRequest {
  /** A local clone of the hosts repository. */
  repo: string;
  /** The revision to revert (a commit id or anything git resolves to one). */
  rev: string;
  /** The remote that has the base branch (and gets the revert branch). */
  remote: string;
  base: string;
  hostsDir: string;
}

export interface PreparedRevert {
  sha: string;
  subject: string;
  /** The base branch's tip the revert commit is made on. */
  baseTip: string;
  /** The manifests reverted. */
  paths: string[];
  /** What REV changed outside the hosts directory (kept). */
  kept: string[];
  /** The revert commit (in the clone's object store, on no branch until pushed). */
  commit: string;
  branch: string;
}

/**
 * Makes the revert commit of `rev`'s manifest changes on the base branch's tip, or refuses (RevertError):
 * REV is not on the base branch, touches no manifest, does not reverse cleanly (naming the files), or is
 * undone already.
 */
export async function prepareRevert(x: RevertRequest): Promise<PreparedRevert> {
  const { repo, remote, base } = x;
  const inside = await git(repo, ['rev-parse', '--git-dir']);
  if (inside.code !== 0) throw new RevertError(`${repo} is not a Git repository (pass --repo DIR, a clone of it)`);
  await gitOk(repo, ['fetch', '--quiet', remote, `refs/heads/${base}`], `cannot fetch ${base} from ${remote}`);
  const baseTip = (await gitOk(repo, ['rev-parse', '--verify', 'FETCH_HEAD^{commit}'], `no ${base}`)).trim();
  const resolved = await git(repo, ['rev-parse', '--verify', '--quiet', `${x.rev}^{commit}`]);
  if (resolved.code !== 0) throw new RevertError(`${x.rev} is not a commit of ${repo}`);
  const sha = resolved.stdout.trim();
  const onBase = await git(repo, ['merge-base', '--is-ancestor', sha, baseTip]);
  if (onBase.code !== 0)
    throw new RevertError(
      `${shortRev(sha)} is not on ${base} (${remote}/${base} is at ${shortRev(baseTip)}): ` +
        'only a revision merged into the base branch can be reverted',
    );
  const subject = (await gitOk(repo, ['log', '-1', '--format=%s', sha], 'cannot read the commit')).trim();
  const parents = (await gitOk(repo, ['rev-list', '--parents', '-n', '1', sha], 'cannot read the commit'))
    .trim()
    .split(' ')
    .slice(1);
  // A merge is reverted against its first parent (what it brought into the branch), as GitHub does.
  const parent = parents[0] ?? EMPTY_TREE;
  const changed = (
    await gitOk(repo, ['diff-tree', '-r', '--no-commit-id', '--no-renames', '--name-only', '-z', parent, sha], 'diff')
  )
    .split('\0')
    .filter(Boolean);
  const paths = manifestPaths(changed, x.hostsDir);
  const kept = otherPaths(changed, x.hostsDir);
  const dir = normalizeDir(x.hostsDir) || '.';
  if (!paths.length)
    throw new RevertError(
      `${shortRev(sha)} (${subject}) changes no manifest under ${dir}/: nothing to revert` +
        (kept.length ? ` (it changes ${kept.slice(0, 5).join(', ')}${kept.length > 5 ? ', ...' : ''})` : ''),
    );

  const tmp = mkdtempSync(join(tmpdir(), 'natsfleet-revert-'));
  try {
    const env = { GIT_INDEX_FILE: join(tmp, 'index') };
    const patch = join(tmp, 'revert.patch');
    const reverse = await gitOk(
      repo,
      [
        'diff',
        '--binary',
        '--full-index',
        '--no-renames',
        '--no-ext-diff',
        '--no-textconv',
        '--no-color',
        sha,
        parent,
        '--',
        ...paths,
      ],
      'cannot compute the reverse of the revision',
    );
    writeFileSync(patch, reverse);
    await gitOk(repo, ['read-tree', baseTip], 'cannot read the base branch', env);
    const applied = await git(repo, ['apply', '--cached', '--3way', '--whitespace=nowarn', patch], env);
    if (applied.code !== 0) {
      const unmerged = (await git(repo, ['ls-files', '-u', '-z'], env)).stdout
        .split('\0')
        .filter(Boolean)
        .map((l) => l.slice(l.indexOf('\t') + 1));
      const named = [...new Set([...unmerged, ...conflictedFiles(applied.stderr, paths)])].sort();
      throw new RevertError(
        `the revert of ${shortRev(sha)} does not apply cleanly on ${base}: ` +
          `${named.length ? named.join(', ') : paths.join(', ')} changed since; revert those changes by hand`,
      );
    }
    const tree = (await gitOk(repo, ['write-tree'], 'cannot write the reverted tree', env)).trim();
    const baseTree = (await gitOk(repo, ['rev-parse', `${baseTip}^{tree}`], 'cannot read the base branch')).trim();
    if (tree === baseTree)
      throw new RevertError(`${shortRev(sha)}'s manifest changes are already undone on ${base}: nothing to revert`);
    // The user's identity when the clone has one, else natsfleet's.
    const named = (await git(repo, ['config', 'user.email'])).code === 0;
    const who = named ? [] : ['-c', 'user.name=natsfleet', '-c', 'user.email=natsfleet@localhost'];
    const message = revertCommitMessage({ sha, subject, paths, kept, base, hostsDir: x.hostsDir });
    const commit = (
      await gitOk(repo, [...who, 'commit-tree', tree, '-p', baseTip, '-m', message], 'cannot commit the revert')
    ).trim();
    return { sha, subject, baseTip, paths, kept, commit, branch: revertBranch(sha) };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The URL of a remote of the clone (for the GitHub repository it names), or undefined. */
export async function remoteUrl(repo: string, remote: string): Promise<string | undefined> {
  const r = await git(repo, ['remote', 'get-url', remote]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** Pushes the revert commit as a new branch; refuses a branch that exists already on the remote. */
export async function pushRevert(repo: string, remote: string, p: PreparedRevert): Promise<void> {
  const ref = `refs/heads/${p.branch}`;
  const exists = await gitOk(repo, ['ls-remote', remote, ref], `cannot list ${remote}'s branches`);
  if (exists.trim())
    throw new RevertError(
      `${p.branch} exists on ${remote} already: a revert of ${shortRev(p.sha)} is proposed there ` +
        '(delete that branch to propose it again)',
    );
  await gitOk(repo, ['push', '--quiet', remote, `${p.commit}:${ref}`], `cannot push ${p.branch} to ${remote}`);
}
