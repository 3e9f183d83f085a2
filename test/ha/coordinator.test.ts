// Replicas coordinating through a real nats-server's JetStream KV (controller/ha/coordinator.ts,
// kv-state.ts): one leader, every host held by exactly one replica, takeover after a replica dies or is
// cut off within the lease TTL, a cut-off replica stops acting, and compare-and-set writes that merge.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Coordinator } from '../../controller/ha/coordinator.js';
import { KvStateStore } from '../../controller/ha/kv-state.js';
import { startNatsServer, startRelay, type NatsServer, type Relay } from '../helpers/nats-server.js';

const TTL = 1500;
const log = pino({ level: 'silent' });
const hosts = Array.from({ length: 12 }, (_, i) => ({ name: `h${i}` }));
let server: NatsServer;
const started: Coordinator[] = [];
const relays: Relay[] = [];

async function replica(id: string, bucket: string, url = server.url, ttlMs = TTL) {
  const c = await Coordinator.start({ url, bucket, replica: id, ttlMs, log });
  c.setHosts(hosts);
  started.push(c);
  return c;
}

async function until(what: string, ok: () => boolean, ms = 10_000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const holders = (cs: Coordinator[]) => hosts.map((h) => cs.filter((c) => c.owns(h.name)).map((c) => c.id));

beforeAll(async () => {
  server = await startNatsServer();
});
afterAll(async () => {
  for (const c of started) await c.abandon().catch(() => {});
  for (const r of relays) await r.close();
  await server?.stop();
});

describe('replicas on NATS JetStream KV', { timeout: 30_000 }, () => {
  it('elect one leader and hold every host exactly once, shared between them', async () => {
    const cs = [await replica('a', 'b1'), await replica('b', 'b1'), await replica('c', 'b1')];
    await until('one host each', () => holders(cs).every((h) => h.length === 1));
    await until('a leader', () => cs.filter((c) => c.isLeader()).length === 1);
    const counts = cs.map((c) => hosts.filter((h) => c.owns(h.name)).length);
    expect(counts.reduce((a, b) => a + b)).toBe(hosts.length);
    expect(counts.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    // What every replica sees of who holds what agrees (each learns of the others' leases through its watch:
    // on a loaded machine one view may lag the others by a moment).
    await until('one view', () => hosts.every((h) => new Set(cs.map((c) => c.holder(h.name))).size === 1), 3000);
  });

  it('a killed leader: another leads and its hosts are taken over within the TTL and a round or two', async () => {
    const cs = [await replica('k1', 'b2'), await replica('k2', 'b2'), await replica('k3', 'b2')];
    await until('settled', () => holders(cs).every((h) => h.length === 1) && cs.some((c) => c.isLeader()));
    const leader = cs.find((c) => c.isLeader())!;
    const rest = cs.filter((c) => c !== leader);
    const t0 = Date.now();
    await leader.abandon();
    await until(
      'takeover',
      () => rest.some((c) => c.isLeader()) && hosts.every((h) => rest.filter((c) => c.owns(h.name)).length === 1),
      TTL * 4,
    );
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(TTL * 0.9);
    expect(took).toBeLessThan(TTL + 3 * (TTL / 3) + 1000);
    expect(rest.filter((c) => c.isLeader())).toHaveLength(1);
  });

  it('a replica cut off from NATS stops leading and owning before the others take its leases over', async () => {
    const relay = await startRelay(server.port);
    relays.push(relay);
    const cut = await replica('x1', 'b3', relay.url);
    await until('x1 leads', () => cut.isLeader());
    const others = [await replica('x2', 'b3'), await replica('x3', 'b3')];
    const cs = [cut, ...others];
    await until('settled', () => holders(cs).every((h) => h.length === 1));
    const had = hosts.filter((h) => cut.owns(h.name));
    expect(had.length).toBeGreaterThan(0);
    relay.cut();
    const t0 = Date.now();
    await until('x1 gives up', () => !cut.isLeader() && hosts.every((h) => !cut.owns(h.name)), TTL * 2);
    const gaveUp = Date.now() - t0;
    // Others act only after the TTL: never two holders at once.
    expect(gaveUp).toBeLessThan(TTL);
    expect(others.some((c) => c.isLeader()) || had.some((h) => others.some((c) => c.owns(h.name)))).toBe(false);
    await until(
      'others take over',
      () => others.some((c) => c.isLeader()) && had.every((h) => others.filter((c) => c.owns(h.name)).length === 1),
      TTL * 4,
    );
    // Throughout, no host had two holders that both believed they own it.
    expect(holders(cs).every((h) => h.length === 1)).toBe(true);
  });

  it('a replica back from a long cut never holds a host another holds: it reads the bucket again first', async () => {
    const relay = await startRelay(server.port);
    relays.push(relay);
    const back = await replica('y1', 'b5', relay.url);
    const others = [await replica('y2', 'b5'), await replica('y3', 'b5')];
    const cs = [back, ...others];
    await until('settled', () => holders(cs).every((h) => h.length === 1));
    let worst = 1;
    const watch = setInterval(() => (worst = Math.max(worst, ...holders(cs).map((h) => h.length))), 20);
    try {
      relay.cut();
      // Longer than the TTL: the others take its hosts over meanwhile.
      await until('the others hold every host', () => hosts.every((h) => others.some((c) => c.owns(h.name))), TTL * 4);
      relay.restore();
      await until('it holds a share again', () => hosts.some((h) => back.owns(h.name)), TTL * 8);
      await until('settled again', () => holders(cs).every((h) => h.length === 1), TTL * 4);
    } finally {
      clearInterval(watch);
    }
    expect(worst).toBe(1);
  });

  it("the mirror never goes back: a write's answer handled after the watch delivered a later write keeps the later", async () => {
    const [a, b] = [await replica('m1', 'b5', server.url, 10_000), await replica('m2', 'b5', server.url, 10_000)];
    const kv = a.kv as unknown as Record<string, (...args: unknown[]) => Promise<number>>;
    // Holds a's answer back until b changed the record again and a's watch delivered it: the order a loaded
    // machine can give (both arrive on one connection, and are handled by different continuations).
    const late = (op: 'update' | 'delete', next: (rev: number) => Promise<unknown>, seen: () => boolean) => {
      const original = kv[op].bind(a.kv);
      kv[op] = async (...args: unknown[]) => {
        kv[op] = original;
        const rev = await original(...args);
        await next(rev);
        await until("a's watch delivering b's change", seen);
        return rev;
      };
    };
    const first = await a.write('doc', { v: 1 }, undefined);
    await until('b seeing it', () => b.get('doc')?.revision === first);
    late(
      'update',
      (rev) => b.write('doc', { v: 3 }, rev),
      () => a.get('doc')?.revision === first + 2,
    );
    await a.write('doc', { v: 2 }, first);
    expect(a.get('doc')?.value).toEqual({ v: 3 });
    // A record created again after this replica's delete stays.
    late(
      'delete',
      () => b.write('doc', { v: 4 }, undefined),
      () => a.get('doc')?.value !== undefined,
    );
    await a.remove('doc', first + 2);
    expect(a.get('doc')?.value).toEqual({ v: 4 });
    // And one deleted by another replica right after this replica's write does not come back.
    const now = a.get('doc')!.revision;
    await until('b seeing it', () => b.get('doc')?.revision === now);
    late(
      'update',
      (rev) => b.remove('doc', rev),
      () => a.get('doc') === undefined,
    );
    await a.write('doc', { v: 5 }, now);
    expect(a.get('doc')).toBeUndefined();
  });

  it('state writes are compare-and-set: two replicas writing one host merge, the leader alone the fleet', async () => {
    // A longer TTL: this test is about merging, not about leadership (which a loaded machine may move).
    const [a, b] = [await replica('s1', 'b4', server.url, 10_000), await replica('s2', 'b4', server.url, 10_000)];
    await until('a leader', () => a.isLeader() || b.isLeader());
    const [leader, other] = a.isLeader() ? [a, b] : [b, a];
    const sl = new KvStateStore(leader, log);
    const so = new KvStateStore(other, log);
    // As the controller does at each tick: load, change, save. A save a replica drops (it was not alive
    // for a moment on a loaded machine) is made again at its next tick.
    const write = async () => {
      const x = sl.load();
      const y = so.load();
      x.hostFingerprints.h1 = 'fp';
      x.appliedRevision = 'rev-leader';
      y.suspended.h1 = { since: '2026-11-27T00:00:00Z' };
      y.appliedRevision = 'rev-other';
      await Promise.all([sl.save(x), so.save(y)]);
    };
    // Both writes reach both mirrors (through the watch).
    const written = () =>
      [sl, so].every((st) => {
        const s = st.load();
        return s.hostFingerprints.h1 === 'fp' && s.suspended.h1 !== undefined && s.appliedRevision === 'rev-leader';
      });
    for (let tick = 0; tick < 40 && !written(); tick++) {
      await write();
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(written()).toBe(true);
    const s = so.load();
    expect(s.hostFingerprints.h1).toBe('fp');
    expect(s.suspended.h1).toEqual({ since: '2026-11-27T00:00:00Z' });
    expect(s.appliedRevision).toBe('rev-leader');
    // The revision named must be the key's last: a stale one is refused, not overwritten.
    const e = leader.get('state.host.h1')!;
    await expect(leader.write('state.host.h1', { fingerprint: 'stale' }, e.revision - 1)).rejects.toThrow();
  });
});
