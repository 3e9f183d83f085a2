// Controller configuration precedence and coercion of variables and flags, the shipped config file and
// unit, and the HTTP endpoint.
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import { ConfigError, resolveConfig } from '../../controller/gitops/config.js';
import { RecentIds, startHttp, verifySignature } from '../../controller/gitops/http.js';
import { Metrics } from '../../controller/gitops/metrics.js';
import { ROOT } from '../helpers/fixtures.js';

describe('resolveConfig', () => {
  it('reads the shipped config file; the environment overrides it, flags override both', () => {
    const cfg = resolveConfig(
      { concurrency: '3' },
      { NATSFLEET_POLL_INTERVAL: '7', GITHUB_TOKEN: 'ghs_x' },
      join(ROOT, 'deploy/natsfleet.yaml'),
    );
    expect(cfg).toMatchObject({
      repo: 'git@github.com:acme/nats-hosts.git',
      branch: 'main',
      pollIntervalSec: 7,
      driftIntervalSec: 300,
      concurrency: 3,
      planUntrustedLive: false,
      listen: '127.0.0.1:9420',
      github: { repository: 'acme/nats-hosts', token: 'ghs_x' },
    });
  });

  it('names what is missing, and makes a local repository path absolute', () => {
    expect(() => resolveConfig({}, {}, undefined)).toThrow(
      /repo is required \(flag --repo, NATSFLEET_REPO or the config file\)/,
    );
    expect(resolveConfig({ repo: 'some/dir', sshKey: 'k' }, {}).repo).toBe(join(process.cwd(), 'some/dir'));
    expect(resolveConfig({ repo: 'https://github.com/a/b.git', sshKey: 'k' }, {}).repo).toBe(
      'https://github.com/a/b.git',
    );
  });

  const base = { repo: 'https://example.com/hosts.git', sshKey: 'k' };
  /** The problems of a configuration, or [] when it resolves. */
  const problems = (flags: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): string[] => {
    try {
      resolveConfig(flags as Parameters<typeof resolveConfig>[0], env);
      return [];
    } catch (e) {
      if (e instanceof ConfigError) return e.problems;
      throw e;
    }
  };

  it('environment values are coerced to the schema types, and refused when they cannot be', () => {
    expect(problems(base, { NATSFLEET_CONCURRENCY: 'abc' })).toEqual([
      'NATSFLEET_CONCURRENCY: concurrency: must be an integer from 1 to 1000',
    ]);
    expect(problems(base, { NATSFLEET_CONCURRENCY: '0' })).toEqual([
      'NATSFLEET_CONCURRENCY: concurrency: must be an integer from 1 to 1000',
    ]);
    expect(problems(base, { NATSFLEET_CONCURRENCY: '2.5' })).toHaveLength(1);
    expect(resolveConfig(base, { NATSFLEET_CONCURRENCY: '4' }).concurrency).toBe(4);
    expect(resolveConfig(base, {}).logLevel).toBe('info');
    expect(resolveConfig(base, {}).rollout).toBeUndefined();
    expect(resolveConfig({ ...base, 'rollout.batchSize': 2, 'rollout.canary': 1 }, {}).rollout).toEqual({
      size: 2,
      canary: 1,
    });
    expect(problems({ ...base, 'rollout.batchPercent': 150 })).toEqual([
      '--rollout.batch-percent: rollout.batchPercent: must be an integer from 1 to 100',
    ]);
    expect(resolveConfig({ ...base, logLevel: 'debug' }, { NATSFLEET_LOG_LEVEL: 'warn' }).logLevel).toBe('debug');
    expect(problems(base, { NATSFLEET_LOG_LEVEL: 'verbose' })).toEqual([
      'NATSFLEET_LOG_LEVEL: logLevel: must be one of trace, debug, info, warn, error, fatal',
    ]);
    expect(problems(base, { NATSFLEET_POLL_INTERVAL: '-1', NATSFLEET_LISTEN: 'nowhere' })).toEqual([
      'NATSFLEET_POLL_INTERVAL: pollIntervalSec: must be an integer from 1 to 86400 (seconds)',
      'NATSFLEET_LISTEN: listen: must be HOST:PORT, e.g. 127.0.0.1:9420',
    ]);
    expect(
      problems(base, {
        NATSFLEET_GITHUB_REPOSITORY: 'acme/hosts',
        NATSFLEET_GITHUB_APP_ID: '12x',
        NATSFLEET_GITHUB_INSTALLATION_ID: '34',
      }),
    ).toEqual(['NATSFLEET_GITHUB_APP_ID: github.appId: must be a positive integer']);
    const cfg = resolveConfig(base, {
      NATSFLEET_GITHUB_REPOSITORY: 'acme/hosts',
      NATSFLEET_GITHUB_APP_ID: '12',
      NATSFLEET_GITHUB_INSTALLATION_ID: '34',
      NATSFLEET_GITHUB_APP_PRIVATE_KEY_FILE: '/k.pem',
      NATSFLEET_ALLOWED_ROOTS: '/etc/nats, /srv/nats',
      NATSFLEET_DRIFT_INTERVAL: ' 60 ',
    });
    expect(cfg.github).toMatchObject({ repository: 'acme/hosts', appId: 12, installationId: 34 });
    expect(cfg.policy.paths.allowedRoots).toEqual(['/etc/nats', '/srv/nats']);
    expect(cfg.driftIntervalSec).toBe(60);
    // An empty variable (as in deploy/natsfleet.env.example) sets nothing.
    expect(resolveConfig(base, { NATSFLEET_CONCURRENCY: '', NATSFLEET_WEBHOOK_SECRET: '' })).toMatchObject({
      concurrency: 10,
      webhookSecret: undefined,
    });
  });

  it('flags are coerced and checked the same way, and named as flags', () => {
    expect(problems({ ...base, concurrency: 'abc' })).toEqual([
      '--concurrency: concurrency: must be an integer from 1 to 1000',
    ]);
    expect(problems({ ...base, pollIntervalSec: 0 })).toEqual([
      '--poll-interval: pollIntervalSec: must be an integer from 1 to 86400 (seconds)',
    ]);
    expect(problems({ ...base, planUntrustedLive: 'maybe' })).toEqual([
      '--plan-untrusted-live: planUntrustedLive: must be true or false',
    ]);
    expect(problems({ ...base, 'github.tokn': 'x' })).toEqual(['--github.tokn: github.tokn: unknown key']);
    expect(resolveConfig({ ...base, planUntrustedLive: 'true', driftIntervalSec: 60 }, {})).toMatchObject({
      planUntrustedLive: true,
      driftIntervalSec: 60,
    });
  });

  it('a policy it refuses from the environment names the variable', () => {
    expect(problems(base, { NATSFLEET_SECRET_ENV_PATTERN: '(' })).toEqual([
      'NATSFLEET_SECRET_ENV_PATTERN: secrets.envPattern "(" is not a regular expression',
    ]);
  });

  it('ships a systemd unit that systemd-analyze accepts', () => {
    const r = spawnSync('systemd-analyze', ['verify', join(ROOT, 'deploy/natsfleet.service')], { encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('HTTP endpoint', () => {
  const metrics = new Metrics();
  const triggered: string[] = [];
  let server: Server;
  let url = '';
  beforeAll(async () => {
    server = await startHttp({
      host: '127.0.0.1',
      port: 0,
      metrics,
      webhookSecret: 's3cret',
      trigger: (e) => triggered.push(e),
      healthy: () => true,
    });
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const post = (body: string, signature: string, event = 'push') =>
    fetch(`${url}/webhook`, {
      method: 'POST',
      body,
      headers: { 'x-hub-signature-256': signature, 'x-github-event': event },
    });
  const sign = (body: string, secret = 's3cret') => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

  it('a signed push or pull_request event triggers a poll; a bad signature is refused', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main' });
    expect((await post(body, sign(body))).status).toBe(202);
    expect((await post(body, sign(body), 'pull_request')).status).toBe(202);
    expect((await post(body, sign(body, 'other'))).status).toBe(401);
    expect((await post(body, '')).status).toBe(401);
    expect((await post(body, sign(body), 'star')).status).toBe(202);
    expect(triggered).toEqual(['push', 'pull_request']);
    expect(verifySignature('s3cret', Buffer.from(body), sign(body))).toBe(true);
  });

  it('serves /healthz and Prometheus /metrics: per-host series that name the degraded host, promtool-clean', async () => {
    metrics.setHost('h1', 'Synced', 'Healthy');
    metrics.setHost('h2', 'OutOfSync', 'Degraded');
    metrics.setHost('gone', 'Synced', 'Healthy');
    metrics.observeApply('h2', 'rolled-back', 4.2, 1_700_000_100_000);
    metrics.markUnmanaged(['h1', 'h2']);
    metrics.setSuspended(['h1']);
    metrics.observeDuration('deploy', 1.5);
    metrics.lastSuccessfulSync = 1_700_000_000_000;
    metrics.ticks = 3;
    expect(await (await fetch(`${url}/healthz`)).json()).toEqual({ status: 'ok' });
    const res = await fetch(`${url}/metrics`);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const line of [
      'natsfleet_host_health_status{host="h2",status="Degraded"} 1',
      'natsfleet_host_health_status{host="h2",status="Healthy"} 0',
      'natsfleet_host_sync_status{host="h1",status="Synced"} 1',
      'natsfleet_host_sync_status{host="gone",status="Unmanaged"} 1',
      'natsfleet_host_last_apply_timestamp_seconds{host="h2"} 1700000100',
      'natsfleet_hosts{sync="Synced",health="Healthy"} 1',
      'natsfleet_hosts{sync="OutOfSync",health="Degraded"} 1',
      'natsfleet_reconcile_duration_seconds_bucket{le="2.5",phase="deploy"} 1',
      'natsfleet_reconcile_duration_seconds_sum{phase="deploy"} 1.5',
      'natsfleet_apply_duration_seconds_count{outcome="rolled-back"} 1',
      'natsfleet_last_successful_sync_timestamp_seconds 1700000000',
      'natsfleet_loop_ticks_total 3',
      'natsfleet_host_suspended{host="h1"} 1',
    ])
      expect(text).toContain(line);
    expect(text).toMatch(/^natsfleet_build_info\{version="[^"]+",nodejs="[\d.]+"\} 1$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    // The real linter of the exposition format (Debian's prometheus package).
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${lint.stdout}${lint.stderr}`.trim()).toBe('');
    expect(lint.status).toBe(0);
  });

  it('a redelivered webhook (same X-GitHub-Delivery) is answered 200 as a duplicate and triggers nothing', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', n: 2 });
    const deliver = (id: string, signature = sign(body)) =>
      fetch(`${url}/webhook`, {
        method: 'POST',
        body,
        headers: { 'x-hub-signature-256': signature, 'x-github-event': 'push', 'x-github-delivery': id },
      });
    const before = triggered.length;
    // A badly signed request with an id does not claim it.
    expect((await deliver('d-1', sign(body, 'other'))).status).toBe(401);
    expect((await deliver('d-1')).status).toBe(202);
    const dup = await deliver('d-1');
    expect(dup.status).toBe(200);
    expect(await dup.json()).toMatchObject({ status: 'duplicate', delivery: 'd-1' });
    expect((await deliver('d-2')).status).toBe(202);
    expect(triggered.length - before).toBe(2);
  });

  it('remembers a bounded number of deliveries (the oldest are forgotten)', () => {
    const ids = new RecentIds(3);
    expect(['a', 'b', 'c', 'a'].map((id) => ids.seen(id))).toEqual([false, false, false, true]);
    expect(ids.seen('d')).toBe(false); // evicts a
    expect(ids.seen('a')).toBe(false);
    expect(ids.seen('c')).toBe(true);
  });

  it('refuses a body over 5 MB with 413', async () => {
    const res = await fetch(`${url}/webhook`, {
      method: 'POST',
      body: 'x'.repeat(5 * 1024 * 1024 + 1),
      headers: { 'x-github-event': 'push' },
    });
    expect(res.status).toBe(413);
  });
});
