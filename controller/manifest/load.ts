// Owns turning manifest files (path + text, from a directory or a Git revision) into HostSpecs:
// safe YAML parsing, schema validation, semantic rules, and cross-file checks. Pure: no I/O.
import { posix } from 'node:path';
import { load, parseEvents } from 'js-yaml';
import { buildLineMap, lineOf, type LineMap } from './yaml-positions.js';
import { validateSchema } from './schema.js';
import { toHostSpec, type HostSpec } from './host-spec.js';
import { checkHost } from './rules.js';
import type { NatsHost } from './natshost.gen.js';
import type { Problem } from './problems.js';

export interface ManifestFile {
  /** Path as shown to the user, e.g. hosts/nats-eu-1.yaml. */
  path: string;
  text: string;
}

export interface LoadResult {
  hosts: HostSpec[];
  problems: Problem[];
}

export const MAX_MANIFEST_BYTES = 64 * 1024;
const MAX_NODES = 5000;
const MAX_ALIASES = 16;
const MAX_DEPTH = 32;

export const isManifestName = (name: string) => /\.ya?ml$/.test(name);

/** Counts values, following aliases, and stops once past `budget` (an alias bomb never gets expanded). */
function countNodes(value: unknown, budget: number): number {
  let count = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && count <= budget) {
    const v = stack.pop();
    count++;
    if (Array.isArray(v)) stack.push(...v);
    else if (v !== null && typeof v === 'object') stack.push(...Object.values(v));
  }
  return count;
}

interface Parsed {
  doc?: unknown;
  lines: LineMap;
  problems: Problem[];
}

function parse(file: ManifestFile): Parsed {
  const err = (message: string, line?: number): Parsed => ({
    lines: new Map(),
    problems: [{ file: file.path, path: '', line, severity: 'error', message }],
  });
  const bytes = Buffer.byteLength(file.text);
  if (bytes > MAX_MANIFEST_BYTES) return err(`file is ${bytes} bytes; a manifest may be at most ${MAX_MANIFEST_BYTES}`);
  if (!/\S/.test(file.text.replace(/#.*$/gm, '')))
    return err('file is empty: it must be a YAML mapping (a NatsHost resource)');
  try {
    const documents = parseEvents(file.text, { maxDepth: MAX_DEPTH }).filter((e) => e.type === 1).length;
    if (documents > 1) return err(`contains ${documents} YAML documents; a manifest file holds exactly one NatsHost`);
    const doc = load(file.text, { filename: file.path, maxDepth: MAX_DEPTH, maxAliases: MAX_ALIASES });
    if (countNodes(doc, MAX_NODES) > MAX_NODES) return err(`expands to more than ${MAX_NODES} values (alias bomb?)`);
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      return err('must be a YAML mapping (a NatsHost resource)');
    return { doc, lines: buildLineMap(file.text), problems: [] };
  } catch (e) {
    const mark = (e as { mark?: { line: number } }).mark;
    const reason = (e as { reason?: string }).reason ?? (e as Error).message;
    return err(`YAML: ${reason}`, mark ? mark.line + 1 : undefined);
  }
}

function loadOne(file: ManifestFile): { host?: HostSpec; problems: Problem[] } {
  const parsed = parse(file);
  if (!parsed.doc) return { problems: parsed.problems };
  const at = (path: string, severity: Problem['severity'], message: string): Problem => ({
    file: file.path,
    path,
    line: lineOf(parsed.lines, path),
    severity,
    message,
  });
  const doc = structuredClone(parsed.doc) as NatsHost;
  const schemaErrors = validateSchema(doc);
  if (schemaErrors.length > 0) return { problems: schemaErrors.map((e) => at(e.path, 'error', e.message)) };
  const host = toHostSpec(doc, file.path);
  const problems = checkHost(host).map((f) => at(f.path, f.severity, f.message));
  const base = posix.basename(file.path).replace(/\.ya?ml$/, '');
  if (base !== host.name) {
    problems.push(
      at('metadata.name', 'error', `"${host.name}" must equal the file name "${base}" (hosts/<name>.yaml)`),
    );
  }
  return { host, problems };
}

/** Loads a whole hosts directory's worth of files; a host with any error is left out of `hosts`. */
export function loadManifests(files: readonly ManifestFile[]): LoadResult {
  const problems: Problem[] = [];
  const hosts: HostSpec[] = [];
  const byName = new Map<string, string>();
  const byEndpoint = new Map<string, string>();
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    const one = loadOne(file);
    problems.push(...one.problems);
    const h = one.host;
    if (!h) continue;
    const cross: Problem[] = [];
    const other = byName.get(h.name);
    if (other)
      cross.push({
        file: file.path,
        path: 'metadata.name',
        severity: 'error',
        message: `"${h.name}" is already used by ${other}`,
      });
    const endpoint = `${h.ssh.host}:${h.ssh.port}`;
    const sameHost = byEndpoint.get(endpoint);
    if (sameHost && h.state === 'present') {
      cross.push({
        file: file.path,
        path: 'spec.ssh.host',
        severity: 'error',
        message: `${endpoint} is already managed by ${sameHost}`,
      });
    }
    problems.push(...cross);
    if (one.problems.some((p) => p.severity === 'error') || cross.length > 0) continue;
    byName.set(h.name, file.path);
    if (h.state === 'present') byEndpoint.set(endpoint, file.path);
    hosts.push(h);
  }
  return { hosts, problems };
}
