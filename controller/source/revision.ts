// Owns naming the revision a local hosts directory is at: its Git commit (with "-dirty" when the
// directory has uncommitted changes), or "local" outside Git or before the first commit.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

/** The revision `git status --porcelain=v2 --branch -- DIR` describes: its commit, and any change under DIR. */
export function revisionOf(status: string): string {
  const oid = /^# branch\.oid ([0-9a-f]{40,64})$/m.exec(status)?.[1];
  if (!oid) return 'local';
  // Every line that is not a `# ` header names a change (tracked or untracked).
  return `${oid.slice(0, 12)}${/^[^#\n]/m.test(status) ? '-dirty' : ''}`;
}

export async function localRevision(dir: string): Promise<string> {
  try {
    // One process (a start costs the caller's main thread several ms): the commit and the changes together.
    const { stdout } = await exec('git', ['-C', dir, 'status', '--porcelain=v2', '--branch', '--', '.']);
    return revisionOf(stdout);
  } catch {
    return 'local';
  }
}
