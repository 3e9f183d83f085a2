// Owns SSH connections across hosts: one session per host, reused by every operation on it and
// re-opened when it dropped (the dead one closed, so nothing leaks); one session per jump host, shared by
// every host reached through it (re-opened likewise); and bounded parallelism across hosts.
import type { HostSpec } from '../manifest/host-spec.js';
import { jumpTarget, SshSession, type SshAuth, type SshTarget } from '../transport/ssh.js';

/** A session's identity: the address, user, pinned key, become and jump host (a change is a new session). */
const keyOf = (t: SshTarget) =>
  `${t.user}@${t.host}:${t.port}|${t.hostKey}|${t.become ?? ''}|${JSON.stringify(jumpTarget(t) ?? null)}`;

export class SessionPool {
  private readonly sessions = new Map<string, Promise<SshSession>>();
  /** Jump host sessions, by keyOf of the jump host. */
  private readonly jumps = new Map<string, Promise<SshSession>>();

  /**
   * @param auth the credentials, for every host and jump host: resolveSshAuth's (transport/auth.ts) or a key
   * @param connectTimeoutMs deadline of a connection (TCP, SSH banner, handshake, authentication)
   * @param maxStepMs optional upper bound on every remote step's deadline on the pool's sessions
   */
  constructor(
    private readonly auth: SshAuth,
    private readonly connectTimeoutMs = 15_000,
    private readonly maxStepMs?: number,
  ) {}

  async get(h: HostSpec): Promise<SshSession> {
    return this.session(this.sessions, h.ssh, (t) => this.connect(t));
  }

  /** The open session of `t` in `map`, or a new one from `open` (a dead one is closed and replaced). */
  private async session(
    map: Map<string, Promise<SshSession>>,
    t: SshTarget,
    open: (t: SshTarget) => Promise<SshSession>,
  ): Promise<SshSession> {
    const key = keyOf(t);
    const existing = map.get(key);
    if (existing) {
      const s = await existing.catch(() => undefined);
      if (s?.isOpen) return s;
      // Another caller may have replaced it meanwhile: use theirs.
      const current = map.get(key);
      if (current && current !== existing) return this.session(map, t, open);
      s?.close();
    }
    const p = open(t);
    map.set(key, p);
    p.catch(() => {
      if (map.get(key) === p) map.delete(key);
    });
    return p;
  }

  private async connect(t: SshTarget): Promise<SshSession> {
    const opts = { timeoutMs: this.connectTimeoutMs, maxStepMs: this.maxStepMs };
    const hop = jumpTarget(t);
    if (!hop) return SshSession.connect(t, this.auth, opts);
    const jump = await this.session(this.jumps, hop, (j) =>
      // Shared by the hosts behind it: named as the jump host, not as any one host's.
      SshSession.connect(j, this.auth, { timeoutMs: this.connectTimeoutMs, role: 'jump host' }),
    );
    try {
      return await SshSession.connect(t, this.auth, { ...opts, jump });
    } catch (e) {
      // A jump session that died while forwarding is dropped, so the next use reconnects it.
      if (!jump.isOpen) this.jumps.delete(keyOf(hop));
      throw e;
    }
  }

  /** Drops a host's session (after an error) so the next use reconnects. */
  async drop(h: HostSpec): Promise<void> {
    for (const [key, p] of this.sessions) {
      if (key.startsWith(`${h.ssh.user}@${h.ssh.host}:${h.ssh.port}|`)) {
        this.sessions.delete(key);
        (await p.catch(() => undefined))?.close();
      }
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.sessions.values(), ...this.jumps.values()];
    this.sessions.clear();
    this.jumps.clear();
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
