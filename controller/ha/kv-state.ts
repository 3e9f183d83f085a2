// Owns the controller's state in the JetStream KV bucket shared by its replicas: the fleet-wide part
// (applied revision, pull request heads, comment ids, the deploy report) in one key that only the
// leader writes, and each host's part (fingerprint, retry, drift issue, history, suspension, last
// result) in a key of its own. Writes are compare-and-set on the revision read; a conflict is merged
// field by field (what this replica changed wins, what it left alone is taken from the other writer)
// and written again. splitState/joinState are pure and tested as tables.
import type { Logger } from 'pino';
import type { ControllerState, HostResult } from '../gitops/state.js';
import { CONTROLLER_HISTORY_LIMIT, emptyState } from '../gitops/state.js';
import { isConflict, type Coordinator } from './coordinator.js';
import { byCodePoint } from '../util/order.js';

export const CONTROLLER_KEY = 'state.controller';
export const hostKey = (host: string) => `state.host.${host}`;
const HOST_PREFIX = 'state.host.';

/** The fields of ControllerState kept per host, and the name each has in a host's key. */
const PER_HOST = {
  hostFingerprints: 'fingerprint',
  retries: 'retry',
  driftIssues: 'driftIssue',
  history: 'history',
  suspended: 'suspended',
  results: 'result',
} as const;
type PerHost = keyof typeof PER_HOST;

type Doc = Record<string, unknown>;

/** The state as the bucket's documents: key -> value (a key without fields is left out). */
export function splitState(s: ControllerState): Map<string, Doc> {
  const out = new Map<string, Doc>();
  const global: Doc = {};
  for (const [k, v] of Object.entries(s)) if (!(k in PER_HOST) && v !== undefined) global[k] = v;
  out.set(CONTROLLER_KEY, global);
  for (const [field, name] of Object.entries(PER_HOST) as [PerHost, string][]) {
    for (const [host, v] of Object.entries((s[field] ?? {}) as Record<string, unknown>)) {
      if (v === undefined) continue;
      const key = hostKey(host);
      out.set(key, { ...out.get(key), [name]: v });
    }
  }
  return out;
}

/** The state from the bucket's documents (the inverse of splitState). */
export function joinState(docs: ReadonlyMap<string, unknown>): ControllerState {
  const s = emptyState() as ControllerState & Record<string, unknown>;
  const global = docs.get(CONTROLLER_KEY);
  if (global && typeof global === 'object') Object.assign(s, global);
  for (const [key, doc] of docs) {
    if (!key.startsWith(HOST_PREFIX) || !doc || typeof doc !== 'object') continue;
    const host = key.slice(HOST_PREFIX.length);
    for (const [field, name] of Object.entries(PER_HOST) as [PerHost, string][]) {
      const v = (doc as Doc)[name];
      if (v === undefined) continue;
      s[field] = { ...(s[field] as Record<string, unknown> | undefined), [host]: v } as never;
    }
  }
  return s;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** Fields of a host's record that describe one outcome together: taken together from one writer. */
const OUTCOME = ['fingerprint', 'retry', 'result'];

/**
 * A three-way merge of one document: the fields `ours` changed from `base` win over `theirs`; a host's
 * outcome fields (fingerprint, retry, result) go together; its history keeps the entries of both.
 */
export function mergeDoc(base: Doc | undefined, ours: Doc | undefined, theirs: Doc | undefined): Doc | undefined {
  const out: Doc = { ...theirs };
  const fields = new Set([...Object.keys(base ?? {}), ...Object.keys(ours ?? {})]);
  const changed = [...fields].filter((f) => !same(base?.[f], ours?.[f]));
  if (changed.some((f) => OUTCOME.includes(f))) for (const f of OUTCOME) if (!changed.includes(f)) changed.push(f);
  for (const f of changed) {
    if (ours?.[f] === undefined) delete out[f];
    else if (f === 'history' && Array.isArray(ours[f]) && Array.isArray(theirs?.[f])) {
      // Both wrote applies: every entry kept once, in time order, the last ones.
      const all = [...(theirs[f] as { at?: string }[]), ...(ours[f] as { at?: string }[])];
      const seen = new Set<string>();
      const union = all.filter((e) => !seen.has(JSON.stringify(e)) && seen.add(JSON.stringify(e)));
      out[f] = union.sort((a, b) => byCodePoint(String(a.at), String(b.at))).slice(-CONTROLLER_HISTORY_LIMIT);
    } else out[f] = ours[f];
  }
  return Object.keys(out).length ? out : undefined;
}

/** The state of the replicas, in the bucket: what the controller loads at each tick and saves. */
export class KvStateStore {
  private base = new Map<string, Doc>();
  private queue: Promise<void> = Promise.resolve();
  recovered?: string;

  constructor(
    private readonly c: Coordinator,
    private readonly log: Logger,
  ) {}

  /** The state as mirrored now (every replica's last writes as far as the watch delivered them). */
  load(): ControllerState {
    const docs = new Map<string, unknown>();
    for (const key of [CONTROLLER_KEY, ...this.c.keys(HOST_PREFIX)]) {
      const e = this.c.get(key);
      if (e) docs.set(key, e.value);
    }
    const s = joinState(docs);
    this.base = splitState(s);
    return s;
  }

  /**
   * Writes the documents that changed since load (in order, one save after the other). Only the
   * leader writes the fleet-wide document; a replica that is not alive writes nothing.
   */
  save(s: ControllerState): Promise<void> {
    const next = splitState(s);
    const base = this.base;
    this.base = next;
    const keys = new Set([...base.keys(), ...next.keys()]);
    const changed = [...keys].filter((k) => !same(base.get(k), next.get(k)));
    const run = async () => {
      for (const key of changed) {
        if (!this.c.alive()) return this.log.warn('replication: not alive, state not written');
        if (key === CONTROLLER_KEY && !this.c.isLeader()) continue;
        await this.writeMerged(key, base.get(key), next.get(key));
      }
    };
    this.queue = this.queue.then(run).catch((e: Error) => this.log.warn({ err: e.message }, 'state not written'));
    return this.queue;
  }

  /** Resolves when every save so far is written (or failed). */
  flush(): Promise<void> {
    return this.queue;
  }

  private async writeMerged(key: string, base: Doc | undefined, ours: Doc | undefined): Promise<void> {
    let theirs = this.c.get(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      // Asked again before each attempt: a replica deposed meanwhile writes the fleet's record no more.
      if (key === CONTROLLER_KEY && !this.c.isLeader()) return;
      const value = mergeDoc(base, ours, theirs?.value as Doc | undefined);
      try {
        if (value === undefined) {
          if (theirs) await this.c.remove(key, theirs.revision);
        } else if (!same(value, theirs?.value) || !theirs) await this.c.write(key, value, theirs?.revision);
        return;
      } catch (e) {
        if (!isConflict(e)) throw e;
        theirs = await this.c.fresh(key);
      }
    }
    throw new Error(`${key}: changed by another replica five times in a row`);
  }
}

export type { HostResult };
