// Owns what natsfleet knows about nats-server versions: reading a version (from /varz or an image tag),
// refusing at plan time an upgrade or downgrade outside NATS's documented compatibility, and the
// per-version facts the planner and the verifier depend on (which /healthz query gates a rollout, what
// /varz, /routez and /jsz carry, which reloads a version accepts). Every fact names its source: a file of
// github.com/nats-io/nats-server at a release tag, the NATS docs, or a measurement against real servers
// (test/fixtures/nats/README.md).

export interface NatsVersion {
  major: number;
  minor: number;
  patch: number;
  /** 'beta', 'RC.1': sorts before the release itself. */
  prerelease?: string;
  /** Named by a floating image tag such as `nats:2.9`: the newest 2.9 patch when pulled (patch is 0 here). */
  floating?: boolean;
}

const VERSION = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** "2.10.27", "v2.10.27", "2.10.27-beta" (what /varz `version` and `nats-server --version` print). */
export function parseNatsVersion(text: string | undefined): NatsVersion | undefined {
  const m = VERSION.exec((text ?? '').trim());
  if (!m) return undefined;
  const v: NatsVersion = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
  if (m[4] !== undefined) v.prerelease = m[4];
  return v;
}

/** Suffixes of image tags that mark a pre-release rather than a build variant (`-alpine`, `-r1`, `-scratch`). */
const PRERELEASE_TAG = /^(rc|beta|alpha|preview)/i;

/**
 * The version a Docker image reference names by its tag, when it names one: `nats:2.10.27`,
 * `nats:2.10.27-alpine`, `nats:2.9.10-r1` (2.9.10), `registry:5000/nats:2.9` (2.9, floating). Undefined
 * for no tag (`latest`), a digest only (`nats@sha256:...`) or a tag that is no version (`alpine`, `2`).
 * It assumes the official image's tag scheme (the tag is the nats-server version).
 */
export function imageVersion(image: string): NatsVersion | undefined {
  const name = image.split('@')[0];
  const last = name.slice(name.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  if (colon < 0) return undefined;
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-(.+))?$/.exec(last.slice(colon + 1));
  if (!m) return undefined;
  const v: NatsVersion = { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0) };
  if (m[3] === undefined) v.floating = true;
  if (m[4] !== undefined && PRERELEASE_TAG.test(m[4])) v.prerelease = m[4];
  return v;
}

/** Negative, zero or positive as a sorts before, with or after b (a pre-release before its release). */
export function compareVersions(a: NatsVersion, b: NatsVersion): number {
  const d = a.major - b.major || a.minor - b.minor || a.patch - b.patch;
  if (d !== 0) return Math.sign(d);
  if (a.prerelease === b.prerelease) return 0;
  if (a.prerelease === undefined) return 1;
  if (b.prerelease === undefined) return -1;
  return a.prerelease < b.prerelease ? -1 : 1;
}

export function formatVersion(v: NatsVersion): string {
  if (v.floating) return `${v.major}.${v.minor}.x`;
  return `${v.major}.${v.minor}.${v.patch}${v.prerelease ? `-${v.prerelease}` : ''}`;
}

const v = (major: number, minor: number, patch = 0): NatsVersion => ({ major, minor, patch });
/** Known and at least `min` (an unknown version has none of the features below). */
const atLeast = (x: NatsVersion | undefined, min: NatsVersion) => x !== undefined && compareVersions(x, min) >= 0;

/**
 * Minor lines of major version 2 that were never released: 2.13 was skipped, so 2.12 is the line
 * before 2.14 (docs.nats.io/release-notes, "Supported versions": "2.13 | Skipped | Never released").
 */
const UNRELEASED_MINORS = new Set([13]);

/** How many released minor lines lie above `to`'s, up to and including `from`'s (same major). */
function minorStepsDown(from: NatsVersion, to: NatsVersion): number {
  let steps = 0;
  for (let m = to.minor + 1; m <= from.minor; m++) if (!UNRELEASED_MINORS.has(m)) steps++;
  return steps;
}

/** The released minor line just below `x`'s (2.14 -> 2.12). */
function previousLine(x: NatsVersion): number {
  let m = x.minor - 1;
  while (UNRELEASED_MINORS.has(m)) m--;
  return m;
}

/**
 * Oldest releases that can read a JetStream store written by a newer minor line.
 * - 2.10 changed the on-disk format; only 2.9.22+ understands it ("Downgrade compatibility note" of every
 *   2.10.x release; docs.nats.io release-notes/whats_new/whats_new_210, "Downgrade warnings").
 * - 2.12 assets must come back on 2.11.9+, which keeps assets using 2.12-only features offline instead of
 *   loading them (v2.11.9 release notes, "Offline assets support"; docs "upgrading a cluster", "v2.12
 *   downgrade considerations": downgrade from 2.12 to 2.11.9 or later).
 */
const DOWNGRADE_FLOORS: { fromMinor: number; floor: NatsVersion; why: string }[] = [
  {
    fromMinor: 10,
    floor: v(2, 9, 22),
    why: '2.10 changed the JetStream storage format and only 2.9.22 or later reads it',
  },
  {
    fromMinor: 12,
    floor: v(2, 11, 9),
    why: 'a 2.12 JetStream store is safe only on 2.11.9 or later (it keeps assets using 2.12 features offline)',
  },
];

/**
 * Why changing a host's nats-server from `from` to `to` is refused at plan time, or undefined when it is
 * within NATS's documented compatibility. The NATS docs ("Upgrading a Cluster") describe a rolling upgrade
 * one node at a time and do not forbid skipping minor versions, so no upgrade within major version 2 is
 * refused. Downgrades are "never recommended" (whats_new_210); with JetStream natsfleet refuses those the
 * store cannot survive: below a documented floor, or more than one released minor line down. Without
 * JetStream there is no store to lose, so a downgrade is allowed.
 */
export function upgradeProblem(from: NatsVersion, to: NatsVersion, opts: { jetstream: boolean }): string | undefined {
  const f = formatVersion(from);
  const t = formatVersion(to);
  if (from.major !== to.major) {
    return (
      `NATS ${f} -> ${t} changes the major version: NATS documents rolling upgrades only within one major ` +
      `version. Stay on ${from.major}.x, or move to ${t} by replacing the cluster rather than rolling it.`
    );
  }
  // Up, within one minor line (a floating tag there is its newest patch), or no JetStream store to keep.
  if (compareVersions(to, from) >= 0 || to.minor === from.minor || !opts.jetstream) return undefined;
  const steps = minorStepsDown(from, to);
  if (steps > 1) {
    const prev = previousLine(from);
    const floor = DOWNGRADE_FLOORS.find((d) => d.fromMinor === from.minor && d.floor.minor === prev)?.floor;
    const first = floor ? `${formatVersion(floor)} or later` : `a ${from.major}.${prev} release`;
    return (
      `Refusing to downgrade NATS ${f} -> ${t} with JetStream: that goes down ${steps} minor release lines, and ` +
      `NATS documents a downgrade path (and advises against any) only to the line just before. Stay on ${f}, or ` +
      `go down one line at a time (first to ${first}), checking each release's downgrade notes.`
    );
  }
  for (const d of DOWNGRADE_FLOORS) {
    if (from.minor < d.fromMinor || to.minor !== d.floor.minor) continue;
    if (to.floating) {
      return (
        `Refusing to downgrade NATS ${f} -> ${t} with JetStream: ${d.why}, and the image tag names no patch. ` +
        `Pin ${formatVersion(d.floor)} or later instead, or stay on ${f}.`
      );
    }
    if (compareVersions(to, d.floor) < 0) {
      return (
        `Refusing to downgrade NATS ${f} -> ${t} with JetStream: ${d.why}. ` +
        `Downgrade to ${formatVersion(d.floor)} or later instead, or stay on ${f}.`
      );
    }
  }
  return undefined;
}

/**
 * The /healthz query that gates a rollout, on every version: the bare `/healthz`. It checks that the
 * server accepts connections and, with JetStream, that it knows the meta leader and is current with it,
 * and that every stream and consumer replica assigned to it is current (server/monitor.go healthz(),
 * v2.9.10:3004, v2.10.27:3305, v2.14.5:3602). The query options are no gate:
 * - `js-enabled-only=true`: JetStream is enabled, nothing more (every version);
 * - `js-server-only=true`: up to 2.10 also meta leader contact (v2.10.27 monitor.go:3569, after the meta
 *   checks); from 2.11.0 only that the server accepts connections, before any JetStream check
 *   (v2.14.5 monitor.go:3672) - see jsServerOnlyChecksMeta;
 * - `js-meta-only=true` (2.11.0+, hasJsMetaOnly): the meta layer, no stream or consumer. Older servers
 *   ignore the unknown option and answer the full check.
 */
export const HEALTHZ_GATE_PATH = '/healthz';

/**
 * How long /healthz must keep answering 200 before the next member may go: a restarted member answered 200
 * and then 503 again ("stream ... is not current") 0.5-0.8 s later on 2.9.10 and 2.10.27, while its stream
 * replicas were still being created (test/fixtures/nats/<version>/healthz.json, restarting_member).
 * The answer while not ready is 503, or 500 for "failed to be ready for connections" from 2.10.
 */
export const HEALTHZ_STABLE_MS = 5000;

/** `?js-server-only=true` checks the meta leader (up to 2.10); from 2.11.0 it checks no JetStream at all. */
export const jsServerOnlyChecksMeta = (x: NatsVersion | undefined) => x === undefined || !atLeast(x, v(2, 11));

/** `/healthz?js-meta-only=true` exists (2.11.0+; first tag with JSMetaOnly in server/monitor.go). */
export const hasJsMetaOnly = (x: NatsVersion | undefined) => atLeast(x, v(2, 11));

/**
 * /varz has `config_digest` (2.11.0+; Varz.ConfigDigest, v2.14.5 server/monitor.go:1283; absent from
 * v2.10.27). It is the sha256 that `nats-server -t -c FILE` prints for the same file ("... is valid
 * (sha256:...)"), computed on the parsed config (comments and spacing do not change it), so a mismatch
 * says the running server has not loaded the file on disk. It changes on every accepted reload.
 */
export const hasConfigDigest = (x: NatsVersion | undefined) => atLeast(x, v(2, 11));

/**
 * /routez names each route's remote server (`remote_name`, and the top-level `server_name`) from 2.9.16
 * (RouteInfo.RemoteName, first tag v2.9.16; v2.10.27 server/monitor.go:774). Before it only `remote_id`
 * (the remote's /varz `server_id`) says who is at the other end.
 */
export const routezHasRemoteName = (x: NatsVersion | undefined) => atLeast(x, v(2, 9, 16));

/**
 * /jsz `meta_cluster.replicas` is on every server from 2.15.0 (server/monitor.go Jsz() on main,
 * "Replicas: ci.Replicas"), only on the meta leader before (v2.14.5 monitor.go:3316 `if isLeader`).
 * Only the meta leader's view of `current`/`active` means anything: a follower shows the other followers
 * as current: false, active: 0 (measured on 2.15.1, test/fixtures/nats/2.15.1/jsz-follower.json).
 */
export const metaReplicasOnEveryServer = (x: NatsVersion | undefined) => atLeast(x, v(2, 15));

/**
 * A reload accepts a larger jetstream max_memory_store / max_file_store (both set before and after) from
 * 2.12.7 and 2.14.0 (server/reload.go diffOptions, `case increased:`, v2.14.5:1839; first 2.12 tag with it
 * v2.12.7). Older servers refuse any change of a set limit while JetStream runs (v2.10.27 reload.go:1549).
 */
export const jetStreamLimitIncreaseReloads = (x: NatsVersion | undefined) => atLeast(x, v(2, 12, 7));

/** Config keys 2.9 rejects as unknown (added in 2.10): `logtime_utc`, cluster `pool_size`/`accounts`/`compression`. */
export const acceptsKeysAddedIn210 = (x: NatsVersion | undefined) => atLeast(x, v(2, 10));
