// Owns the terminal's text of apply results and of the status table (the CLI's output and logs).
import type { ApplyResult } from '../apply/result.js';

export function formatApply(r: ApplyResult): string {
  const what =
    r.outcome === 'applied'
      ? `applied (${r.changedFiles.length} file(s)${r.steps.length ? `; ${r.steps.join(', ')}` : ''})`
      : r.outcome;
  const error = r.error ? `\n  error: ${r.error}` : '';
  const notes = (r.notes ?? []).map((n) => `\n  note: ${n}`).join('');
  return `${r.host}: ${what}, ${r.health}, ${(r.durationMs / 1000).toFixed(1)} s${error}${notes}`;
}

export interface StatusRow {
  host: string;
  sync: string;
  health: string;
  version: string;
  revision: string;
  appliedAt: string;
  /** Why a host is not Synced/Healthy (unreachable, blocked, drift), or a held lock; '-' otherwise. */
  reason: string;
}

export function formatTable(rows: readonly StatusRow[]): string {
  const head: StatusRow = {
    host: 'HOST',
    sync: 'SYNC',
    health: 'HEALTH',
    version: 'NATS',
    revision: 'REVISION',
    appliedAt: 'APPLIED',
    reason: 'REASON',
  };
  const all = [head, ...rows];
  const keys = Object.keys(head) as (keyof StatusRow)[];
  const width = Object.fromEntries(keys.map((k) => [k, Math.max(...all.map((r) => r[k].length))]));
  return all
    .map((r) =>
      keys
        .map((k) => r[k].padEnd(width[k]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
