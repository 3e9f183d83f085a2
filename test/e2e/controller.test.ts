// Issue 5's proof, end to end: a real bare Git repository, the sandbox hosts, and the GitHub double
// that validates every request against GitHub's OpenAPI description.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { Octokit } from 'octokit';
import { GitHubDouble } from '../github/double.js';
import { Controller } from '../../controller/gitops/controller.js';
import { GitSource } from '../../controller/source/git-source.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { GitHubReporter } from '../../controller/report/github.js';
import { StateStore } from '../../controller/gitops/state.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { DRIFT_LABEL } from '../../controller/report/github.js';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';
import { ROOT } from '../helpers/fixtures.js';

const fleet = inject('fleet');
const [h1, h2] = fleet.hosts;
const root = mkdtempSync(join(tmpdir(), 'nf-gitops-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const gh = new GitHubDouble();
const s1 = new Scenario(fleet, h1);
const s2 = new Scenario(fleet, h2);
let pool: SessionPool;

/** A manifest as a test edits it: any field, valid or not. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests write arbitrary (also invalid) manifests
type Doc = Record<string, any>;

function editHost(name: string, edit: (d: Doc) => void) {
  const path = join(work, 'hosts', `${name}.yaml`);
  const doc = load(readFileSync(path, 'utf8')) as Doc;
  edit(doc);
  writeFileSync(path, dump(doc));
}
function commit(message: string): string {
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
}

/** As a developer would: a branch off main with one host edited, opened as pull request `number`. */
function openPullRequest(
  number: number,
  branch: string,
  host: string,
  edit: (d: Doc) => void,
  message: string,
  headRepo?: string,
): string {
  git('checkout', '-q', '-b', branch, 'main');
  editHost(host, edit);
  const sha = commit(message);
  git('push', '-q', 'origin', `HEAD:refs/heads/${branch}`, `HEAD:refs/pull/${number}/head`);
  gh.openPull(number, sha, branch, headRepo);
  return sha;
}

function newController(stateDir = join(root, 'state')): Controller {
  return new Controller({
    source: new GitSource(origin, join(stateDir, 'repo.git'), 'main'),
    github: new GitHubReporter(new Octokit({ baseUrl: gh.url, auth: gh.token }), gh.repository),
    pool,
    store: new StateStore(stateDir),
    policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
    log: pino({ level: 'silent' }),
    concurrency: 4,
    driftIntervalMs: 24 * 3600 * 1000,
  });
}

beforeAll(async () => {
  await gh.start();
  pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  mkdirSync(join(work, 'hosts'));
  for (const h of [h1, h2]) cpSync(join(fleet.hostsDir, `${h.name}.yaml`), join(work, 'hosts', `${h.name}.yaml`));
  git('checkout', '-q', '-b', 'main');
  commit('two NATS hosts');
  git('push', '-q', 'origin', 'main');
});
afterAll(async () => {
  await gh.stop();
  await pool.closeAll();
  await s1.close();
  await s2.close();
});

describe('the GitOps loop', () => {
  const c = () => ctl;
  let ctl: Controller;
  let prSha = '';

  it('deploys the branch: every host healthy, statuses on the commit', async () => {
    ctl = newController();
    const head = git('rev-parse', 'HEAD');
    await c().tick();
    expect(c().state.appliedRevision).toBe(head);
    for (const h of [h1, h2]) expect(gh.latestStatus(head, `natsfleet/${h.name}`)?.state).toBe('success');
    expect(gh.latestStatus(head, 'natsfleet')).toMatchObject({ state: 'success', description: '2 host(s) in sync' });
    expect(await s1.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
  });

  it('a pull request gets one plan comment and a status per host; nothing is applied', async () => {
    prSha = openPullRequest(
      1,
      'feature',
      h1.name,
      (d) => (d.spec.nats.logging = { debug: true }),
      'debug logging on nats-sb-1',
    );
    await c().tick();
    const [comment, ...more] = gh.commentsOn(1);
    expect(more).toEqual([]);
    expect(comment.body).toContain('<!-- natsfleet:plan -->');
    expect(comment.body).toMatch(
      new RegExp(`\\| ${h1.name} \\| update \\| reload \\| \`/etc/nats/nats-server.conf\` \\|`),
    );
    expect(comment.body).toContain('<details><summary><b>nats-sb-1</b>');
    expect(comment.body).toContain('+debug: true');
    expect(comment.body).not.toContain(s1.token());
    expect(gh.latestStatus(prSha, `natsfleet/${h1.name}`)).toMatchObject({
      state: 'success',
      description: '1 change(s), reload',
    });
    expect(await s1.sh('grep ^debug /etc/nats/nats-server.conf')).toBe('debug: false');
  });

  it('a second push edits the same comment in place', async () => {
    editHost(h1.name, (d) => (d.spec.nats.maxPayload = '2MB'));
    prSha = commit('bigger payloads');
    git('push', '-q', 'origin', `HEAD:refs/heads/feature`, `+HEAD:refs/pull/1/head`);
    gh.pushToPull(1, prSha);
    await c().tick();
    const comments = gh.commentsOn(1);
    expect(comments).toHaveLength(1);
    expect(comments[0].updates).toBe(1);
    expect(comments[0].body).toContain(prSha.slice(0, 12));
    expect(comments[0].body).toContain('+max_payload: 2MB');
    await c().tick();
    expect(gh.commentsOn(1)[0].updates).toBe(1);
  });

  it('an invalid manifest: failing status and the errors in the comment, nothing applied', async () => {
    const bad = openPullRequest(2, 'broken', h2.name, (d) => (d.spec.nats.httpPort = 4222), 'clash');
    const before = await s2.sh('sha256sum /etc/systemd/system/nats.service');
    await c().tick();
    expect(gh.latestStatus(bad, 'natsfleet')).toMatchObject({ state: 'failure' });
    expect(gh.latestStatus(bad, 'natsfleet')!.description).toMatch(
      /invalid manifests: hosts\/nats-sb-2\.yaml:\d+: error: spec\.nats\.httpPort: clashes/,
    );
    expect(gh.commentsOn(2)[0].body).toMatch(
      /The manifests are invalid; nothing was planned and nothing will be applied[\s\S]*spec\.nats\.httpPort/,
    );
    expect(await s2.sh('sha256sum /etc/systemd/system/nats.service')).toBe(before);
  });

  it('a pull request that points a host at another SSH key is planned offline only', async () => {
    const sha = openPullRequest(3, 'retarget', h2.name, (d) => (d.spec.ssh.hostKey = h1.hostKey), 'move nats-sb-2');
    // No SSH at all while it is planned: every session the pool hands out is counted.
    const get = pool.get.bind(pool);
    let ssh = 0;
    pool.get = (h) => {
      ssh++;
      return get(h);
    };
    try {
      await c().tick();
    } finally {
      pool.get = get;
    }
    expect(ssh).toBe(0);
    expect(gh.commentsOn(3)[0].body).toContain(
      'Planned offline, from the repository only: it changes the SSH address or host key of nats-sb-2',
    );
    expect(gh.latestStatus(sha, 'natsfleet/nats-sb-2')?.state).toBe('success');
  });

  it('a pull request from a fork is planned offline only, even for a harmless change', async () => {
    const sha = openPullRequest(
      5,
      'fork-change',
      h2.name,
      (d) => (d.spec.nats.maxPayload = '4MB'),
      'bigger payloads',
      'someone/hosts-fork',
    );
    await c().tick();
    const body = gh.commentsOn(5)[0].body;
    expect(body).toContain('Planned offline, from the repository only: the pull request comes from a fork');
    expect(body).toContain('+max_payload: 4MB');
    expect(gh.latestStatus(sha, 'natsfleet')?.state).toBe('success');
  });

  it('merge: the host is deployed and the pull request gets the result', async () => {
    git('checkout', '-q', 'main');
    git(
      '-c',
      'user.name=dev',
      '-c',
      'user.email=dev@example.com',
      'merge',
      '-q',
      '--no-ff',
      '-m',
      'Merge pull request #1',
      'feature',
    );
    const merge = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    gh.mergePull(1, merge);
    await c().tick();
    expect(JSON.parse(await s1.sh('curl -s 127.0.0.1:8222/varz')).max_payload).toBe(2 * 1024 * 1024);
    const deploy = gh.commentsOn(1).find((x) => x.body.includes(`<!-- natsfleet:deploy:${merge} -->`));
    expect(deploy?.body).toMatch(
      new RegExp(`\\| ${h1.name} \\| :white_check_mark: applied \\| Healthy \\| reload \\| 1 \\|`),
    );
    expect(gh.latestStatus(merge, `natsfleet/${h1.name}`)).toMatchObject({
      state: 'success',
      description: 'applied: test-config, reload',
    });
    expect(c().state.appliedRevision).toBe(merge);
  });

  it('a manual change on a host: one drift issue; selfHeal corrects it and closes the issue', async () => {
    await s2.sh("sed -i 's/^trace: false/trace: true/' /etc/nats/nats-server.conf");
    await c().driftSweep(c().state.appliedRevision!);
    const issues = gh.issues.filter((i) => i.labels.includes(DRIFT_LABEL));
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatchObject({ title: `natsfleet: drift on ${h2.name}`, state: 'closed' });
    expect(issues[0].body).toContain('/etc/nats/nats-server.conf: content changed on the host');
    expect(issues[0].comments.at(-1)).toMatch(/corrected the drift \(selfHeal\): test-config, reload/);
    expect(await s2.sh('grep ^trace /etc/nats/nats-server.conf')).toBe('trace: false');
  });

  it('without selfHeal: the issue stays open, unchanged drift is not re-notified, a fix closes it', async () => {
    editHost(h1.name, (d) => (d.spec.policy.selfHeal = false));
    commit('report-only drift for nats-sb-1');
    git('push', '-q', 'origin', 'main');
    await c().tick();
    await s1.sh("sed -i 's/^logtime: true/logtime: false/' /etc/nats/nats-server.conf");
    await c().driftSweep(c().state.appliedRevision!);
    await c().driftSweep(c().state.appliedRevision!);
    const open = gh.issues.filter((i) => i.state === 'open' && i.labels.includes(DRIFT_LABEL));
    expect(open).toHaveLength(1);
    expect(open[0].title).toBe(`natsfleet: drift on ${h1.name}`);
    expect(open[0].body).toContain('selfHeal is off');
    expect(open[0].comments).toEqual([]);
    expect(await s1.sh('grep ^logtime /etc/nats/nats-server.conf')).toBe('logtime: false');
    await s1.sh("sed -i 's/^logtime: false/logtime: true/' /etc/nats/nats-server.conf");
    await c().driftSweep(c().state.appliedRevision!);
    expect(open[0].state).toBe('closed');
    expect(open[0].comments).toEqual(['The host is back in sync.']);
  });

  it('a pull request that touches no manifest: a success status, no comment', async () => {
    git('checkout', '-q', '-b', 'docs', 'main');
    writeFileSync(join(work, 'README.md'), 'The hosts of this fleet.\n');
    const sha = commit('a README');
    git('push', '-q', 'origin', 'HEAD:refs/heads/docs', 'HEAD:refs/pull/6/head');
    gh.openPull(6, sha, 'docs');
    await c().tick();
    expect(gh.commentsOn(6)).toEqual([]);
    expect(gh.latestStatus(sha, 'natsfleet')?.state).toBe('success');
    git('checkout', '-q', 'main');
    gh.closePull(6);
  });

  it('a pull request that deletes a manifest says the host will no longer be managed', async () => {
    git('checkout', '-q', '-b', 'retire', 'main');
    git('rm', '-q', join('hosts', `${h2.name}.yaml`));
    const sha = commit(`stop managing ${h2.name}`);
    git('push', '-q', 'origin', 'HEAD:refs/heads/retire', 'HEAD:refs/pull/7/head');
    gh.openPull(7, sha, 'retire');
    await c().tick();
    expect(gh.commentsOn(7)[0].body).toContain(
      `:wave: **${h2.name} will no longer be managed**: it keeps running as it is`,
    );
    git('checkout', '-q', 'main');
    gh.closePull(7);
  });

  it('suspend: not deployed, not healed, drift still reported; resume deploys', async () => {
    editHost(h2.name, (d) => {
      d.spec.policy = { selfHeal: true, suspend: true };
      d.spec.nats.logging = { debug: true };
    });
    const suspended = commit(`suspend ${h2.name} while debugging is prepared`);
    git('push', '-q', 'origin', 'main');
    await c().tick();
    expect(await s2.sh('grep ^debug /etc/nats/nats-server.conf')).toBe('debug: false');
    expect(gh.latestStatus(suspended, `natsfleet/${h2.name}`)).toMatchObject({
      state: 'success',
      description: 'suspended (spec.policy.suspend): not deployed',
    });
    // A manual change is reported, not corrected (selfHeal is on, but the host is suspended).
    await s2.sh("sed -i 's/^trace: false/trace: true/' /etc/nats/nats-server.conf");
    await c().driftSweep(c().state.appliedRevision!);
    const issue = gh.issues.find((i) => i.state === 'open' && i.title === `natsfleet: drift on ${h2.name}`);
    expect(issue?.body).toContain('/etc/nats/nats-server.conf: content changed on the host');
    expect(await s2.sh('grep ^trace /etc/nats/nats-server.conf')).toBe('trace: true');
    editHost(h2.name, (d) => (d.spec.policy = { selfHeal: true, suspend: false }));
    commit(`resume ${h2.name}`);
    git('push', '-q', 'origin', 'main');
    await c().tick();
    expect(await s2.sh('grep -E "^(debug|trace)" /etc/nats/nats-server.conf')).toBe('debug: true\ntrace: false');
    await c().driftSweep(c().state.appliedRevision!);
    expect(issue?.state).toBe('closed');
  });

  it('an apply from an unmerged branch is drift: one issue naming the revision', async () => {
    git('checkout', '-q', '-b', 'unmerged', 'main');
    editHost(h1.name, (d) => (d.spec.nats.maxPayload = '3MB'));
    const sha = commit('bigger payloads, never merged');
    const cliFlags = ['--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir, '--yes'];
    const apply = await cli('apply', '--hosts', join(work, 'hosts'), '--host', h1.name, ...cliFlags);
    expect(apply.code, apply.err).toBe(0);
    await c().driftSweep(c().state.appliedRevision!);
    const issue = gh.issues.find((i) => i.state === 'open' && i.title === `natsfleet: drift on ${h1.name}`);
    expect(issue?.body).toContain(`the host was last applied from ${sha.slice(0, 12)}`);
    expect(issue?.body).toContain('which is not on branch main, and differs from the branch');
    // Back to the branch: applied from main, the drift is gone and the issue closed.
    git('checkout', '-q', 'main');
    expect((await cli('apply', '--hosts', join(work, 'hosts'), '--host', h1.name, ...cliFlags)).code).toBe(0);
    await c().driftSweep(c().state.appliedRevision!);
    expect(issue?.state).toBe('closed');
  });

  it('every request the controller made was valid for the GitHub API', () => {
    expect(gh.violations).toEqual([]);
  });
});

describe('crash safety', () => {
  it('a controller killed mid-deploy and restarted: the deploy completes, no duplicate comment or issue', async () => {
    openPullRequest(4, 'feature2', h2.name, (d) => (d.spec.nats.maxConnections = 500), 'connection limit');
    await newController().tick();
    expect(gh.commentsOn(4).filter((x) => x.body.includes('natsfleet:plan'))).toHaveLength(1);
    git('checkout', '-q', 'main');
    git(
      '-c',
      'user.name=dev',
      '-c',
      'user.email=dev@example.com',
      'merge',
      '-q',
      '--no-ff',
      '-m',
      'Merge pull request #4',
      'feature2',
    );
    const merge = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    gh.mergePull(4, merge);

    const stateDir = join(root, 'state-process');
    cpSync(join(root, 'state', 'state.json'), join(stateDir, 'state.json'), { recursive: true });
    const env = {
      ...process.env,
      GITHUB_TOKEN: gh.token,
      NATSFLEET_SSH_KEY: fleet.privateKeyPath,
      NATSFLEET_SECRETS_DIR: fleet.secretsDir,
    };
    const args = [
      join(ROOT, 'bin/natsfleet.js'),
      'controller',
      '--repo',
      origin,
      '--state-dir',
      stateDir,
      '--github-repository',
      gh.repository,
      '--github-api-url',
      gh.url,
      '--poll-interval',
      '1',
      '--drift-interval',
      '3600',
    ];
    // First process: killed (SIGKILL, no cleanup) as soon as it starts deploying.
    const first = spawn('node', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => {
      first.stdout.on('data', (b: Buffer) => {
        if (b.toString().includes('"msg":"deploying"')) {
          first.kill('SIGKILL');
          resolve();
        }
      });
    });
    await new Promise((r) => first.once('exit', r));
    // Second process: runs until the revision is deployed.
    const second = spawn('node', args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let log = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no deploy: ${log}`)), 60_000);
      second.stdout.on('data', (b: Buffer) => {
        log += b.toString();
        if (log.includes('"msg":"deploy finished"')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    expect(JSON.parse(await s2.sh('curl -s 127.0.0.1:8222/varz')).max_connections).toBe(500);
    expect(JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8')).appliedRevision).toBe(merge);
    const deployComments = gh.commentsOn(4).filter((x) => x.body.includes(`natsfleet:deploy:${merge}`));
    expect(deployComments).toHaveLength(1);
    expect(gh.commentsOn(4).filter((x) => x.body.includes('natsfleet:plan'))).toHaveLength(1);
    expect(gh.issues.filter((i) => i.state === 'open')).toEqual([]);
    expect(gh.violations).toEqual([]);
  });

  it('a revert of a failing commit clears its retry, and the last successful sync moves again', async () => {
    // An image whose tag promises a version it does not run: verification fails, the host rolls back.
    await s2.sh('docker tag nats:2.9.10-r1 nats:2.10.99');
    git('checkout', '-q', 'main');
    editHost(h2.name, (d) => (d.spec.nats.image = 'nats:2.10.99'));
    const bad = commit('nats-sb-2 to 2.10.99');
    git('push', '-q', 'origin', 'main');
    const ctl = newController();
    await ctl.tick().catch(() => {});
    expect(ctl.state.retries[h2.name]).toMatchObject({ revision: bad, attempts: 1 });
    expect(gh.latestStatus(bad, 'natsfleet')).toMatchObject({ state: 'failure', description: '1 host(s) failed' });
    const syncBefore = ctl.state.lastSuccessfulSync;
    git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'revert', '--no-edit', bad);
    const reverted = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    await ctl.tick().catch(() => {});
    expect(ctl.state.retries).toEqual({});
    expect(ctl.state.appliedRevision).toBe(reverted);
    expect(ctl.state.lastSuccessfulSync).not.toBe(syncBefore);
    expect(gh.latestStatus(reverted, 'natsfleet')).toMatchObject({ state: 'success' });
  });

  it('an empty, a truncated and a wrong-shaped state.json: the controller starts, keeps working, posts no duplicate', async () => {
    const head = git('rev-parse', 'HEAD');
    for (const text of ['', '{"appliedRevision": "ab', '{"retries": []}']) {
      writeFileSync(join(root, 'state', 'state.json'), text);
      const comments = gh.comments.length;
      const issues = gh.issues.length;
      const ctl = newController();
      await ctl.tick();
      expect(ctl.state.appliedRevision, JSON.stringify(text)).toBe(head);
      expect(gh.comments.length, JSON.stringify(text)).toBe(comments);
      expect(gh.issues.length).toBe(issues);
    }
    expect(gh.violations).toEqual([]);
  });
});
