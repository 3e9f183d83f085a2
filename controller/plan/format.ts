// Owns the human-readable text of plans (for the terminal and logs); apply results and status tables
// are reporting (report/terminal.ts).
import type { HostPlan } from './types.js';
import { isDisruptive, type RolloutPlan } from './rollout.js';
import { clusterProblems } from './cluster.js';

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
  if (p.takeover) lines.push(`  ~ takeover: ${p.takeover}`);
  for (const b of p.blocked) lines.push(`  ! blocked: ${b}`);
  if (p.lock) lines.push(`  ! ${lockText(p.lock)}`);
  for (const d of p.drift) lines.push(`  ! drift: ${d}`);
  for (const w of p.warnings ?? []) lines.push(`  ! note: ${w}`);
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

/** A cluster's health as observed: a headline, then one line per problem. */
export function formatClusterHealth(r: RolloutPlan): string[] {
  const h = r.health;
  const problems = clusterProblems(h);
  return [
    `cluster ${r.cluster}: ${h.up.length} of ${h.size} members healthy` +
      (h.jetstream ? `, JetStream meta leader ${h.metaLeader ?? 'none'}` : '') +
      (problems.length ? '' : ', every route up, nothing behind'),
    ...problems.map((p) => `  ! ${p}`),
  ];
}

/** A cluster's rollout: its health as observed, the order and batches, the gates and what is blocked. */
export function formatRollout(r: RolloutPlan): string {
  const lines = formatClusterHealth(r);
  const moving = r.members.filter((m) => !['none', 'unknown'].includes(m.action));
  if (!moving.length) lines.push('  rollout: nothing to do');
  else {
    lines.push(`  rollout${r.coldStart ? ' (cold start: all members together)' : ''}:`);
    let n = 0;
    for (const batch of r.batches) {
      n++;
      const what = batch.map((host) => {
        const m = r.members.find((x) => x.host === host)!;
        const leader = m.metaLeader ? (isDisruptive(m.action) ? ', meta leader: last' : ', meta leader') : '';
        return `${host} (${m.action}${leader})`;
      });
      lines.push(`    ${n}. ${what.join(' + ')}`);
    }
    for (const m of r.members.filter((x) => x.action === 'blocked' || r.blocked[x.host]))
      lines.push(`    - ${m.host}: blocked${r.blocked[m.host] ? ` (${r.blocked[m.host].why.join('; ')})` : ''}`);
    for (const g of r.gates) lines.push(`  gate: ${g}`);
  }
  return lines.join('\n');
}
