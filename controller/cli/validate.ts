// Owns `natsfleet validate [DIR]`: every manifest checked, one line per problem, exit 0 or 1.
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors } from '../manifest/problems.js';
import { readManifestDir } from '../manifest/read-dir.js';
import { policyFrom, type PolicyFlags } from './policy-options.js';

export async function validateCommand(
  dir: string,
  out: (line: string) => void,
  flags: PolicyFlags = {},
): Promise<number> {
  const policy = policyFrom(flags);
  const files = await readManifestDir(dir);
  if (files.length === 0) {
    out(`${dir}: error: no manifests (*.yaml) found`);
    return 1;
  }
  const { hosts, clusters, problems } = loadManifests(files, policy);
  for (const p of problems) out(formatProblem(p));
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
