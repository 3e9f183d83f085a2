// Owns the value an apply of one host ends with: its outcome, the host's health after it, what it
// did and how long it took (read by the CLI, the controller loop and the reports).
import type { HealthStatus, Step } from '../plan/types.js';

export type Outcome = 'unchanged' | 'applied' | 'blocked' | 'failed' | 'rolled-back';

export interface ApplyResult {
  host: string;
  outcome: Outcome;
  health: HealthStatus;
  steps: Step[];
  changedFiles: string[];
  error?: string;
  /** What an operator should know although it did not fail the apply (a lock taken over). */
  notes?: string[];
  durationMs: number;
}
