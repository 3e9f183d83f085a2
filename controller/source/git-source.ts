// Owns reading the hosts repository: a bare mirror in the state directory, fetched (never
// re-cloned) with simple-git, branch heads, pull-request heads (refs/pull/N/head, as GitHub
// publishes them), and manifest files at any revision.
import { existsSync, mkdirSync } from 'node:fs';
import { posix } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { isManifestName, MAX_MANIFEST_BYTES, type ManifestFile } from '../manifest/load.js';

export class GitSource {
  private readonly git: SimpleGit;

  constructor(
    readonly remote: string,
    readonly dir: string,
    readonly branch: string,
    readonly hostsDir = 'hosts',
  ) {
    mkdirSync(dir, { recursive: true });
    this.git = simpleGit({ baseDir: dir, timeout: { block: 120_000 } });
  }

  private async ensureRepo(): Promise<void> {
    if (existsSync(posix.join(this.dir, 'HEAD'))) return;
    await this.git.raw(['init', '--bare', '--quiet']);
    await this.git.raw(['remote', 'add', 'origin', this.remote]);
  }

  /** Fetches the branch; returns its head commit. */
  async fetchBranch(): Promise<string> {
    await this.ensureRepo();
    await this.git.raw([
      'fetch',
      '--quiet',
      '--prune',
      'origin',
      `+refs/heads/${this.branch}:refs/remotes/origin/${this.branch}`,
    ]);
    return (await this.git.raw(['rev-parse', `refs/remotes/origin/${this.branch}`])).trim();
  }

  /** Fetches a pull request's head as GitHub publishes it; returns its commit. */
  async fetchPull(number: number): Promise<string> {
    await this.ensureRepo();
    await this.git.raw(['fetch', '--quiet', 'origin', `+refs/pull/${number}/head:refs/natsfleet/pull/${number}`]);
    return (await this.git.raw(['rev-parse', `refs/natsfleet/pull/${number}`])).trim();
  }

  /** The manifest files under the hosts directory at `rev`, shown with their repository paths. */
  async manifestsAt(rev: string): Promise<ManifestFile[]> {
    const listing = await this.git.raw(['ls-tree', '-l', `${rev}:${this.hostsDir}`]).catch(() => '');
    const files: ManifestFile[] = [];
    for (const line of listing.split('\n').filter(Boolean)) {
      const m = /^\d+ blob ([0-9a-f]+)\s+(\d+)\t(.+)$/.exec(line);
      if (!m || !isManifestName(m[3])) continue;
      const path = posix.join(this.hostsDir, m[3]);
      // An oversized blob is not read: the loader rejects it by size.
      const text =
        Number(m[2]) > MAX_MANIFEST_BYTES
          ? ' '.repeat(MAX_MANIFEST_BYTES + 1)
          : await this.git.raw(['cat-file', 'blob', m[1]]);
      files.push({ path, text });
    }
    return files;
  }

  async subject(rev: string): Promise<string> {
    return (await this.git.raw(['log', '-1', '--format=%s', rev])).trim();
  }
}
