// Owns the value an apply of one host ends with: its outcome, the host's health after it, what it
// did and how long it took (read by the CLI, the controller loop and the reports).
import type { HealthStatus, Step } from '../plan/types.js';

export type Outcome = 'unchanged' | 'applied' | 'blocked' | 'failed' | 'rolled-back';

/**
 * Why an apply (or the attempt to reach a host) did not succeed, as a closed vocabulary: retries and
 * reports decide on it, never on error text.
 */
export type FailureReason =
  | 'unreachable'
  | 'host-key-mismatch'
  | 'auth-failed'
  | 'secret-unavailable'
  | 'blocked'
  | 'locked'
  | 'staging-failed'
  | 'pull-failed'
  | 'config-rejected'
  | 'step-failed'
  | 'verify-failed'
  // A cluster member whose server cannot go down now without risking quorum (retried: it may recover).
  | 'quorum'
  // A cluster member not reached because the rollout stopped at an earlier member that failed.
  | 'rollout-halted'
  // A controller replica lost the host's lease before applying it: another replica applies it.
  | 'lease-lost'
  | 'internal';

/** Reasons a retry soon cannot cure: a person must change the manifest, a secret or the host. */
export const NEEDS_A_PERSON: readonly FailureReason[] = [
  'host-key-mismatch',
  'auth-failed',
  'secret-unavailable',
  'blocked',
  'config-rejected',
];

/** One definition of success: applied or unchanged, and the host ends healthy (or decommissioned). */
export const isSuccessful = (r: ApplyResult | undefined): boolean =>
  Boolean(
    r && (r.outcome === 'applied' || r.outcome === 'unchanged') && (r.health === 'Healthy' || r.health === 'Missing'),
  );

export interface ApplyResult {
  host: string;
  outcome: Outcome;
  health: HealthStatus;
  steps: Step[];
  changedFiles: string[];
  error?: string;
  /** Set whenever the outcome is blocked, failed or rolled-back. */
  reason?: FailureReason;
  /** What an operator should know although it did not fail the apply (a lock taken over). */
  notes?: string[];
  durationMs: number;
}

/** The result of a host the apply never ran on (blocked before it, or not reached in a rollout). */
export const notRun = (
  host: string,
  outcome: Outcome,
  error: string,
  reason: FailureReason,
  health: HealthStatus = 'Healthy',
): ApplyResult => ({ host, outcome, health, steps: [], changedFiles: [], error, reason, durationMs: 0 });
