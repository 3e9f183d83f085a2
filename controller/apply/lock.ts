// Owns the per-host apply lock (an atomic mkdir on the host, with an info file naming its owner):
// taking it, taking over a lock that is provably ours and abandoned, and refusing anything else.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { LockInfo } from '../observe/facts.js';
import type { SshSession } from '../transport/ssh.js';
import { LOCK_HELD, lockAcquire, lockRelease, lockTakeOver } from './commands.js';

/** Tokens of locks this process took and could not release (e.g. the SSH connection was cut). */
const abandoned = new Set<string>();
export const STALE_AFTER_MS = 30 * 60 * 1000;

export class LockError extends Error {
  constructor(
    message: string,
    readonly stale: boolean,
  ) {
    super(message);
    this.name = 'LockError';
  }
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** A lock is ours to take over when this process abandoned it, or its natsfleet process on this machine is gone. */
export function canTakeOver(held: LockInfo): boolean {
  if (abandoned.has(held.token)) return true;
  return held.host === hostname() && held.pid !== process.pid && !pidAlive(held.pid);
}

export interface HeldLock {
  token: string;
  release(): Promise<void>;
  abandon(): void;
  tookOver?: LockInfo;
}

export async function acquireLock(session: SshSession, now = new Date()): Promise<HeldLock> {
  const info: LockInfo = {
    owner: `natsfleet@${hostname()}`,
    host: hostname(),
    pid: process.pid,
    token: randomUUID(),
    since: now.toISOString(),
  };
  let r = await session.runScript(lockAcquire(info));
  let tookOver: LockInfo | undefined;
  if (r.code === LOCK_HELD) {
    let held: LockInfo | undefined;
    try {
      held = JSON.parse(r.stdout);
    } catch {
      held = undefined;
    }
    if (held && canTakeOver(held)) {
      tookOver = held;
      r = await session.runScript(lockTakeOver(held.token, info));
      abandoned.delete(held.token);
    } else {
      const age = held ? now.getTime() - Date.parse(held.since) : Infinity;
      const who = held ? `${held.owner} (pid ${held.pid}) since ${held.since}` : 'an unknown owner';
      if (age > STALE_AFTER_MS) {
        throw new LockError(
          `stale lock held by ${who}; if no apply is running, remove it with \`natsfleet unlock\``,
          true,
        );
      }
      throw new LockError(`locked by ${who}: another apply is running`, false);
    }
  }
  if (r.code !== 0) throw new LockError(`could not take the lock (exit ${r.code}): ${r.stderr.trim()}`, false);
  return {
    token: info.token,
    tookOver,
    release: async () => {
      await session.runScript(lockRelease(info.token));
    },
    abandon: () => abandoned.add(info.token),
  };
}
