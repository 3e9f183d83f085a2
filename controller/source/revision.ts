// Owns naming the revision a local hosts directory is at: its Git commit (with "-dirty" when the
// directory has uncommitted changes), or "local" outside Git.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export async function localRevision(dir: string): Promise<string> {
  try {
    const { stdout } = await exec('git', ['-C', dir, 'rev-parse', '--short=12', 'HEAD']);
    const { stdout: dirty } = await exec('git', ['-C', dir, 'status', '--porcelain', '--', '.']);
    return `${stdout.trim()}${dirty.trim() ? '-dirty' : ''}`;
  } catch {
    return 'local';
  }
}
