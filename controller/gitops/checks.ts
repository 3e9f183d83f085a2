// Owns the check run natsfleet publishes on a commit when it runs as a GitHub App (pure): its
// conclusion from a plan or a deploy (the same rule as the overall commit status a token gets), its
// title and summary (the plan comment's headline, then one line per host), and its annotations: one
// per host on its manifest, on the line of `metadata.name`, at a level from a closed vocabulary of
// host marks, plus one per manifest problem on its own line. The reporter sends them.
import type { ApplyResult } from '../apply/result.js';
import type { ManifestFile } from '../manifest/load.js';
import { formatProblem, type Problem } from '../manifest/problems.js';
import { buildLineMap, lineOf } from '../manifest/yaml-positions.js';
import { planVerdict, type HostPlan } from '../plan/types.js';
import {
  CHECK_OUTPUT_LIMIT,
  type AnnotationLevel,
  type CheckAnnotation,
  type CheckRunReport,
} from '../report/github.js';
import { planHeadline } from '../report/markdown.js';
import { deployStatus, isSuccessful, oneLine, overallPlanStatus, planStatus, type StatusDecision } from './decide.js';

/** What a host's annotation says about it, in a plan or a deploy. */
export type HostMark = 'unreachable' | 'blocked' | 'failed' | 'drift' | 'restart' | 'change' | 'applied' | 'unchanged';

/** The level of each mark: what stops a merge or a deploy fails, what disrupts or surprises warns. */
export const ANNOTATION_LEVEL: Readonly<Record<HostMark, AnnotationLevel>> = {
  unreachable: 'failure',
  blocked: 'failure',
  failed: 'failure',
  drift: 'warning',
  restart: 'warning',
  change: 'notice',
  applied: 'notice',
  unchanged: 'notice',
};

/** Service steps that take NATS down for a moment (or for good). */
const DISRUPTIVE = new Set(['restart', 'start', 'stop']);

/** The mark of a host's plan: not reached, blocked, drifted, restarted, changed, or in sync. */
export function planMark(p: HostPlan): HostMark {
  const verdict = planVerdict(p);
  if (verdict === 'unknown') return 'unreachable';
  if (verdict === 'blocked') return 'blocked';
  if (p.drift.length) return 'drift';
  if (verdict === 'unchanged') return 'unchanged';
  return p.steps.some((s) => DISRUPTIVE.has(s.step)) ? 'restart' : 'change';
}

/** The mark of a host after a deploy: not reached, failed, applied, or unchanged. */
export function deployMark(r: ApplyResult | undefined, error: string | undefined): HostMark {
  if (error) return 'unreachable';
  if (!isSuccessful(r)) return 'failed';
  return r!.outcome === 'applied' ? 'applied' : 'unchanged';
}

/** Where a host's annotation goes: its manifest's path in the repository and a line of it. */
export interface ManifestPosition {
  path: string;
  line: number;
}

/** The line of `metadata.name` in a manifest, or 1 (a file that does not parse, a name not found). */
export function nameLine(text: string): number {
  try {
    return lineOf(buildLineMap(text), 'metadata.name') ?? 1;
  } catch {
    return 1;
  }
}

/** Each host's manifest position, by host name, from the hosts and the files they were loaded from. */
export function manifestPositions(
  hosts: readonly { name: string; file: string }[],
  files: readonly ManifestFile[],
): Map<string, ManifestPosition> {
  const text = new Map(files.map((f) => [f.path, f.text]));
  return new Map(hosts.map((h) => [h.name, { path: h.file, line: nameLine(text.get(h.file) ?? '') }]));
}

const annotation = (at: ManifestPosition, level: AnnotationLevel, title: string, message: string) => ({
  path: at.path,
  start_line: at.line,
  end_line: at.line,
  annotation_level: level,
  title: oneLine(title, 255),
  message: oneLine(message, 4_000),
});

/** One annotation per host that has a manifest position, with its mark's level. */
function hostAnnotations(
  hosts: readonly { host: string; mark: HostMark; description: string }[],
  where: ReadonlyMap<string, ManifestPosition>,
): CheckAnnotation[] {
  return hosts.flatMap((h) => {
    const at = where.get(h.host);
    return at ? [annotation(at, ANNOTATION_LEVEL[h.mark], `${h.host}: ${h.mark}`, h.description)] : [];
  });
}

/** Lines of a summary under a first paragraph, cut (with a count of the rest) to GitHub's limit. */
function summaryOf(lead: string, lines: readonly string[]): string {
  const room = CHECK_OUTPUT_LIMIT - 100;
  let out = lead;
  for (const [i, line] of lines.entries()) {
    if (out.length + 1 + line.length > room) return `${out}\n- ... and ${lines.length - i} more host(s)`;
    out += `${i === 0 ? '\n\n' : '\n'}${line}`;
  }
  return out;
}

const conclusion = (s: StatusDecision): CheckRunReport['conclusion'] => (s.state === 'success' ? 'success' : 'failure');
/** The emoji of a host's line in a summary, by its annotation's level. */
const LEVEL_EMOJI: Readonly<Record<AnnotationLevel, string>> = {
  failure: ':x:',
  warning: ':warning:',
  notice: ':white_check_mark:',
};
const hostLine = (host: string, mark: HostMark, description: string) =>
  `- ${LEVEL_EMOJI[ANNOTATION_LEVEL[mark]]} **${oneLine(host, 100)}**: ${oneLine(description)}`;

/**
 * The check run of a pull request's plan: concluded as the overall plan status (failure when a host
 * cannot be planned), titled with it, the plan comment's headline and a line per host as the summary,
 * the comment itself as the text, and an annotation per host on its manifest.
 */
export function planCheck(
  plans: readonly HostPlan[],
  where: ReadonlyMap<string, ManifestPosition>,
  text?: string,
): CheckRunReport {
  const overall = overallPlanStatus(plans);
  const hosts = plans.map((p) => ({ host: p.host, mark: planMark(p), description: planStatus(p).description }));
  return {
    status: 'completed',
    conclusion: conclusion(overall),
    title: overall.description,
    summary: summaryOf(
      planHeadline(plans),
      hosts.map((h) => hostLine(h.host, h.mark, h.description)),
    ),
    ...(text !== undefined ? { text: text.slice(0, CHECK_OUTPUT_LIMIT) } : {}),
    annotations: hostAnnotations(hosts, where),
  };
}

/**
 * The check run of a deploy on the commit it deployed: failure while any host failed (retried with
 * backoff, the run updated as they recover), a line per host deployed, and an annotation per host.
 */
export function deployCheck(
  x: {
    results: readonly ApplyResult[];
    unreachable: readonly { host: string; error: string }[];
    /** Hosts of the revision, for the title of a deploy where none failed. */
    total: number;
    /** Hosts failing now, counting those of earlier attempts of the revision. */
    failed: number;
    suspended?: readonly string[];
  },
  where: ReadonlyMap<string, ManifestPosition>,
): CheckRunReport {
  const hosts = [
    ...x.unreachable.map((u) => ({
      host: u.host,
      mark: deployMark(undefined, u.error),
      ...deployStatus(undefined, u.error),
    })),
    ...x.results.map((r) => ({ host: r.host, mark: deployMark(r, undefined), ...deployStatus(r, undefined) })),
  ];
  const title = x.failed ? `${x.failed} host(s) failed` : `${x.total} host(s) in sync`;
  const lead = x.failed
    ? `**${title}: failed hosts are retried with backoff; this check is updated as they recover.**`
    : `**${title}.**`;
  const suspended = (x.suspended ?? []).map((h) => `- :pause_button: **${oneLine(h, 100)}**: suspended, not deployed`);
  return {
    status: 'completed',
    conclusion: x.failed ? 'failure' : 'success',
    title,
    summary: summaryOf(lead, [...hosts.map((h) => hostLine(h.host, h.mark, h.description)), ...suspended]),
    annotations: hostAnnotations(hosts, where),
  };
}

/** The check run of a deploy under way: in progress, the hosts it takes. */
export function deployingCheck(hosts: readonly string[]): CheckRunReport {
  return {
    status: 'in_progress',
    title: `deploying ${hosts.length} host(s)`,
    summary: summaryOf(
      `**Deploying ${hosts.length} host(s).**`,
      hosts.map((h) => `- :hourglass: **${oneLine(h, 100)}**`),
    ),
    annotations: [],
  };
}

/** The check run of a revision whose manifests are invalid: failure, an annotation on each error's line. */
export function problemsCheck(problems: readonly Problem[]): CheckRunReport {
  const errors = problems.filter((p) => p.severity === 'error');
  const first = errors[0] ? formatProblem(errors[0]) : 'unknown problem';
  return {
    status: 'completed',
    conclusion: 'failure',
    title: oneLine(`invalid manifests: ${first}`, 255),
    summary: summaryOf(
      '**The manifests are invalid; nothing was planned and nothing will be applied.**',
      errors.map((p) => `- ${oneLine(formatProblem(p))}`),
    ),
    // The errors, as the comment shows them (not the warnings of files the change may not touch), each
    // on its manifest's line; a problem of the hosts directory itself has no file to annotate.
    annotations: errors
      .filter((p) => /\.ya?ml$/i.test(p.file))
      .map((p) => annotation({ path: p.file, line: p.line ?? 1 }, 'failure', p.path || 'manifest', p.message)),
  };
}

/** The check run of a commit natsfleet could not plan or deploy at all: failure, with why. */
export function failedCheck(title: string, why: string): CheckRunReport {
  return { status: 'completed', conclusion: 'failure', title: oneLine(title, 255), summary: why, annotations: [] };
}
