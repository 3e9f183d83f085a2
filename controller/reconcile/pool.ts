// Owns SSH connections across hosts, kept between sweeps: one session per host, reused by every operation
// on it, with SSH keepalive; a bound on open connections (past it, the least recently used idle ones are
// closed; their sessions reconnect when used again); a connection found dead reopened in place, once per
// step and only when nothing ran (see SshSession.exec); one session per jump host, shared by every host
// reached through it; hosts no longer managed forgotten (retain); and bounded parallelism across hosts.
import { readFileSync } from 'node:fs';
import type { HostSpec } from '../manifest/host-spec.js';
import { jumpTarget, SshSession, type ConnectionHooks, type SshAuth, type SshTarget } from '../transport/ssh.js';

/** A session's identity: the address, user, pinned key, become and jump host (a change is a new session). */
const keyOf = (t: SshTarget) =>
  `${t.user}@${t.host}:${t.port}|${t.hostKey}|${t.become ?? ''}|${JSON.stringify(jumpTarget(t) ?? null)}`;
const addressOf = (t: SshTarget) => `${t.user}@${t.host}:${t.port}`;

export interface PoolOptions {
  /** Deadline of a connection (TCP, SSH banner, handshake, authentication). Default 15 s. */
  connectTimeoutMs?: number;
  /** Optional upper bound on every remote step's deadline on the pool's sessions. */
  maxStepMs?: number;
  /**
   * Open connections to hosts at most (jump hosts aside); past it the least recently used idle ones are
   * closed (a busy one never is: the bound can be exceeded while every connection runs a step). Default:
   * half the process's open-file limit (each connection is a socket), at least 64.
   */
  maxOpen?: number;
  /**
   * SSH keepalive of kept connections: a probe after this long without traffic. Default 30 s: it keeps
   * NAT and firewall state and frees connections that died (10,000 idle ones: 333 probes a second); a
   * connection that died since is found at its next use anyway, and reopened.
   */
  keepaliveIntervalMs?: number;
  /** Unanswered probes before a connection is dropped (and reopened on its next use). Default 3. */
  keepaliveCountMax?: number;
  /** The most output a command may return (see ExecOptions.maxOutputBytes). Default 16 MiB. */
  maxOutputBytes?: number;
}

/** What the pool did: connections opened (first and again), and closed for the bound. */
export interface PoolStats {
  /** Connections to hosts open now. */
  open: number;
  /** Sessions known (open or not). */
  sessions: number;
  connects: number;
  reconnects: number;
  evictions: number;
}

/** The soft limit on open files (Linux: /proc/self/limits), or undefined elsewhere. */
function openFileLimit(): number | undefined {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export class SessionPool {
  /** Host sessions by keyOf, least recently asked for first. */
  private readonly sessions = new Map<string, Promise<SshSession>>();
  /** Keys of the sessions, by address (drop). */
  private readonly byAddress = new Map<string, Set<string>>();
  /** Jump host sessions, by keyOf of the jump host. */
  private readonly jumps = new Map<string, Promise<SshSession>>();
  /** Host sessions whose connection is open, least recently used first. */
  private readonly open = new Map<SshSession, true>();
  private readonly counts = { connects: 0, reconnects: 0, evictions: 0 };
  /** Sessions that were open once: their next opening is a reconnect. */
  private readonly seen = new WeakSet<SshSession>();
  private readonly opts: Required<Omit<PoolOptions, 'maxStepMs'>> & Pick<PoolOptions, 'maxStepMs'>;
  private readonly hooks: ConnectionHooks = {
    opened: (s) => {
      if (this.seen.has(s)) this.counts.reconnects++;
      else this.seen.add(s);
      this.open.delete(s);
      this.open.set(s, true);
      this.evict(s);
    },
    closed: (s) => void this.open.delete(s),
  };

  /**
   * @param auth the credentials, for every host and jump host: resolveSshAuth's (transport/auth.ts) or a key
   * @param options PoolOptions, or (as before) the connection deadline in ms
   * @param maxStepMs optional upper bound on every remote step's deadline (also PoolOptions.maxStepMs)
   */
  constructor(
    private readonly auth: SshAuth,
    options: PoolOptions | number = {},
    maxStepMs?: number,
  ) {
    const o = typeof options === 'number' ? { connectTimeoutMs: options, maxStepMs } : options;
    this.opts = {
      connectTimeoutMs: o.connectTimeoutMs ?? 15_000,
      maxStepMs: o.maxStepMs ?? maxStepMs,
      maxOpen: o.maxOpen ?? Math.max(64, Math.floor((openFileLimit() ?? 2048) / 2)),
      keepaliveIntervalMs: o.keepaliveIntervalMs ?? 30_000,
      keepaliveCountMax: o.keepaliveCountMax ?? 3,
      maxOutputBytes: o.maxOutputBytes ?? 16 * 1024 * 1024,
    };
  }

  /** The host's session, connected: kept from an earlier use (reopened when it died), or a new one. */
  async get(h: HostSpec): Promise<SshSession> {
    const key = keyOf(h.ssh);
    const existing = this.sessions.get(key);
    if (existing) {
      this.sessions.delete(key); // most recently asked for
      this.sessions.set(key, existing);
      const s = await existing.catch(() => undefined);
      if (s && this.sessions.get(key) === existing) {
        if (this.open.delete(s)) this.open.set(s, true);
        if (!s.isOpen) await s.reconnect();
        return s;
      }
      // Its connection failed, or it was dropped meanwhile: another caller's replacement, or a new one.
      const current = this.sessions.get(key);
      if (current && current !== existing) return this.get(h);
    }
    const p = this.connect(h.ssh);
    this.sessions.set(key, p);
    const address = addressOf(h.ssh);
    this.byAddress.set(address, (this.byAddress.get(address) ?? new Set()).add(key));
    p.catch(() => {
      if (this.sessions.get(key) === p) this.forget(key, address);
    });
    return p;
  }

  private forget(key: string, address: string): Promise<SshSession> | undefined {
    const p = this.sessions.get(key);
    this.sessions.delete(key);
    const keys = this.byAddress.get(address);
    keys?.delete(key);
    if (keys?.size === 0) this.byAddress.delete(address);
    return p;
  }

  private connectOptions() {
    return {
      timeoutMs: this.opts.connectTimeoutMs,
      keepaliveIntervalMs: this.opts.keepaliveIntervalMs,
      keepaliveCountMax: this.opts.keepaliveCountMax,
      maxOutputBytes: this.opts.maxOutputBytes,
      reconnect: true,
    };
  }

  private async connect(t: SshTarget): Promise<SshSession> {
    const opts = { ...this.connectOptions(), maxStepMs: this.opts.maxStepMs, hooks: this.hooks };
    this.counts.connects++;
    const hop = jumpTarget(t);
    if (!hop) return SshSession.connect(t, this.auth, opts);
    // Shared by the hosts behind it, named as the jump host (not as any one host's); it reconnects in place.
    const jumpKey = keyOf(hop);
    let jump = this.jumps.get(jumpKey);
    if (!jump) {
      jump = SshSession.connect(hop, this.auth, { ...this.connectOptions(), role: 'jump host' });
      this.jumps.set(jumpKey, jump);
      const p = jump;
      p.catch(() => {
        if (this.jumps.get(jumpKey) === p) this.jumps.delete(jumpKey);
      });
    }
    return SshSession.connect(t, this.auth, { ...opts, jump: await jump });
  }

  /** Past the bound: closes the least recently used idle connections (never `keep`, just opened). */
  private evict(keep: SshSession): void {
    if (this.open.size <= this.opts.maxOpen) return;
    for (const s of this.open.keys()) {
      if (this.open.size <= this.opts.maxOpen) break;
      if (s === keep || s.busy) continue;
      this.open.delete(s);
      s.disconnect();
      this.counts.evictions++;
    }
  }

  /** Drops a host's sessions (after an error): closed for good, so the next get connects anew. */
  async drop(h: HostSpec): Promise<void> {
    const address = addressOf(h.ssh);
    for (const key of [...(this.byAddress.get(address) ?? [])]) {
      const p = this.forget(key, address);
      const s = await p?.catch(() => undefined);
      if (s) {
        this.open.delete(s);
        s.close();
      }
    }
  }

  /**
   * Keeps the sessions of `hosts` only: the others' (hosts no longer managed, or whose address, key or
   * jump host changed) are closed. For a long-running caller, after loading the hosts of a revision.
   */
  async retain(hosts: readonly HostSpec[]): Promise<void> {
    const keep = new Set(hosts.map((h) => keyOf(h.ssh)));
    const jumpsKept = new Set(hosts.flatMap((h) => (jumpTarget(h.ssh) ? [keyOf(jumpTarget(h.ssh)!)] : [])));
    const gone: Promise<SshSession>[] = [];
    for (const [key, p] of [...this.sessions]) {
      if (keep.has(key)) continue;
      this.forget(key, key.slice(0, key.indexOf('|')));
      gone.push(p);
    }
    for (const [key, p] of [...this.jumps]) {
      if (jumpsKept.has(key)) continue;
      this.jumps.delete(key);
      gone.push(p);
    }
    for (const p of gone) {
      const s = await p.catch(() => undefined);
      if (s) {
        this.open.delete(s);
        s.close();
      }
    }
  }

  stats(): PoolStats {
    return { open: this.open.size, sessions: this.sessions.size, ...this.counts };
  }

  async closeAll(): Promise<void> {
    const all = [...this.sessions.values(), ...this.jumps.values()];
    this.sessions.clear();
    this.byAddress.clear();
    this.jumps.clear();
    this.open.clear();
    for (const p of all) (await p.catch(() => undefined))?.close();
  }
}

/** Runs `fn` over `items` with at most `limit` at once, keeping order in the result. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  });
  await Promise.all(workers);
  return out;
}
