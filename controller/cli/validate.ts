// Owns `natsfleet validate [DIR]`: every manifest checked, one line per problem, exit 0 or 1. With
// --format github, each problem is a GitHub Actions workflow command (::error / ::warning), which GitHub
// shows as an annotation on the file and line.
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors, type Problem } from '../manifest/problems.js';
import { readManifestDir } from '../manifest/read-dir.js';
import { policyFrom, type PolicyFlags } from './policy-options.js';

export const VALIDATE_FORMATS = ['text', 'github'] as const;
export type ValidateFormat = (typeof VALIDATE_FORMATS)[number];

/** A workflow command's message: %, CR and LF escaped (GitHub's rules). */
const escapeData = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
/** A workflow command's property value: also ':' and ','. */
const escapeProperty = (s: string) => escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** One workflow command: `::error file=F,line=L,title=T::message` (a property only when known). */
export function githubCommand(
  severity: 'error' | 'warning',
  message: string,
  props: { file?: string; line?: number; title?: string } = {},
): string {
  const list = Object.entries(props)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  return `::${severity}${list ? ` ${list}` : ''}::${escapeData(message)}`;
}

/** A problem as a GitHub annotation: on its file and line, titled by its field. */
export const githubAnnotation = (p: Problem): string =>
  githubCommand(p.severity, p.path ? `${p.path}: ${p.message}` : p.message, {
    file: p.file,
    line: p.line,
    title: p.path || undefined,
  });

export async function validateCommand(
  dir: string,
  out: (line: string) => void,
  flags: PolicyFlags & { format?: ValidateFormat } = {},
): Promise<number> {
  const github = flags.format === 'github';
  const policy = policyFrom(flags);
  const files = await readManifestDir(dir);
  if (files.length === 0) {
    const message = `${dir}: no manifests (*.yaml) found`;
    out(
      github
        ? githubCommand('error', message, { title: 'natsfleet validate' })
        : `${dir}: error: no manifests (*.yaml) found`,
    );
    return 1;
  }
  const { hosts, clusters, problems } = loadManifests(files, policy);
  for (const p of problems) out(github ? githubAnnotation(p) : formatProblem(p));
  const errors = problems.filter((p) => p.severity === 'error').length;
  const warnings = problems.length - errors;
  out(
    hasErrors(problems)
      ? `${errors} error(s), ${warnings} warning(s): ` +
          `${files.length - hosts.length - clusters.length} of ${files.length} manifest(s) invalid`
      : `${files.length} manifest(s) valid (${hosts.length} host(s), ${clusters.length} cluster(s))` +
          (warnings ? `, ${warnings} warning(s)` : ''),
  );
  return hasErrors(problems) ? 1 : 0;
}
