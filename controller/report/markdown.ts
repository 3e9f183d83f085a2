// Owns the Markdown natsfleet posts on GitHub (pure): the plan comment of a pull request (summary
// table first, a collapsed section per host with its diffs), the deploy result comment, and the
// drift issue body. Every body is at most COMMENT_BODY_LIMIT characters whatever the number of hosts
// or the size of their diffs and errors, leaving room for the marker the caller appends under
// GitHub's 65,536: a table too long is summarised (counts per action, then the rows that fit), a
// host's diffs too long are truncated, and hosts whose details do not fit are counted, not shown.
import { isSuccessful, type ApplyResult } from '../apply/result.js';
import type { Problem } from '../manifest/problems.js';
import { formatProblem } from '../manifest/problems.js';
import { planVerdict, type HostPlan, type PlanVerdict, type Step } from '../plan/types.js';
import { shortRev } from '../util/rev.js';

export const GITHUB_COMMENT_LIMIT = 65_536;
export const PLAN_MARKER = '<!-- natsfleet:plan -->';
export const DEPLOY_MARKER = (sha: string) => `<!-- natsfleet:deploy:${sha} -->`;
export const DRIFT_MARKER = (host: string) => `<!-- natsfleet:drift:${host} -->`;
/** Room kept for the marker and the wrapper text the caller appends (`\n\n<!-- natsfleet:... -->`). */
const RESERVE = 2_000;
/** The longest body planComment, deployComment and driftIssueBody return. */
export const COMMENT_BODY_LIMIT = GITHUB_COMMENT_LIMIT - RESERVE;

/** Longest error shown in a table cell, longest line taken from a host's plan outside its diffs. */
const MAX_ERROR = 300;
const MAX_LINE = 1_000;
/** Smallest section worth showing for a host (its header, some of its plan, the truncation note). */
const MIN_SECTION = 800;
/** Room kept, when building, for the closing line that says what was left out. */
const TAIL_ROOM = 300;

/** The first `n` characters of `s` at most, never ending between the halves of a surrogate pair. */
function prefix(s: string, n: number): string {
  if (s.length <= n) return s;
  const end = Math.max(0, n);
  return s.slice(0, end > 0 && /[\uD800-\uDBFF]/.test(s[end - 1]) ? end - 1 : end);
}
/** `s` cut to at most `max` characters, the cut marked with an ellipsis. */
const clip = (s: string, max: number) => (s.length <= max ? s : `${prefix(s, max - 1)}…`);
/** One line of text from a plan or an error: no line breaks and no code fence of its own. */
/**
 * Text that did not come from natsfleet itself (paths, image names, errors, host answers) on one line,
 * unable to open HTML (`<` escaped), mention anyone (`@` broken by a zero-width space) or close a fence.
 */
const inline = (s: string, max = MAX_LINE) =>
  clip(
    s
      .replace(/\r?\n|\r/g, ' ')
      .replace(/```/g, '``\u200b`')
      .replace(/</g, '&lt;')
      .replace(/@(?=\w)/g, '@\u200b'),
    max,
  );
const cell = (s: string, max = MAX_LINE) => inline(s, max).replace(/\|/g, '\\|');
const fence = (s: string) => `\`\`\`diff\n${s.replace(/```/g, '``\u200b`')}\n\`\`\``;
const openFences = (s: string) => (s.match(/```/g) ?? []).length % 2 === 1;

export function serviceSummary(p: HostPlan): string {
  const s = p.steps.map((x) => x.step);
  if (s.includes('restart')) return 'restart';
  if (s.includes('start')) return 'start';
  if (s.includes('reload')) return 'reload';
  if (s.includes('stop')) return 'stop';
  return s.length ? s.join(', ') : '-';
}

/** "12 restart, 268 reload": how many hosts of a group each service action touches. */
function breakdown(services: readonly string[]): string {
  const order = ['restart', 'start', 'reload', 'stop'];
  const counts = new Map<string, number>();
  for (const s of services) counts.set(s, (counts.get(s) ?? 0) + 1);
  const rank = (s: string) => (order.includes(s) ? order.indexOf(s) : s === '-' ? order.length + 1 : order.length);
  return [...counts]
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
    .map(([s, n]) => `${n} ${s === '-' ? 'no service step' : s}`)
    .join(', ');
}

/**
 * The Markdown table of `rows` under `header`: all of it, in order, when it fits in `room`
 * characters; otherwise `summary` first, then the rows that fit whole (lowest `priority` first: the
 * hosts that need attention) and a line counting the others.
 */
function table(
  header: string,
  rows: readonly { text: string; priority: number }[],
  room: number,
  summary: string,
  command: string,
): string {
  const full = [header, ...rows.map((r) => r.text)].join('\n');
  if (full.length <= room) return full;
  const lines = [summary, '', header];
  let used = lines.join('\n').length;
  const ordered = rows.map((r, i) => ({ ...r, i })).sort((a, b) => a.priority - b.priority || a.i - b.i);
  let shown = 0;
  for (const r of ordered) {
    if (used + 1 + r.text.length > room - TAIL_ROOM) break;
    lines.push(r.text);
    used += 1 + r.text.length;
    shown++;
  }
  // A blank line first: a line right under a table would be read as one more row.
  lines.push('', `... and ${rows.length - shown} more hosts (run \`${command}\` for all)`);
  return lines.join('\n');
}

/**
 * A host's collapsed section, at most `budget` characters when `budget` >= MIN_SECTION: its
 * blocked reasons, drift, steps and changes with their diffs, truncated with a note when too long.
 */
function hostSection(p: HostPlan, budget: number): string {
  const host = inline(p.host, 100);
  const head =
    `<details><summary><b>${host}</b>: ${p.changes.length} change(s), ` +
    `${inline(serviceSummary(p), 200)}</summary>\n\n`;
  const parts: string[] = [];
  for (const b of p.blocked) parts.push(`- :no_entry: blocked: ${inline(b)}`);
  for (const d of p.drift) parts.push(`- :warning: drift: ${inline(d)}`);
  for (const s of p.steps) parts.push(`- step \`${s.step}\`: ${inline(s.reason)}`);
  for (const c of p.changes) {
    const path = inline(c.path, 300);
    const attrs = c.after ? ` (${inline(`${c.after.mode} ${c.after.owner}:${c.after.group}`, 200)})` : '';
    parts.push(`- \`${c.action}\` \`${path}\`${attrs}: ${inline(c.reason)}`);
    if (c.kind === 'file' && c.diff) parts.push(fence(c.diff.trimEnd()));
  }
  let body = parts.join('\n\n');
  const tail = '\n\n</details>';
  if (head.length + body.length + tail.length > budget) {
    const note =
      "\n\n_Truncated: this host's plan is longer than fits in one GitHub comment. " +
      `Run \`natsfleet plan --host ${host}\` for all of it._`;
    const keep = Math.max(0, budget - head.length - tail.length - note.length - 8);
    let cut = prefix(body, keep);
    // End on a whole line when one is near.
    const nl = cut.lastIndexOf('\n');
    if (nl > keep / 2) cut = cut.slice(0, nl);
    // Do not leave a diff fence open.
    body = `${cut}${openFences(cut) ? '\n```' : ''}${note}`;
  }
  return head + body + tail;
}

/**
 * Sections for `plans` in the room left (each at least MIN_SECTION, a fair share when all do not fit
 * whole), then a line counting the hosts whose details were left out.
 */
function hostSections(plans: readonly HostPlan[], room: number, command: string): string[] {
  const out: string[] = [];
  let left = room - TAIL_ROOM;
  for (const [i, p] of plans.entries()) {
    const share = Math.floor(left / (plans.length - i)) - 2;
    const budget = Math.min(left - 2, Math.max(share, MIN_SECTION));
    if (budget < MIN_SECTION) {
      out.push(
        `_The details of ${plans.length - i} more host(s) do not fit in one GitHub comment: ` +
          `run \`${command}\` for them._`,
      );
      break;
    }
    const s = hostSection(p, budget);
    out.push(s);
    left -= s.length + 2;
  }
  return out;
}

/**
 * The last guard of the limit: cuts a body still too long at a line boundary, closing an open fence
 * and an open <details>. The builders above keep to the limit, so this changes nothing in practice.
 */
function fit(body: string, limit = COMMENT_BODY_LIMIT): string {
  if (body.length <= limit) return body;
  const note = '\n\n_Truncated to fit in one GitHub comment._';
  let cut = prefix(body, limit - note.length - 20);
  cut = cut.slice(0, Math.max(0, cut.lastIndexOf('\n')));
  if (openFences(cut)) cut += '\n```';
  if ((cut.match(/<details>/g) ?? []).length > (cut.match(/<\/details>/g) ?? []).length) cut += '\n\n</details>';
  return cut + note;
}

export interface PlanCommentInput {
  sha: string;
  plans: readonly HostPlan[];
  offline?: string;
  problems?: readonly Problem[];
}

type PlanAction = PlanVerdict;
const planAction = planVerdict;

/** "300 hosts: 280 change (12 restart, 268 reload), 20 unchanged, 0 blocked, 0 unreachable". */
function planCounts(plans: readonly HostPlan[]): string {
  const of = (a: PlanAction) => plans.filter((p) => planAction(p) === a);
  const change = of('change');
  const detail = change.length ? ` (${breakdown(change.map(serviceSummary))})` : '';
  return (
    `${plans.length} hosts: ${change.length} change${detail}, ${of('unchanged').length} unchanged, ` +
    `${of('blocked').length} blocked, ${of('unknown').length} unreachable`
  );
}

export function planComment(x: PlanCommentInput): string {
  const lines = [`### natsfleet plan for ${shortRev(x.sha)}`, ''];
  const errors = (x.problems ?? []).filter((p) => p.severity === 'error');
  if (errors.length) {
    lines.push(':x: **The manifests are invalid; nothing was planned and nothing will be applied.**', '', '```');
    let used = lines.join('\n').length;
    let shown = 0;
    for (const e of errors) {
      const line = inline(formatProblem(e));
      if (used + 1 + line.length > COMMENT_BODY_LIMIT - TAIL_ROOM) break;
      lines.push(line);
      used += 1 + line.length;
      shown++;
    }
    lines.push('```');
    if (shown < errors.length)
      lines.push('', `... and ${errors.length - shown} more problems (run \`natsfleet validate\` for all)`);
    return fit(lines.join('\n'));
  }
  if (x.offline) lines.push(`> :lock: Planned offline, from the repository only: ${inline(x.offline)}`, '');
  if (x.plans.length === 0) {
    lines.push('No host manifest changed in this pull request.');
    return fit(lines.join('\n'));
  }
  const priority: Record<PlanAction, number> = { unknown: 0, blocked: 1, change: 2, unchanged: 3 };
  const rows = x.plans.map((p) => {
    const a = planAction(p);
    const action =
      a === 'unknown'
        ? `:grey_question: unknown: ${cell(p.error ?? '', MAX_ERROR)}`
        : a === 'blocked'
          ? ':no_entry: blocked'
          : a === 'change'
            ? 'update'
            : 'no changes';
    const files = clip(
      p.changes
        .filter((c) => c.kind === 'file')
        .map((c) => `\`${cell(c.path, 300)}\``)
        .join(', ') || '-',
      MAX_LINE,
    );
    return {
      text: `| ${cell(p.host, 100)} | ${action} | ${cell(serviceSummary(p), 200)} | ${files} |`,
      priority: priority[a],
    };
  });
  const intro = lines.join('\n');
  const head = `${intro}\n${table(
    '| host | action | service | changed files |\n| --- | --- | --- | --- |',
    rows,
    COMMENT_BODY_LIMIT - intro.length - 1 - TAIL_ROOM,
    planCounts(x.plans),
    'natsfleet plan',
  )}\n`;
  const withWork = x.plans.filter((p) => p.changes.length || p.steps.length || p.blocked.length);
  return fit([head, ...hostSections(withWork, COMMENT_BODY_LIMIT - head.length - 2, 'natsfleet plan')].join('\n\n'));
}

/**
 * "300 hosts: 280 applied (12 restart, 268 reload), 15 unchanged, 5 failed, 0 rolled back, 0 blocked,
 * 0 unreachable".
 */
function deployCounts(results: readonly ApplyResult[], unreachable: readonly unknown[]): string {
  const of = (o: ApplyResult['outcome']) => results.filter((r) => r.outcome === o);
  const applied = of('applied');
  const detail = applied.length ? ` (${breakdown(applied.map(deployService))})` : '';
  return (
    `${results.length + unreachable.length} hosts: ${applied.length} applied${detail}, ` +
    `${of('unchanged').length} unchanged, ${of('failed').length} failed, ` +
    `${of('rolled-back').length} rolled back, ${of('blocked').length} blocked, ${unreachable.length} unreachable`
  );
}

const SERVICE_STEPS: readonly Step[] = ['restart', 'start', 'reload', 'stop'];
const deployService = (r: ApplyResult) => SERVICE_STEPS.find((s) => r.steps.includes(s)) ?? '-';

export function deployComment(
  sha: string,
  results: readonly ApplyResult[],
  unreachable: readonly { host: string; error: string }[],
): string {
  const intro = `### natsfleet deployed ${shortRev(sha)}\n`;
  const rows = [
    ...results.map((r) => {
      const ok = isSuccessful(r);
      const service = r.steps.filter((s) => SERVICE_STEPS.includes(s)).join(', ') || '-';
      const host = cell(r.host, 100);
      const outcome = `${ok ? ':white_check_mark:' : ':x:'} ${r.outcome}${r.error ? `: ${cell(r.error, 500)}` : ''}`;
      return {
        text: `| ${host} | ${outcome} | ${r.health} | ${service} | ${r.changedFiles.length} |`,
        priority: ok ? (r.outcome === 'applied' ? 1 : 2) : 0,
      };
    }),
    ...unreachable.map((u) => ({
      text: `| ${cell(u.host, 100)} | :x: unreachable: ${cell(u.error, MAX_ERROR)} | Unknown | - | - |`,
      priority: 0,
    })),
  ];
  return fit(
    `${intro}\n${table(
      '| host | result | health | service | files |\n| --- | --- | --- | --- | --- |',
      rows,
      COMMENT_BODY_LIMIT - intro.length - 1,
      deployCounts(results, unreachable),
      'natsfleet status',
    )}`,
  );
}

export function driftIssueBody(p: HostPlan, selfHeal: boolean, revision: string): string {
  const lines = [
    `natsfleet found **${inline(p.host, 100)}** different from what it applied (revision ${shortRev(revision)}).`,
    '',
  ];
  // The list of differences takes at most half the body; the section with the diffs gets the rest.
  let used = lines.join('\n').length;
  let shown = 0;
  for (const d of p.drift) {
    const line = `- ${inline(d)}`;
    if (used + 1 + line.length > COMMENT_BODY_LIMIT / 2) break;
    lines.push(line);
    used += 1 + line.length;
    shown++;
  }
  if (shown < p.drift.length)
    lines.push(`- ... and ${p.drift.length - shown} more differences (run \`natsfleet plan\`)`);
  lines.push(
    '',
    selfHeal
      ? 'selfHeal is on: natsfleet corrects this host.'
      : 'selfHeal is off: natsfleet only reports. Apply, or set `spec.policy.selfHeal: true`, to correct it.',
    '',
  );
  const head = lines.join('\n');
  return fit(`${head}\n${hostSection(p, Math.min(40_000, COMMENT_BODY_LIMIT - head.length - 1))}`);
}
