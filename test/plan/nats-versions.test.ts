// nats-server versions: reading them, the upgrades and downgrades natsfleet refuses, and the per-version
// facts, checked against what real 2.9.10, 2.10.27 and 2.15.1 servers answered (test/fixtures/nats/).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  compareVersions,
  formatVersion,
  hasConfigDigest,
  hasJsMetaOnly,
  imageVersion,
  jetStreamLimitIncreaseReloads,
  jsServerOnlyChecksMeta,
  metaReplicasOnEveryServer,
  parseNatsVersion,
  routezHasRemoteName,
  upgradeProblem,
} from '../../controller/plan/nats-versions.js';

const V = (s: string) => parseNatsVersion(s)!;

describe('parseNatsVersion', () => {
  it.each([
    ['2.10.27', { major: 2, minor: 10, patch: 27 }],
    ['v2.10.27', { major: 2, minor: 10, patch: 27 }],
    [' 2.9.10\n', { major: 2, minor: 9, patch: 10 }],
    ['2.10.27-beta', { major: 2, minor: 10, patch: 27, prerelease: 'beta' }],
    ['2.12.0-RC.1+build.5', { major: 2, minor: 12, patch: 0, prerelease: 'RC.1' }],
    ['2.10', undefined],
    ['latest', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j -> %j', (text, want) => {
    expect(parseNatsVersion(text)).toEqual(want);
  });
});

describe('compareVersions', () => {
  it.each([
    ['2.9.10', '2.10.0', -1],
    ['2.10.27', '2.10.27', 0],
    ['2.10.27', '2.10.3', 1],
    ['3.0.0', '2.99.99', 1],
    ['2.12.0-RC.1', '2.12.0', -1],
    ['2.12.0-RC.1', '2.12.0-RC.2', -1],
  ])('%s vs %s -> %i', (a, b, want) => {
    expect(compareVersions(V(a), V(b))).toBe(want);
    expect(compareVersions(V(b), V(a))).toBe(-want || 0);
  });
});

describe('imageVersion', () => {
  it.each([
    ['nats:2.10.27', '2.10.27'],
    ['nats:2.10.27-alpine', '2.10.27'],
    ['nats:2.10.27-alpine3.19', '2.10.27'],
    ['nats:2.9.10-r1', '2.9.10'],
    ['docker.io/library/nats:v2.11.4', '2.11.4'],
    ['registry:5000/nats:2.9', '2.9.x'],
    ['nats:2.10-alpine', '2.10.x'],
    ['nats:2.12.0-RC.2', '2.12.0-RC.2'],
    ['nats:2.10.27@sha256:' + 'a'.repeat(64), '2.10.27'],
    ['nats@sha256:' + 'a'.repeat(64), undefined],
    ['nats', undefined],
    ['registry:5000/nats', undefined],
    ['nats:latest', undefined],
    ['nats:alpine', undefined],
    ['nats:2', undefined],
  ])('%s -> %s', (image, want) => {
    const v = imageVersion(image);
    expect(v && formatVersion(v)).toBe(want);
  });

  it('marks a floating tag', () => {
    expect(imageVersion('registry:5000/nats:2.9')).toEqual({ major: 2, minor: 9, patch: 0, floating: true });
  });
});

describe('upgradeProblem', () => {
  const js = { jetstream: true };
  const noJs = { jetstream: false };
  it.each([
    // Upgrades: the docs ("Upgrading a Cluster") do not forbid skipping minor versions.
    ['2.9.10', '2.9.25', js, undefined],
    ['2.9.10', '2.10.27', js, undefined],
    ['2.9.10', '2.15.1', js, undefined],
    ['2.10.27', 'nats:2.11', js, undefined],
    // Downgrades within a minor line, or one line down above the floors.
    ['2.10.27', '2.10.3', js, undefined],
    ['2.10.27', 'nats:2.10', js, undefined],
    ['2.10.27', '2.9.22', js, undefined],
    ['2.11.4', '2.10.27', js, undefined],
    ['2.12.3', '2.11.9', js, undefined],
    ['2.14.1', '2.12.15', js, undefined], // 2.13 was never released: 2.12 is the line before 2.14
    ['2.15.1', '2.14.5', js, undefined],
    // Below the documented floors.
    ['2.10.0', '2.9.21', js, /2\.10\.0 -> 2\.9\.21.*storage format.*2\.9\.22 or later/],
    ['2.10.27', 'nats:2.9', js, /2\.10\.27 -> 2\.9\.x.*names no patch.*Pin 2\.9\.22 or later/],
    ['2.12.0', '2.11.8', js, /2\.12\.0 -> 2\.11\.8.*Downgrade to 2\.11\.9 or later/],
    // More than one released minor line down.
    ['2.11.0', '2.9.25', js, /2\.11\.0 -> 2\.9\.25.*2 minor release lines.*first to a 2\.10 release/],
    ['2.12.15', '2.10.29', js, /2\.12\.15 -> 2\.10\.29.*first to 2\.11\.9 or later/],
    ['2.15.1', '2.12.15', js, /2\.15\.1 -> 2\.12\.15.*2 minor release lines/],
    // Without JetStream there is no store to lose.
    ['2.10.0', '2.9.21', noJs, undefined],
    ['2.15.1', '2.9.10', noJs, undefined],
    // Another major version.
    ['2.10.27', '3.0.0', js, /2\.10\.27 -> 3\.0\.0 changes the major version/],
    ['2.10.27', '1.4.1', noJs, /major version/],
  ])('%s -> %s (%j)', (from, to, opts, want) => {
    const target = to.startsWith('nats:') ? imageVersion(to)! : V(to);
    const got = upgradeProblem(V(from), target, opts);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(want);
  });
});

describe('per-version facts', () => {
  it.each([
    // version, config_digest, js-meta-only, js-server-only checks meta, remote_name,
    // meta replicas on every server, a JetStream limit increase reloads
    ['2.9.10', false, false, true, false, false, false],
    ['2.9.16', false, false, true, true, false, false],
    ['2.10.27', false, false, true, true, false, false],
    ['2.11.0', true, true, false, true, false, false],
    ['2.12.6', true, true, false, true, false, false],
    ['2.12.7', true, true, false, true, false, true],
    ['2.14.5', true, true, false, true, false, true],
    ['2.15.1', true, true, false, true, true, true],
  ])('%s', (version, digest, metaOnly, serverOnlyMeta, remoteName, metaEverywhere, jsUp) => {
    const v = V(version);
    expect([
      hasConfigDigest(v),
      hasJsMetaOnly(v),
      jsServerOnlyChecksMeta(v),
      routezHasRemoteName(v),
      metaReplicasOnEveryServer(v),
      jetStreamLimitIncreaseReloads(v),
    ]).toEqual([digest, metaOnly, serverOnlyMeta, remoteName, metaEverywhere, jsUp]);
  });

  it('an unknown version has none of the features', () => {
    expect(hasConfigDigest(undefined)).toBe(false);
    expect(jetStreamLimitIncreaseReloads(undefined)).toBe(false);
    expect(jsServerOnlyChecksMeta(undefined)).toBe(true);
  });
});

// The fixtures are answers recorded from a local 3-node JetStream cluster of each version.
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'nats');
const fixture = (version: string, name: string) =>
  JSON.parse(readFileSync(join(FIXTURES, version, `${name}.json`), 'utf8'));

interface Peer {
  name: string;
  current: boolean;
  offline?: boolean;
  lag?: number;
}
interface StreamCluster {
  leader?: string;
  replicas?: Peer[];
}
const streamClusters = (jsz: { account_details?: { stream_detail?: { cluster: StreamCluster }[] }[] }) =>
  (jsz.account_details ?? []).flatMap((a) => (a.stream_detail ?? []).map((s) => s.cluster));

describe.each(['2.9.10', '2.10.27', '2.15.1'])('recorded answers of nats-server %s', (version) => {
  const v = V(version);

  it('/varz: version, and config_digest where the version has it', () => {
    const varz = fixture(version, 'varz');
    expect(varz.version).toBe(version);
    expect(typeof varz.config_load_time).toBe('string');
    expect('config_digest' in varz).toBe(hasConfigDigest(v));
    if (hasConfigDigest(v)) expect(varz.config_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('/routez: remote_name where the version has it, remote_id always; routes outnumber peers from 2.10', () => {
    const routez = fixture(version, 'routez');
    const routes: { remote_id: string; remote_name?: string; account?: string }[] = routez.routes;
    expect(routes.every((r) => /^N[A-Z0-9]{55}$/.test(r.remote_id))).toBe(true);
    expect(routes.every((r) => typeof r.remote_name === 'string')).toBe(routezHasRemoteName(v));
    const peers = new Set(routes.map((r) => r.remote_id));
    expect(peers.size).toBe(2);
    // 2.10 pools routes: 3 per peer plus one pinned to the system account ($SYS).
    expect(routez.num_routes).toBe(v.minor >= 10 ? 8 : 2);
    expect(routes.filter((r) => r.account === '$SYS').length).toBe(v.minor >= 10 ? 2 : 0);
  });

  it('/jsz: meta_cluster.replicas on the meta leader, on followers only from 2.15', () => {
    const leader = fixture(version, 'jsz').meta_cluster;
    const follower = fixture(version, 'jsz-follower').meta_cluster;
    expect(leader.cluster_size).toBe(3);
    expect(follower.leader).toBe(leader.leader);
    expect(leader.replicas.map((p: Peer) => [p.current, p.offline])).toEqual([
      [true, undefined],
      [true, undefined],
    ]);
    expect('replicas' in follower).toBe(metaReplicasOnEveryServer(v));
  });

  it('/jsz?streams=true: only the stream leader tells the replicas apart', () => {
    const [leaderView] = streamClusters(fixture(version, 'jsz-streams'));
    const [followerView] = streamClusters(fixture(version, 'jsz-streams-follower'));
    expect(leaderView.replicas!.every((p) => p.current)).toBe(true);
    expect(followerView.leader).toBe(leaderView.leader);
    // A follower reports another follower as not current (it does not track it).
    expect(followerView.replicas!.some((p) => !p.current)).toBe(true);
    // With a member killed (> 10 s), the stream leader shows it not current; `offline` is not set.
    const [down] = streamClusters(fixture(version, 'jsz-streams-member-down'));
    expect(down.replicas!.find((p) => p.name === 'n3')).toMatchObject({ current: false });
    expect(down.replicas!.find((p) => p.name === 'n3')!.offline).toBeUndefined();
    // A member just restarted claims to lead a stream whose Raft group it has not created yet.
    const [restarting] = streamClusters(fixture(version, 'jsz-streams-restarting'));
    expect(restarting).toEqual({ name: 'core', leader: 'n3' });
  });

  it('/jsz after a clean shutdown: offline: true, while current may still be true', () => {
    const off = fixture(version, 'jsz-offline').meta_cluster.replicas.find((p: Peer) => p.name === 'n3');
    expect(off.offline).toBe(true);
  });

  it('/healthz: the full check fails on a restarting member until its streams are current', () => {
    const h = fixture(version, 'healthz');
    expect(h.all_up['/healthz']).toEqual({ status: 200, body: { status: 'ok' } });
    // A member being down does not fail /healthz on the others.
    expect(h.survivor_while_member_down['/healthz'].status).toBe(200);
    const full = h.restarting_member.filter((t: { path: string }) => t.path === '/healthz');
    expect(full.at(-1).status).toBe(200);
    expect(full.some((t: { status: number }) => t.status === 503)).toBe(true);
    // js-server-only answered 200 no later than the full check (it checks less), on every version.
    const firstOk = (path: string) =>
      h.restarting_member.find((t: { path: string; status: number }) => t.path === path && t.status === 200).ms;
    expect(firstOk('/healthz?js-server-only=true')).toBeLessThanOrEqual(firstOk('/healthz'));
  });
});
