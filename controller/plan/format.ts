// Owns the human-readable text of plans (for the terminal and logs); apply results and status tables
// are reporting (report/terminal.ts).
import type { HostPlan } from './types.js';

const SYMBOL = { create: '+', update: '~', delete: '-', 'no-op': ' ' } as const;

/** A held lock in words (plans and status). */
export function lockText(l: NonNullable<HostPlan['lock']>): string {
  const lease = l.expiresAt ? `, lease until ${l.expiresAt}` : '';
  return l.owner
    ? `locked by ${l.owner} since ${l.since ?? '?'}${lease}`
    : `locked without owner data, ${l.ageSec} s old (taken over after the lease)`;
}

export function formatPlan(p: HostPlan, opts: { diffs?: boolean } = {}): string {
  const lines: string[] = [];
  if (p.error) return `${p.host}: Unknown: ${p.error}`;
  const head =
    p.changes.length || p.steps.length
      ? `${p.host}: ${p.changes.length} change(s), steps: ${p.steps.map((s) => s.step).join(', ') || 'none'}`
      : `${p.host}: no changes (${p.sync}, ${p.health})`;
  lines.push(head);
  for (const b of p.blocked) lines.push(`  ! blocked: ${b}`);
  if (p.lock) lines.push(`  ! ${lockText(p.lock)}`);
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
  const unchanged = plans.length - changing - unknown;
  return `Plan: ${changing} host(s) to change, ${unchanged} unchanged, ${blocked} blocked, ${unknown} unreachable.`;
}
