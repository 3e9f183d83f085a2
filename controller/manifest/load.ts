// Owns turning manifest files (path + text, from a directory or a Git revision) into HostSpecs:
// safe YAML parsing, schema validation, semantic rules, and cross-file checks. Pure: no I/O.
import { posix } from 'node:path';
import { load, parseEvents } from 'js-yaml';
import { buildLineMap, lineOf, type LineMap } from './yaml-positions.js';
import { validateSchema } from './schema.js';
import { toHostSpec, type HostSpec } from './host-spec.js';
import { checkHost } from './rules.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from './path-policy.js';
import { checkSecretPolicy, DEFAULT_SECRET_POLICY, type SecretPolicy } from './secret-policy.js';

/** The operator's policies a manifest is checked against (the controller's configuration; defaults here). */
export interface LoadPolicy {
  paths: PathPolicy;
  secrets: SecretPolicy;
}
export const DEFAULT_LOAD_POLICY: LoadPolicy = { paths: DEFAULT_PATH_POLICY, secrets: DEFAULT_SECRET_POLICY };
import type { NatsHost } from './natshost.gen.js';
import type { Problem } from './problems.js';

export interface ManifestFile {
  /** Path as shown to the user, e.g. hosts/nats-eu-1.yaml. */
  path: string;
  text: string;
  /** Set when the entry looks like a manifest but cannot be read as one (a directory, a link, a subdirectory). */
  unreadable?: string;
}

export interface LoadResult {
  hosts: HostSpec[];
  problems: Problem[];
}

export const MAX_MANIFEST_BYTES = 64 * 1024;
const MAX_NODES = 5000;
const MAX_ALIASES = 16;
const MAX_DEPTH = 32;

/** Any case of .yaml/.yml: such a file is read, or reported, never silently skipped. */
export const isManifestName = (name: string) => /\.ya?ml$/i.test(name);
/** Stands for a file over the size limit, so that the loader reports it without it being read. */
export const oversized = (path: string): ManifestFile => ({ path, text: ' '.repeat(MAX_MANIFEST_BYTES + 1) });

/**
 * The key under which one SSH endpoint is unique: names in lower case, IPv6 in canonical form; an IPv4
 * address written other than as four plain decimal numbers (3221225985, 192.000.002.001, 0xc0.0.2.1)
 * is refused, since the resolver would read it as another spelling of some address.
 */
export function endpointKey(host: string, port: number): { key: string; problem?: string } {
  if (host.includes(':')) {
    try {
      return { key: `[${new URL(`http://[${host}]/`).hostname.slice(1, -1)}]:${port}` };
    } catch {
      return { key: host, problem: `${host} is not a valid IPv6 address` };
    }
  }
  const lower = host.toLowerCase().replace(/\.$/, '');
  const labels = lower.split('.');
  const numeric = labels.every((l) => /^(0x[0-9a-f]*|[0-9]+)$/.test(l));
  if (numeric || /^[0-9]+$/.test(labels[labels.length - 1])) {
    const octet = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
    if (labels.length !== 4 || !labels.every((l) => octet.test(l))) {
      return {
        key: lower,
        problem: `${host} is not written as an IPv4 address of four decimal numbers (such as 192.0.2.1)`,
      };
    }
  }
  return { key: `${lower}:${port}` };
}

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

function loadOne(file: ManifestFile, policy: LoadPolicy): { host?: HostSpec; problems: Problem[] } {
  if (file.unreadable)
    return { problems: [{ file: file.path, path: '', severity: 'error', message: file.unreadable }] };
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
  const problems = checkHost(host, policy.paths).map((f) => at(f.path, f.severity, f.message));
  for (const f of checkSecretPolicy(host, policy.secrets)) problems.push(at(f.path, 'error', f.message));
  const base = posix.basename(file.path).replace(/\.ya?ml$/i, '');
  if (base !== host.name) {
    problems.push(
      at('metadata.name', 'error', `"${host.name}" must equal the file name "${base}" (hosts/<name>.yaml)`),
    );
  }
  return { host, problems };
}

/** Loads a whole hosts directory's worth of files; a host with any error is left out of `hosts`. */
export function loadManifests(files: readonly ManifestFile[], policy: LoadPolicy = DEFAULT_LOAD_POLICY): LoadResult {
  const problems: Problem[] = [];
  const hosts: HostSpec[] = [];
  const byName = new Map<string, string>();
  const byEndpoint = new Map<string, string>();
  for (const file of [...files].sort((a, b) => a.path.localeCompare(b.path))) {
    const one = loadOne(file, policy);
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
    const { key: endpoint, problem } = endpointKey(h.ssh.host, h.ssh.port);
    if (problem) cross.push({ file: file.path, path: 'spec.ssh.host', severity: 'error', message: problem });
    const sameHost = byEndpoint.get(endpoint);
    if (sameHost && h.state === 'present') {
      cross.push({
        file: file.path,
        path: 'spec.ssh.host',
        severity: 'error',
        message: `${h.ssh.host}:${h.ssh.port} is already managed by ${sameHost}`,
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
