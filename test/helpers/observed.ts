// Fixture-driven planning (pyinfra-style): the observe output captured from a converged sandbox host,
// its manifest, and small edits of either, so tests run facts in, plan out, with no network.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { loadManifests } from '../../controller/manifest/load.js';
import { renderHost } from '../../controller/render/desired.js';
import { parseFacts } from '../../controller/observe/parse.js';
import type { DesiredHost } from '../../controller/render/artifact.js';
import type { HostFacts } from '../../controller/observe/facts.js';
import { fixtureSecrets, ROOT } from './fixtures.js';

export const CONVERGED_OUTPUT = readFileSync(join(ROOT, 'test/fixtures/observe/converged.txt'), 'utf8');
const MANIFEST = readFileSync(join(ROOT, 'test/fixtures/observe/converged.manifest.yaml'), 'utf8');

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- edits a parsed YAML manifest freely
export function desiredFrom(edit: (doc: any) => void = () => {}): DesiredHost {
  const doc = load(MANIFEST);
  edit(doc);
  const { hosts, problems } = loadManifests([{ path: 'hosts/nats-sb-1.yaml', text: dump(doc) }]);
  if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems));
  return renderHost(hosts[0], fixtureSecrets);
}

/** Facts of the converged host, optionally with the raw output or the parsed facts edited. */
export function factsFrom(
  d: DesiredHost,
  editOutput: (o: string) => string = (o) => o,
  editFacts: (f: HostFacts) => void = () => {},
): HostFacts {
  // Parsed facts share the parts parsed from the same bytes (frozen): edited on a copy.
  const f = structuredClone(parseFacts(editOutput(CONVERGED_OUTPUT), d));
  editFacts(f);
  return f;
}

/** Replaces the size and host-side hash of one file, as a hand edit of the file would. */
export function withFileHash(output: string, path: string, sha256: string, size = 99): string {
  const lines = output.split('\n');
  const i = lines.indexOf(`@@natsfleet file ${path}`);
  if (/^\d+ \S+ \S+ \d+$/.test(lines[i + 1])) {
    // One section per file: its metadata line, then its hash.
    lines[i + 1] = lines[i + 1].replace(/\d+$/, String(size));
    lines[i + 2] = sha256;
    return lines.join('\n');
  }
  // Every file's metadata in the `stat` section (`f MODE OWNER GROUP SIZE PATH`), hashes in `sha256`.
  return lines
    .map((l) =>
      l.endsWith(` ${path}`) && /^f \d+ /.test(l)
        ? l.replace(/ \d+ (\S+)$/, ` ${size} $1`)
        : l === `${l.slice(0, 64)}  ${path}` && /^[0-9a-f]{64}$/.test(l.slice(0, 64))
          ? `${sha256}  ${path}`
          : l,
    )
    .join('\n');
}
