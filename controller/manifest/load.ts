// Owns turning manifest files (path + text, from a directory or a Git revision) into HostSpecs and
// ClusterSpecs: safe YAML parsing, schema validation, semantic rules, and cross-file checks (names
// unique across kinds, cluster members, shared settings). Pure: no I/O.
import { posix } from 'node:path';
import { constructFromEvents, parseEvents } from 'js-yaml';
import { buildLineMap, lineOf, type LineMap } from './yaml-positions.js';
import { validateSchema } from './schema.js';
import { toHostSpec, type HostSpec } from './host-spec.js';
import { checkHost } from './rules.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from './path-policy.js';
import { checkSecretPolicy, DEFAULT_SECRET_POLICY, secretRefProblem, type SecretPolicy } from './secret-policy.js';
import {
  checkCluster,
  checkRouteTls,
  hostCluster,
  inheritShared,
  toClusterSpec,
  type ClusterSpec,
} from './cluster-spec.js';
import type { NatsCluster } from './natscluster.gen.js';
import type { NatsHost } from './natshost.gen.js';
import type { Problem } from './problems.js';
import { byCodePoint } from '../util/order.js';

/** The operator's policies a manifest is checked against (the controller's configuration; defaults here). */
export interface LoadPolicy {
  paths: PathPolicy;
  secrets: SecretPolicy;
}
export const DEFAULT_LOAD_POLICY: LoadPolicy = { paths: DEFAULT_PATH_POLICY, secrets: DEFAULT_SECRET_POLICY };

export interface ManifestFile {
  /** Path as shown to the user, e.g. hosts/nats-eu-1.yaml. */
  path: string;
  text: string;
  /** Set when the entry looks like a manifest but cannot be read as one (a directory, a link, a subdirectory). */
  unreadable?: string;
}

export interface LoadResult {
  hosts: HostSpec[];
  /** Valid clusters whose members are all valid (their members' HostSpecs carry `cluster`). */
  clusters: ClusterSpec[];
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
    return err('file is empty: it must be a YAML mapping (a NatsHost or NatsCluster resource)');
  try {
    // Parsed once: the events give the document count and the line map, and are constructed into the value
    // (what js-yaml's load does; parsing three times was most of the time of loading 10,000 manifests).
    const events = parseEvents(file.text, { filename: file.path, maxDepth: MAX_DEPTH });
    const documents = events.filter((e) => e.type === 1).length;
    if (documents > 1) return err(`contains ${documents} YAML documents; a manifest file holds exactly one resource`);
    if (documents === 0) return err('YAML: expected a document, but the input is empty');
    const [doc] = constructFromEvents(events, { source: file.text, filename: file.path, maxAliases: MAX_ALIASES });
    if (countNodes(doc, MAX_NODES) > MAX_NODES) return err(`expands to more than ${MAX_NODES} values (alias bomb?)`);
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      return err('must be a YAML mapping (a NatsHost or NatsCluster resource)');
    return { doc, lines: buildLineMap(file.text, events), problems: [] };
  } catch (e) {
    const mark = (e as { mark?: { line: number } }).mark;
    const reason = (e as { reason?: string }).reason ?? (e as Error).message;
    return err(`YAML: ${reason}`, mark ? mark.line + 1 : undefined);
  }
}

const fileBase = (path: string) => posix.basename(path).replace(/\.ya?ml$/i, '');

function at(file: ManifestFile, lines: LineMap, path: string, severity: Problem['severity'], message: string): Problem {
  return { file: file.path, path, line: lineOf(lines, path), severity, message };
}

const nameMismatch = (name: string, file: ManifestFile) =>
  `"${name}" must equal the file name "${fileBase(file.path)}" (hosts/<name>.yaml)`;

function loadHost(
  file: ManifestFile,
  parsed: Parsed,
  policy: LoadPolicy,
  cluster: ClusterSpec | undefined,
): { host?: HostSpec; problems: Problem[] } {
  const where = (path: string, severity: Problem['severity'], message: string) =>
    at(file, parsed.lines, path, severity, message);
  let raw = parsed.doc as Record<string, unknown>;
  const problems: Problem[] = [];
  if (cluster) {
    const merged = inheritShared(raw, cluster.shared);
    raw = merged.doc;
    for (const c of merged.conflicts)
      problems.push(
        where(c, 'error', `is also set by NatsCluster ${cluster.name} (${cluster.file}): set it in one place`),
      );
  }
  const doc = structuredClone(raw) as unknown as NatsHost;
  const schemaErrors = validateSchema(doc);
  if (schemaErrors.length > 0)
    return { problems: [...problems, ...schemaErrors.map((e) => where(e.path, 'error', e.message))] };
  if (!doc.spec.nats?.image) {
    const hint = cluster ? ` (or in NatsCluster ${cluster.name}'s spec.nats)` : " (or in its NatsCluster's spec.nats)";
    return { problems: [...problems, where('spec.nats.image', 'error', `is required${hint}`)] };
  }
  const host = toHostSpec(doc, file.path);
  problems.push(...checkHost(host, policy.paths).map((f) => where(f.path, f.severity, f.message)));
  for (const f of checkSecretPolicy(host, policy.secrets)) problems.push(where(f.path, 'error', f.message));
  if (fileBase(file.path) !== host.name) problems.push(where('metadata.name', 'error', nameMismatch(host.name, file)));
  return { host, problems };
}

function loadCluster(
  file: ManifestFile,
  parsed: Parsed,
  policy: LoadPolicy,
): { cluster?: ClusterSpec; problems: Problem[] } {
  const where = (path: string, severity: Problem['severity'], message: string) =>
    at(file, parsed.lines, path, severity, message);
  const doc = structuredClone(parsed.doc) as NatsCluster;
  const schemaErrors = validateSchema(doc, 'NatsCluster');
  if (schemaErrors.length > 0) return { problems: schemaErrors.map((e) => where(e.path, 'error', e.message)) };
  const cluster = toClusterSpec(doc, file.path);
  const problems = [...checkCluster(cluster), ...checkRouteTls(cluster, policy.paths)].map((f) =>
    where(f.path, f.severity, f.message),
  );
  for (const [field, ref] of [
    ['spec.routeAuth.password', cluster.routeAuth?.password],
    ['spec.systemAccount.password', cluster.systemAccount?.password],
  ] as const) {
    const refused = ref && secretRefProblem(ref, policy.secrets);
    if (refused) problems.push(where(field, 'error', refused));
  }
  if (fileBase(file.path) !== cluster.name)
    problems.push(where('metadata.name', 'error', nameMismatch(cluster.name, file)));
  return { cluster, problems };
}

const kindOf = (doc: unknown) => ((doc as { kind?: unknown }).kind === 'NatsCluster' ? 'NatsCluster' : 'NatsHost');
const rawName = (doc: unknown) => {
  const n = (doc as { metadata?: { name?: unknown } }).metadata?.name;
  return typeof n === 'string' ? n : undefined;
};
/** Member host names as written, also in a cluster file that is otherwise invalid. */
const rawMembers = (doc: unknown): string[] => {
  const m = (doc as { spec?: { members?: unknown } }).spec?.members;
  return Array.isArray(m)
    ? m.map((x) => (x as { host?: unknown })?.host).filter((h): h is string => typeof h === 'string')
    : [];
};

/**
 * Loads a whole hosts directory's worth of files. A host with any error is left out of `hosts`; a
 * cluster with any error, or with a member in error, is left out together with all its members (a
 * member is never rendered without its cluster).
 */
export function loadManifests(files: readonly ManifestFile[], policy: LoadPolicy = DEFAULT_LOAD_POLICY): LoadResult {
  const problems: Problem[] = [];
  const sorted = [...files].sort((a, b) => byCodePoint(a.path, b.path));
  const parsed = new Map<ManifestFile, Parsed>();
  for (const file of sorted) {
    if (file.unreadable) {
      problems.push({ file: file.path, path: '', severity: 'error', message: file.unreadable });
      continue;
    }
    const p = parse(file);
    problems.push(...p.problems);
    if (p.doc) parsed.set(file, p);
  }
  const entries = [...parsed.entries()];
  const byName = new Map<string, string>();
  const nameTaken = (name: string | undefined, file: ManifestFile): Problem | undefined => {
    if (name === undefined) return undefined;
    const other = byName.get(name);
    if (other)
      return {
        file: file.path,
        path: 'metadata.name',
        severity: 'error',
        message: `"${name}" is already used by ${other}`,
      };
    byName.set(name, file.path);
    return undefined;
  };

  // Clusters first: their members inherit the shared settings.
  const clusters: ClusterSpec[] = [];
  /** Hosts named by a cluster that is invalid (or listed by two): left out with it. */
  const orphaned = new Map<string, string>();
  const clusterOf = new Map<string, ClusterSpec>();
  for (const [file, p] of entries.filter(([, p]) => kindOf(p.doc) === 'NatsCluster')) {
    const one = loadCluster(file, p, policy);
    const taken = nameTaken(rawName(p.doc), file);
    const own = [...one.problems, ...(taken ? [taken] : [])];
    if (one.cluster) {
      one.cluster.members.forEach((m, i) => {
        const other = clusterOf.get(m.host);
        if (other && other !== one.cluster)
          own.push(
            at(
              file,
              p.lines,
              `spec.members.${i}.host`,
              'error',
              `${m.host} is already a member of NatsCluster ${other.name} (${other.file})`,
            ),
          );
      });
    }
    problems.push(...own);
    if (!one.cluster || own.some((x) => x.severity === 'error')) {
      for (const h of rawMembers(p.doc))
        if (!clusterOf.has(h)) orphaned.set(h, `${rawName(p.doc) ?? file.path} (${file.path})`);
      continue;
    }
    for (const m of one.cluster.members) clusterOf.set(m.host, one.cluster);
    clusters.push(one.cluster);
  }

  const hosts: HostSpec[] = [];
  const byEndpoint = new Map<string, string>();
  for (const [file, p] of entries.filter(([, p]) => kindOf(p.doc) === 'NatsHost')) {
    const name = rawName(p.doc);
    const cluster = name !== undefined ? clusterOf.get(name) : undefined;
    const one = loadHost(file, p, policy, cluster);
    problems.push(...one.problems);
    const h = one.host;
    const taken = nameTaken(name, file);
    if (!h) continue;
    const cross: Problem[] = taken ? [taken] : [];
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
    if (orphaned.has(h.name))
      cross.push({
        file: file.path,
        path: 'metadata.name',
        severity: 'error',
        message: `left out with its invalid NatsCluster ${orphaned.get(h.name)}`,
      });
    if (cluster && h.state === 'absent')
      cross.push({
        file: file.path,
        path: 'spec.state',
        severity: 'error',
        message: `a member of NatsCluster ${cluster.name} cannot be absent: remove it from ${cluster.file} first`,
      });
    problems.push(...cross);
    if (one.problems.some((x) => x.severity === 'error') || cross.length > 0) continue;
    if (h.state === 'present') byEndpoint.set(endpoint, file.path);
    if (cluster) h.cluster = hostCluster(cluster, h.name);
    hosts.push(h);
  }

  // A cluster whose members are not all valid hosts is left out, with its members.
  const valid: ClusterSpec[] = [];
  for (const c of clusters) {
    const own: Problem[] = [];
    const lines = parsed.get(files.find((f) => f.path === c.file)!)?.lines ?? new Map();
    const where = (path: string, message: string) => ({
      file: c.file,
      path,
      line: lineOf(lines, path),
      severity: 'error' as const,
      message,
    });
    c.members.forEach((m, i) => {
      if (!byName.has(m.host))
        own.push(where(`spec.members.${i}.host`, `no NatsHost named ${m.host} in this directory`));
      else if (!hosts.some((h) => h.name === m.host))
        own.push(
          where(
            `spec.members.${i}.host`,
            `${m.host} (${byName.get(m.host)}) is invalid: the cluster is left out until it is fixed`,
          ),
        );
    });
    const members = hosts.filter((h) => h.cluster?.name === c.name);
    const names = new Map<string, string>();
    for (const h of members) {
      const other = names.get(h.nats.serverName);
      if (other)
        own.push(
          where('spec.members', `members ${other} and ${h.name} have the same server name "${h.nats.serverName}"`),
        );
      names.set(h.nats.serverName, h.name);
    }
    if (c.systemAccount) {
      const wrong = members.filter((h) => !h.nats.auth?.user);
      if (wrong.length)
        own.push(
          where(
            'spec.systemAccount',
            'NATS refuses a system account beside a client token or no client auth: ' +
              `${wrong.map((h) => h.name).join(', ')} must authenticate clients with a user and a password ` +
              '(spec.nats.auth.user and .password)',
          ),
        );
    }
    const js = members.filter((h) => h.nats.jetstream.enabled).length;
    if (js > 0 && js < members.length)
      problems.push({
        ...where(
          'spec.members',
          `JetStream is enabled on ${js} of ${members.length} members: enable it on all or none`,
        ),
        severity: 'warning',
      });
    problems.push(...own);
    if (own.length) {
      for (const h of members) {
        problems.push({
          file: h.file,
          path: 'metadata.name',
          severity: 'error',
          message: `left out with its invalid NatsCluster ${c.name} (${c.file})`,
        });
      }
      continue;
    }
    for (const h of members)
      for (const peer of h.cluster!.peers) peer.serverName = members.find((x) => x.name === peer.host)?.nats.serverName;
    valid.push(c);
  }
  const left = new Set(clusters.filter((c) => !valid.includes(c)).map((c) => c.name));
  return { hosts: hosts.filter((h) => !h.cluster || !left.has(h.cluster.name)), clusters: valid, problems };
}
