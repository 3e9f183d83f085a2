// Issue 9's proof, end to end: a pull request can only propose. Real bare Git repository, a sandbox
// host (nats-sb-3), two misbehaving hosts in-process, and the GitHub double. Whatever a pull request
// writes, nothing it names is read into a comment, status, log line or plan; one bad pull request or
// host never stops the others.
import { execFileSync, spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import ssh2 from 'ssh2';
import { Octokit } from 'octokit';
import { GitHubDouble } from '../github/double.js';
import { Controller } from '../../controller/gitops/controller.js';
import { GitSource } from '../../controller/source/git-source.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { GitHubReporter, DRIFT_LABEL } from '../../controller/report/github.js';
import { StateStore } from '../../controller/gitops/state.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { GITHUB_COMMENT_LIMIT } from '../../controller/report/markdown.js';
import { main } from '../../controller/cli/main.js';
import { closeMisbehavingHosts, fakeHost, silentPort } from '../helpers/misbehaving-hosts.js';
import { Scenario } from './helpers.js';
import { ROOT } from '../helpers/fixtures.js';

const fleet = inject('fleet');
const h3 = fleet.hosts[2];
const s3 = new Scenario(fleet, h3);
const root = mkdtempSync(join(tmpdir(), 'nf-trust-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const gh = new GitHubDouble();
const policy = loadPolicyFrom({ secretsDir: fleet.secretsDir });
const CANARY = `CANARY-${Math.random().toString(36).slice(2)}`;
const PASSWORD = `PASS-CANARY-${Math.random().toString(36).slice(2)}`;
const logs: string[] = [];
const logStream = new Writable({
  write(chunk, _enc, done) {
    logs.push(chunk.toString());
    done();
  },
});
const uncaught: unknown[] = [];
const onUncaught = (e: unknown) => uncaught.push(e);
let pool: SessionPool;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed YAML manifest, edited freely
type Doc = Record<string, any>;
const manifestOf = (name: string) => load(readFileSync(join(work, 'hosts', `${name}.yaml`), 'utf8')) as Doc;
function writeHost(doc: Doc) {
  writeFileSync(join(work, 'hosts', `${doc.metadata.name}.yaml`), dump(doc, { lineWidth: -1 }));
}
function commit(message: string): string {
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
}
/** A pull request as a developer makes one: a branch off main, edited by `edit`, published as refs/pull/N/head. */
function pullRequest(number: number, edit: () => void, headRepo?: string): string {
  git('checkout', '-q', '-B', `pr-${number}`, 'main');
  edit();
  const sha = commit(`pull request ${number}`);
  git('push', '-q', '-f', 'origin', `HEAD:refs/heads/pr-${number}`, `+HEAD:refs/pull/${number}/head`);
  git('checkout', '-q', 'main');
  gh.openPull(number, sha, `pr-${number}`, headRepo);
  return sha;
}
const editH3 = (edit: (d: Doc) => void) => () => {
  const d = manifestOf(h3.name);
  edit(d);
  writeHost(d);
};

function controller(driftIntervalMs: number): Controller {
  return new Controller({
    source: new GitSource(origin, join(root, 'state', 'repo.git'), 'main'),
    github: new GitHubReporter(new Octokit({ baseUrl: gh.url, auth: gh.token }), gh.repository),
    pool,
    store: new StateStore(join(root, 'state')),
    policy,
    env: { ...process.env, GITHUB_TOKEN: 'ghs_controller_own_credential' },
    log: pino({ level: 'info' }, logStream),
    concurrency: 4,
    driftIntervalMs,
  });
}

/** Everything natsfleet said: comments, statuses, issues, logs. */
const everything = () =>
  [
    ...gh.comments.map((c) => c.body),
    ...gh.statuses.map((s) => `${s.context} ${s.state} ${s.description}`),
    ...gh.issues.flatMap((i) => [i.title, i.body, ...i.comments]),
    ...logs,
  ].join('\n');

beforeAll(async () => {
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onUncaught);
  await gh.start();
  // Short deadlines: a host that does not answer is Unknown quickly (production: 15 s to connect).
  pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) }, 3_000, 20_000);
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  mkdirSync(join(work, 'hosts'));
  cpSync(join(fleet.hostsDir, `${h3.name}.yaml`), join(work, 'hosts', `${h3.name}.yaml`));
  git('checkout', '-q', '-b', 'main');
  commit('one NATS host');
  git('push', '-q', 'origin', 'main');
  // What an attacker would like to read: a canary in root's home, in a directory natsfleet does not own,
  // in an allowed root; the host's shadow file and SSH host key exist anyway.
  await s3.sh(`printf '%s\\n' ${CANARY} > /root/canary.txt`);
  await s3.sh(`mkdir -p /srv/canary && printf 'X=%s\\n' ${CANARY} > /srv/canary/app.env`);
  await s3.sh(`mkdir -p /data/nginx && printf 'X=%s\\n' ${CANARY} > /data/nginx/canary.env`);
});

afterAll(async () => {
  writeFileSync(join(tmpdir(), 'nf-trust-logs.txt'), logs.join(''));
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
  await gh.stop();
  await pool.closeAll();
  await closeMisbehavingHosts();
  await s3.sh('rm -rf /root/canary.txt /srv/canary /data/nginx/canary.env').catch(() => {});
  await s3.close();
});

describe('one silent host never stops the others', () => {
  it('a host that never sends an SSH banner and one that never answers exec: Unknown within the deadline, the sandbox host deploys', async () => {
    const silent = await silentPort();
    // ssh2 now and then generates an ed25519 key its own parser refuses ("Malformed OpenSSH private key").
    let mute = ssh2.utils.generateKeyPairSync('ed25519');
    while (ssh2.utils.parseKey(mute.private) instanceof Error) mute = ssh2.utils.generateKeyPairSync('ed25519');
    const muteHost = await fakeHost({ hostKeys: [mute.private], exec: 'never' });
    const base = manifestOf(h3.name);
    for (const [name, port, key] of [
      ['silent-1', silent, h3.hostKey],
      ['mute-1', muteHost.port, mute.public.split(' ').slice(0, 2).join(' ')],
    ] as const) {
      writeHost({
        ...base,
        metadata: { name },
        spec: {
          ...base.spec,
          ssh: { host: '127.0.0.1', port, user: 'root', hostKey: key },
          proxy: { enabled: false },
        },
      });
    }
    const head = commit('two hosts that do not answer');
    git('push', '-q', 'origin', 'main');
    const ctl = controller(24 * 3600_000);
    await new GitSource(origin, join(root, 'state', 'repo.git'), 'main').fetchBranch();
    const started = Date.now();
    await ctl.deploy(head);
    const seconds = (Date.now() - started) / 1000;
    expect(gh.latestStatus(head, `natsfleet/${h3.name}`)).toMatchObject({ state: 'success' });
    expect(gh.latestStatus(head, 'natsfleet/silent-1')).toMatchObject({ state: 'error' });
    expect(gh.latestStatus(head, 'natsfleet/silent-1')!.description).toMatch(/no SSH banner within 3 s/);
    expect(gh.latestStatus(head, 'natsfleet/mute-1')).toMatchObject({ state: 'error' });
    expect(gh.latestStatus(head, 'natsfleet/mute-1')!.description).toMatch(/timed out after 20000 ms/);
    // One deadline each (3 s to connect, 20 s per step), in parallel with the deploy: not minutes.
    expect(seconds).toBeLessThan(35);
    expect(await s3.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
    expect(uncaught).toEqual([]);
    // Back to the one real host for what follows.
    git('rm', '-q', 'hosts/silent-1.yaml', 'hosts/mute-1.yaml');
    commit('remove the hosts that do not answer');
    git('push', '-q', 'origin', 'main');
    await controller(24 * 3600_000).tick();
  });
});

describe('a pull request can only propose', () => {
  const prs: Record<string, { number: number; sha: string }> = {};

  it(
    'one tick: hostile pull requests each get their own failing status, a good one is planned, the drift sweep runs',
    { timeout: 400_000 },
    async () => {
      const shadow = (await s3.sh('head -c 12 /etc/shadow')).trim();
      const sshKey = (await s3.sh('sed -n 2p /etc/ssh/ssh_host_ed25519_key')).trim();
      expect(shadow.length).toBeGreaterThan(4);
      // A hand edit on the host: a plaintext password in a one-line authorization block.
      await s3.sh(`echo 'authorization { user: admin, pass: "${PASSWORD}" }' >> /etc/nats/nats-server.conf`);

      let n = 10;
      const pr = (key: string, edit: () => void, headRepo?: string) => {
        n++;
        prs[key] = { number: n, sha: pullRequest(n, edit, headRepo) };
      };
      pr(
        'envRoot',
        editH3((d) => (d.spec.proxy.envFile = '/root/canary.txt')),
      );
      pr(
        'shadow',
        editH3((d) => (d.spec.nats.confFile = '/etc/shadow')),
      );
      pr(
        'hostKey',
        editH3((d) => (d.spec.nats.confFile = '/etc/ssh/ssh_host_ed25519_key')),
      );
      pr(
        'notOurs',
        editH3((d) => (d.spec.proxy.envFile = '/srv/canary/app.env')),
      );
      pr(
        'allowedRoot',
        editH3((d) => (d.spec.proxy.envFile = '/data/nginx/canary.env')),
      );
      pr(
        'devZero',
        editH3((d) => (d.spec.nats.auth.token = { file: '/dev/zero' })),
      );
      pr(
        'githubToken',
        editH3((d) => (d.spec.nats.auth.token = { env: 'GITHUB_TOKEN' })),
      );
      pr(
        'unsetSecret',
        editH3((d) => (d.spec.nats.auth.token = { env: 'NATS_NEVER_SET_TOKEN' })),
      );
      pr(
        'fork300',
        () => {
          const base = manifestOf(h3.name);
          for (let i = 0; i < 300; i++) {
            writeHost({
              ...base,
              metadata: { name: `fork-${String(i).padStart(3, '0')}` },
              spec: {
                ...base.spec,
                ssh: { ...base.spec.ssh, port: 20000 + i },
                proxy: { ...base.spec.proxy, domain: `fork-${i}.sandbox.test` },
              },
            });
          }
        },
        'someone/hosts-fork',
      );
      pr(
        'good',
        editH3((d) => (d.spec.nats.logging = { debug: true })),
      );

      const hwmBefore = peakRssMb();
      await controller(0)
        .tick()
        .catch(() => {});
      const status = (key: string, context = 'natsfleet') => gh.latestStatus(prs[key].sha, context);
      const comment = (key: string) => gh.commentsOn(prs[key].number).find((c) => c.body.includes('natsfleet:plan'))!;

      // Refused statically, naming the file and the field; nothing read.
      for (const [key, field] of [
        ['envRoot', 'spec.proxy.envFile'],
        ['shadow', 'spec.nats.confFile'],
        ['hostKey', 'spec.nats.confFile'],
        ['devZero', 'spec.nats.auth.token'],
        ['githubToken', 'spec.nats.auth.token'],
      ]) {
        expect(status(key), key).toMatchObject({ state: 'failure' });
        expect(status(key)!.description).toMatch(
          new RegExp(`^invalid manifests: hosts/${h3.name}\\.yaml:\\d+: error: ${field.replace(/\./g, '\\.')}:`),
        );
        expect(comment(key).body).toContain(
          'The manifests are invalid; nothing was planned and nothing will be applied',
        );
      }
      expect(comment('devZero').body).toMatch(/\{file: \/dev\/zero\} is not allowed: secret files must lie in/);
      expect(comment('githubToken').body).toContain('{env: GITHUB_TOKEN} names a variable of the controller itself');
      // /dev/zero was never read: the process stayed small.
      expect(peakRssMb() - hwmBefore).toBeLessThan(100);
      expect(peakRssMb()).toBeLessThan(1024);

      // Refused at plan time: the directory exists and is not natsfleet's; its content is never read.
      expect(status('notOurs', `natsfleet/${h3.name}`)).toMatchObject({ state: 'failure' });
      expect(status('notOurs', `natsfleet/${h3.name}`)!.description).toMatch(
        /^blocked: \/srv\/canary exists and was not created by natsfleet/,
      );
      expect(status('notOurs')).toMatchObject({ state: 'failure' });

      // In an allowed root: planned, the file replaced, its current content not shown.
      expect(status('allowedRoot', `natsfleet/${h3.name}`)).toMatchObject({ state: 'success' });
      expect(comment('allowedRoot').body).toContain('/data/nginx/canary.env');

      // An unset secret: blocked before any remote command, its own failing status.
      expect(status('unsetSecret', `natsfleet/${h3.name}`)).toMatchObject({ state: 'failure' });
      expect(status('unsetSecret', `natsfleet/${h3.name}`)!.description).toMatch(
        /environment variable NATS_NEVER_SET_TOKEN is not set on the controller/,
      );

      // A fork with 300 new hosts: offline, its own status, one comment under GitHub's limit.
      const fork = comment('fork300');
      expect(fork.body.length).toBeLessThanOrEqual(GITHUB_COMMENT_LIMIT);
      expect(fork.body).toContain('Planned offline, from the repository only: the pull request comes from a fork');
      expect(fork.body).toMatch(/30[01] hosts/);
      // Its own overall status; no flood of 300 per-host statuses (the comment lists them).
      expect(status('fork300')).toMatchObject({ state: 'success' });
      expect(status('fork300')!.description).toMatch(/plan: 300 host\(s\) change \(300 hosts: see the comment\)/);
      expect(gh.statuses.filter((x) => x.sha === prs.fork300.sha)).toHaveLength(1);

      // The good one is planned as usual.
      expect(status('good', `natsfleet/${h3.name}`)).toMatchObject({
        state: 'success',
        description: '1 change(s), reload',
      });
      expect(comment('good').body).toContain('+debug: true');

      // The drift sweep ran in the same tick: one issue, without the password; selfHeal restored the file.
      const drift = gh.issues.filter((i) => i.labels.includes(DRIFT_LABEL) && i.title.includes(h3.name));
      expect(drift).toHaveLength(1);
      expect(drift[0].body).toContain('/etc/nats/nats-server.conf: content changed on the host (content not shown)');
      expect(await s3.sh('grep -c PASS-CANARY /etc/nats/nats-server.conf || true')).toBe('0');

      // Nothing natsfleet said holds what the pull requests pointed at.
      const said = everything();
      for (const secret of [CANARY, PASSWORD, shadow, sshKey, 'ghs_controller_own_credential', s3.token()]) {
        expect(said).not.toContain(secret);
      }
      expect(said).not.toContain('PRIVATE KEY');
      expect(gh.violations).toEqual([]);
      expect(uncaught).toEqual([]);
    },
  );

  it('the controller process refuses {file: /dev/zero} and {env: GITHUB_TOKEN} in a pull request, staying under 300 MB', async () => {
    for (const p of gh.pulls) p.state = 'closed';
    const zero = pullRequest(
      40,
      editH3((d) => (d.spec.nats.auth.token = { file: '/dev/zero' })),
    );
    const own = pullRequest(
      41,
      editH3((d) => (d.spec.nats.auth.token = { env: 'GITHUB_TOKEN' })),
    );
    const child = spawn(
      'node',
      [
        join(ROOT, 'bin/natsfleet.js'),
        'controller',
        '--repo',
        origin,
        '--state-dir',
        join(root, 'state-process'),
        '--github-repository',
        gh.repository,
        '--github-api-url',
        gh.url,
        '--poll-interval',
        '1',
        '--drift-interval',
        '3600',
      ],
      {
        env: {
          ...process.env,
          GITHUB_TOKEN: gh.token,
          NATSFLEET_SSH_KEY: fleet.privateKeyPath,
          NATSFLEET_SECRETS_DIR: fleet.secretsDir,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    try {
      await expect
        .poll(() => [gh.latestStatus(zero, 'natsfleet')?.state, gh.latestStatus(own, 'natsfleet')?.state], {
          timeout: 60_000,
          interval: 250,
        })
        .toEqual(['failure', 'failure']);
      const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))!;
      const mb = Number(peak[1]) / 1024;
      console.log(`controller process peak RSS after refusing /dev/zero and GITHUB_TOKEN: ${mb.toFixed(0)} MB`);
      expect(mb).toBeLessThan(300);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    expect(gh.latestStatus(zero, 'natsfleet')!.description).toMatch(/\{file: \/dev\/zero\} is not allowed/);
    expect(gh.latestStatus(own, 'natsfleet')!.description).toMatch(/names a variable of the controller/);
    expect(out).not.toContain(gh.token);
    expect(out).not.toMatch(/^\s+at /m);
  });

  it('the plan JSON of a manifest pointing at a file natsfleet did not write holds none of it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-trust-hosts-'));
    const d = manifestOf(h3.name);
    d.spec.proxy.envFile = '/data/nginx/canary.env';
    writeFileSync(join(dir, `${h3.name}.yaml`), dump(d));
    const lines: string[] = [];
    const code = await main(['node', 'natsfleet', 'plan', '--output', 'json', ...s3.cliFlags(dir)], (l) =>
      lines.push(l),
    );
    expect(code).toBe(2);
    const json = lines.join('\n');
    const plan = JSON.parse(json)[0];
    expect(plan.changes.find((c: { path: string }) => c.path === '/data/nginx/canary.env').reason).toBe(
      'content differs (the file on the host was not written by natsfleet: its content is not shown)',
    );
    expect(json).not.toContain(CANARY);
    expect(json).not.toContain(s3.token());
  });
});

function peakRssMb(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
