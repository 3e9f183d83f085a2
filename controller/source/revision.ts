// Owns naming the revision a local hosts directory is at: its Git commit (with "-dirty" when the
// directory has uncommitted changes), or "local" outside Git.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export async function localRevision(dir: string): Promise<string> {
  try {
    // Both at once (each is a process start): the caller starts this early and awaits it last.
    const [{ stdout }, { stdout: dirty }] = await Promise.all([
      exec('git', ['-C', dir, 'rev-parse', '--short=12', 'HEAD']),
      exec('git', ['-C', dir, 'status', '--porcelain', '--', '.']),
    ]);
    return `${stdout.trim()}${dirty.trim() ? '-dirty' : ''}`;
  } catch {
    return 'local';
  }
}
