// The commands that talk to a running controller, against the controller's real HTTP endpoint (http.ts)
// with the API's actions faked: what a person types and what they read, the errors as one line each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttp } from '../../controller/gitops/http.js';
import { Metrics } from '../../controller/gitops/metrics.js';
import type { ApiActions } from '../../controller/gitops/api.js';
import { cli } from '../helpers/cli.js';

const TOKEN = 'remote-test-token-0123456789';
const calls: string[] = [];
const api: ApiActions = {
  token: TOKEN,
  suspend: async (host, reason) => {
    calls.push(`suspend ${host}`);
    return { since: '2026-11-27T03:00:00.000Z', ...(reason ? { reason } : {}) };
  },
  resume: async (host) => {
    calls.push(`resume ${host}`);
    return true;
  },
  sync: async (hosts) => {
    calls.push(`sync ${hosts.join(' ')}`);
    return {
      revision: '0123456789abcdef0123456789abcdef01234567',
      runs: [
        {
          host: 'nats-a',
          durationMs: 1200,
          apply: {
            host: 'nats-a',
            outcome: 'applied',
            health: 'Healthy',
            changedFiles: ['/etc/nats/nats-server.conf'],
            steps: ['reload'],
            durationMs: 1100,
          },
        },
        { host: 'nats-b', durationMs: 10, error: 'connection timed out' },
      ],
      unknown: [],
      suspended: [],
    } as never;
  },
  hosts: async () => [],
};
let url = '';
let close: () => Promise<void>;

beforeAll(async () => {
  const server = await startHttp({
    host: '127.0.0.1',
    port: 0,
    metrics: new Metrics({ version: 'test' }),
    trigger: () => {},
    healthy: () => true,
    api,
  });
  const a = server.address() as { port: number };
  url = `http://127.0.0.1:${a.port}`;
  close = () => new Promise((r) => server.close(() => r()));
  process.env.NATSFLEET_API_TOKEN = TOKEN;
});
afterAll(async () => {
  delete process.env.NATSFLEET_API_TOKEN;
  delete process.env.NATSFLEET_CONTROLLER_URL;
  await close();
});

describe('natsfleet suspend, resume, sync', () => {
  it('suspend and resume print what the controller did', async () => {
    const s = await cli('suspend', 'nats-a', '--reason', 'disk swap', '--controller', url);
    expect(s).toEqual({
      code: 0,
      out:
        'nats-a: suspended since 2026-11-27T03:00:00.000Z (disk swap)\n' +
        '  no deploy or self-heal until `natsfleet resume nats-a`; drift is still reported',
      err: '',
    });
    process.env.NATSFLEET_CONTROLLER_URL = url;
    const r = await cli('resume', 'nats-a');
    delete process.env.NATSFLEET_CONTROLLER_URL;
    expect(r).toEqual({ code: 0, out: 'nats-a: resumed; the controller deploys it now', err: '' });
  });

  it('sync prints each host like apply and fails when one did not end healthy', async () => {
    const r = await cli('sync', 'nats-a', 'nats-b', '--controller', url);
    expect(r.out).toBe(
      'synced 0123456789ab: 2 host(s)\n' +
        'nats-a: applied (1 file(s); reload), Healthy, 1.1 s\n' +
        'nats-b: Unknown: connection timed out',
    );
    expect(r.code).toBe(1);
    expect(calls.at(-1)).toBe('sync nats-a nats-b');
  });

  it('a request without the token is refused from its headers, whatever its body', async () => {
    const before = calls.length;
    const r = await fetch(`${url}/api/v1/sync`, { method: 'POST', body: 'x'.repeat(4 * 1024 * 1024) });
    expect(r.status).toBe(401);
    expect(await r.json()).toEqual({ error: 'missing or wrong bearer token' });
    expect(calls.length).toBe(before);
  });

  it.each([
    [
      'no controller named',
      ['suspend', 'nats-a'],
      {},
      'error: which controller? give --controller URL or set NATSFLEET_CONTROLLER_URL',
    ],
    [
      'no token',
      ['suspend', 'nats-a', '--controller', 'URL'],
      { NATSFLEET_API_TOKEN: '' },
      "error: set NATSFLEET_API_TOKEN to the controller's apiToken",
    ],
    [
      'a wrong token',
      ['resume', 'nats-a', '--controller', 'URL'],
      { NATSFLEET_API_TOKEN: 'another-token-0123456789' },
      'error: the controller refused: missing or wrong bearer token',
    ],
    [
      'nobody listening',
      ['sync', '--controller', 'http://127.0.0.1:1'],
      {},
      'error: no controller listens at http://127.0.0.1:1 (connection refused)',
    ],
    [
      'not a URL',
      ['sync', '--controller', 'nope'],
      {},
      'error: nope is not a URL (expected e.g. http://127.0.0.1:9420)',
    ],
    [
      'not http',
      ['sync', '--controller', 'file:///etc/passwd'],
      {},
      "error: file:///etc/passwd: the controller's URL must be http:// or https://",
    ],
  ])('%s: one line, exit 1, nothing done', async (_, args, env, message) => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    const before = calls.length;
    const r = await cli(...args.map((a) => (a === 'URL' ? url : a)));
    process.env = saved;
    expect(r).toEqual({ code: 1, out: '', err: message });
    expect(calls.length).toBe(before);
  });
});
