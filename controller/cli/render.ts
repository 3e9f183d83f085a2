// Owns `natsfleet render <NAME|FILE> --out DIR`: writes every artifact of one host under DIR
// at its remote absolute path, with its mode, resolving {env}/{file} secrets on this machine.
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors } from '../manifest/problems.js';
import { readManifestDir, readManifestFile } from '../manifest/read-dir.js';
import { renderHost } from '../render/desired.js';
import { policyResolver } from '../secrets/resolve.js';
import { policyFrom, type PolicyFlags } from './policy-options.js';

export async function renderCommand(
  target: string,
  opts: { out: string; hosts: string } & PolicyFlags,
  out: (line: string) => void,
): Promise<number> {
  const isFile = /\.ya?ml$/i.test(target);
  const policy = policyFrom(opts);
  const files = isFile ? [readManifestFile(target)] : await readManifestDir(opts.hosts);
  const { hosts, problems } = loadManifests(files, policy);
  for (const p of problems) out(formatProblem(p));
  const host = isFile ? hosts[0] : hosts.find((h) => h.name === target);
  if (hasErrors(problems) || !host) {
    if (!host && !hasErrors(problems)) out(`error: no valid host named ${target} in ${opts.hosts}`);
    return 1;
  }
  const desired = renderHost(host, await policyResolver([host], policy.secrets), policy.paths);
  for (const d of desired.dirs) await mkdir(join(opts.out, d.path), { recursive: true });
  for (const f of desired.files) {
    const path = join(opts.out, f.path);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, f.content);
    await chmod(path, parseInt(f.mode, 8));
    out(`${f.mode} ${f.path}`);
  }
  return 0;
}
