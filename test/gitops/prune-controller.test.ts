// The controller's `prune: true` without Docker: a fake Git source (revisions as manifest lists) and a
// pool that records every SSH target it is asked for and reaches none. A host whose manifest left the
// branch is decommissioned through its manifest of the revision applied before (never a target the new
// revision names), retried with backoff while it fails, and dropped when its manifest comes back.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Controller } from '../../controller/gitops/controller.js';
import { StateStore } from '../../controller/gitops/state.js';
import type { GitSource } from '../../controller/source/git-source.js';
import type { SessionPool } from '../../controller/reconcile/pool.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import { BACKOFF_BASE_MS } from '../../controller/gitops/decide.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAII/Ke1fjU+ycPsTn/8TNDIy0scOjx3oWxZgIF+TiXIT1';
const manifest = (name: string, address: string) => ({
  path: `hosts/${name}.yaml`,
  text: [
    'apiVersion: natsfleet/v1alpha1',
    'kind: NatsHost',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  ssh:',
    `    host: ${address}`,
    `    hostKey: ${KEY}`,
    '  nats:',
    '    image: nats:2.10.22',
    '',
  ].join('\n'),
});

/** Revisions as their manifests; connects recorded as `host@address (state)`, every one refused. */
function harness(
  prune: boolean,
  revisions: Record<string, { path: string; text: string }[]>,
  onConnect: (h: HostSpec) => Promise<void> = async () => {},
) {
  const connects: string[] = [];
  let clock = 1_000_000;
  const manifestsAt = async (rev: string) => {
    if (!revisions[rev]) throw new Error(`fatal: not a valid object name ${rev}`);
    return revisions[rev];
  };
  const source = { branch: 'main', manifestsAt } as unknown as GitSource;
  const pool = {
    get: async (h: HostSpec) => {
      connects.push(`${h.name}@${h.ssh.host} (${h.state})`);
      await onConnect(h);
      throw new Error('connect ECONNREFUSED');
    },
    drop: async () => {},
    retain: async () => {},
    closeAll: async () => {},
  } as unknown as SessionPool;
  const ctl = new Controller({
    source,
    pool,
    store: new StateStore(mkdtempSync(join(tmpdir(), 'nf-prune-ctl-'))),
    log: pino({ level: 'silent' }),
    concurrency: 2,
    driftIntervalMs: 3_600_000,
    prune,
    env: {},
    now: () => clock,
  });
  return {
    ctl,
    connects,
    /** The connects of one deploy. */
    deploy: async (rev: string) => {
      connects.length = 0;
      await ctl.deploy(rev);
      return [...connects].sort();
    },
    advance: (ms: number) => (clock += ms),
  };
}

describe('prune: true in the controller', () => {
  const revisions = {
    r1: [manifest('nats-b', 'b.example.internal')],
    // nats-b deleted; nats-c added elsewhere.
    r2: [manifest('nats-c', 'c.example.internal')],
    // nats-b back, at a new address.
    r3: [manifest('nats-b', 'b2.example.internal'), manifest('nats-c', 'c.example.internal')],
  };

  it('decommissions through the manifest of the revision applied before; retries with backoff; drops it when back', async () => {
    const h = harness(true, revisions);
    expect(await h.deploy('r1')).toEqual(['nats-b@b.example.internal (present)']);
    expect(await h.deploy('r2')).toEqual(['nats-b@b.example.internal (absent)', 'nats-c@c.example.internal (present)']);
    expect(h.ctl.state.pruning).toEqual({ 'nats-b': 'r1' });
    expect(h.ctl.state.retries['nats-b']).toMatchObject({ revision: 'r2', attempts: 1 });
    // Not due yet: nobody is contacted for it.
    h.advance(BACKOFF_BASE_MS - 1);
    expect(await h.deploy('r2')).toEqual([]);
    h.advance(1);
    expect(await h.deploy('r2')).toEqual(['nats-b@b.example.internal (absent)', 'nats-c@c.example.internal (present)']);
    expect(h.ctl.state.retries['nats-b']).toMatchObject({ attempts: 2 });
    // The manifest is back: the decommission is dropped, the host deployed where the branch says.
    expect(await h.deploy('r3')).toEqual([
      'nats-b@b2.example.internal (present)',
      'nats-c@c.example.internal (present)',
    ]);
    expect(h.ctl.state.pruning).toEqual({});
  });

  it('without prune: the host is never contacted again', async () => {
    const h = harness(false, revisions);
    await h.deploy('r1');
    expect(await h.deploy('r2')).toEqual(['nats-c@c.example.internal (present)']);
    expect(h.ctl.state.pruning ?? {}).toEqual({});
    expect(h.ctl.state.retries['nats-b']).toBeUndefined();
  });

  it('a host renamed at the same address is not decommissioned under its old name', async () => {
    const h = harness(true, {
      r1: [manifest('nats-b', 'b.example.internal')],
      r2: [manifest('nats-b-new', 'b.example.internal')],
    });
    await h.deploy('r1');
    expect(await h.deploy('r2')).toEqual(['nats-b-new@b.example.internal (present)']);
    expect(h.ctl.state.pruning).toEqual({});
  });

  it('a pending decommission whose address a later revision gives another host is dropped, never run there', async () => {
    const h = harness(true, {
      r1: [manifest('nats-b', 'b.example.internal')],
      // nats-b deleted: its decommission fails (refused) and waits for its retry.
      r2: [manifest('nats-c', 'c.example.internal')],
      // The machine comes back under another name before the retry is due.
      r3: [manifest('nats-c', 'c.example.internal'), manifest('nats-d', 'b.example.internal')],
    });
    await h.deploy('r1');
    expect(await h.deploy('r2')).toContain('nats-b@b.example.internal (absent)');
    expect(h.ctl.state.pruning).toEqual({ 'nats-b': 'r1' });
    h.advance(BACKOFF_BASE_MS);
    const r3 = await h.deploy('r3');
    expect(r3).not.toContain('nats-b@b.example.internal (absent)');
    expect(r3).toContain('nats-d@b.example.internal (present)');
    expect(h.ctl.state.pruning).toEqual({});
    expect(h.ctl.state.retries['nats-b']).toBeUndefined();
  });

  it('a pending decommission whose revision cannot be read any more is dropped; the deploy still completes', async () => {
    const gone: Record<string, { path: string; text: string }[]> = {
      r1: [manifest('nats-b', 'b.example.internal')],
      r2: [manifest('nats-c', 'c.example.internal')],
    };
    const h = harness(true, gone);
    await h.deploy('r1');
    await h.deploy('r2');
    expect(h.ctl.state.pruning).toEqual({ 'nats-b': 'r1' });
    delete gone.r1; // a force push, then git gc
    h.advance(BACKOFF_BASE_MS);
    const connects = await h.deploy('r2');
    expect(connects.some((c) => c.startsWith('nats-b@'))).toBe(false);
    expect(h.ctl.state.pruning).toEqual({});
    expect(h.ctl.state.appliedRevision).toBe('r2');
  });

  it('a resume during a deploy neither loses its decommissions nor the resumed host', async () => {
    let resumeNow = false;
    const h = harness(
      true,
      {
        r1: [
          manifest('nats-b', 'b.example.internal'),
          manifest('nats-x', 'x.example.internal'),
          manifest('nats-y', 'y.example.internal'),
        ],
        // nats-b deleted; nats-y (failed before) is deployed again, and meanwhile nats-x is resumed.
        r2: [manifest('nats-x', 'x.example.internal'), manifest('nats-y', 'y.example.internal')],
      },
      async (spec) => {
        if (resumeNow && spec.name === 'nats-y') {
          resumeNow = false;
          await h.ctl.resume('nats-x');
        }
      },
    );
    await h.deploy('r1');
    await h.ctl.suspend('nats-x', 'maintenance');
    h.advance(BACKOFF_BASE_MS);
    resumeNow = true;
    const r2 = await h.deploy('r2');
    expect(r2).toContain('nats-y@y.example.internal (present)');
    expect(r2).toContain('nats-b@b.example.internal (absent)');
    // nats-x was held when this deploy began: the next one deploys it, although the branch has not moved.
    expect(h.ctl.state.appliedRevision).toBeUndefined();
    expect(await h.deploy('r2')).toContain('nats-x@x.example.internal (present)');
  });

  it('the revision applied before is gone (a force push): nothing is pruned, the deploy goes on', async () => {
    const gone: Record<string, { path: string; text: string }[]> = { ...revisions };
    const h = harness(true, gone);
    await h.deploy('r1');
    delete gone.r1;
    expect(await h.deploy('r2')).toEqual(['nats-c@c.example.internal (present)']);
    expect(h.ctl.state.appliedRevision).toBe('r2');
    expect(h.ctl.state.pruning).toEqual({});
  });
});
