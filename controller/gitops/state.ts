// Owns the controller's durable state in its state directory, written atomically (temp file +
// rename), so that a crash or restart loses no deploy and posts no duplicate comment or issue. The
// directory is 0700 and the file 0600 whatever the umask (an existing directory is tightened too).
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApplyResult } from '../apply/result.js';

export interface HostRetry {
  revision: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string;
  /** Why it failed (see FailureReason): decides how soon it is tried again. */
  reason?: string;
}

/** The results reported for one revision so far: a retry's results join them (the comment is edited). */
export interface DeployReport {
  revision: string;
  results: ApplyResult[];
  unreachable: { host: string; error: string }[];
  /** Hosts whose manifest the revision deleted that `prune: true` decommissions (their rows are results). */
  pruned?: string[];
}

/** A suspension of one host through the controller's API (`natsfleet suspend`), until `natsfleet resume`. */
export interface Suspension {
  /** When it was asked (ISO 8601). */
  since: string;
  reason?: string;
}

/** One apply of a host as the controller remembers it (the host keeps its own history too). */
export interface AppliedEntry {
  revision: string;
  /** When it ended (ISO 8601). */
  at: string;
  /** applied, rolled-back or failed (see Outcome). */
  outcome: string;
  steps: string[];
  /** Why it did not succeed (see FailureReason). */
  reason?: string;
  /** The same failure of the same revision, retried: counted on one entry. */
  attempts?: number;
}

/** How many applies per host the controller's state keeps. */
export const CONTROLLER_HISTORY_LIMIT = 20;

/**
 * A host's applies with `e` added, the last `limit` kept: unchanged and blocked runs are not applies; a
 * failure repeating the last one (same revision, outcome and reason: a retry) is counted on it instead.
 */
export function withApply(
  list: readonly AppliedEntry[] | undefined,
  e: AppliedEntry,
  limit = CONTROLLER_HISTORY_LIMIT,
): AppliedEntry[] {
  const all = [...(list ?? [])];
  if (e.outcome === 'unchanged' || e.outcome === 'blocked') return all;
  const last = all.at(-1);
  const same = (a: AppliedEntry) => [a.revision, a.outcome, a.reason ?? ''].join('\n');
  if (last && e.outcome !== 'applied' && same(last) === same(e))
    all[all.length - 1] = { ...e, attempts: (last.attempts ?? 1) + 1 };
  else all.push(e);
  return all.slice(-limit);
}

/** A host's last run of a revision, kept when replicas share the work (the leader's deploy report reads them). */
export interface HostResult {
  revision: string;
  apply?: ApplyResult;
  /** The host could not be reached or rendered. */
  error?: string;
}

export interface ControllerState {
  /** Last revision of the branch that was fully handled (applied and reported). */
  appliedRevision?: string;
  /** Last branch revision that was found invalid (reported once). */
  invalidRevision?: string;
  /** Fingerprint of what was last applied successfully, per host. */
  hostFingerprints: Record<string, string>;
  /** Failed hosts waiting for a retry with backoff. */
  retries: Record<string, HostRetry>;
  /** Pull request number -> head commit last planned. */
  pullHeads: Record<string, string>;
  /** Pull request number -> id of its plan comment. */
  planComments: Record<string, number>;
  /** Host -> open drift issue number and the fingerprint of the drift it reports. */
  driftIssues: Record<string, { number: number; fingerprint: string }>;
  lastSuccessfulSync?: string;
  /** What the deploy comment of the last revision applied reports (retries edit it in place). */
  lastDeploy?: DeployReport;
  /** Host -> its last applies by this controller, oldest first (at most CONTROLLER_HISTORY_LIMIT). */
  history?: Record<string, AppliedEntry[]>;
  /** Hosts suspended through the API (`natsfleet suspend`) until resumed. */
  suspended: Record<string, Suspension>;
  /**
   * Hosts whose manifest left the branch and that `prune: true` decommissions -> the revision whose
   * manifest is used (its SSH target and host key): kept until the decommission succeeded (then forgotten).
   */
  pruning?: Record<string, string>;
  /** Host -> its last run, written by the replica that ran it (only when replicas share the work). */
  results?: Record<string, HostResult>;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Why a parsed state file does not have the shape of ControllerState, or undefined. */
export function stateShapeProblem(v: unknown): string | undefined {
  if (!isRecord(v)) return 'it is not an object';
  for (const k of ['appliedRevision', 'invalidRevision', 'lastSuccessfulSync'] as const) {
    if (v[k] !== undefined && typeof v[k] !== 'string') return `${k} is not a string`;
  }
  if (v.lastDeploy !== undefined) {
    const d = v.lastDeploy;
    if (!isRecord(d) || typeof d.revision !== 'string' || !Array.isArray(d.results) || !Array.isArray(d.unreachable))
      return 'lastDeploy has the wrong shape';
    if (!d.results.every((r) => isRecord(r) && typeof r.host === 'string' && typeof r.outcome === 'string'))
      return 'lastDeploy.results has the wrong shape';
    if (!d.unreachable.every((u) => isRecord(u) && typeof u.host === 'string' && typeof u.error === 'string'))
      return 'lastDeploy.unreachable has the wrong shape';
  }
  const maps: Record<string, (x: unknown) => boolean> = {
    hostFingerprints: (x) => typeof x === 'string',
    retries: (x) =>
      isRecord(x) &&
      typeof x.revision === 'string' &&
      typeof x.attempts === 'number' &&
      typeof x.nextAttemptAt === 'number',
    pullHeads: (x) => typeof x === 'string',
    history: (x) =>
      Array.isArray(x) &&
      x.every(
        (e) =>
          isRecord(e) &&
          typeof e.revision === 'string' &&
          typeof e.at === 'string' &&
          typeof e.outcome === 'string' &&
          Array.isArray(e.steps),
      ),
    pruning: (x) => typeof x === 'string',
    results: (x) => isRecord(x) && typeof x.revision === 'string',
    planComments: (x) => typeof x === 'number',
    driftIssues: (x) => isRecord(x) && typeof x.number === 'number' && typeof x.fingerprint === 'string',
    suspended: (x) =>
      isRecord(x) && typeof x.since === 'string' && (x.reason === undefined || typeof x.reason === 'string'),
  };
  for (const [k, ok] of Object.entries(maps)) {
    if (v[k] === undefined) continue;
    if (!isRecord(v[k])) return `${k} is not an object`;
    const bad = Object.entries(v[k] as Record<string, unknown>).find(([, x]) => !ok(x));
    if (bad) return `${k}.${bad[0]} has the wrong shape`;
  }
  return undefined;
}

export const emptyState = (): ControllerState => ({
  hostFingerprints: {},
  retries: {},
  pullHeads: {},
  planComments: {},
  driftIssues: {},
  suspended: {},
});

/** Where the controller keeps its state: a directory (StateStore) or the replicas' KV bucket. */
export interface StateBackend {
  load(): ControllerState;
  save(state: ControllerState): void | Promise<void>;
  /** Resolves when every save so far is written (a KV store writes asynchronously). */
  flush?(): Promise<void>;
  /** Set by load() when the saved state was unusable and set aside: the reason, for the log. */
  recovered?: string;
}

export class StateStore implements StateBackend {
  private readonly path: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    this.path = join(dir, 'state.json');
  }

  /** Set by load() when the state file was unreadable and moved aside: the reason, for the log. */
  recovered?: string;

  /**
   * The saved state; a missing file is a fresh start. An empty, truncated or wrong-shaped file is moved
   * aside (state.json.corrupt-<time>) and the controller starts fresh: deploys are idempotent (every
   * host is observed and re-applied only where it differs), comments and issues are found again by their
   * markers, so nothing is duplicated and nothing is lost.
   */
  load(): ControllerState {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new Error(`cannot read controller state ${this.path}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    let problem: string | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      problem = stateShapeProblem(parsed);
      if (!problem) return { ...emptyState(), ...(parsed as Partial<ControllerState>) };
    } catch {
      problem = text.trim() ? 'it is not valid JSON (truncated?)' : 'it is empty';
    }
    const aside = `${this.path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(this.path, aside);
    this.recovered = `controller state ${this.path} was unusable (${problem}): moved to ${aside}; starting fresh`;
    return emptyState();
  }

  save(state: ControllerState): void {
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
