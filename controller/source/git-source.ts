// Owns reading the hosts repository: a bare mirror in the state directory, fetched (never
// re-cloned) with simple-git, branch heads, pull-request heads (refs/pull/N/head, as GitHub
// publishes them), and manifest files at any revision. Credentials in the repository URL never
// reach the mirror's config, a log or the disk: the stored remote has no userinfo, and git gets
// them from a GIT_ASKPASS script that only echoes variables set on the git child process.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { simpleGit, type SimpleGit } from 'simple-git';
import { isManifestName, MAX_MANIFEST_BYTES, oversized, type ManifestFile } from '../manifest/load.js';
import { unreadableReason } from '../manifest/read-dir.js';

const USER_VAR = 'NATSFLEET_GIT_USERNAME';
const PASS_VAR = 'NATSFLEET_GIT_PASSWORD';
const ASKPASS_NAME = 'natsfleet-askpass';
// Git asks "Username for '...': " then "Password for '...': ". No secret is in this file.
const ASKPASS_SCRIPT = `#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "$${USER_VAR}" ;;
  *) printf '%s\\n' "$${PASS_VAR}" ;;
esac
`;

/** Any `scheme://user:secret@` in `text` (a URL or a message quoting one) with the userinfo as `***`. */
export function redactUrl(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/?#\s'"]*@/gi, '$1***@');
}

export interface RemoteCredentials {
  username: string;
  password: string;
}

/**
 * Splits an http(s) URL's userinfo from it: the URL git may store and the credentials to hand over
 * through GIT_ASKPASS. Other remotes (ssh, scp-like, local paths) are returned unchanged.
 */
export function splitCredentials(remote: string): { url: string; credentials?: RemoteCredentials } {
  if (!/^https?:\/\//i.test(remote)) return { url: remote };
  let u: URL;
  try {
    u = new URL(remote);
  } catch {
    return { url: remote };
  }
  if (!u.username && !u.password) return { url: remote };
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  const credentials = { username: decode(u.username), password: decode(u.password) };
  u.username = '';
  u.password = '';
  return { url: u.toString(), credentials };
}

/**
 * simple-git strips these from the environment it inherits (every GIT_* variable and a few others
 * git would run or read), and refuses them in an environment we pass: they are left out, as before.
 */
const isGuardedVar = (k: string) => /^git_/i.test(k) || /^(editor|visual|pager|prefix|ssh_askpass)$/i.test(k);

/**
 * The controller's own secrets, which git never needs: the SSH key passphrase, the webhook secret, GitHub
 * tokens, and the manifests' {env} secrets (NATS_*, the default pattern). Git gets the repository's
 * credentials through GIT_ASKPASS only.
 */
export const isControllerSecretVar = (k: string) => /^(natsfleet_|nats_)/i.test(k) || /^github_token$/i.test(k);

export class GitSource {
  private readonly git: SimpleGit;
  /** The remote as stored in the mirror (no userinfo). */
  readonly url: string;
  private readonly credentials?: RemoteCredentials;

  constructor(
    readonly remote: string,
    readonly dir: string,
    readonly branch: string,
    readonly hostsDir = 'hosts',
  ) {
    ({ url: this.url, credentials: this.credentials } = splitCredentials(remote));
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !isGuardedVar(k) && !isControllerSecretVar(k)) env[k] = v;
    env.GIT_TERMINAL_PROMPT = '0';
    const config: string[] = [];
    if (this.credentials) {
      env.GIT_ASKPASS = resolve(dir, ASKPASS_NAME);
      env[USER_VAR] = this.credentials.username;
      env[PASS_VAR] = this.credentials.password;
      // No credential helper may store what askpass answered.
      config.push('credential.helper=');
    }
    const creds = Boolean(this.credentials);
    this.git = simpleGit({
      baseDir: dir,
      timeout: { block: 120_000 },
      config,
      allowEnvironment: creds ? ['GIT_TERMINAL_PROMPT', 'GIT_ASKPASS'] : ['GIT_TERMINAL_PROMPT'],
      unsafe: { allowUnsafeAskPass: creds, allowUnsafeCredentialHelper: creds },
    }).env(env);
  }

  /** The remote for messages and logs. */
  get safeRemote(): string {
    return redactUrl(this.remote);
  }

  private async ensureRepo(): Promise<void> {
    chmodSync(this.dir, 0o700);
    if (this.credentials) {
      const askpass = join(this.dir, ASKPASS_NAME);
      writeFileSync(askpass, ASKPASS_SCRIPT, { mode: 0o700 });
      chmodSync(askpass, 0o700);
    }
    if (!existsSync(posix.join(this.dir, 'HEAD'))) {
      await this.git.raw(['init', '--bare', '--quiet']);
      chmodSync(join(this.dir, 'config'), 0o600);
      await this.git.raw(['remote', 'add', 'origin', this.url]);
    } else {
      const stored = (await this.git.raw(['config', '--get', 'remote.origin.url']).catch(() => '')).trim();
      // A mirror made before (possibly with credentials in its config) or for another URL.
      if (stored !== this.url) {
        chmodSync(join(this.dir, 'config'), 0o600);
        if (stored) await this.git.raw(['remote', 'set-url', 'origin', this.url]);
        else await this.git.raw(['remote', 'add', 'origin', this.url]);
      }
    }
    chmodSync(join(this.dir, 'config'), 0o600);
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
  /**
   * The manifest-like entries under the hosts directory at `rev`, with their repository paths, as
   * `validate` reads a directory (manifest/read-dir.ts): every name in any case of .yaml/.yml is read or
   * reported (in a subdirectory, a directory, a link, a submodule), names taken raw (-z: no quoting).
   */
  async manifestsAt(rev: string): Promise<ManifestFile[]> {
    // No hosts directory at that revision is an empty fleet; any other failure is an error (never "no hosts").
    await this.git.raw(['cat-file', '-e', `${rev}^{commit}`]);
    const exists = await this.git
      .raw(['cat-file', '-t', `${rev}:${this.hostsDir}`])
      .then((t) => t.trim())
      .catch(() => '');
    if (!exists) return [];
    if (exists !== 'tree') {
      return [{ path: this.hostsDir, text: '', unreadable: `is a ${exists}, not a directory of manifests` }];
    }
    const listing = await this.git.raw(['ls-tree', '-r', '-t', '-l', '-z', `${rev}:${this.hostsDir}`]);
    const files: ManifestFile[] = [];
    for (const entry of listing.split('\0').filter(Boolean)) {
      const m = /^(\d+) (blob|tree|commit) ([0-9a-f]+)\s+(-|\d+)\t([\s\S]+)$/.exec(entry);
      if (!m) continue;
      const [, mode, type, id, size, name] = m;
      if (!isManifestName(name)) continue;
      const path = posix.join(this.hostsDir, name);
      const nested = name.includes('/');
      const kind = type === 'tree' ? 'dir' : mode === '120000' ? 'link' : type === 'blob' ? 'file' : 'other';
      const why = unreadableReason(kind, nested);
      if (why) files.push({ path, text: '', unreadable: why });
      // An oversized blob is not read: the loader rejects it by size.
      else if (Number(size) > MAX_MANIFEST_BYTES) files.push(oversized(path));
      else files.push({ path, text: await this.git.raw(['cat-file', 'blob', id]) });
    }
    return files;
  }

  /**
   * The commit merging `head` into `base` would make (git merge-tree, nothing checked out, no ref
   * moved), so that a pull request is planned as it would deploy: a branch that is behind its base does
   * not seem to revert what was merged since. Undefined when the merge conflicts.
   */
  async mergePreview(base: string, head: string): Promise<string | undefined> {
    // The first line is the merged tree; any line after it names a conflicted file (exit status 1).
    const lines = await this.git
      .raw(['merge-tree', '--write-tree', '--no-messages', base, head])
      .then((out) => out.split('\n').filter(Boolean))
      .catch(() => []);
    const tree = lines[0]?.trim() ?? '';
    if (lines.length !== 1 || !/^[0-9a-f]{40,64}$/.test(tree)) return undefined;
    const who = ['-c', 'user.name=natsfleet', '-c', 'user.email=natsfleet@localhost'];
    const msg = `natsfleet: preview of merging ${head} into ${base}`;
    return (await this.git.raw([...who, 'commit-tree', tree, '-p', base, '-p', head, '-m', msg])).trim();
  }

  /**
   * Whether `rev` (a commit id a host's record names) is on the branch at `head`. A revision that is not
   * a commit id ("local", "…-dirty") or that this mirror never fetched is not.
   */
  async isOnBranch(rev: string, head: string): Promise<boolean> {
    if (!/^[0-9a-f]{7,40}$/.test(rev)) return false;
    return this.git
      .raw(['merge-base', '--is-ancestor', rev, head])
      .then(() => true)
      .catch(() => false);
  }

  async subject(rev: string): Promise<string> {
    return (await this.git.raw(['log', '-1', '--format=%s', rev])).trim();
  }
}
