// Owns the Markdown natsfleet posts on GitHub (pure): the plan comment of a pull request (summary
// table first, a collapsed section per host with its diffs, kept under GitHub's 65,536-character
// limit by truncating per host), the deploy result comment, and the drift issue body.
import type { ApplyResult } from '../apply/apply.js';
import type { Problem } from '../manifest/problems.js';
import { formatProblem } from '../manifest/problems.js';
import type { HostPlan } from '../plan/types.js';

export const GITHUB_COMMENT_LIMIT = 65_536;
export const PLAN_MARKER = '<!-- natsfleet:plan -->';
export const DEPLOY_MARKER = (sha: string) => `<!-- natsfleet:deploy:${sha} -->`;
export const DRIFT_MARKER = (host: string) => `<!-- natsfleet:drift:${host} -->`;
/** Room kept for the marker and the wrapper text. */
const RESERVE = 2_000;

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const fence = (s: string) => `\`\`\`diff\n${s.replace(/```/g, '``\u200b`')}\n\`\`\``;

export function serviceSummary(p: HostPlan): string {
  const s = p.steps.map((x) => x.step);
  if (s.includes('restart')) return 'restart';
  if (s.includes('start')) return 'start';
  if (s.includes('reload')) return 'reload';
  if (s.includes('stop')) return 'stop';
  return s.length ? s.join(', ') : '-';
}

function hostSection(p: HostPlan, budget: number): string {
  const head = `<details><summary><b>${p.host}</b>: ${p.changes.length} change(s), ${serviceSummary(p)}</summary>\n\n`;
  const parts: string[] = [];
  for (const b of p.blocked) parts.push(`- :no_entry: blocked: ${b}`);
  for (const d of p.drift) parts.push(`- :warning: drift: ${d}`);
  for (const s of p.steps) parts.push(`- step \`${s.step}\`: ${s.reason}`);
  for (const c of p.changes) {
    parts.push(
      `- \`${c.action}\` \`${c.path}\`${c.after ? ` (${c.after.mode} ${c.after.owner}:${c.after.group})` : ''}: ${c.reason}`,
    );
    if (c.kind === 'file' && c.diff) parts.push(fence(c.diff.trimEnd()));
  }
  let body = parts.join('\n\n');
  const tail = '\n\n</details>';
  if (head.length + body.length + tail.length > budget) {
    const note = `\n\n_Truncated: this host's plan is longer than fits in one GitHub comment. Run \`natsfleet plan --host ${p.host}\` for all of it._`;
    body = body.slice(0, Math.max(0, budget - head.length - tail.length - note.length - 8));
    // Do not leave a diff fence open.
    if ((body.match(/```/g) ?? []).length % 2 === 1) body += '\n```';
    body += note;
  }
  return head + body + tail;
}

export interface PlanCommentInput {
  sha: string;
  plans: readonly HostPlan[];
  offline?: string;
  problems?: readonly Problem[];
}

export function planComment(x: PlanCommentInput): string {
  const lines = [`### natsfleet plan for ${x.sha.slice(0, 12)}`, ''];
  const errors = (x.problems ?? []).filter((p) => p.severity === 'error');
  if (errors.length) {
    lines.push(
      ':x: **The manifests are invalid; nothing was planned and nothing will be applied.**',
      '',
      '```',
      ...errors.map(formatProblem),
      '```',
    );
    return lines.join('\n');
  }
  if (x.offline) lines.push(`> :lock: Planned offline, from the repository only: ${x.offline}`, '');
  if (x.plans.length === 0) {
    lines.push('No host manifest changed in this pull request.');
    return lines.join('\n');
  }
  lines.push('| host | action | service | changed files |', '| --- | --- | --- | --- |');
  for (const p of x.plans) {
    const action =
      p.sync === 'Unknown'
        ? `:grey_question: unknown: ${cell(p.error ?? '')}`
        : p.blocked.length
          ? ':no_entry: blocked'
          : p.changes.length || p.steps.length
            ? 'update'
            : 'no changes';
    const files =
      p.changes
        .filter((c) => c.kind === 'file')
        .map((c) => `\`${c.path}\``)
        .join(', ') || '-';
    lines.push(`| ${p.host} | ${action} | ${serviceSummary(p)} | ${files} |`);
  }
  lines.push('');
  const head = lines.join('\n');
  const budget = Math.floor((GITHUB_COMMENT_LIMIT - RESERVE - head.length) / Math.max(1, x.plans.length));
  return [
    head,
    ...x.plans.filter((p) => p.changes.length || p.steps.length || p.blocked.length).map((p) => hostSection(p, budget)),
  ].join('\n\n');
}

export function deployComment(
  sha: string,
  results: readonly ApplyResult[],
  unreachable: readonly { host: string; error: string }[],
): string {
  const lines = [
    `### natsfleet deployed ${sha.slice(0, 12)}`,
    '',
    '| host | result | health | service | files |',
    '| --- | --- | --- | --- | --- |',
  ];
  for (const r of results) {
    const icon = r.outcome === 'applied' || r.outcome === 'unchanged' ? ':white_check_mark:' : ':x:';
    lines.push(
      `| ${r.host} | ${icon} ${r.outcome}${r.error ? `: ${cell(r.error).slice(0, 500)}` : ''} | ${r.health} | ${r.steps.filter((s) => ['reload', 'restart', 'start', 'stop'].includes(s)).join(', ') || '-'} | ${r.changedFiles.length} |`,
    );
  }
  for (const u of unreachable)
    lines.push(`| ${u.host} | :x: unreachable: ${cell(u.error).slice(0, 300)} | Unknown | - | - |`);
  return lines.join('\n');
}

export function driftIssueBody(p: HostPlan, selfHeal: boolean, revision: string): string {
  return [
    `natsfleet found **${p.host}** different from what it applied (revision ${revision.slice(0, 12)}).`,
    '',
    ...p.drift.map((d) => `- ${d}`),
    '',
    selfHeal
      ? 'selfHeal is on: natsfleet corrects this host.'
      : 'selfHeal is off: natsfleet only reports. Apply, or set `spec.policy.selfHeal: true`, to correct it.',
    '',
    hostSection(p, 40_000),
  ].join('\n');
}
