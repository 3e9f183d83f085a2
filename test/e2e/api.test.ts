// Issue 15's suspend, resume and sync proof, end to end: the controller process (run.ts: its loop, its HTTP
// endpoint with the authenticated API), a real bare Git repository, one sandbox host and the GitHub
// double; `natsfleet suspend`, `resume` and `sync` run as the command line a person would type.
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GitHubDouble } from '../github/double.js';
import { startController, type RunningController } from '../../controller/gitops/run.js';
import { DEFAULTS } from '../../controller/gitops/config.js';
import { loadPolicyFrom } from '../../controller/manifest/policy.js';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';

const fleet = inject('fleet');
const host = fleet.hosts[0];
const root = mkdtempSync(join(tmpdir(), 'nf-api-'));
const origin = join(root, 'origin.git');
const work = join(root, 'work');
const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' }).trim();
const gh = new GitHubDouble();
const s = new Scenario(fleet, host);
const TOKEN = 'api-token-e2e-0123456789abcdef';
let running: RunningController;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed YAML manifest, edited freely
type Doc = Record<string, any>;
function push(message: string, edit: (d: Doc) => void): string {
  const path = join(work, 'hosts', `${host.name}.yaml`);
  const doc = load(readFileSync(path, 'utf8')) as Doc;
  edit(doc);
  writeFileSync(path, dump(doc));
  git('add', '-A');
  git('-c', 'user.name=dev', '-c', 'user.email=dev@example.com', 'commit', '-q', '-m', message);
  git('push', '-q', 'origin', 'main');
  return git('rev-parse', 'HEAD');
}
const conf = (key: string) => s.sh(`grep '^${key}:' /etc/nats/nats-server.conf`);
const remote = (...args: string[]) => cli(...args, '--controller', running.url!);
const metric = async (name: string) =>
  (await (await fetch(`${running.url}/metrics`)).text()).split('\n').find((l) => l.startsWith(name));

beforeAll(async () => {
  await s.wipe();
  await gh.start();
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['clone', '-q', origin, work]);
  mkdirSync(join(work, 'hosts'));
  cpSync(join(fleet.hostsDir, `${host.name}.yaml`), join(work, 'hosts', `${host.name}.yaml`));
  git('checkout', '-q', '-b', 'main');
  push('one NATS host, selfHeal on', (d) => (d.spec.policy = { selfHeal: true }));
  process.env.NATSFLEET_API_TOKEN = TOKEN;
  running = await startController(
    {
      ...DEFAULTS,
      repo: origin,
      stateDir: join(root, 'state'),
      sshKey: fleet.privateKeyPath,
      // Nothing but a trigger or the API starts work: the poll and the drift sweep wait an hour.
      pollIntervalSec: 3600,
      driftIntervalSec: 3600,
      listen: '127.0.0.1:0',
      apiToken: TOKEN,
      policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
      github: { repository: gh.repository, apiUrl: gh.url, token: gh.token },
    },
    pino({ level: 'silent' }),
  );
  await running.nextTick(); // the first deploy
}, 120_000);

afterAll(async () => {
  delete process.env.NATSFLEET_API_TOKEN;
  await running?.stop();
  await gh.stop();
  await s.close();
});

describe('suspend, resume and sync through the running controller (issue 15)', () => {
  it('the first deploy made the host healthy', async () => {
    expect(await s.sh('curl -s 127.0.0.1:8222/healthz')).toBe('{"status":"ok"}');
  });

  it('without the token, or with another, the API refuses and nothing changes', async () => {
    process.env.NATSFLEET_API_TOKEN = 'not-the-token-0123456789';
    const r = await remote('suspend', host.name);
    process.env.NATSFLEET_API_TOKEN = TOKEN;
    expect(r).toMatchObject({ code: 1, err: 'error: the controller refused: missing or wrong bearer token' });
    const none = await fetch(`${running.url}/api/v1/hosts/${host.name}/suspend`, { method: 'POST' });
    expect(none.status).toBe(401);
    expect(running.controller.state.suspended).toEqual({});
    const typo = await remote('suspend', 'nats-sb-99');
    expect(typo).toMatchObject({ code: 1, err: 'error: the controller refused: no host nats-sb-99 on main' });
  });

  it('a suspended host is not deployed nor healed; its drift is reported; status and metrics say so', async () => {
    const r = await remote('suspend', host.name, '--reason', 'disk swap');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`^${host.name}: suspended since \\S+ \\(disk swap\\)$`, 'm'));
    expect(await metric(`natsfleet_host_suspended{host="${host.name}"}`)).toMatch(/ 1$/);

    const sha = push('debug logging', (d) => (d.spec.nats.logging = { debug: true }));
    running.trigger();
    await running.nextTick();
    expect(await conf('debug')).toBe('debug: false');
    expect(gh.latestStatus(sha, `natsfleet/${host.name}`)).toMatchObject({
      state: 'success',
      description: 'suspended (natsfleet suspend): not deployed',
    });
    const view = await (
      await fetch(`${running.url}/api/v1/hosts`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json();
    expect(view.hosts).toEqual([
      {
        host: host.name,
        suspended: expect.stringMatching(/^suspended with natsfleet suspend since .* \(disk swap\)$/),
      },
    ]);

    const status = await remote(
      'status',
      '--hosts',
      join(work, 'hosts'),
      '--ssh-key',
      fleet.privateKeyPath,
      '--secrets-dir',
      fleet.secretsDir,
      '-o',
      'json',
    );
    expect(JSON.parse(status.out)[0].reason).toMatch(
      /^suspended with natsfleet suspend since \S+ \(disk swap\); changes to apply \(see plan\)$/,
    );

    // A manual change is reported, not corrected, though selfHeal is on.
    await s.sh("sed -i 's/^trace: false/trace: true/' /etc/nats/nats-server.conf");
    await running.controller.driftSweep(sha);
    const issue = gh.issues.find((i) => i.state === 'open' && i.title === `natsfleet: drift on ${host.name}`);
    expect(issue?.body).toContain('/etc/nats/nats-server.conf: content changed on the host');
    expect(await conf('trace')).toBe('trace: true');

    // Nor does a sync take it.
    const sync = await remote('sync', host.name);
    expect(sync.code).toBe(1);
    expect(sync.err).toBe(`${host.name}: suspended: not synced`);
    expect(await conf('trace')).toBe('trace: true');
  });

  it('resume deploys it at once: the revision it missed, the drift corrected', async () => {
    const r = await remote('resume', host.name);
    expect(r).toMatchObject({ code: 0, out: `${host.name}: resumed; the controller deploys it now` });
    await running.nextTick();
    expect(await conf('debug')).toBe('debug: true');
    expect(await conf('trace')).toBe('trace: false');
    expect(await metric(`natsfleet_host_suspended{host="${host.name}"}`)).toBeUndefined();
    expect(running.controller.state.suspended).toEqual({});
  });

  it('natsfleet sync reconciles within a second of being asked, and waits for the result', async () => {
    await s.sh("sed -i 's/^trace: false/trace: true/' /etc/nats/nats-server.conf");
    const t0 = Date.now();
    const r = await remote('sync', host.name, '-o', 'json');
    const totalMs = Date.now() - t0;
    expect(r.code, r.err).toBe(0);
    const body = JSON.parse(r.out);
    expect(body.revision).toBe(git('rev-parse', 'HEAD'));
    expect(body.hosts).toHaveLength(1);
    expect(body.hosts[0].result).toMatchObject({ host: host.name, outcome: 'applied', health: 'Healthy' });
    expect(await conf('trace')).toBe('trace: false');
    // Everything but the host's own run (observe, apply, verify): the request, the fetch, the manifests.
    const before = totalMs - body.hosts[0].durationMs;
    console.log(`[api] sync: ${totalMs} ms in all, of which ${before} ms before and around the host's apply`);
    expect(before).toBeLessThan(1000);

    // Nothing to do: the same command says so and exits 0.
    const again = await remote('sync');
    expect(again.code, again.err).toBe(0);
    expect(again.out).toMatch(new RegExp(`^${host.name}: unchanged, Healthy`, 'm'));
  });

  it('every request the controller made was valid for the GitHub API', () => {
    expect(gh.violations).toEqual([]);
  });
});
