// Owns ClusterSpec (a validated NatsCluster with its defaults) and the rules that join a cluster to its
// member hosts: the shared NATS settings members inherit (a field set in both places is an error),
// the rules of one cluster file, and what one member's rendering needs to know of its cluster. Pure.
import type { NatsCluster } from './natscluster.gen.js';
import type { Secret } from './natshost.gen.js';
import { durationMs, type RuleFinding } from './rules.js';
import type { ClusterMember, HostCluster, RouteTls } from './host-spec.js';
import { directoryProblem, type PathPolicy } from './path-policy.js';
import { posix } from 'node:path';

export interface ClusterSpec {
  name: string;
  /** Repository-relative path of the manifest, e.g. hosts/core.yaml. */
  file: string;
  labels: Record<string, string>;
  members: ClusterMember[];
  routePort: number;
  routeAuth?: { user: string; password: Secret };
  systemAccount?: { user: string; password: Secret };
  /** Route TLS from an operator CA (enabled only). */
  tls?: RouteTls;
  rollout: HostCluster['rollout'];
  /** The NATS settings every member inherits, as written (merged into each member's manifest). */
  shared: Record<string, unknown>;
}

/** Votes a RAFT group of `n` needs: more than half. */
export const quorum = (n: number) => Math.floor(n / 2) + 1;

/** Applies defaults; `doc` must have passed schema validation (which filled in the literal ones). */
export function toClusterSpec(doc: NatsCluster, file: string): ClusterSpec {
  const r = doc.spec.rollout!;
  return {
    name: doc.metadata.name,
    file,
    labels: doc.metadata.labels ?? {},
    members: doc.spec.members.map((m) => ({ host: m.host, routeAddress: m.routeAddress })),
    routePort: doc.spec.routePort!,
    routeAuth: doc.spec.routeAuth,
    systemAccount: doc.spec.systemAccount,
    tls: doc.spec.tls?.enabled ? (doc.spec.tls as RouteTls) : undefined,
    rollout: {
      maxUnavailable: r.maxUnavailable!,
      settle: r.settle!,
      timeout: r.timeout!,
      settleMs: durationMs(r.settle!),
      timeoutMs: durationMs(r.timeout!),
    },
    shared: (doc.spec.nats ?? {}) as Record<string, unknown>,
  };
}

export function hostCluster(c: ClusterSpec, host: string): HostCluster {
  return {
    name: c.name,
    file: c.file,
    routePort: c.routePort,
    routeAddress: c.members.find((m) => m.host === host)!.routeAddress,
    peers: c.members.filter((m) => m.host !== host),
    members: c.members.map((m) => m.host),
    routeAuth: c.routeAuth,
    systemAccount: c.systemAccount,
    tls: c.tls,
    rollout: c.rollout,
  };
}

const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Merges the cluster's shared settings into a member's document (as written, before its schema
 * defaults): returns the merged document and the fields set in both places, as dotted paths.
 */
export function inheritShared(
  hostDoc: Record<string, unknown>,
  shared: Record<string, unknown>,
): { doc: Record<string, unknown>; conflicts: string[] } {
  const conflicts: string[] = [];
  const merge = (into: Record<string, unknown>, from: Record<string, unknown>, path: string) => {
    for (const [k, v] of Object.entries(from)) {
      const here = into[k];
      if (here === undefined) into[k] = structuredClone(v);
      else if (isMap(here) && isMap(v) && k !== 'auth') merge(here, v, `${path}.${k}`);
      else conflicts.push(`${path}.${k}`);
    }
  };
  const doc = structuredClone(hostDoc);
  if (!isMap(doc.spec)) return { doc, conflicts };
  const spec = doc.spec as Record<string, unknown>;
  if (spec.nats === undefined) spec.nats = {};
  if (isMap(spec.nats)) merge(spec.nats, shared, 'spec.nats');
  return { doc, conflicts };
}

/** Route TLS: the three files, each where natsfleet may mount from (never a system tree). */
export function checkRouteTls(c: ClusterSpec, policy: PathPolicy): RuleFinding[] {
  if (!c.tls) return [];
  const out: RuleFinding[] = [];
  for (const f of ['certFile', 'keyFile', 'caFile'] as const) {
    const path = c.tls[f];
    if (path === undefined) {
      out.push({ path: `spec.tls.${f}`, severity: 'error', message: 'is required when route TLS is enabled' });
      continue;
    }
    const problem = directoryProblem(posix.dirname(path), policy);
    if (problem)
      out.push({
        path: `spec.tls.${f}`,
        severity: 'error',
        message: `${problem}; natsfleet mounts TLS files only from there`,
      });
  }
  return out;
}

/** The rules of one cluster file on its own (cross-file rules live in the loader). */
export function checkCluster(c: ClusterSpec): RuleFinding[] {
  const out: RuleFinding[] = [];
  const seenHost = new Set<string>();
  const seenAddress = new Set<string>();
  c.members.forEach((m, i) => {
    if (seenHost.has(m.host))
      out.push({ path: `spec.members.${i}.host`, severity: 'error', message: `${m.host} is listed twice` });
    seenHost.add(m.host);
    const addr = m.routeAddress.toLowerCase();
    if (seenAddress.has(addr))
      out.push({
        path: `spec.members.${i}.routeAddress`,
        severity: 'error',
        message: `${m.routeAddress} is the route address of another member: each member needs its own`,
      });
    seenAddress.add(addr);
  });
  if (c.members.length % 2 === 0)
    out.push({
      path: 'spec.members',
      severity: 'warning',
      message:
        `${c.members.length} members: an even count tolerates no more failures than ${c.members.length - 1} ` +
        `members would (quorum is ${quorum(c.members.length)}); use an odd number`,
    });
  if (c.routeAuth?.password.bcrypt !== undefined)
    out.push({
      path: 'spec.routeAuth.password',
      severity: 'error',
      message: 'must be {env} or {file}: members present the password to each other, a bcrypt hash cannot be sent',
    });
  if (c.systemAccount?.password.bcrypt !== undefined)
    out.push({
      path: 'spec.systemAccount.password',
      severity: 'error',
      message: 'must be {env} or {file}: natsfleet signs in with it, a bcrypt hash cannot be sent',
    });
  if (c.rollout.timeoutMs < c.rollout.settleMs)
    out.push({
      path: 'spec.rollout.timeout',
      severity: 'error',
      message: `must be at least rollout.settle (${c.rollout.settle})`,
    });
  return out;
}
