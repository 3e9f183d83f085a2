// The controller's API as a table: the bearer token, the routes, bad input refused before anything runs,
// and the controller's typed errors answered as one JSON line (no stack, no secret). Also the pure rules
// of `natsfleet sync` and of suspensions.
import { describe, expect, it } from 'vitest';
import { authorized, handleApi, type ApiActions } from '../../controller/gitops/api.js';
import { InvalidRevisionError, NotReadyError, UnknownHostError } from '../../controller/gitops/controller.js';
import { suspendItem, suspensionText, syncSelection } from '../../controller/gitops/decide.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';

const TOKEN = 'a-test-token-of-32-characters-ok';

function actions(over: Partial<ApiActions> = {}): ApiActions & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    token: TOKEN,
    suspend: async (host, reason) => {
      calls.push(`suspend ${host} ${reason ?? ''}`.trim());
      if (host === 'nats-missing') throw new UnknownHostError(host, 'main');
      return { since: '2026-11-27T03:00:00.000Z', ...(reason ? { reason } : {}) };
    },
    resume: async (host) => {
      calls.push(`resume ${host}`);
      return host === 'nats-a';
    },
    sync: async (hosts) => {
      calls.push(`sync ${hosts.join(',')}`);
      return {
        revision: 'abc1234def5678901234567890abcdef12345678',
        runs: [{ host: 'nats-a', durationMs: 5, error: 'timed out' }],
        unknown: [],
        suspended: [],
      };
    },
    hosts: async () => [{ host: 'nats-a' }],
    ...over,
  };
}
const bearer = `Bearer ${TOKEN}`;
const body = (v: unknown) => Buffer.from(JSON.stringify(v));

describe('the API: the bearer token', () => {
  it.each([
    ['the token', bearer, true],
    ['no header', undefined, false],
    ['another token', 'Bearer a-test-token-of-32-characters-no', false],
    ['a prefix of it', `Bearer ${TOKEN.slice(0, 10)}`, false],
    ['basic auth', `Basic ${TOKEN}`, false],
    ['the token without its scheme', TOKEN, false],
  ])('%s: %s', (_, header, ok) => {
    expect(authorized(header, TOKEN)).toBe(ok);
  });

  it('is off without a token; a wrong token runs nothing', async () => {
    expect(await handleApi('POST', '/api/v1/sync', bearer, Buffer.alloc(0), undefined)).toEqual({
      code: 404,
      body: { error: 'the API is off: the controller has no apiToken' },
    });
    const a = actions();
    const r = await handleApi('POST', '/api/v1/hosts/nats-a/suspend', 'Bearer nope', Buffer.alloc(0), a);
    expect(r.code).toBe(401);
    expect(a.calls).toEqual([]);
  });
});

describe('the API: routes', () => {
  it.each([
    [
      'suspend with a reason',
      'POST',
      '/api/v1/hosts/nats-a/suspend',
      { reason: 'incident 42' },
      200,
      'suspend nats-a incident 42',
    ],
    ['suspend without one', 'POST', '/api/v1/hosts/nats-a/suspend', undefined, 200, 'suspend nats-a'],
    ['resume', 'POST', '/api/v1/hosts/nats-a/resume', undefined, 200, 'resume nats-a'],
    ['sync two hosts', 'POST', '/api/v1/sync', { hosts: ['nats-a', 'nats-b'] }, 200, 'sync nats-a,nats-b'],
    ['sync every host', 'POST', '/api/v1/sync', {}, 200, 'sync '],
    ['a host the branch lacks', 'POST', '/api/v1/hosts/nats-missing/suspend', {}, 404, 'suspend nats-missing'],
    ['not a host name', 'POST', '/api/v1/hosts/..%2Fetc/suspend', {}, 400, undefined],
    ['a malformed percent-encoding', 'POST', '/api/v1/hosts/nats%E0%A4/resume', {}, 400, undefined],
    ['a reason too long', 'POST', '/api/v1/hosts/nats-a/suspend', { reason: 'x'.repeat(201) }, 400, undefined],
    ['hosts not a list', 'POST', '/api/v1/sync', { hosts: 'nats-a' }, 400, undefined],
    ['a host name with a shell character', 'POST', '/api/v1/sync', { hosts: ['a;b'] }, 400, undefined],
    ['GET of an action', 'GET', '/api/v1/sync', undefined, 404, undefined],
    ['an unknown route', 'POST', '/api/v1/hosts/nats-a/delete', {}, 404, undefined],
  ])('%s', async (_, method, path, payload, code, call) => {
    const a = actions();
    const r = await handleApi(method, path, bearer, payload === undefined ? Buffer.alloc(0) : body(payload), a);
    expect(r.code, JSON.stringify(r.body)).toBe(code);
    expect(a.calls).toEqual(call === undefined ? [] : [call]);
    expect(typeof (r.body.error ?? '')).toBe('string');
  });

  it('a body that is not a JSON object is refused', async () => {
    for (const raw of ['{', '[1]', '"x"', 'null']) {
      const r = await handleApi('POST', '/api/v1/sync', bearer, Buffer.from(raw), actions());
      expect(r).toEqual({ code: 400, body: { error: 'the body is not a JSON object' } });
    }
  });

  it('a sync answers with each host and its result; an invalid revision is 409 with its errors', async () => {
    const ok = await handleApi('POST', '/api/v1/sync', bearer, body({ hosts: ['nats-a'] }), actions());
    expect(ok.body).toEqual({
      revision: 'abc1234def5678901234567890abcdef12345678',
      hosts: [{ host: 'nats-a', durationMs: 5, result: undefined, error: 'timed out' }],
      suspended: [],
    });
    const invalid = actions({
      sync: async () => {
        throw new InvalidRevisionError('abc1234def5678901234567890abcdef12345678', [
          'hosts/a.yaml:3: spec.nats.clientPort: must be a port',
        ]);
      },
    });
    const r = await handleApi('POST', '/api/v1/sync', bearer, body({}), invalid);
    expect(r.code).toBe(409);
    expect(r.body.error).toBe(
      'the manifests of abc1234def56 are invalid, nothing was applied: ' +
        'hosts/a.yaml:3: spec.nats.clientPort: must be a port',
    );
  });

  it('before the loop read the branch once: 503, try again', async () => {
    const early = actions({
      suspend: async () => {
        throw new NotReadyError();
      },
    });
    const r = await handleApi('POST', '/api/v1/hosts/nats-a/suspend', bearer, Buffer.alloc(0), early);
    expect(r).toEqual({
      code: 503,
      body: { error: 'the controller has not read the branch yet: try again after its first poll' },
    });
  });

  it('an unexpected failure is one line without credentials, never a stack', async () => {
    const a = actions({
      sync: async () => {
        throw new Error('git fetch https://bot:s3cret@git.example/fleet.git failed:\nfatal: unreachable');
      },
    });
    const r = await handleApi('POST', '/api/v1/sync', bearer, body({}), a);
    expect(r.code).toBe(500);
    expect(r.body.error).not.toMatch(/s3cret|\n|api\.test\.ts/);
    expect(r.body.error).toContain('fatal: unreachable');
  });
});

describe('syncSelection: which hosts a sync deploys', () => {
  const h = (name: string, suspend = false, cluster?: string) => ({ name, suspend, cluster });
  const hosts = [h('a'), h('b', true), h('c', false, 'core'), h('d', true, 'core'), h('e', false, 'edge')];
  it.each([
    ['every host when none is named', [], ['a', 'e'], [], ['b', 'c', 'd']],
    ['the named ones', ['a', 'e'], ['a', 'e'], [], []],
    ['a suspended one is held, named or not', ['a', 'b'], ['a'], [], ['b']],
    ['a member of a cluster a suspended member holds', ['c'], [], [], ['c']],
    ['names the branch lacks', ['a', 'zz', 'zz'], ['a'], ['zz'], []],
  ])('%s', (_, requested, run, unknown, suspended) => {
    expect(syncSelection(requested, hosts)).toEqual({ hosts: run, unknown, suspended });
  });
});

describe('suspensions: in Git or through the API', () => {
  const spec = (name: string, suspend: boolean) => ({ spec: { name, policy: { suspend } } as unknown as HostSpec });
  it.each([
    ['neither', false, undefined, false, undefined],
    ['in Git', true, undefined, true, 'suspended in Git (spec.policy.suspend)'],
    [
      'through the API, with a reason',
      false,
      { since: '2026-11-27T03:00:00.000Z', reason: 'disk swap' },
      true,
      'suspended with natsfleet suspend since 2026-11-27T03:00:00.000Z (disk swap)',
    ],
    [
      'both: the API says more',
      true,
      { since: '2026-11-27T03:00:00.000Z' },
      true,
      'suspended with natsfleet suspend since 2026-11-27T03:00:00.000Z',
    ],
  ])('%s', (_, inGit, api, held, text) => {
    expect(suspendItem(spec('a', inGit), api ? { a: api } : {}).suspend).toBe(held);
    expect(suspensionText(inGit, api)).toBe(text);
  });
});
