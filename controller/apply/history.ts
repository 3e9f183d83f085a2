// Owns the apply history natsfleet keeps on each host (`history.jsonl` in its state directory): one JSON
// line per apply that changed something (time, revision, outcome, service steps, natsfleet's version and
// who applied: the controller or a CLI user@machine), the last HISTORY_LIMIT kept. Which applies are
// recorded, the line itself, and reading the file back (newest first) are here; the shell that appends
// the line (verified, never partial) is apply/commands.ts's. No error text is ever recorded: only the
// closed vocabulary of failure reasons, so nothing a host or a secret said can land in it.
import { hostname, userInfo } from 'node:os';
import { packageVersion } from '../package-root.js';
import type { Step } from '../plan/types.js';
import type { FailureReason, Outcome } from './result.js';

/** How many applies a host's history keeps (the oldest lines go first). */
export const HISTORY_LIMIT = 100;

/** Who an apply by the controller is said to be by. */
export const CONTROLLER_ACTOR = 'controller';

export interface HistoryEntry {
  /** When the apply was recorded (ISO 8601). */
  at: string;
  revision: string;
  /** `applied`, or `rolled-back` (verification failed and the previous files were put back). */
  outcome: Outcome;
  /** The service steps the apply ran (or, rolled back, tried). */
  steps: Step[];
  /** Why it did not succeed (a rolled-back apply). */
  reason?: FailureReason;
  /** `controller`, or the CLI's `user@machine`. */
  by: string;
  /** The natsfleet version that applied. */
  version: string;
  durationMs?: number;
}

/** The outcomes a host's history records: an apply that changed the host (a rolled-back one too). */
export const recordedInHistory = (outcome: Outcome): boolean => outcome === 'applied' || outcome === 'rolled-back';

/** Who runs this process's CLI applies: `user@machine` (the uid when the user has no name). */
export function cliActor(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER ?? `uid-${process.getuid?.() ?? 'unknown'}`;
  }
  return `${user}@${hostname()}`;
}

/** The history line of one apply (its fields in a fixed order). */
export function historyEntry(x: {
  revision: string;
  outcome: Outcome;
  steps: readonly Step[];
  reason?: FailureReason;
  by: string;
  durationMs?: number;
  at?: Date;
}): HistoryEntry {
  return {
    at: (x.at ?? new Date()).toISOString(),
    revision: x.revision,
    outcome: x.outcome,
    steps: [...x.steps],
    ...(x.reason ? { reason: x.reason } : {}),
    by: x.by,
    version: packageVersion(),
    ...(x.durationMs !== undefined ? { durationMs: x.durationMs } : {}),
  };
}

/** One line of the history file: the entry as JSON (never a newline inside). */
export const historyLine = (e: HistoryEntry): string => JSON.stringify(e);

const isEntry = (v: unknown): v is HistoryEntry => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e.at === 'string' &&
    typeof e.revision === 'string' &&
    typeof e.outcome === 'string' &&
    Array.isArray(e.steps) &&
    e.steps.every((s) => typeof s === 'string') &&
    (e.by === undefined || typeof e.by === 'string') &&
    (e.version === undefined || typeof e.version === 'string')
  );
};

/** The history file's text as entries, newest first; a line that is not an entry is skipped. */
export function parseHistory(text: string): HistoryEntry[] {
  const out: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const v: unknown = JSON.parse(line);
      if (isEntry(v)) out.push({ ...v, by: v.by ?? '?', version: v.version ?? '?' });
    } catch {
      // not one of natsfleet's lines: skipped
    }
  }
  return out.reverse();
}
