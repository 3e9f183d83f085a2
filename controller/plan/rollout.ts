// Owns the rollout plan of a cluster (pure, a value like a HostPlan): in which order its members'
// plans run, in which batches, behind which gates, and what is blocked before anything starts.
// Members whose server must go down (restart, stop) go one batch at a time, followers first and the
// JetStream meta leader last, each only when the rest of the cluster can lose it; members that only
// start or reload never take capacity away and go first, one by one, verified. A cluster none of
// whose members runs starts all at once (a cold start needs a quorum to elect a meta leader).
import { quorum } from '../manifest/cluster-spec.js';
import { cannotLose, clusterHealth, type ClusterHealth, type MemberFacts } from './cluster.js';
import { hasWork, type HostPlan } from './types.js';

/** What a member's plan does to its server. */
export type MemberAction = 'restart' | 'stop' | 'start' | 'reload' | 'files' | 'none' | 'unknown' | 'blocked';

export interface RolloutMember {
  host: string;
  action: MemberAction;
  /** The member is the JetStream meta leader (it goes last). */
  metaLeader: boolean;
}

export interface RolloutSettings {
  maxUnavailable: number;
  settle: string;
  timeout: string;
  /** natsfleet has a system account user: it removes former members from the meta group. */
  systemAccount?: boolean;
  /** The members' routes use TLS (NatsCluster spec.tls). */
  routeTls?: boolean;
}

export interface RolloutPlan {
  cluster: string;
  /** Members in the order the rollout takes them. */
  members: RolloutMember[];
  /** Hosts taken together; each batch waits for the previous one to be healthy and current. */
  batches: string[][];
  coldStart: boolean;
  /** The gates, in words, as the plan shows them. */
  gates: string[];
  /**
   * Per host: why it cannot go now (its plan is blocked on it; the rest of the rollout goes on), and
   * whether that may pass by itself (`quorum`: a member recovers) or needs a person (`blocked`).
   */
  blocked: Record<string, { why: string[]; reason: 'quorum' | 'blocked' }>;
  /** Former members still peers of the JetStream meta group: removed after the batches, once offline. */
  removePeers: string[];
  health: ClusterHealth;
}

const DISRUPTIVE: MemberAction[] = ['restart', 'stop'];
export const isDisruptive = (a: MemberAction) => DISRUPTIVE.includes(a);

export function memberAction(p: HostPlan | undefined): MemberAction {
  if (!p || p.sync === 'Unknown') return 'unknown';
  if (p.blocked.length) return 'blocked';
  const steps = p.steps.map((s) => s.step);
  if (steps.includes('restart')) return 'restart';
  if (steps.includes('stop')) return 'stop';
  if (steps.includes('start')) return 'start';
  if (steps.includes('reload')) return 'reload';
  return hasWork(p) ? 'files' : 'none';
}

/** How many members may be down at once: the setting, never more than the cluster can lose. */
export const batchSize = (size: number, s: RolloutSettings) =>
  Math.max(1, Math.min(s.maxUnavailable, size - quorum(size)));

export function planRollout(
  cluster: string,
  settings: RolloutSettings,
  plans: readonly HostPlan[],
  facts: readonly MemberFacts[],
  jetstream: boolean,
): RolloutPlan {
  const health = clusterHealth(facts, jetstream);
  const action = (host: string) => memberAction(plans.find((p) => p.host === host));
  const members: RolloutMember[] = facts.map((m) => ({
    host: m.host,
    action: action(m.host),
    metaLeader: health.metaLeader === m.host,
  }));
  // Capacity first (members that start), then what keeps every server up, then restarts, the leader last.
  const rank = (m: RolloutMember) => (m.action === 'start' ? -1 : isDisruptive(m.action) ? (m.metaLeader ? 2 : 1) : 0);
  const ordered = members
    .map((m, i) => ({ m, i }))
    .sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i)
    .map((x) => x.m);
  const running = facts.filter((m) => m.facts?.container.running).length;
  const coldStart = running === 0 && members.some((m) => m.action === 'start');
  const blocked: RolloutPlan['blocked'] = {};
  const batches: string[][] = [];
  const keys = plans.flatMap((p) => p.configKeys ?? []);
  // A member with new route credentials loses every route until its peers have them too: all at once.
  const together = keys.some((k) => k.startsWith('cluster.authorization'));
  // Members with and without route TLS cannot route to each other: switching it would restart all at once.
  const routeTls = Boolean(settings.routeTls);
  const tlsFlip = facts.some(
    (m) => m.facts?.container.running && m.facts.varz && Boolean(m.facts.varz.cluster?.tls_required) !== routeTls,
  );
  if (tlsFlip) {
    for (const m of members)
      blocked[m.host] = {
        reason: 'blocked',
        why: [
          `cluster ${cluster}: turning route TLS ${routeTls ? 'on' : 'off'} in a running cluster is not rolled out ` +
            '(members with and without it cannot route to each other: every member would restart at once, an ' +
            'outage): stop every member, change it, start them together',
        ],
      };
  } else if (jetstream && keys.includes('cluster.name') && running > 0) {
    for (const m of members)
      blocked[m.host] = {
        reason: 'blocked',
        why: [
          `cluster ${cluster}: renaming a running JetStream cluster is not rolled out (its members would split ` +
            'into two clusters mid-way): stop every member, rename, start them together',
        ],
      };
  } else if (coldStart) {
    batches.push(
      ordered.filter((m) => m.action !== 'none' && m.action !== 'blocked' && m.action !== 'unknown').map((m) => m.host),
    );
  } else {
    const size = batchSize(facts.length, settings);
    let batch: string[] = [];
    const reloads = ordered.filter((m) => m.action === 'reload').map((m) => m.host);
    if (together && reloads.length) batches.push(reloads);
    for (const m of ordered) {
      if (['none', 'blocked', 'unknown'].includes(m.action)) continue;
      if (together && m.action === 'reload') continue;
      if (!isDisruptive(m.action)) {
        batches.push([m.host]);
        continue;
      }
      // Judged on the cluster as observed: a member already down blocks every restart of another.
      const why = cannotLose(health, [m.host]);
      if (why.length) {
        blocked[m.host] = {
          reason: 'quorum',
          why: [`cluster ${cluster}: ${m.host} cannot be taken down now: ${why.join('; ')}`],
        };
        continue;
      }
      batch.push(m.host);
      if (batch.length === size) {
        batches.push(batch);
        batch = [];
      }
    }
    if (batch.length) batches.push(batch);
  }
  const gates = coldStart
    ? [
        'cold start: all members start together, then every member must be healthy and current ' +
          `(timeout ${settings.timeout})`,
      ]
    : [
        'before a member goes down: every other member healthy with all its routes, one JetStream meta leader, ' +
          'no stream or consumer behind, quorum kept',
        'after each member: /healthz 200, routes to every running peer, every stream and consumer current, ' +
          `then ${settings.settle} settle (timeout ${settings.timeout}; past it the member is rolled back ` +
          'and the rollout halts)',
      ];
  if (together)
    gates.push('route credentials change: the members reload together (one with new credentials alone has no routes)');
  const removePeers = health.strangers.map((x) => x.name);
  if (removePeers.length)
    gates.push(
      settings.systemAccount
        ? `then ${removePeers.join(', ')} (no longer a member) is removed from the JetStream meta group once offline`
        : `${removePeers.join(', ')} is still a peer of the JetStream meta group and counts against quorum: ` +
            'set spec.systemAccount for natsfleet to remove it, or run `nats server raft peer-remove` as a system user',
    );
  return { cluster, members: ordered, batches, coldStart, gates, blocked, health, removePeers };
}
