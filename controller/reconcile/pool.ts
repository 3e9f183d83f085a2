// Owns SSH connections across hosts: one session per host, reused by every operation on it and
// re-opened when it dropped (the dead one closed, so nothing leaks), and bounded parallelism across hosts.
import type { HostSpec } from '../manifest/host-spec.js';
import { SshSession, type SshAuth } from '../transport/ssh.js';

export class SessionPool {
  private readonly sessions = new Map<string, Promise<SshSession>>();

  /**
   * @param connectTimeoutMs deadline of a connection (TCP, SSH banner, handshake, authentication)
   * @param maxStepMs optional upper bound on every remote step's deadline on the pool's sessions
   */
  constructor(
    private readonly auth: SshAuth,
    private readonly connectTimeoutMs = 15_000,
    private readonly maxStepMs?: number,
  ) {}

  async get(h: HostSpec): Promise<SshSession> {
    const key = `${h.ssh.user}@${h.ssh.host}:${h.ssh.port}|${h.ssh.hostKey}`;
    const existing = this.sessions.get(key);
    if (existing) {
      const s = await existing.catch(() => undefined);
      if (s?.isOpen) return s;
      // Another caller may have replaced it meanwhile: use theirs.
      const current = this.sessions.get(key);
      if (current && current !== existing) return this.get(h);
      s?.close();
    }
    const p = SshSession.connect(h.ssh, this.auth, { timeoutMs: this.connectTimeoutMs, maxStepMs: this.maxStepMs });
    this.sessions.set(key, p);
    p.catch(() => {
      if (this.sessions.get(key) === p) this.sessions.delete(key);
    });
    return p;
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
    const all = [...this.sessions.values()];
    this.sessions.clear();
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
