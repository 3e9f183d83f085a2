// The controller's `state.nats` settings (replicas sharing state and leases in NATS JetStream KV): from the
// file, NATSFLEET_STATE_NATS or --state-nats; each problem naming where it comes from. Without them, the
// state stays in stateDir.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../../controller/gitops/config.js';

const dir = mkdtempSync(join(tmpdir(), 'nf-config-state-'));
let n = 0;
const base = 'repo: https://example.com/hosts.git\nsshKey: /k\n';

function read(text: string, env: NodeJS.ProcessEnv = {}, flags: Record<string, string | number | undefined> = {}) {
  const path = join(dir, `c-${n++}.yaml`);
  writeFileSync(path, base + text);
  try {
    return { cfg: resolveConfig(flags, env, path), path };
  } catch (e) {
    if (e instanceof ConfigError) return { problems: e.problems, path };
    throw e;
  }
}

describe('state.nats', () => {
  it('is off by default: the state stays in stateDir', () => {
    expect(read('').cfg?.stateNats).toBeUndefined();
  });
  it.each<[string, string, NodeJS.ProcessEnv, Record<string, string | number | undefined>, object]>([
    [
      'from the file, with its defaults',
      'state:\n  nats:\n    url: nats://10.0.0.5:4222\n',
      {},
      {},
      { url: 'nats://10.0.0.5:4222', bucket: 'natsfleet', leaseTtlSec: 15 },
    ],
    [
      'every key from the file',
      'state:\n  nats:\n    url: tls://a:4222, tls://b:4222\n    credentials: /etc/natsfleet/c.creds\n    bucket: fleet-a\n    leaseTtlSec: 9\n',
      {},
      {},
      { url: 'tls://a:4222, tls://b:4222', credentials: '/etc/natsfleet/c.creds', bucket: 'fleet-a', leaseTtlSec: 9 },
    ],
    [
      'from NATSFLEET_STATE_NATS',
      '',
      { NATSFLEET_STATE_NATS: 'nats://127.0.0.1:4222' },
      {},
      { url: 'nats://127.0.0.1:4222' },
    ],
    [
      'the flags win',
      'state:\n  nats:\n    url: nats://x:4222\n',
      {},
      { 'state.nats.url': 'nats://y:4222', 'state.nats.leaseTtlSec': 4 },
      { url: 'nats://y:4222', leaseTtlSec: 4 },
    ],
  ])('%s', (_t, text, env, flags, want) => {
    expect(read(text, env, flags).cfg?.stateNats).toMatchObject(want);
  });

  it.each<[string, string, Record<string, string | number | undefined>, RegExp]>([
    [
      'a URL that is not nats:// or tls://',
      'state:\n  nats:\n    url: http://x:4222\n',
      {},
      /:5: state\.nats\.url: must be nats:\/\/HOST:PORT/,
    ],
    [
      'a TTL out of range',
      'state:\n  nats:\n    url: nats://x:4222\n    leaseTtlSec: 1\n',
      {},
      /:6: state\.nats\.leaseTtlSec: must be an integer from 3 to 600/,
    ],
    [
      'an unknown key',
      'state:\n  nats:\n    url: nats://x:4222\n    buckt: a\n',
      {},
      /:6: state\.nats\.buckt: unknown key/,
    ],
    [
      'a bucket without a URL',
      'state:\n  nats:\n    bucket: a\n',
      {},
      /c-\d+\.yaml:5: state\.nats\.url: is required with state\.nats\.bucket/,
    ],
    [
      'a replica name without state.nats',
      '',
      { replicaId: 'a' },
      /--replica-id: state\.nats\.url: is required with replicaId/,
    ],
    ['a replica name with a dot', '', { replicaId: 'a.b' }, /--replica-id: replicaId: must be letters, digits/],
  ])('refuses %s, naming where', (_t, text, flags, want) => {
    const r = read(text, {}, flags);
    expect(r.problems?.join('\n')).toMatch(want);
  });

  it('names this replica', () => {
    expect(read('replicaId: controller-a\nstate:\n  nats:\n    url: nats://x:4222\n').cfg?.replicaId).toBe(
      'controller-a',
    );
  });
});
