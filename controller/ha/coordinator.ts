// Owns the controller replicas' coordination through a NATS JetStream key-value bucket (the edge: the
// decisions are leases.ts's): a mirror of the bucket kept by a watch, this replica's heartbeat, the
// leader lease, the shard leases (per host, or per cluster for its members), and compare-and-set writes.
// Every write names the revision it replaces, so two writers never overwrite each other; a replica that
// cannot renew its heartbeat within the renew deadline leads nothing and owns no host (it stops applying).
//
// Keys: `replica.<id>` heartbeats, `leader`, `lease.<shard>`, and the state's keys (kv-state.ts).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { KV, NatsConnection } from 'nats';
import { loadNats } from '../util/nats-client.js';
import {
  expired,
  leaderAction,
  leaseTiming,
  liveReplicas,
  shardActions,
  type LeaseAction,
  type LeaseTiming,
  type SeenLease,
} from './leases.js';
import { ownerOf, shardKey } from './shard.js';

export interface HaOptions {
  /** NATS server URL(s), comma-separated. */
  url: string;
  /** A NATS credentials file (JWT + nkey seed), read at start. */
  credentials?: string;
  bucket: string;
  /** This replica's name (letters, digits, - and _); a random one by default. */
  replica?: string;
  ttlMs: number;
  /** Copies of the bucket's stream on a NATS cluster (1 to 5; default 1). */
  streamReplicas?: number;
  log: Logger;
}

/** What the controller asks of the replication (a single controller has none). */
export interface Replication {
  readonly id: string;
  /** This replica holds the leader lease and renewed it within the renew deadline. */
  isLeader(): boolean;
  /** This replica holds the shard lease of the host (its cluster's, for a member) and is alive. */
  owns(host: string, cluster?: string): boolean;
  /** Which replica holds the host's shard lease, if any. */
  holder(host: string, cluster?: string): string | undefined;
  /** The shards of the fleet (from the branch's manifests): leases are taken for these. */
  setHosts(hosts: readonly { name: string; cluster?: string }[]): void;
  /** Runs fn with these hosts' shards marked busy: their leases are not given back meanwhile. */
  busy<T>(hosts: readonly { name: string; cluster?: string }[], fn: () => Promise<T>): Promise<T>;
  /** Live replicas (this one included when alive), sorted. */
  replicas(): string[];
  /**
   * Whether a replica is alive as seen from here (its heartbeat changed within the TTL); with `session`,
   * that very process of it (a replica restarted under its name is another session).
   */
  replicaAlive(replica: string, session?: string): boolean;
  /** This process's session: written with its name into the leases and the hosts' apply locks. */
  readonly session: string;
}

export const REPLICA_ID = /^[A-Za-z0-9_-]{1,64}$/;

interface MirrorEntry {
  value: unknown;
  revision: number;
  seenAt: number;
}

const monotonic = () => performance.now();
/** A record's JSON value; undefined when it is not JSON (a record natsfleet did not write). */
const valueOf = (e: { json<T>(): T }): unknown => {
  try {
    return e.json();
  } catch {
    return undefined;
  }
};
/** Whether the mirror's entry of a key is a later revision than `revision`. */
const laterThan = (known: MirrorEntry | undefined, revision: number): boolean =>
  known !== undefined && known.revision > revision;
/** The error of a compare-and-set whose revision was not the key's last one. */
export const isConflict = (e: unknown): boolean =>
  /wrong last sequence|key exists/i.test((e as Error)?.message ?? '') ||
  (e as { api_error?: { err_code?: number } })?.api_error?.err_code === 10071;

export class Coordinator implements Replication {
  readonly id: string;
  readonly timing: LeaseTiming;
  private readonly mirror = new Map<string, MirrorEntry>();
  private selfRenewedAt?: number;
  private leaderRenewedAt?: number;
  /** The fleet's shards; undefined until the branch was read (no lease is taken or given back before). */
  private shards?: string[];
  /**
   * Whether the mirror can be trusted: false from a disconnect (or a watch that ended) until a new watch
   * delivered the bucket again. A replica whose mirror is stale is not alive: after a long cut, it would
   * otherwise believe it still holds leases the others took over meanwhile.
   */
  private mirrorFresh = false;
  private watcher?: { stop(): void };
  /** The last deleted revision of each key (this replica's deletes and the watch's): nothing older comes back. */
  private readonly removed = new Map<string, number>();
  private readonly busyShards = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private stopped = false;
  readonly session = randomBytes(6).toString('hex');
  private wasLeader = false;
  private lastOwned = '';
  /** Called after each round (tests and the bench wait on it). */
  onRound?: () => void;

  private constructor(
    private readonly nc: NatsConnection,
    readonly kv: KV,
    private readonly o: HaOptions,
  ) {
    this.id =
      o.replica ??
      `${hostname()
        .replace(/[^A-Za-z0-9_-]/g, '-')
        .slice(0, 40)}-${randomBytes(3).toString('hex')}`;
    this.timing = leaseTiming(o.ttlMs);
  }

  static async start(o: HaOptions): Promise<Coordinator> {
    if (o.replica !== undefined && !REPLICA_ID.test(o.replica))
      throw new Error(`replica id ${JSON.stringify(o.replica)}: letters, digits, - and _ only (at most 64)`);
    // Loaded here: a controller with its state in a directory never loads the NATS client.
    const { connect, credsAuthenticator } = await loadNats();
    const t = leaseTiming(o.ttlMs);
    const nc = await connect({
      servers: o.url.split(',').map((s) => s.trim()),
      name: `natsfleet-controller ${o.replica ?? ''}`.trim(),
      ...(o.credentials ? { authenticator: credsAuthenticator(readFileSync(o.credentials)) } : {}),
      maxReconnectAttempts: -1,
      reconnectTimeWait: Math.min(1000, t.renewEveryMs),
      timeout: Math.max(1000, t.renewDeadlineMs),
    });
    try {
      const js = nc.jetstream({ timeout: Math.max(500, Math.floor(t.renewEveryMs)) });
      // History 1: only the last value of a key matters; compare-and-set uses its revision.
      const kv = await js.views.kv(o.bucket, { history: 1, replicas: o.streamReplicas ?? 1 });
      const c = new Coordinator(nc, kv, o);
      void (async () => {
        for await (const st of nc.status())
          if (st.type === 'disconnect' || st.type === 'reconnect') c.mirrorFresh = false;
      })().catch(() => {});
      await c.watch();
      await c.tick();
      c.schedule();
      return c;
    } catch (e) {
      await nc.close().catch(() => {});
      throw e;
    }
  }

  /**
   * The mirror, kept by one watch of the whole bucket: built afresh from its initial values (records
   * deleted meanwhile are gone from it), then kept up to date. Resolves when the initial values are in.
   */
  private async watch(): Promise<void> {
    this.watcher?.stop();
    let ready!: () => void;
    const initialised = new Promise<void>((r) => (ready = r));
    let target = new Map<string, MirrorEntry>();
    let live = false;
    const it = await this.kv.watch({
      key: '>',
      initializedFn: () => {
        // This replica's own writes meanwhile are in the stream, hence in the new map too.
        this.mirror.clear();
        for (const [k, v] of target) this.mirror.set(k, v);
        target = this.mirror;
        live = true;
        ready();
      },
    });
    this.watcher = it;
    void (async () => {
      for await (const e of it) {
        const known = target.get(e.key);
        // A late event of a revision this replica already replaced (its own writes are mirrored at once).
        if (known && known.revision >= e.revision) continue;
        if ((this.removed.get(e.key) ?? 0) >= e.revision) continue;
        if (e.operation !== 'PUT') {
          target.delete(e.key);
          this.removed.set(e.key, Math.max(this.removed.get(e.key) ?? 0, e.revision));
        } else {
          target.set(e.key, { value: valueOf(e), revision: e.revision, seenAt: monotonic() });
        }
      }
    })()
      .catch((err: Error) => this.o.log.warn({ err: err.message }, 'replication: the bucket watch ended'))
      .finally(() => {
        if (this.watcher === it && live) this.mirrorFresh = false;
      });
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the bucket watch did not deliver its records in time')), this.timing.ttlMs),
    );
    await Promise.race([initialised, timeout]);
    this.mirrorFresh = true;
  }

  private schedule() {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.round = this.tick()
        .catch((e: Error) => this.o.log.warn({ err: e.message }, 'replication round failed'))
        .finally(() => this.schedule());
    }, this.timing.renewEveryMs);
  }

  /** The value and revision of a key as mirrored here. */
  get(key: string): { value: unknown; revision: number } | undefined {
    return this.mirror.get(key);
  }

  /** Keys of the mirror under a prefix. */
  keys(prefix: string): string[] {
    return [...this.mirror.keys()].filter((k) => k.startsWith(prefix));
  }

  /** Writes `value` at `key` if its revision is still `revision` (undefined: the key must not exist). */
  async write(key: string, value: unknown, revision: number | undefined): Promise<number> {
    const data = new TextEncoder().encode(JSON.stringify(value));
    const rev = revision === undefined ? await this.kv.create(key, data) : await this.kv.update(key, data, revision);
    this.remember(key, { value, revision: rev, seenAt: monotonic() });
    return rev;
  }

  /** Deletes `key` if its revision is still `revision`. */
  async remove(key: string, revision: number): Promise<void> {
    await this.kv.delete(key, { previousSeq: revision });
    this.removed.set(key, revision);
    // A record written again since (the watch delivered it before this answer) stays.
    if (!laterThan(this.mirror.get(key), revision)) this.mirror.delete(key);
  }

  /**
   * Mirrors what this replica wrote or read from the server, unless the mirror already holds a later
   * revision of the key, or saw it deleted later: a write's answer and the watch's event of another
   * replica's next write (or delete) can be handled in either order, and the older must not replace the
   * newer (the watch sends it only once).
   */
  private remember(key: string, entry: MirrorEntry): void {
    if (laterThan(this.mirror.get(key), entry.revision) || (this.removed.get(key) ?? 0) >= entry.revision) return;
    this.mirror.set(key, entry);
  }

  /** The key's current value and revision, read from the server (after a conflict). */
  async fresh(key: string): Promise<{ value: unknown; revision: number } | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { value: e.json(), revision: e.revision };
  }

  alive(now = monotonic()): boolean {
    return (
      this.mirrorFresh && this.selfRenewedAt !== undefined && now - this.selfRenewedAt < this.timing.renewDeadlineMs
    );
  }

  private seen(key: string): SeenLease | undefined {
    const e = this.mirror.get(key);
    const replica = (e?.value as { replica?: unknown } | undefined)?.replica;
    return e && typeof replica === 'string' ? { replica, revision: e.revision, seenAt: e.seenAt } : undefined;
  }

  replicas(now = monotonic()): string[] {
    const beats = new Map<string, number>();
    for (const k of this.keys('replica.')) beats.set(k.slice('replica.'.length), this.mirror.get(k)!.seenAt);
    return liveReplicas(beats, this.id, this.alive(now) ? this.selfRenewedAt : undefined, now, this.timing);
  }

  isLeader(now = monotonic()): boolean {
    return (
      this.alive(now) &&
      this.leaderRenewedAt !== undefined &&
      now - this.leaderRenewedAt < this.timing.renewDeadlineMs &&
      this.seen('leader')?.replica === this.id
    );
  }

  owns(host: string, cluster?: string): boolean {
    return this.alive() && this.seen(`lease.${shardKey(host, cluster)}`)?.replica === this.id;
  }

  holder(host: string, cluster?: string): string | undefined {
    return this.seen(`lease.${shardKey(host, cluster)}`)?.replica;
  }

  /** The replica the shares give a host to (whether or not it holds the lease yet). */
  assignee(host: string, cluster?: string): string | undefined {
    return ownerOf(shardKey(host, cluster), this.replicas());
  }

  setHosts(hosts: readonly { name: string; cluster?: string }[]): void {
    this.shards = [...new Set(hosts.map((h) => shardKey(h.name, h.cluster)))].sort();
  }

  async busy<T>(hosts: readonly { name: string; cluster?: string }[], fn: () => Promise<T>): Promise<T> {
    const keys = [...new Set(hosts.map((h) => shardKey(h.name, h.cluster)))];
    for (const k of keys) this.busyShards.set(k, (this.busyShards.get(k) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      for (const k of keys) {
        const n = (this.busyShards.get(k) ?? 1) - 1;
        if (n > 0) this.busyShards.set(k, n);
        else this.busyShards.delete(k);
      }
    }
  }

  /** One round: renew the heartbeat, then decide and act on the leader lease and the shard leases. */
  async tick(): Promise<void> {
    const beat = `replica.${this.id}`;
    // After a disconnect, the bucket is read again before this replica counts itself alive.
    if (!this.mirrorFresh)
      await this.watch().catch((e: Error) =>
        this.o.log.warn({ replica: this.id, err: e.message }, 'replication: the bucket could not be read'),
      );
    const t0 = monotonic();
    try {
      const mine = this.mirror.get(beat);
      const value = { replica: this.id, session: this.session, at: new Date().toISOString() };
      if (mine && (mine.value as { session?: string })?.session !== this.session && this.selfRenewedAt !== undefined)
        throw new Error(`another process writes this replica's heartbeat (${beat}): two replicas named ${this.id}?`);
      await this.write(beat, value, mine?.revision);
      this.selfRenewedAt = t0;
    } catch (e) {
      this.o.log.warn({ replica: this.id, err: (e as Error).message }, 'replication: heartbeat not renewed');
    }
    const now = monotonic();
    const alive = this.alive(now);
    const act = async (a: LeaseAction, value: unknown): Promise<boolean> => {
      const key = a.key === 'leader' ? 'leader' : `lease.${a.key}`;
      try {
        // A holder is judged gone from this mirror: asked again of the server right before its lease is
        // taken (a shard lease's record does not change while its holder lives; its heartbeat does).
        if (a.action === 'take-over' && !(await this.goneForSure(a.from))) return false;
        if (a.action === 'create') await this.write(key, value, undefined);
        else if (a.action === 'release') await this.remove(key, a.revision);
        else await this.write(key, value, a.revision);
        if (a.action === 'take-over')
          this.o.log.info({ replica: this.id, lease: a.key, from: a.from }, 'replication: lease taken over');
        return true;
      } catch (e) {
        if (!isConflict(e))
          this.o.log.warn({ lease: a.key, err: (e as Error).message }, 'replication: lease write failed');
        return false;
      }
    };
    const leader = leaderAction(this.seen('leader'), this.id, alive, now, this.timing);
    if (leader && leader.action !== 'release') {
      const t1 = monotonic();
      if (await act({ ...leader, key: 'leader' }, { replica: this.id, session: this.session }))
        this.leaderRenewedAt = t1;
    }
    const leases = new Map<string, SeenLease>();
    for (const k of this.keys('lease.')) {
      const s = this.seen(k);
      if (s) leases.set(k.slice('lease.'.length), s);
    }
    const live = this.replicas(now);
    const actions = this.shards
      ? shardActions(this.shards, leases, live, this.id, new Set(this.busyShards.keys()))
      : [];
    // Concurrently, a bounded number at a time: 10,000 leases must not take rounds past the deadline.
    for (let i = 0; i < actions.length; i += 64)
      await Promise.all(actions.slice(i, i + 64).map((a) => act(a, { replica: this.id, session: this.session })));
    if (this.isLeader()) await this.forgetDeparted(now);
    const leads = this.isLeader();
    if (leads !== this.wasLeader) {
      this.o.log.info({ replica: this.id }, leads ? 'replication: leading' : 'replication: not leading');
      this.wasLeader = leads;
    }
    const owned = (this.shards ?? [])
      .filter((k) => this.seen(`lease.${k}`)?.replica === this.id && this.alive())
      .join(' ');
    if (owned !== this.lastOwned) {
      this.o.log.info({ replica: this.id, shards: owned ? owned.split(' ') : [] }, 'replication: shards held');
      this.lastOwned = owned;
    }
    this.onRound?.();
  }

  replicaAlive(replica: string, session?: string): boolean {
    if (replica === this.id) return (session === undefined || session === this.session) && this.alive();
    const e = this.mirror.get(`replica.${replica}`);
    if (session !== undefined && (e?.value as { session?: string } | undefined)?.session !== session) return false;
    return e !== undefined && !expired(e.seenAt, monotonic(), this.timing);
  }

  /**
   * Whether `replica`'s heartbeat is still the one this mirror saw unchanged for the TTL, read from the
   * server now (a newer one: it is alive after all, and the mirror learns it).
   */
  private async goneForSure(replica: string): Promise<boolean> {
    const key = `replica.${replica}`;
    const seen = this.mirror.get(key);
    const now = await this.kv.get(key);
    if (!now || now.operation !== 'PUT') return true;
    if (seen && now.revision === seen.revision) return expired(seen.seenAt, monotonic(), this.timing);
    this.remember(key, { value: valueOf(now), revision: now.revision, seenAt: monotonic() });
    return false;
  }

  /** The leader deletes heartbeats silent for five TTLs (replicas gone for good: default names are random). */
  private async forgetDeparted(now: number): Promise<void> {
    for (const k of this.keys('replica.')) {
      const e = this.mirror.get(k)!;
      if (k !== `replica.${this.id}` && now - e.seenAt >= 5 * this.timing.ttlMs)
        await this.remove(k, e.revision).catch(() => {});
    }
  }

  /** Stops at once, giving back nothing, as a killed process would (tests): its leases expire. */
  async abandon(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.watcher?.stop();
    await this.nc.close().catch(() => {});
  }

  /** Stops renewing and gives back what it holds (leases of a stopped replica move at once). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
    for (const k of [...this.keys('lease.'), 'leader']) {
      const s = this.seen(k);
      if (s?.replica === this.id) await this.remove(k, s.revision).catch(() => {});
    }
    const beat = this.mirror.get(`replica.${this.id}`);
    if (beat) await this.remove(`replica.${this.id}`, beat.revision).catch(() => {});
    await this.nc.drain().catch(() => {});
  }
}
