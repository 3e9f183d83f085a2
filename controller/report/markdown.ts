// Owns the Markdown natsfleet posts on GitHub (pure): the plan comment of a pull request (what merging
// does to hosts whose manifest it deletes, the summary table, then each cluster's rollout: health,
// order in batches, what is blocked, the gates; the batches of standalone hosts whose change restarts;
// then a collapsed section per host with its diffs), the deploy result comment (a part per cluster that
// starts with where a halted rollout stopped and why, then the other hosts, then the hosts decommissioned
// or left unmanaged after their manifest was deleted), and the drift issue
// body. Every body is at most COMMENT_BODY_LIMIT characters whatever the number of hosts
// or the size of their diffs and errors, leaving room for the marker the caller appends under
// GitHub's 65,536: a table too long is summarised (counts per action, then the rows that fit), a
// host's diffs too long are truncated, and hosts whose details do not fit are counted, not shown.
import { isSuccessful, type ApplyResult } from '../apply/result.js';
import type { Problem } from '../manifest/problems.js';
import { formatProblem } from '../manifest/problems.js';
import { isDisruptive, type MemberAction, type RolloutPlan } from '../plan/rollout.js';
import { describeBatches, type GroupBatches } from '../plan/batches.js';
import { clusterProblems } from '../plan/cluster.js';
import { planVerdict, type HostPlan, type PlanVerdict, type Step } from '../plan/types.js';
import { shortRev } from '../util/rev.js';
import { byCodePoint } from '../util/order.js';

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
    .sort(([a], [b]) => rank(a) - rank(b) || byCodePoint(a, b))
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
  if (p.takeover) parts.push(`- :arrows_counterclockwise: takeover: ${inline(p.takeover)}`);
  for (const b of p.blocked) parts.push(`- :no_entry: blocked: ${inline(b)}`);
  for (const d of p.drift) parts.push(`- :warning: drift: ${inline(d)}`);
  for (const w of p.warnings ?? []) parts.push(`- :information_source: ${inline(w)}`);
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
 * Sections for `items` in the room left (each at least MIN_SECTION, a fair share when all do not fit
 * whole), then a line counting the `what` whose details were left out.
 */
function sections<T>(
  items: readonly T[],
  room: number,
  build: (x: T, budget: number) => string,
  what: string,
  command: string,
): string[] {
  const out: string[] = [];
  let left = room - TAIL_ROOM;
  for (const [i, x] of items.entries()) {
    const share = Math.floor(left / (items.length - i)) - 2;
    const budget = Math.min(left - 2, Math.max(share, MIN_SECTION));
    if (budget < MIN_SECTION) {
      out.push(
        `_The details of ${items.length - i} more ${what} do not fit in one GitHub comment: ` +
          `run \`${command}\` for them._`,
      );
      break;
    }
    const s = build(x, budget);
    out.push(s);
    left -= s.length + 2;
  }
  return out;
}

/** `text` when it fits in `max` characters, else cut at a line boundary and ended with `note`. */
function cutLines(text: string, max: number, note: string): string {
  if (text.length <= max) return text;
  const cut = prefix(text, Math.max(0, max - note.length - 2));
  return `${cut.slice(0, Math.max(0, cut.lastIndexOf('\n'))).trimEnd()}\n\n${note}`;
}

/** Hosts, each inline, separated by commas, the whole list at most `max` characters. */
const hostList = (hosts: readonly string[], max = MAX_LINE) => clip(hosts.map((h) => inline(h, 100)).join(', '), max);

/** A member's action in a reviewer's words. */
const ACTION_TEXT: Record<MemberAction, string> = {
  restart: 'restart',
  stop: 'stop',
  start: 'start',
  reload: 'reload',
  files: 'files only, no restart',
  none: 'unchanged',
  unknown: 'not observed',
  blocked: 'blocked',
};

/** "nats-b (restart, meta leader, last)": a member of a rollout and what the rollout does to it. */
function memberText(r: RolloutPlan, host: string): string {
  const m = r.members.find((x) => x.host === host);
  const action = m ? ACTION_TEXT[m.action] : 'not planned';
  const leader = m?.metaLeader ? (isDisruptive(m.action) ? ', meta leader, last' : ', meta leader') : '';
  return `${inline(host, 100)} (${action}${leader})`;
}

/** Lines listing at most `max` items, then how many were left out. */
const capped = (items: readonly string[], max: number, more: (n: number) => string) =>
  items.length <= max ? [...items] : [...items.slice(0, max), more(items.length - max)];

/**
 * A cluster's rollout in the plan comment, at most `budget` characters: its health as observed in one
 * line (with what is wrong), the order as a numbered list of batches, the members blocked and why,
 * and the gates each batch passes.
 */
function rolloutSection(r: RolloutPlan, budget: number): string {
  const h = r.health;
  const leader = h.jetstream ? `, JetStream meta leader ${h.metaLeader ? inline(h.metaLeader, 100) : 'none'}` : '';
  const problems = clusterProblems(h);
  const lines = [
    `#### Rollout of cluster ${inline(r.cluster, 100)}`,
    '',
    `${h.up.length} of ${h.size} members healthy${leader}${problems.length ? '' : ', every route up, nothing behind'}`,
  ];
  if (problems.length) {
    lines.push('');
    lines.push(
      ...capped(
        problems.map((p) => `- :warning: ${inline(p, MAX_ERROR)}`),
        5,
        (n) => `- ... and ${n} more (run \`natsfleet status\`)`,
      ),
    );
  }
  lines.push('');
  if (r.coldStart)
    lines.push(
      ':snowflake: **Cold start**: no member is running, so all start together' +
        (h.jetstream ? ' (a quorum must be up to elect a JetStream meta leader).' : '.'),
      '',
    );
  if (r.batches.length) {
    lines.push('Order (each step waits until the one before is healthy and caught up):', '');
    r.batches.forEach((batch, i) => {
      const what = clip(batch.map((x) => memberText(r, x)).join(', '), MAX_LINE);
      lines.push(`${i + 1}. ${batch.length > 1 ? 'together: ' : ''}${what}`);
    });
  } else lines.push(Object.keys(r.blocked).length ? 'No member can go now.' : 'Nothing to roll out.');
  const idle = (a: string) => r.members.filter((m) => m.action === a && !r.blocked[m.host]).map((m) => m.host);
  if (idle('none').length) lines.push('', `Unchanged: ${hostList(idle('none'))}.`);
  if (idle('unknown').length) lines.push('', `Not observed, left out: ${hostList(idle('unknown'))}.`);
  // Members blocked for the same reason (a cluster-wide refusal) are listed once.
  const blocked = new Map<string, string[]>();
  for (const [host, b] of Object.entries(r.blocked)) {
    const why =
      b.reason === 'quorum'
        ? `waits for quorum (may pass by itself once the cluster recovers): ${b.why.join('; ')}`
        : `blocked, needs a person: ${b.why.join('; ')}`;
    blocked.set(why, [...(blocked.get(why) ?? []), host]);
  }
  const own = idle('blocked');
  if (blocked.size || own.length) {
    lines.push('');
    for (const [why, hosts] of blocked) lines.push(`- :no_entry: ${hostList(hosts, 300)} ${inline(why)}`);
    if (own.length) lines.push(`- :no_entry: ${hostList(own, 300)}: blocked by its own plan (see its section below)`);
  }
  if (r.gates.length) lines.push('', 'Gates:', '', ...r.gates.map((g) => `- ${inline(g)}`));
  const member = r.members[0]?.host;
  return cutLines(
    lines.join('\n'),
    budget,
    `_Truncated: run \`natsfleet plan${member ? ` --host ${inline(member, 100)}` : ''}\` for all of it._`,
  );
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
  /** The rollouts of the clusters planned (each once). */
  rollouts?: readonly RolloutPlan[];
  /** Hosts whose manifest the pull request deletes: no longer managed after the merge. */
  unmanaged?: readonly string[];
  /**
   * With the controller's `prune: true`: hosts whose manifest the pull request deletes that merging
   * decommissions, and those it leaves unmanaged (with why). Without prune, `unmanaged` says it.
   */
  prune?: { decommission: readonly string[]; unmanaged: readonly { host: string; why: string }[] };
  /** The batches of the standalone hosts whose change restarts NATS, per rollout policy. */
  batches?: readonly GroupBatches[];
  /** The branch does not merge cleanly into its base: planned as the branch is. */
  conflicts?: boolean;
}

/** What merging does to hosts whose manifest is deleted: they keep running, unmanaged. */
export function unmanagedText(hosts: readonly string[]): string {
  const one = hosts.length === 1;
  return (
    `:wave: **${hostList(hosts, 1_000)} will no longer be managed**: ${one ? 'it keeps' : 'they keep'} running ` +
    `as ${one ? 'it is' : 'they are'} (the controller's \`prune\` is off); natsfleet stops deploying ` +
    `${one ? 'it' : 'them'} and reporting drift. To decommission instead (stop NATS, remove its unit, container ` +
    'and proxy; data kept), merge the manifest with `state: absent` first, then delete it.'
  );
}

/** What merging does, under the controller's `prune: true`, to hosts whose manifest is deleted. */
export function pruneText(p: NonNullable<PlanCommentInput['prune']>): string[] {
  const lines: string[] = [];
  const one = p.decommission.length === 1;
  if (p.decommission.length)
    lines.push(
      `:wastebasket: **${hostList(p.decommission, 1_000)} will be decommissioned** when this is merged (the ` +
        "controller's `prune: true`): natsfleet stops and disables NATS and removes its unit, container and " +
        `proxy, reaching ${one ? 'the host' : 'each host'} with ${one ? 'its' : 'their'} manifest of the branch ` +
        `before the merge; ${one ? 'its' : 'their'} data is kept. Then natsfleet forgets ${one ? 'it' : 'them'}.`,
    );
  lines.push(
    ...capped(
      p.unmanaged.map((u) => `:wave: **${inline(u.host, 100)} will no longer be managed**: ${inline(u.why)}.`),
      20,
      (n) => `... and ${n} more hosts left unmanaged`,
    ),
  );
  return lines;
}

/**
 * The batches of the standalone hosts whose change restarts NATS, as the deploy rolls them: one line per
 * rollout policy ("rollout: batch 1 (canary): nats-a; batch 2: nats-b, nats-c; stops after 1 failure").
 */
export function batchesSection(groups: readonly GroupBatches[]): string {
  const text = (g: GroupBatches) =>
    clip(
      describeBatches(
        g.batches.map((b) => b.map((h) => inline(h, 100))),
        g.policy,
      ),
      2 * MAX_LINE,
    );
  const lines = ['#### Rollout of standalone hosts', ''];
  if (groups.length === 1 && !groups[0].selector) lines.push(`rollout: ${text(groups[0])}`);
  else
    lines.push(
      ...capped(
        groups.map((g) => `- ${g.selector ? `\`${inline(g.selector, 200)}\`` : 'other hosts'}: ${text(g)}`),
        20,
        (n) => `- ... and ${n} more policies (run \`natsfleet plan\`)`,
      ),
    );
  lines.push('', 'Changes that only reload or write files go at once.');
  return lines.join('\n');
}

/** The most the clusters' rollouts take of a plan comment; the host table and diffs get the rest. */
const ROLLOUT_ROOM = 16_000;

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

const hosts = (n: number) => `${n} host${n === 1 ? '' : 's'}`;

/**
 * The plan's one line, bold, under the title: what changes and what merging does.
 * "3 hosts change: 1 restart, 2 reload. Merging deploys them."
 */
export function planHeadline(plans: readonly HostPlan[]): string {
  const of = (a: PlanAction) => plans.filter((p) => planAction(p) === a);
  const change = of('change');
  const blocked = of('blocked').length;
  const unknown = of('unknown').length;
  const parts = [
    change.length
      ? `${hosts(change.length)} change: ${breakdown(change.map(serviceSummary))}. ` +
        `Merging deploys ${change.length === 1 ? 'it' : 'them'}.`
      : 'No host changes: merging deploys nothing.',
    ...(blocked
      ? [`${hosts(blocked)} blocked: merging does not deploy ${blocked === 1 ? 'it' : 'them'} until fixed.`]
      : []),
    ...(unknown ? [`${hosts(unknown)} not reached: deployed after merge once reachable (retried).`] : []),
  ];
  return `**${parts.join(' ')}**`;
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
  if (x.conflicts)
    lines.push(
      '> :warning: The branch does not merge cleanly into its base: planned as the branch is, not as merging ' +
        'would deploy it. Rebase or merge the base to see the real plan.',
      '',
    );
  if (x.unmanaged?.length) lines.push(unmanagedText(x.unmanaged), '');
  for (const l of x.prune ? pruneText(x.prune) : []) lines.push(l, '');
  const deleted = Boolean(x.unmanaged?.length || x.prune?.decommission.length || x.prune?.unmanaged.length);
  if (x.plans.length === 0) {
    if (!deleted) lines.push('No host manifest changed in this pull request.');
    return fit(lines.join('\n'));
  }
  lines.push(planHeadline(x.plans), '');
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
  const rollouts = [
    ...(x.rollouts?.length
      ? sections(x.rollouts, ROLLOUT_ROOM, rolloutSection, 'cluster rollout(s)', 'natsfleet plan')
      : []),
    ...(x.batches?.length ? [batchesSection(x.batches)] : []),
  ].join('\n\n');
  const head = `${intro}\n${table(
    '| host | action | service | changed files |\n| --- | --- | --- | --- |',
    rows,
    COMMENT_BODY_LIMIT - intro.length - 1 - TAIL_ROOM - (rollouts ? rollouts.length + 2 : 0),
    planCounts(x.plans),
    'natsfleet plan',
  )}\n`;
  const top = rollouts ? [head, rollouts] : [head];
  const used = top.join('\n\n').length;
  const withWork = x.plans.filter((p) => p.changes.length || p.steps.length || p.blocked.length);
  return fit(
    [...top, ...sections(withWork, COMMENT_BODY_LIMIT - used - 2, hostSection, 'host(s)', 'natsfleet plan')].join(
      '\n\n',
    ),
  );
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

const DEPLOY_HEADER = '| host | result | health | service | files |\n| --- | --- | --- | --- | --- |';
type Unreachable = { host: string; error: string };

function deployRow(r: ApplyResult) {
  const ok = isSuccessful(r);
  const service = r.steps.filter((s) => SERVICE_STEPS.includes(s)).join(', ') || '-';
  const host = cell(r.host, 100);
  const outcome = `${ok ? ':white_check_mark:' : ':x:'} ${r.outcome}${r.error ? `: ${cell(r.error, 500)}` : ''}`;
  return {
    text: `| ${host} | ${outcome} | ${r.health} | ${service} | ${r.changedFiles.length} |`,
    priority: ok ? (r.outcome === 'applied' ? 1 : 2) : 0,
  };
}

const unreachableRow = (u: Unreachable) => ({
  text: `| ${cell(u.host, 100)} | :x: unreachable: ${cell(u.error, MAX_ERROR)} | Unknown | - | - |`,
  priority: 0,
});

/** What a result that did not succeed did, in words: "rolled back", "failed", "applied but Degraded". */
const failureText = (r: ApplyResult) =>
  r.outcome === 'rolled-back'
    ? 'rolled back'
    : r.outcome === 'failed'
      ? 'failed'
      : r.outcome === 'blocked'
        ? 'blocked'
        : `${r.outcome} but ${r.health}`;

/**
 * The lines at the top of a cluster's part of the deploy comment: where its rollout halted and why (the
 * member that failed or the quorum gate that refused, and the members not touched because of it), the
 * members blocked by quorum or needing a person; or that it rolled out.
 */
export function rolloutOutcome(
  r: RolloutPlan,
  given: readonly ApplyResult[],
  unreachable: readonly Unreachable[],
): string[] {
  const order = r.members.map((m) => m.host);
  const results = [...given].sort((a, b) => order.indexOf(a.host) - order.indexOf(b.host));
  const step = (host: string) => {
    const i = r.batches.findIndex((b) => b.includes(host));
    return i < 0 ? '' : ` at step ${i + 1} of ${r.batches.length}`;
  };
  const inBatch = (host: string) => r.batches.some((b) => b.includes(host));
  const failed = results.filter((x) => x.outcome !== 'blocked' && !isSuccessful(x));
  // The quorum gate before a batch refused to take it down: the rollout halted there.
  const gate = results.filter((x) => x.reason === 'quorum' && inBatch(x.host));
  const waiting = results.filter((x) => x.reason === 'quorum' && !inBatch(x.host));
  const halted = results.filter((x) => x.reason === 'rollout-halted');
  const other = results.filter(
    (x) => x.outcome === 'blocked' && x.reason !== 'quorum' && x.reason !== 'rollout-halted',
  );
  const lines: string[] = [];
  const error = (x: ApplyResult) => (x.error ? `: ${inline(x.error, 500)}` : '');
  for (const x of failed)
    lines.push(
      inBatch(x.host)
        ? `:x: **The rollout halted${step(x.host)}: ${inline(x.host, 100)} ${failureText(x)}**${error(x)}`
        : `:x: **${inline(x.host, 100)} ${failureText(x)}**${error(x)}`,
    );
  for (const x of gate)
    lines.push(
      `:no_entry: **The rollout halted${step(x.host)}: the cluster cannot lose ${inline(x.host, 100)} now ` +
        `(quorum)**${error(x)}`,
    );
  if (halted.length) {
    lines.push(`Not touched because of it: ${clip(halted.map((x) => memberText(r, x.host)).join(', '), MAX_LINE)}.`);
  }
  for (const x of waiting)
    lines.push(
      `:hourglass: ${inline(x.host, 100)} was not taken down (quorum; it may pass by itself once the cluster ` +
        `recovers)${error(x)}`,
    );
  // Members blocked for the same reason (a cluster-wide refusal) are listed once.
  const same = new Map<string, string[]>();
  for (const x of other) same.set(error(x), [...(same.get(error(x)) ?? []), x.host]);
  for (const [why, hosts] of same) lines.push(`:no_entry: ${hostList(hosts, 300)} blocked${why}`);
  if (unreachable.length)
    lines.push(`:x: Left out of the rollout (not reached): ${hostList(unreachable.map((u) => u.host))}.`);
  if (lines.length) return lines;
  const applied = results.filter((x) => x.outcome === 'applied').length;
  return [
    applied
      ? `:white_check_mark: Rolled out: ${applied} of ${results.length} members applied, every member healthy.`
      : ':white_check_mark: Nothing to roll out: every member is unchanged and healthy.',
  ];
}

/** Hosts whose manifest a deployed revision deleted, as the deploy comment reports them. */
export interface DeployPrune {
  /** Decommissioned by `prune: true` (their rows are among the results). */
  decommissioned?: readonly string[];
  /** Left running, unmanaged, with why (a NatsCluster member, an SSH address another host took). */
  unmanaged?: readonly { host: string; why: string }[];
}

/** The deploy comment's lines about pruned hosts: those decommissioned, those not yet, those left. */
export function pruneOutcome(
  p: DeployPrune,
  results: readonly ApplyResult[],
  unreachable: readonly Unreachable[],
): string[] {
  const failed = (h: string) =>
    unreachable.some((u) => u.host === h) || !isSuccessful(results.find((r) => r.host === h));
  const done = (p.decommissioned ?? []).filter((h) => !failed(h));
  const pending = (p.decommissioned ?? []).filter(failed);
  const lines: string[] = [];
  const one = done.length === 1;
  if (done.length)
    lines.push(
      `:wastebasket: **Decommissioned, ${one ? 'its manifest' : 'their manifests'} deleted** (the controller's ` +
        `\`prune: true\`): ${hostList(done)}. NATS is stopped and disabled, ${one ? 'its' : 'their'} unit, ` +
        `container and proxy removed; ${one ? 'its' : 'their'} data is kept. natsfleet no longer manages ` +
        `${one ? 'it' : 'them'}.`,
    );
  if (pending.length)
    lines.push(
      `:x: **Not decommissioned yet**: ${hostList(pending)} (manifest deleted, \`prune: true\`): tried again ` +
        'with backoff until done, or until the manifest is back.',
    );
  lines.push(
    ...capped(
      (p.unmanaged ?? []).map((u) => `:wave: ${inline(u.host, 100)} keeps running, unmanaged: ${inline(u.why)}.`),
      20,
      (n) => `... and ${n} more hosts left unmanaged (see the controller's log)`,
    ),
  );
  return lines;
}

/** The most the clusters' parts take of a deploy comment; the other hosts' table gets the rest. */
const CLUSTER_ROOM = Math.floor(COMMENT_BODY_LIMIT / 2);

/**
 * The deploy result: with `rollouts`, a part per cluster (those that need attention first): where its
 * rollout halted and why, then its members in rollout order; then the other hosts. Clusters whose part
 * does not fit join the other hosts' table.
 */
export function deployComment(
  sha: string,
  results: readonly ApplyResult[],
  unreachable: readonly Unreachable[],
  rollouts: readonly RolloutPlan[] = [],
  /** Hosts the revision changes that are suspended (spec.policy.suspend or the API): not deployed. */
  suspended: readonly string[] = [],
  /** When the next retry of a failed host is due (Unix ms). */
  retryAt?: number,
  /** Hosts whose manifest the revision deleted: decommissioned (`prune: true`), or left unmanaged with why. */
  prune: DeployPrune = {},
): string {
  const failed = results.filter((x) => !isSuccessful(x)).length + unreachable.length;
  const total = results.length + unreachable.length;
  const intro = failed
    ? `### natsfleet deploy of ${shortRev(sha)}: ${failed} of ${hosts(total)} failed\n\n` +
      ':repeat: Failed hosts are retried with backoff (15 s doubling to 10 min)' +
      (retryAt ? `; the next attempt at ${new Date(retryAt).toISOString().slice(11, 19)} UTC` : '') +
      '. This comment is updated as they recover; the others are deployed.\n'
    : `### natsfleet deployed ${shortRev(sha)}\n`;
  const hostsOf = (r: RolloutPlan) => new Set(r.members.map((m) => m.host));
  const clusters = rollouts
    .map((r) => {
      const hosts = hostsOf(r);
      const order = r.members.map((m) => m.host);
      const rank = (host: string) => order.indexOf(host);
      return {
        r,
        results: results.filter((x) => hosts.has(x.host)).sort((a, b) => rank(a.host) - rank(b.host)),
        unreachable: unreachable.filter((u) => hosts.has(u.host)),
      };
    })
    .filter((c) => c.results.length || c.unreachable.length)
    .map((c) => ({ ...c, ok: c.unreachable.length === 0 && c.results.every(isSuccessful) }))
    .sort((a, b) => Number(a.ok) - Number(b.ok));
  const parts: string[] = [];
  const shown = new Set<string>();
  let left = CLUSTER_ROOM;
  for (const [i, c] of clusters.entries()) {
    const lead = [`#### Cluster ${inline(c.r.cluster, 100)}`, ...rolloutOutcome(c.r, c.results, c.unreachable)].join(
      '\n\n',
    );
    const room = left - lead.length - 2;
    const rows = [...c.results.map(deployRow), ...c.unreachable.map(unreachableRow)];
    const whole = [DEPLOY_HEADER, ...rows.map((x) => x.text)].join('\n');
    // A part has all its members' rows; only the first, alone, may summarise them (one huge cluster).
    if (whole.length > room && (parts.length || room < MIN_SECTION)) {
      parts.push(
        `_${clusters.length - i} more cluster(s) do not fit here: their members are in the table of other hosts._`,
      );
      break;
    }
    const counts = deployCounts(c.results, c.unreachable);
    const part = `${lead}\n\n${table(DEPLOY_HEADER, rows, room, counts, 'natsfleet status')}`;
    parts.push(part);
    left -= part.length + 2;
    for (const h of hostsOf(c.r)) shown.add(h);
  }
  const rest = [
    ...results.filter((x) => !shown.has(x.host)).map(deployRow),
    ...unreachable.filter((u) => !shown.has(u.host)).map(unreachableRow),
  ];
  if (rest.length || !parts.length) {
    const heading = parts.length ? '#### Other hosts\n\n' : '';
    const used = intro.length + 1 + parts.reduce((n, p) => n + p.length + 2, 0) + heading.length;
    const counts = deployCounts(
      results.filter((x) => !shown.has(x.host)),
      unreachable.filter((u) => !shown.has(u.host)),
    );
    parts.push(heading + table(DEPLOY_HEADER, rest, COMMENT_BODY_LIMIT - used, counts, 'natsfleet status'));
  }
  // What an operator should know although nothing failed (a lock taken over, a former member removed).
  const notes = capped(
    results.flatMap((x) => (x.notes ?? []).map((n) => `- ${inline(x.host, 100)}: ${inline(n, MAX_ERROR)}`)),
    20,
    (n) => `- ... and ${n} more`,
  );
  if (notes.length) parts.push(['Notes:', '', ...notes].join('\n'));
  parts.push(...pruneOutcome(prune, results, unreachable));
  if (suspended.length)
    parts.push(
      `:pause_button: Suspended, not deployed: ${hostList(suspended)} (\`spec.policy.suspend\` in Git, or ` +
        '`natsfleet suspend`; resuming deploys this revision).',
    );
  return fit(`${intro}\n${parts.join('\n\n')}`);
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
