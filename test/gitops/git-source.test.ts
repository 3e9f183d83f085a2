// Repository credentials: a remote URL with userinfo never reaches the mirror's config, the disk or a
// log line; git gets the credentials through GIT_ASKPASS; the state directory is 0700 and the mirror's
// config 0600 whatever was there before. No network beyond 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GitSource, isControllerSecretVar, redactUrl, splitCredentials } from '../../controller/source/git-source.js';
import { StateStore } from '../../controller/gitops/state.js';

const SECRET = 's3cret-t0ken';
const mode = (p: string) => statSync(p).mode & 0o777;
const git = (dir: string, ...args: string[]) => execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8' }).trim();

/** Every file under `dir` whose content mentions `needle`. */
function filesMentioning(dir: string, needle: string): string[] {
  const hits: string[] = [];
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    if (readFileSync(p).includes(needle)) hits.push(p);
  }
  return hits;
}

describe('redactUrl and splitCredentials', () => {
  it('hide userinfo in URLs and in messages quoting them', () => {
    expect(redactUrl(`https://user:${SECRET}@github.com/acme/x.git`)).toBe('https://***@github.com/acme/x.git');
    expect(redactUrl(`fatal: unable to access 'https://${SECRET}@h:8443/x.git/': 401`)).toBe(
      "fatal: unable to access 'https://***@h:8443/x.git/': 401",
    );
    expect(redactUrl(`https://u:p@ss@host/x`)).toBe('https://***@host/x');
    expect(redactUrl('git@github.com:acme/x.git')).toBe('git@github.com:acme/x.git');
    expect(redactUrl('/srv/git/hosts.git')).toBe('/srv/git/hosts.git');
    expect(redactUrl('https://github.com/a/b.git')).toBe('https://github.com/a/b.git');
  });

  it('split http(s) credentials off the URL; leave other remotes alone', () => {
    expect(splitCredentials(`https://x-access-token:${SECRET}@github.com/a/b.git`)).toEqual({
      url: 'https://github.com/a/b.git',
      credentials: { username: 'x-access-token', password: SECRET },
    });
    expect(splitCredentials('https://us%40er:p%3Ass@h/x.git').credentials).toEqual({
      username: 'us@er',
      password: 'p:ss',
    });
    expect(splitCredentials('ssh://git@github.com/a/b.git')).toEqual({ url: 'ssh://git@github.com/a/b.git' });
    expect(splitCredentials('https://github.com/a/b.git')).toEqual({ url: 'https://github.com/a/b.git' });
  });
});

describe('GitSource with credentials in the URL', () => {
  it('stores the remote without them, 0600 config, 0700 state dir; a failed fetch leaves nothing', async () => {
    const stateDir = join(mkdtempSync(join(tmpdir(), 'nf-src-')), 'state');
    mkdirSync(stateDir, { mode: 0o755 });
    chmodSync(stateDir, 0o755); // an existing, too open directory
    const store = new StateStore(stateDir);
    const src = new GitSource(`https://user:${SECRET}@127.0.0.1:1/x.git`, join(stateDir, 'repo.git'), 'main');
    const err = await src.fetchBranch().then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(Error);
    expect(err!.message).not.toContain(SECRET);
    store.save(store.load());
    const mirror = join(stateDir, 'repo.git');
    expect(git(mirror, 'config', '--get', 'remote.origin.url')).toBe('https://127.0.0.1:1/x.git');
    expect(mode(stateDir)).toBe(0o700);
    expect(mode(mirror)).toBe(0o700);
    expect(mode(join(mirror, 'config'))).toBe(0o600);
    expect(mode(join(mirror, 'natsfleet-askpass'))).toBe(0o700);
    expect(mode(join(stateDir, 'state.json'))).toBe(0o600);
    expect(filesMentioning(stateDir, SECRET)).toEqual([]);
    expect(src.safeRemote).toBe('https://***@127.0.0.1:1/x.git');
  });

  it('a mirror made with credentials in its config (and a loose mode) is cleaned on the next fetch', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'nf-src-'));
    const mirror = join(stateDir, 'repo.git');
    execFileSync('git', ['init', '-q', '--bare', mirror]);
    git(mirror, 'remote', 'add', 'origin', `https://user:${SECRET}@127.0.0.1:1/x.git`);
    chmodSync(join(mirror, 'config'), 0o644);
    const src = new GitSource(`https://user:${SECRET}@127.0.0.1:1/x.git`, mirror, 'main');
    await expect(src.fetchBranch()).rejects.toThrow();
    expect(git(mirror, 'config', '--get', 'remote.origin.url')).toBe('https://127.0.0.1:1/x.git');
    expect(mode(join(mirror, 'config'))).toBe(0o600);
    expect(filesMentioning(stateDir, SECRET)).toEqual([]);
  });

  it('gives git the credentials through GIT_ASKPASS, never prompting', async () => {
    const auths: string[] = [];
    const server = createServer((req, res) => {
      const a = req.headers.authorization;
      if (!a) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="git"' });
        return res.end();
      }
      auths.push(a);
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const stateDir = mkdtempSync(join(tmpdir(), 'nf-src-'));
      const src = new GitSource(`http://bot:${SECRET}@127.0.0.1:${port}/x.git`, join(stateDir, 'repo.git'), 'main');
      const err = await src.fetchBranch().then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expect(err!.message).not.toContain(SECRET);
      expect(auths[0]).toBe(`Basic ${Buffer.from(`bot:${SECRET}`).toString('base64')}`);
      expect(filesMentioning(stateDir, SECRET)).toEqual([]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('a remote without credentials is stored as given and needs no askpass', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nf-src-'));
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(d, 'origin.git')]);
    execFileSync('git', ['init', '-q', '-b', 'main', join(d, 'work')]);
    const work = join(d, 'work');
    execFileSync(
      'git',
      ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', 'i'],
      {
        cwd: work,
      },
    );
    execFileSync('git', ['push', '-q', '../origin.git', 'main'], { cwd: work });
    const src = new GitSource(join(d, 'origin.git'), join(d, 'state', 'repo.git'), 'main');
    expect(await src.fetchBranch()).toMatch(/^[0-9a-f]{40}$/);
    expect(git(join(d, 'state', 'repo.git'), 'config', '--get', 'remote.origin.url')).toBe(join(d, 'origin.git'));
    expect(readdirSync(join(d, 'state', 'repo.git'))).not.toContain('natsfleet-askpass');
  });
});

describe('isOnBranch: the revision a host record names', () => {
  it('a commit of the branch is on it; one of an unmerged branch, a dirty or local revision is not', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nf-onbranch-'));
    const work = join(d, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(d, 'origin.git')]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    const commit = (m: string) => {
      execFileSync(
        'git',
        ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '--allow-empty', '-m', m],
        { cwd: work },
      );
      return git(work, 'rev-parse', 'HEAD');
    };
    const first = commit('first');
    const second = commit('second');
    execFileSync('git', ['push', '-q', '../origin.git', 'main'], { cwd: work });
    git(work, 'checkout', '-q', '-b', 'feature', first);
    const unmerged = commit('unmerged');
    execFileSync('git', ['push', '-q', '../origin.git', 'feature'], { cwd: work });
    const src = new GitSource(join(d, 'origin.git'), join(d, 'state', 'repo.git'), 'main');
    const head = await src.fetchBranch();
    expect(head).toBe(second);
    expect(await src.isOnBranch(first, head)).toBe(true);
    expect(await src.isOnBranch(first.slice(0, 12), head)).toBe(true);
    expect(await src.isOnBranch(head, head)).toBe(true);
    expect(await src.isOnBranch(unmerged, head)).toBe(false); // never fetched by the mirror
    expect(await src.isOnBranch(`${first.slice(0, 12)}-dirty`, head)).toBe(false);
    expect(await src.isOnBranch('local', head)).toBe(false);
  });
});

describe('mergePreview: a pull request planned as merging would deploy it', () => {
  it('a branch behind its base keeps what was merged since; a conflict gives no preview', async () => {
    const d = mkdtempSync(join(tmpdir(), 'nf-preview-'));
    const work = join(d, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(d, 'origin.git')]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    mkdirSync(join(work, 'hosts'));
    const write = (name: string, text: string) => writeFileSync(join(work, 'hosts', name), text);
    const commit = (m: string) => {
      execFileSync('git', ['add', '-A'], { cwd: work });
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-q', '-m', m], {
        cwd: work,
      });
      return git(work, 'rev-parse', 'HEAD');
    };
    write('a.yaml', 'a: 1\n');
    write('b.yaml', 'b: 1\n');
    commit('two hosts');
    git(work, 'checkout', '-q', '-b', 'feature');
    write('b.yaml', 'b: 2\n');
    const feature = commit('change b');
    git(work, 'checkout', '-q', 'main');
    write('a.yaml', 'a: 2\n');
    commit('change a on main, after the branch');
    git(work, 'checkout', '-q', '-b', 'clash', 'HEAD~1');
    write('a.yaml', 'a: 3\n');
    const clash = commit('change a differently');
    git(work, 'checkout', '-q', 'main');
    execFileSync('git', ['push', '-q', '../origin.git', 'main', 'feature', 'clash'], { cwd: work });
    const src = new GitSource(join(d, 'origin.git'), join(d, 'state', 'repo.git'), 'main');
    const base = await src.fetchBranch();
    const mirror = join(d, 'state', 'repo.git');
    git(mirror, 'fetch', '-q', 'origin', 'feature:refs/heads/feature', 'clash:refs/heads/clash');
    const preview = await src.mergePreview(base, feature);
    expect(preview).toMatch(/^[0-9a-f]{40}$/);
    const files = Object.fromEntries((await src.manifestsAt(preview!)).map((f) => [f.path, f.text]));
    // The branch alone has a: 1; the merge keeps main's a: 2 and adds the branch's b: 2.
    expect(files).toEqual({ 'hosts/a.yaml': 'a: 2\n', 'hosts/b.yaml': 'b: 2\n' });
    expect(await src.mergePreview(base, clash)).toBeUndefined();
    // Nothing moved: the branch ref is where it was.
    expect(git(mirror, 'rev-parse', 'refs/remotes/origin/main')).toBe(base);
  });
});

describe('the environment git runs with', () => {
  it.each([
    ['NATSFLEET_SSH_PASSPHRASE', true],
    ['NATSFLEET_WEBHOOK_SECRET', true],
    ['GITHUB_TOKEN', true],
    ['NATS_EU1_TOKEN', true],
    ['SSH_AUTH_SOCK', false],
    ['HOME', false],
    ['PATH', false],
  ])('%s is kept from git: %s', (name, secret) => {
    expect(isControllerSecretVar(name)).toBe(secret);
  });
});
