// Owns the health of a NATS cluster from its members' facts (pure): which members are up, whether each
// member's routes reach every running peer, who the JetStream meta leader is, which streams or consumers
// have a replica behind (as their RAFT leader sees it: a follower's view of its peers is stale), and
// whether the cluster can lose some members and keep its quorum (the rollout's gates).
import { quorum } from '../manifest/cluster-spec.js';
import type { HostFacts, ReplicaFact } from '../observe/facts.js';

export interface MemberFacts {
  host: string;
  serverName: string;
  /** Undefined when the member could not be observed. */
  facts?: HostFacts;
}

export interface ClusterHealth {
  size: number;
  /** Members whose full /healthz answers 200. */
  up: string[];
  /** Members not answering or unhealthy, each with why. */
  down: { host: string; why: string }[];
  /** The JetStream meta leader's host, when every member that is up agrees on one. */
  metaLeader?: string;
  /** Per member that is up: what is missing (routes, meta leader, cluster size). */
  members: Record<string, string[]>;
  /** Streams and consumers with a replica that is not current, as their leader sees it. */
  behind: string[];
  /** The same, with the server behind: a member going down may be the one behind (see cannotLose). */
  behindReplicas: BehindItem[];
  /** Members (server names) the JetStream meta leader sees as not current. */
  metaLagging: string[];
  /** Server name per member host. */
  serverNames: Record<string, string>;
  /**
   * Peers of the JetStream meta group that are no member (a former member not yet peer-removed), as the
   * meta leader sees them: each counts against quorum until removed.
   */
  strangers: { name: string; offline: boolean }[];
  /**
   * Per member, routes to servers that are no member (one just removed, until it stops): reported, but
   * no gate waits on them.
   */
  foreignRoutes: Record<string, string[]>;
  /** Peers of the meta group (the members, and strangers); quorum is a majority of them. */
  metaSize: number;
  jetstream: boolean;
}

const distinct = <T>(xs: T[]) => [...new Set(xs)];

function whyDown(m: MemberFacts): string | undefined {
  const f = m.facts;
  if (!f) return 'not observed';
  if (!f.container.running) return `not running (service ${f.unit.activeState})`;
  if (!f.healthz) return 'monitoring does not answer';
  if (f.healthz.status !== 200) return `/healthz ${f.healthz.status} ${f.healthz.body.slice(0, 120)}`.trim();
  return undefined;
}

/** Peers (up) that `m` has no route to: matched by server id (every version), or by name (2.10+). */
function missingRoutes(m: MemberFacts, up: MemberFacts[]): string[] {
  const routes = m.facts?.routez?.routes ?? [];
  const ids = new Set(routes.map((r) => r.remote_id));
  const names = new Set(routes.map((r) => r.remote_name).filter(Boolean));
  return up
    .filter((p) => p.host !== m.host)
    .filter((p) => !ids.has(p.facts?.varz?.server_id) && !names.has(p.serverName))
    .map((p) => p.host);
}

/** Servers `m` has routes to that are no member (by id, or by name from 2.10), e.g. one removed by hand. */
function routeStrangers(m: MemberFacts, all: readonly MemberFacts[]): string[] {
  const ids = new Set(all.map((x) => x.facts?.varz?.server_id));
  const names = new Set(all.map((x) => x.serverName));
  const out = (m.facts?.routez?.routes ?? [])
    .filter((r) => !ids.has(r.remote_id) && !(r.remote_name && names.has(r.remote_name)))
    .map((r) => r.remote_name ?? r.remote_id ?? '?');
  return distinct(out);
}

const notCurrent = (r: ReplicaFact) => r.offline === true || r.current !== true;

/** A stream or consumer that is not caught up; `replica`: the one server behind, when that is what it is. */
export interface BehindItem {
  text: string;
  replica?: string;
}

interface AssetView {
  host: string;
  serverName: string;
  leader?: string;
  replicas?: ReplicaFact[];
}

/**
 * Every stream and consumer some member holds, judged from its leader's own view: all members that hold
 * it agree on one leader, the leader knows all its replicas (a member just restarted briefly claims to
 * lead every stream, with none), and each replica is current and online.
 */
function behindAssets(all: MemberFacts[]): BehindItem[] {
  const assets = new Map<string, AssetView[]>();
  const add = (what: string, m: MemberFacts, c: { leader?: string; replicas?: ReplicaFact[] } | undefined) => {
    if (!c) return;
    assets.set(what, [
      ...(assets.get(what) ?? []),
      { host: m.host, serverName: m.serverName, leader: c.leader, replicas: c.replicas },
    ]);
  };
  for (const m of all) {
    for (const acc of m.facts?.jsz?.account_details ?? []) {
      for (const s of acc.stream_detail ?? []) {
        add(`stream ${acc.name}/${s.name}`, m, s.cluster);
        for (const c of s.consumer_detail ?? []) add(`consumer ${acc.name}/${s.name}/${c.name}`, m, c.cluster);
      }
    }
  }
  const out: BehindItem[] = [];
  for (const [what, views] of assets) {
    const leaders = distinct(views.map((v) => v.leader ?? ''));
    if (leaders.length > 1) {
      out.push({ text: `${what}: members disagree on its leader (${leaders.map((l) => l || 'none').join(', ')})` });
      continue;
    }
    if (!leaders[0]) {
      out.push({ text: `${what} has no leader` });
      continue;
    }
    const own = views.find((v) => v.serverName === leaders[0]);
    if (!own) {
      out.push({ text: `${what}: its leader ${leaders[0]} is not observed` });
      continue;
    }
    if ((own.replicas?.length ?? 0) < views.length - 1) {
      out.push({ text: `${what}: its leader ${leaders[0]} does not know all its replicas yet` });
      continue;
    }
    for (const r of (own.replicas ?? []).filter(notCurrent))
      out.push({
        text: `${what}: replica ${r.name} is ${r.offline ? 'offline' : 'not current'}${r.lag ? ` (lag ${r.lag})` : ''}`,
        replica: r.name,
      });
  }
  return out;
}

export function clusterHealth(all: readonly MemberFacts[], jetstream: boolean): ClusterHealth {
  const down = all.flatMap((m) => {
    const why = whyDown(m);
    return why ? [{ host: m.host, why }] : [];
  });
  const up = all.filter((m) => !down.some((d) => d.host === m.host));
  const leaders = distinct(up.map((m) => m.facts?.jsz?.meta_cluster?.leader ?? ''));
  const leaderHost =
    leaders.length === 1 && leaders[0] ? all.find((m) => m.serverName === leaders[0])?.host : undefined;
  const members: Record<string, string[]> = {};
  const metaLagging: string[] = [];
  const behindReplicas = jetstream ? behindAssets([...all]) : [];
  for (const m of up) {
    const p: string[] = [];
    const missing = missingRoutes(m, up);
    if (missing.length) p.push(`no route to ${missing.join(', ')}`);

    if (jetstream) {
      const meta = m.facts?.jsz?.meta_cluster;
      if (!meta?.leader) p.push('sees no JetStream meta leader');
      else if (leaders.length > 1)
        p.push(`sees meta leader ${meta.leader} (others see ${leaders.filter((l) => l !== meta.leader).join(', ')})`);
      // A member that runs but is not yet in the meta group (one just added) has not caught up.
      if (meta?.cluster_size !== undefined && meta.cluster_size < up.length)
        p.push(`its JetStream meta group has ${meta.cluster_size} peers, ${up.length} members are running`);
      // Only the meta leader's view of its peers is current (from 2.15 followers list them too, stale).
      // A former member (no longer in `all`) is a stranger, reported on its own, not a lagging peer.
      const lagging =
        meta?.leader === m.serverName
          ? (meta.replicas ?? [])
              .filter((r) => notCurrent(r) && all.some((x) => x.serverName === r.name))
              .map((r) => r.name)
          : [];
      if (lagging.length) p.push(metaLaggingText(lagging));
      metaLagging.push(...lagging);
    }
    members[m.host] = p;
  }
  const leaderMeta = all.find((m) => m.host === leaderHost)?.facts?.jsz?.meta_cluster;
  const names = new Set(all.map((m) => m.serverName));
  const strangers = jetstream
    ? (leaderMeta?.replicas ?? [])
        .filter((r) => !names.has(r.name))
        .map((r) => ({ name: r.name, offline: r.offline === true || r.current !== true }))
    : [];
  return {
    size: all.length,
    up: up.map((m) => m.host),
    down,
    metaLeader: leaderHost,
    members,
    behind: behindReplicas.map((b) => b.text),
    behindReplicas,
    metaLagging,
    serverNames: Object.fromEntries(all.map((m) => [m.host, m.serverName])),
    strangers,
    // With every member observed, a route to any other server is one to a server that is not a member.
    foreignRoutes:
      up.length === all.length
        ? Object.fromEntries(up.map((m) => [m.host, routeStrangers(m, all)]).filter(([, x]) => x.length))
        : {},
    metaSize: Math.max(all.length, leaderMeta?.cluster_size ?? 0, all.length + strangers.length),
    jetstream,
  };
}

/**
 * The JetStream API subjects that ask every replicated stream and consumer `serverName` leads (in the
 * clients' global account, the one natsfleet's client credentials reach) to elect another leader.
 */
export function leaderStepDowns(f: HostFacts | undefined, serverName: string): string[] {
  const out: string[] = [];
  const leads = (c: { leader?: string; replicas?: ReplicaFact[] } | undefined) =>
    c?.leader === serverName && (c.replicas?.length ?? 0) > 0;
  for (const acc of f?.jsz?.account_details ?? []) {
    if (acc.name !== '$G') continue;
    for (const s of acc.stream_detail ?? []) {
      if (leads(s.cluster)) out.push(`$JS.API.STREAM.LEADER.STEPDOWN.${s.name}`);
      for (const c of s.consumer_detail ?? [])
        if (leads(c.cluster)) out.push(`$JS.API.CONSUMER.LEADER.STEPDOWN.${s.name}.${c.name}`);
    }
  }
  return out;
}

/** Everything wrong with a cluster, one line each: members down, members' problems, assets behind, strangers. */
export function clusterProblems(h: ClusterHealth): string[] {
  return [
    ...h.down.map((d) => `${d.host}: ${d.why}`),
    ...Object.entries(h.members).flatMap(([host, ps]) => ps.map((p) => `${host} ${p}`)),
    ...h.behind.map((b) => `behind: ${b}`),
    ...Object.entries(h.foreignRoutes).map(
      ([host, x]) => `${host} has routes to servers that are not members: ${x.join(', ')}`,
    ),
    ...h.strangers.map(
      (x) => `${x.name} is a peer of the JetStream meta group but no member (${x.offline ? 'offline' : 'online'})`,
    ),
  ];
}

const metaLaggingText = (lagging: readonly string[]) => `meta group peers not current: ${lagging.join(', ')}`;

/**
 * Why the cluster cannot lose `hosts` now (the gate before a restart): every other member up with its
 * routes complete, one meta leader, nothing behind, and enough members left for quorum.
 */
export function cannotLose(h: ClusterHealth, hosts: readonly string[]): string[] {
  const out: string[] = [];
  const others = h.up.filter((x) => !hosts.includes(x));
  // A former member still in the meta group counts: quorum is a majority of the group, not of the members.
  const q = quorum(h.metaSize);
  const of = h.metaSize > h.size ? `${h.metaSize} JetStream meta peers` : `${h.size} members`;
  const downOthers = h.down.filter((d) => !hosts.includes(d.host));
  if (others.length < q || downOthers.length) {
    const detail = downOthers.map((d) => `${d.host}: ${d.why}`).join('; ');
    out.push(
      `quorum: taking down ${hosts.join(', ')} would leave ${others.length} of ${of} running ` +
        `(quorum ${q}${downOthers.length ? ', and every other member must be healthy first' : ''})` +
        (detail ? `; ${detail}` : ''),
    );
  }
  // A member that is itself the one behind may go down: the current replicas, and quorum, stay as they are
  // (and its restart is what an operator would try on a member that does not catch up).
  const going = new Set(hosts.map((x) => h.serverNames[x]));
  const onlyGoing = (servers: readonly string[]) => servers.length > 0 && servers.every((x) => going.has(x));
  const metaOnlyGoing = onlyGoing(h.metaLagging) ? metaLaggingText(h.metaLagging) : undefined;
  for (const x of others) for (const p of h.members[x] ?? []) if (p !== metaOnlyGoing) out.push(`${x} ${p}`);
  if (h.jetstream && !h.metaLeader && others.length) out.push('the cluster has no JetStream meta leader');
  out.push(...h.behindReplicas.filter((b) => !b.replica || !going.has(b.replica)).map((b) => `behind: ${b.text}`));
  return out;
}

/** Why `host` is not yet healthy and caught up (the gate after a member's restart, before the next). */
export function notCaughtUp(h: ClusterHealth, host: string): string[] {
  const down = h.down.find((d) => d.host === host);
  if (down) return [`${host}: ${down.why}`];
  const out = (h.members[host] ?? []).map((p) => `${host} ${p}`);
  if (h.jetstream && !h.metaLeader) out.push('the cluster has no JetStream meta leader');
  out.push(...h.behind.map((b) => `behind: ${b}`));
  return out;
}
