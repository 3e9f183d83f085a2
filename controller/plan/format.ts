// Owns the human-readable text of plans, apply results and status tables (for the terminal and logs).
import type { ApplyResult } from '../apply/apply.js';
import type { HostPlan } from './types.js';

const SYMBOL = { create: '+', update: '~', delete: '-', 'no-op': ' ' } as const;

export function formatPlan(p: HostPlan, opts: { diffs?: boolean } = {}): string {
  const lines: string[] = [];
  if (p.error) return `${p.host}: Unknown: ${p.error}`;
  const head =
    p.changes.length || p.steps.length
      ? `${p.host}: ${p.changes.length} change(s), steps: ${p.steps.map((s) => s.step).join(', ') || 'none'}`
      : `${p.host}: no changes (${p.sync}, ${p.health})`;
  lines.push(head);
  for (const b of p.blocked) lines.push(`  ! blocked: ${b}`);
  for (const d of p.drift) lines.push(`  ! drift: ${d}`);
  for (const c of p.changes) {
    const mode = c.after ? ` ${c.after.mode} ${c.after.owner}:${c.after.group}` : '';
    lines.push(`  ${SYMBOL[c.action]} ${c.kind === 'dir' ? 'dir  ' : 'file '}${c.path}${mode} (${c.reason})`);
    if (opts.diffs !== false && c.kind === 'file' && c.diff)
      lines.push(
        ...c.diff
          .trimEnd()
          .split('\n')
          .map((l) => `      ${l}`),
      );
  }
  for (const s of p.steps) lines.push(`  > ${s.step.padEnd(16)} ${s.reason}`);
  return lines.join('\n');
}

export function planSummary(plans: readonly HostPlan[]): string {
  const unknown = plans.filter((p) => p.sync === 'Unknown').length;
  const changing = plans.filter((p) => p.sync === 'OutOfSync').length;
  const blocked = plans.filter((p) => p.blocked.length).length;
  return `Plan: ${changing} host(s) to change, ${plans.length - changing - unknown} unchanged, ${blocked} blocked, ${unknown} unreachable.`;
}

export function formatApply(r: ApplyResult): string {
  const what =
    r.outcome === 'applied'
      ? `applied (${r.changedFiles.length} file(s)${r.steps.length ? `; ${r.steps.join(', ')}` : ''})`
      : r.outcome;
  return `${r.host}: ${what}, ${r.health}, ${(r.durationMs / 1000).toFixed(1)} s${r.error ? `\n  error: ${r.error}` : ''}`;
}

export interface StatusRow {
  host: string;
  sync: string;
  health: string;
  version: string;
  revision: string;
  appliedAt: string;
}

export function formatTable(rows: readonly StatusRow[]): string {
  const head: StatusRow = {
    host: 'HOST',
    sync: 'SYNC',
    health: 'HEALTH',
    version: 'NATS',
    revision: 'REVISION',
    appliedAt: 'APPLIED',
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
