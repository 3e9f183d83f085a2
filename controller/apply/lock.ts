// Owns the per-host apply lock (built complete, then renamed into place, with an owner file holding a
// token and a lease): taking it, taking over one whose owner is provably gone or whose lease ran out
// (and saying so), and refusing anything else with who holds it and until when.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { LockInfo } from '../observe/facts.js';
import type { SshSession } from '../transport/ssh.js';
import { LOCK_HELD, lockAcquire, lockRelease, lockTakeOver, parseHeldLock } from './commands.js';

/** Tokens of locks this process took and could not release (e.g. the SSH connection was cut). */
const abandoned = new Set<string>();
/** An apply's lease on its lock: past it, an owner on another machine (or no owner at all) is presumed gone. */
export const LEASE_MS = 30 * 60 * 1000;

/**
 * A controller replica's lease on the host (controller/ha): written into the lock, so that the lock and
 * the lease agree. A lock whose replica is no longer alive (its heartbeat silent for the lease's TTL, so
 * its leases are being taken over) is taken over by the replica that holds the host's lease now.
 */
export interface LockLease {
  replica: string;
  /** This process of the replica (a replica restarted under its name is another session). */
  session: string;
  /** Whether that process of that replica is gone: its heartbeat did not change for the TTL, or is another's. */
  gone(replica: string, session?: string): boolean;
}

export class LockError extends Error {
  constructor(message: string) {
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

/** A lock found held on a host: its owner file (absent for an ownerless lock) and its age. */
export interface HeldLockFact {
  info?: LockInfo;
  ageSec: number;
}

/** When the lease of a held lock ends: its owner's word, else (no owner file) its age plus the lease. */
export function leaseEnd(held: HeldLockFact, now: number): number {
  const expires = held.info?.expiresAt ? Date.parse(held.info.expiresAt) : NaN;
  if (Number.isFinite(expires)) return expires;
  const since = held.info?.since ? Date.parse(held.info.since) : now - held.ageSec * 1000;
  return since + LEASE_MS;
}

/**
 * Why a held lock may be taken over, or undefined when it must be respected: this process abandoned
 * it; its natsfleet process on this machine is gone; or its lease has run out (an owner on another
 * machine, or no owner data at all).
 */
export function takeOverReason(held: HeldLockFact, now = Date.now(), lease?: LockLease): string | undefined {
  const i = held.info;
  if (i && abandoned.has(i.token)) return 'this process lost its connection while holding it';
  if (i?.replica && lease && lease.gone(i.replica, i.session))
    return (
      `its controller replica ${i.replica} is gone (no heartbeat for the lease's TTL); ` +
      `${lease.replica} holds the host's lease now`
    );
  if (i && i.host === hostname() && i.pid !== process.pid && !pidAlive(i.pid)) {
    return `its owner ${i.owner} (pid ${i.pid}) on this machine is gone`;
  }
  if (now > leaseEnd(held, now)) {
    return i
      ? `its lease ended at ${new Date(leaseEnd(held, now)).toISOString()} (${i.owner}, pid ${i.pid}, since ${i.since})`
      : `it has no owner data and is ${held.ageSec} s old (lease ${LEASE_MS / 60_000} min)`;
  }
  return undefined;
}

/** A held lock in words, for errors, plans and status. */
export function describeLock(held: HeldLockFact, now = Date.now()): string {
  const until = new Date(leaseEnd(held, now)).toISOString();
  return held.info
    ? `locked by ${held.info.owner} (pid ${held.info.pid}) since ${held.info.since}, lease until ${until}`
    : `a lock without owner data, ${held.ageSec} s old, lease until ${until}`;
}

export interface HeldLock {
  token: string;
  release(): Promise<void>;
  abandon(): void;
  /** Set when an abandoned lock was taken over: why (said in the apply's result). */
  tookOver?: string;
}

/** The owner file of a lock this process is about to take (its token names the apply). */
export function newLockInfo(now = new Date(), lease?: LockLease): LockInfo {
  return {
    ...(lease ? { replica: lease.replica, session: lease.session } : {}),
    owner: `natsfleet@${hostname()}`,
    host: hostname(),
    pid: process.pid,
    token: randomUUID(),
    since: now.toISOString(),
    expiresAt: new Date(now.getTime() + LEASE_MS).toISOString(),
  };
}

/** The handle of a lock taken with `info` (by lockAcquire, or by the prepare script that starts with it). */
export function heldLock(session: SshSession, info: LockInfo, tookOver?: string): HeldLock {
  return {
    token: info.token,
    tookOver,
    release: async () => {
      await session.runScript(lockRelease(info.token));
    },
    abandon: () => abandoned.add(info.token),
  };
}

export async function acquireLock(session: SshSession, now = new Date(), lease?: LockLease): Promise<HeldLock> {
  const info = newLockInfo(now, lease);
  let r = await session.runScript(lockAcquire(info));
  let tookOver: string | undefined;
  if (r.code === LOCK_HELD) {
    const held = parseHeldLock(r.stdout);
    const why = takeOverReason(held, now.getTime(), lease);
    if (!why) throw new LockError(`${describeLock(held, now.getTime())}: another apply is running`);
    tookOver = `took over a lock: ${why}`;
    r = await session.runScript(lockTakeOver(held.info?.token, info));
    if (held.info) abandoned.delete(held.info.token);
    if (r.code === LOCK_HELD) {
      throw new LockError(`${describeLock(parseHeldLock(r.stdout), now.getTime())}: another apply took it first`);
    }
  }
  if (r.code !== 0) throw new LockError(`could not take the lock (exit ${r.code}): ${r.stderr.trim()}`);
  return heldLock(session, info, tookOver);
}
