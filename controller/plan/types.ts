// Owns the Plan value (Terraform-style): typed changes per host, each with an action, before/after
// and a reason, plus the service steps they imply. Serialisable; never holds a secret.
export type ChangeAction = 'create' | 'update' | 'delete' | 'no-op';

export interface FileState {
  mode: string;
  owner: string;
  group: string;
  sha256: string;
}

export interface FileChange {
  kind: 'file';
  path: string;
  action: ChangeAction;
  reason: string;
  before?: FileState;
  after?: FileState;
  /** Unified diff, secrets redacted. */
  diff?: string;
  /** The host no longer matches what natsfleet applied (someone changed it by hand). */
  drift: boolean;
  /** The content changes (not only mode or owner): drives the service steps. */
  contentChanged: boolean;
}

export interface DirChange {
  kind: 'dir';
  path: string;
  action: ChangeAction;
  reason: string;
  before?: { mode: string; owner: string; group: string };
  after?: { mode: string; owner: string; group: string };
  drift: boolean;
}

export type Change = FileChange | DirChange;

/** Service steps, in the order apply runs them. */
export const STEP_ORDER = [
  'pull',
  'test-config',
  'volume-create',
  'proxy-down',
  'stop',
  'disable',
  // Stops the renewal watch before its unit files go (TLS turned off).
  'tls-unwatch',
  'remove-container',
  'daemon-reload',
  'enable',
  // Enables and (re)starts the renewal watch (its path unit).
  'tls-watch',
  // Asks the proxy's certbot to renew a due certificate, before the reload that serves it.
  'renew-cert',
  'restart',
  'start',
  'reload',
  'proxy-up',
  'proxy-reload',
  // An interrupted apply whose steps all ran: verify it and record it (no service step repeated).
  'finish',
] as const;
export type Step = (typeof STEP_ORDER)[number];

export interface StepPlan {
  step: Step;
  reason: string;
}

export type SyncStatus = 'Synced' | 'OutOfSync' | 'Unknown';
export type HealthStatus = 'Healthy' | 'Progressing' | 'Degraded' | 'Missing';

export interface HostPlan {
  host: string;
  revision: string;
  state: 'present' | 'absent';
  /** Failed prerequisites: while any is set, apply changes nothing on the host. */
  blocked: string[];
  changes: Change[];
  steps: StepPlan[];
  /** One line per difference natsfleet did not apply. */
  drift: string[];
  /** What clients or operators must know before this apply (a client port turning TLS-only). */
  warnings?: string[];
  /** natsfleet takes over a NATS it did not deploy (a unit or container and no record of its own). */
  takeover?: string;
  sync: SyncStatus;
  health: HealthStatus;
  /** Why the host is Degraded or Progressing (health.ts). */
  healthReason?: string;
  /** For reports: NATS version and the last applied revision seen on the host. */
  natsVersion?: string;
  /** The NATS config keys the change touches (the rollout reads them: route credentials change together). */
  configKeys?: string[];
  applied?: { revision: string; at: string };
  /** An apply lock held on the host: who, since when, and until when its lease runs. */
  lock?: { owner?: string; since?: string; ageSec: number; expiresAt?: string };
  error?: string;
}

export const hasWork = (p: HostPlan) => p.changes.length > 0 || p.steps.length > 0;

/** One verdict per plan: the host could not be observed, is blocked, has work, or is in sync. */
export type PlanVerdict = 'unknown' | 'blocked' | 'change' | 'unchanged';
export const planVerdict = (p: HostPlan): PlanVerdict =>
  p.sync === 'Unknown' ? 'unknown' : p.blocked.length ? 'blocked' : hasWork(p) ? 'change' : 'unchanged';
