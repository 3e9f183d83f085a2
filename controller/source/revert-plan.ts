// Owns the pure parts of `natsfleet revert REV`: which of a revision's changed paths are reverted (the
// manifests: files under the hosts directory), the branch, commit message, pull request title and body,
// the GitHub repository a remote URL names, and which files a failed reverse patch names. Git itself is
// run by revert.ts; nothing here touches a repository.
import { posix } from 'node:path';
import { shortRev } from '../util/rev.js';

/** Why a revert is refused (nothing was pushed or opened): said to the user as it is. */
export class RevertError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RevertError';
  }
}

/** The hosts directory as a repository path: no leading `./`, no trailing `/` ('' for the root). */
export function normalizeDir(dir: string): string {
  const n = posix
    .normalize(dir.replace(/\\/g, '/'))
    .replace(/^(\.\/)+/, '')
    .replace(/\/+$/, '');
  return n === '.' ? '' : n;
}

/** The changed paths a revert touches: those under the hosts directory, sorted, each once. */
export function manifestPaths(changed: readonly string[], hostsDir: string): string[] {
  const dir = normalizeDir(hostsDir);
  const under = (p: string) => dir === '' || p.startsWith(`${dir}/`);
  return [...new Set(changed.filter(under))].sort();
}

/** The changed paths a revert leaves as they are (outside the hosts directory). */
export function otherPaths(changed: readonly string[], hostsDir: string): string[] {
  const kept = new Set(manifestPaths(changed, hostsDir));
  return [...new Set(changed.filter((p) => !kept.has(p)))].sort();
}

/** The branch the revert is proposed on. */
export const revertBranch = (sha: string) => `natsfleet/revert-${shortRev(sha)}`;

/** The first line of a commit message as a title part: one line, at most 200 characters. */
const subjectLine = (subject: string) => {
  const one = subject.split('\n')[0].trim();
  return one.length > 200 ? `${one.slice(0, 197)}...` : one;
};

/** The pull request's title (and the revert commit's subject). */
export const revertTitle = (sha: string, subject: string) => `Revert ${shortRev(sha)}: ${subjectLine(subject)}`;

export interface RevertText {
  sha: string;
  subject: string;
  /** The manifests reverted. */
  paths: readonly string[];
  /** What the revision changed outside the hosts directory (kept). */
  kept: readonly string[];
  base: string;
  hostsDir: string;
}

const list = (paths: readonly string[], max = 50) => [
  ...paths.slice(0, max).map((p) => `- \`${p}\``),
  ...(paths.length > max ? [`- ... and ${paths.length - max} more`] : []),
];

/** The revert commit's message: names the reverted revision and the manifests it restores. */
export function revertCommitMessage(x: RevertText): string {
  return [
    revertTitle(x.sha, x.subject),
    '',
    `This reverts the manifest changes of commit ${x.sha}:`,
    ...x.paths.map((p) => `  ${p}`),
    ...(x.kept.length
      ? ['', `Its changes outside ${normalizeDir(x.hostsDir) || '.'}/ are kept:`, ...x.kept.map((p) => `  ${p}`)]
      : []),
    '',
    'Proposed by natsfleet revert.',
  ].join('\n');
}

/** The pull request's body: what is reverted, and that it is planned and deployed like any other. */
export function revertBody(x: RevertText): string {
  const dir = normalizeDir(x.hostsDir) || '.';
  return [
    `This reverts the manifest changes of ${x.sha} (${subjectLine(x.subject)}) on \`${x.base}\`:`,
    '',
    ...list(x.paths),
    '',
    'It is planned like any other pull request: natsfleet comments with what merging it would change on each ' +
      'host, and merging it deploys it. Nothing is applied before it is merged, so the hosts never diverge ' +
      'from Git.',
    ...(x.kept.length ? ['', `The revision's changes outside \`${dir}/\` are not reverted:`, '', ...list(x.kept)] : []),
    '',
    `Opened by \`natsfleet revert ${shortRev(x.sha)}\`.`,
  ].join('\n');
}

const GITHUB_REMOTE = new RegExp(
  String.raw`^(?:https?://(?:[^@/]*@)?github\.com/|ssh://git@github\.com(?::\d+)?/|git@github\.com:)` +
    String.raw`([\w.-]+)/([\w.-]+?)(?:\.git)?/?$`,
  'i',
);

/** `owner/name` of a github.com remote (https, ssh or scp-like), or undefined for any other remote. */
export function githubRepositoryOf(remoteUrl: string): string | undefined {
  const m = GITHUB_REMOTE.exec(remoteUrl.trim());
  return m ? `${m[1]}/${m[2]}` : undefined;
}

const PATCH_FAILED = /^error: patch failed: (.+):\d+$/;
const FILE_FAILED =
  /^error: (.+): (?:patch does not apply|does not exist in index|already exists in index|does not match index)$/;

/**
 * The files of `paths` a failed `git apply` names (`error: patch failed: PATH:LINE`, `error: PATH: patch
 * does not apply`, `error: PATH: does not exist in index`, `error: PATH: already exists in index`), in order.
 */
export function conflictedFiles(applyOutput: string, paths: readonly string[]): string[] {
  const named = new Set<string>();
  for (const line of applyOutput.split('\n')) {
    const m = PATCH_FAILED.exec(line) ?? FILE_FAILED.exec(line) ?? /^U (.+)$/.exec(line);
    if (m && paths.includes(m[1])) named.add(m[1]);
  }
  return paths.filter((p) => named.has(p));
}
