// `prune: true`, end to end: a real bare Git repository, one sandbox host, the GitHub double. A pull
// request that deletes the host's manifest says merging will decommission it; once merged, the controller
// decommissions it with the manifest of the revision applied before (no NATS unit or container left,
// the data directory kept), says so on the pull request, and forgets it.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pino from 'pino';
import { Octokit } from 'octokit';
import { GitHubDouble } from '../github/double.js';
import { Controller } from '../../controller/gitops/controller.js';
import { GitSource } from '../../controller/source/git-source.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { GitHubReporter } from '../../controller/report/github.js';
import { StateStore } from '../../controller/gitops/state.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { Scenario } from './helpers.js';

const fleet = inject('fleet');
const host = fleet.hosts[3];
const root = mkdtempSync(join(tmpdir(), 'nf-prune-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const commit = (message: string) => {
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD');
};
const gh = new GitHubDouble();
const s = new Scenario(fleet, host);
let pool: SessionPool;
let ctl: Controller;

beforeAll(async () => {
  await s.wipe();
  await gh.start();
  pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  mkdirSync(join(work, 'hosts'));
  cpSync(join(fleet.hostsDir, `${host.name}.yaml`), join(work, 'hosts', `${host.name}.yaml`));
  git('checkout', '-q', '-b', 'main');
  commit('one NATS host');
  git('push', '-q', 'origin', 'main');
  ctl = new Controller({
    source: new GitSource(origin, join(root, 'state', 'repo.git'), 'main'),
    github: new GitHubReporter(new Octokit({ baseUrl: gh.url, auth: gh.token }), gh.repository),
    pool,
    store: new StateStore(join(root, 'state')),
    policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
    log: pino({ level: 'silent' }),
    concurrency: 2,
    driftIntervalMs: 24 * 3600 * 1000,
    prune: true,
    rollout: { canary: 1, byLabel: [{ selector: 'team=nobody', size: 5 }] },
  });
}, 60_000);
afterAll(async () => {
  await gh.stop();
  await pool.closeAll();
  await s.wipe();
  await s.close();
}, 60_000);

describe('prune: true', () => {
  it('deploys the host first', async () => {
    await ctl.tick();
    expect(await s.sh('systemctl is-active nats.service')).toBe('active');
    expect(ctl.state.hostFingerprints[host.name]).toBeDefined();
    await s.sh('echo keep > /var/lib/nats/marker');
  }, 60_000);

  it('a pull request whose change restarts the host shows the batches of its rollout', async () => {
    git('checkout', '-q', '-b', 'bump', 'main');
    const path = join(work, 'hosts', `${host.name}.yaml`);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/image: \S+/, `image: ${fleet.natsImages.next}`));
    const sha = commit('bump NATS');
    git('push', '-q', 'origin', `HEAD:refs/heads/bump`, `HEAD:refs/pull/2/head`);
    gh.openPull(2, sha, 'bump');
    await ctl.tick();
    expect(gh.commentsOn(2)[0].body).toContain(
      `#### Rollout of standalone hosts\n\nrollout: batch 1 (canary): ${host.name}\n`,
    );
    gh.closePull(2);
    git('checkout', '-q', 'main');
  }, 60_000);

  it('a pull request deleting the manifest says merging decommissions the host; nothing runs yet', async () => {
    git('checkout', '-q', '-b', 'remove', 'main');
    git('rm', '-q', join('hosts', `${host.name}.yaml`));
    const sha = commit(`remove ${host.name}`);
    git('push', '-q', 'origin', `HEAD:refs/heads/remove`, `HEAD:refs/pull/1/head`);
    gh.openPull(1, sha, 'remove');
    await ctl.tick();
    const [plan] = gh.commentsOn(1);
    expect(plan.body).toContain(`:wastebasket: **${host.name} will be decommissioned** when this is merged`);
    expect(await s.sh('systemctl is-active nats.service')).toBe('active');
  }, 30_000);

  it('merged: decommissioned (no unit, no container, data kept), said on the pull request, forgotten', async () => {
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
      'Merge #1',
      'remove',
    );
    const merge = git('rev-parse', 'HEAD');
    git('push', '-q', 'origin', 'main');
    gh.mergePull(1, merge);
    await ctl.tick();
    expect(await s.sh('systemctl is-active nats.service || true')).toBe('inactive');
    expect(await s.sh('ls /etc/systemd/system/nats.service 2>/dev/null || echo gone')).toBe('gone');
    expect(await s.sh("docker ps -a --format '{{.Names}}'")).toBe('');
    expect(await s.sh('cat /var/lib/nats/marker')).toBe('keep');
    const deploy = gh.commentsOn(1).find((c) => c.body.includes(`<!-- natsfleet:deploy:${merge} -->`));
    expect(deploy?.body).toContain(
      `:wastebasket: **Decommissioned, its manifest deleted** (the controller's \`prune: true\`): ${host.name}. ` +
        'NATS is stopped and disabled, its unit, container and proxy removed; its data is kept.',
    );
    expect(deploy?.body).toMatch(
      new RegExp(`\\| ${host.name} \\| :white_check_mark: applied \\| Missing \\| stop \\|`),
    );
    expect(gh.latestStatus(merge, `natsfleet/${host.name}`)).toMatchObject({
      state: 'success',
      description: 'decommissioned: its manifest was deleted (prune)',
    });
    expect(ctl.state.appliedRevision).toBe(merge);
    expect(ctl.state.hostFingerprints[host.name]).toBeUndefined();
    expect(ctl.state.retries[host.name]).toBeUndefined();
    expect(ctl.state.pruning).toEqual({});
    // Nothing more to do: the next tick contacts nobody and changes nothing.
    await ctl.tick();
    expect(await s.sh('cat /var/lib/nats/marker')).toBe('keep');
  }, 60_000);
});
