// Owns the controller's durable state in its state directory, written atomically (temp file +
// rename), so that a crash or restart loses no deploy and posts no duplicate comment or issue. The
// directory is 0700 and the file 0600 whatever the umask (an existing directory is tightened too).
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HostRetry {
  revision: string;
  attempts: number;
  nextAttemptAt: number;
  lastError: string;
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
}

export const emptyState = (): ControllerState => ({
  hostFingerprints: {},
  retries: {},
  pullHeads: {},
  planComments: {},
  driftIssues: {},
});

export class StateStore {
  private readonly path: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    this.path = join(dir, 'state.json');
  }

  load(): ControllerState {
    try {
      return { ...emptyState(), ...JSON.parse(readFileSync(this.path, 'utf8')) };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
      throw new Error(`cannot read controller state ${this.path}: ${(e as Error).message}`);
    }
  }

  save(state: ControllerState): void {
    const tmp = `${this.path}.tmp-${process.pid}`;
    writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.path);
  }
}
