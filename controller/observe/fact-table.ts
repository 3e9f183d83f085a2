// Owns the facts natsfleet observes on a host (pyinfra's facts): each fact is one record holding the
// shell fragment that prints its section(s) of the observe output and the parser that reads them
// back. The observe script is this table's fragments in order (script.ts); HostFacts is the union of
// its parsers' results (parse.ts). The script is cheap on the host (its CPU time is measured by the
// benchmark): the Docker Engine API and NATS monitoring are read by ONE curl process (several URLs, instead
// of a docker CLI process per question), every managed path by one find (and one sha256sum), files that are
// usually absent only when they exist, and the rest by shell builtins.
import { createHash, X509Certificate } from 'node:crypto';
import { shQuote } from '../shell/quote.js';
import { isInside } from '../manifest/path-policy.js';
import type { DesiredHost } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';
import { TLS_WATCH_PATH, TLS_WATCH_UNIT } from '../render/tls.js';
import { CONTAINER_HTTP_PORT } from '../render/nats-config.js';
import type { CertFact, ContainerFact, FileFact, HostFacts, HttpFact, PendingRecord, PortFact } from './facts.js';
import {
  APPLIED_FILES_PATH,
  LOCK_DIR,
  LOCK_INFO_PATH,
  OWNED_DIRS_PATH,
  PENDING_DONE_PATH,
  PENDING_PATH,
  RECORD_PATH,
} from './host-layout.js';
import { echoMarker, echoMarkerOf, END, httpAnswers, httpGroups, httpMany, OBSERVE, type Marked } from './protocol.js';

export interface FactContext {
  d: DesiredHost;
  /** Every managed file path asked about (the desired files first). */
  paths: readonly string[];
}

export interface Fact<K extends keyof HostFacts> {
  /** The fields of HostFacts this fact fills. */
  provides: readonly K[];
  /** The lines that print this fact's section(s), markers included. */
  shell(x: FactContext): string[];
  /** Reads the fact back from the observe output. */
  parse(out: Marked, d: DesiredHost): Pick<HostFacts, K>;
}

const section = (name: string, arg = '') => echoMarker(OBSERVE, name, arg);

const json = <T>(text: string): T | undefined => {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
};

export const DOCKER_SOCKET = '/var/run/docker.sock';
/** Where Docker looks for CLI plugins (the `docker compose` v2 plugin). */
const CLI_PLUGIN_DIRS = [
  '/usr/libexec/docker/cli-plugins',
  '/usr/lib/docker/cli-plugins',
  '/usr/local/lib/docker/cli-plugins',
  '/usr/local/libexec/docker/cli-plugins',
  '/root/.docker/cli-plugins',
];

/** The address NATS monitoring answers on from the host itself, once the desired state runs. */
export const monitorAddress = (d: DesiredHost) =>
  `${d.nats.httpBind === '0.0.0.0' ? '127.0.0.1' : d.nats.httpBind}:${d.nats.httpPort}`;

/**
 * A shell line setting $nf_mon to where the RUNNING container publishes monitoring (a new httpBind or
 * httpPort is not in effect before the restart; after a rollback the old one is again), read from the
 * Engine API's port bindings; the desired address when no container publishes it.
 */
export const monitorLookup = (d: DesiredHost) => {
  const api = shQuote(`http://docker/containers/${d.nats.containerName}/json`);
  const binding = shQuote(String.raw`"${CONTAINER_HTTP_PORT}/tcp":\[{"HostIp":"[0-9.]*","HostPort":"[0-9]*"`);
  const address = shQuote(
    String.raw`s/.*"HostIp":"([0-9.]*)","HostPort":"([0-9]*)"/\1:\2/; s/^(0\.0\.0\.0)?:/127.0.0.1:/`,
  );
  return (
    `nf_mon=$(curl -s -m 2 --unix-socket ${DOCKER_SOCKET} ${api} 2>/dev/null | grep -o ${binding} | head -n1 | ` +
    `sed -E ${address}); [ -n "$nf_mon" ] || nf_mon=${shQuote(monitorAddress(d))}`
  );
};

/** A monitoring URL at $nf_mon (see monitorLookup), as one shell word. */
export const monitorUrl = (path: string) => `"http://$nf_mon/"${shQuote(path)}`;

/**
 * Where the container publishes monitoring when that is not the desired address (observe asked the desired
 * one), else undefined.
 */
export const monitorElsewhere = (c: ContainerFact, d: DesiredHost) =>
  c.exists && c.monitorAddress && c.monitorAddress !== monitorAddress(d) ? c.monitorAddress : undefined;

/** Monitoring asked at `address` (where the container publishes it): a `monitor` section, then the end. */
export const monitorScript = (d: DesiredHost, address: string) =>
  [
    section('monitor'),
    httpMany({ urls: monitorPaths(d).map((p) => `http://${address}/${p}`) }),
    echoMarker(OBSERVE, END),
  ].join('\n');

/** The Docker Engine API answers, in the order the curl asks for them (the volume only with a proxy). */
const DOCKER_ANSWERS = ['version', 'natsContainer', 'proxyContainer', 'image', 'volume'] as const;

/**
 * The engine's version is the `Server` header of its /_ping answer, asked with its headers (/version would
 * make the engine run runc and docker-init to ask theirs, on every observe).
 */
const PING = '/_ping';

function dockerApiPaths(d: DesiredHost): string[] {
  return [
    PING,
    `/containers/${d.nats.containerName}/json`,
    `/containers/${PROXY_CONTAINER}/json`,
    `/images/${d.nats.image}/json`,
    ...(d.proxy ? [`/volumes/${d.proxy.secretsVolume}`] : []),
  ];
}

/** The `docker-api` section's answers: the Engine API's, then monitoring's at the desired address. */
const answersOf = new WeakMap<Marked, ReturnType<typeof httpAnswers>>();
/** Decoded once per observe output (three facts read them). */
const apiAnswers = (m: Marked) => {
  let a = answersOf.get(m);
  if (!a) answersOf.set(m, (a = httpAnswers(m.lines('docker-api').join('\n'))));
  return a;
};

function dockerAnswers(m: Marked): Partial<Record<(typeof DOCKER_ANSWERS)[number], HttpFact>> {
  const answers = apiAnswers(m);
  return Object.fromEntries(DOCKER_ANSWERS.map((key, i) => [key, answers[i]]));
}

/**
 * Where a container publishes monitoring on the host (its first port binding of the container's monitoring
 * port, as monitorLookup reads it: an unspecified address is 127.0.0.1), or undefined without one.
 */
function publishedMonitor(bindings: Record<string, { HostIp?: string; HostPort?: string }[] | null> | undefined) {
  const b = (bindings?.[`${CONTAINER_HTTP_PORT}/tcp`] ?? []).find(
    (x) => /^[0-9.]*$/.test(x.HostIp ?? '') && /^[0-9]+$/.test(x.HostPort ?? ''),
  );
  if (!b) return undefined;
  return `${!b.HostIp || b.HostIp === '0.0.0.0' ? '127.0.0.1' : b.HostIp}:${b.HostPort}`;
}

export const MONITOR_PATHS = ['healthz', 'varz', 'jsz'] as const;
/**
 * What monitoring is asked, in order: a cluster member's /jsz also lists every stream and consumer it
 * holds with their RAFT replicas (currency), and /routez its routes.
 */
export const monitorPaths = (d: DesiredHost): string[] =>
  d.cluster ? ['healthz', 'varz', 'jsz?accounts=true&streams=true&consumers=true', 'routez'] : [...MONITOR_PATHS];

/**
 * A pure parse of a large answer remembered by the SHA-256 of its text: a converged host's container and
 * image answers are the same bytes on every sweep, and JSON.parse of them was a fifth of a warm sweep's CPU
 * (a digest costs a tenth of a parse). Results are frozen (shared), small ones too (not remembered), so that
 * code editing facts fails on every answer alike. Bounded; cleared when full.
 */
function byContent<T extends object>(parse: (text: string) => T, max = 50_000): (text: string) => T {
  const seen = new Map<string, T>();
  return (text) => {
    if (text.length < 2048) return deepFreeze(parse(text));
    const key = createHash('sha256').update(text).digest('base64');
    const hit = seen.get(key);
    if (hit) return hit;
    if (seen.size >= max) seen.clear();
    const value = deepFreeze(parse(text));
    seen.set(key, value);
    return value;
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const containerOf = byContent(containerFromJson);
const imageIdOf = byContent((text) => ({ id: json<{ Id: string }>(text)?.Id }));

function parseContainer(a: HttpFact | undefined): ContainerFact {
  return a?.status === 200 ? containerOf(a.body) : { exists: false };
}

function containerFromJson(body: string): ContainerFact {
  const c = json<{
    Id: string;
    Image: string;
    State: { Running: boolean; StartedAt: string };
    Path?: string;
    Config: { Image: string };
    Mounts?: { Source?: string; Destination?: string }[];
    HostConfig?: { PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> };
  }>(body);
  if (!c) return { exists: false };
  const monitor = publishedMonitor(c.HostConfig?.PortBindings);
  return {
    exists: true,
    id: c.Id,
    imageId: c.Image,
    running: c.State.Running,
    startedAt: c.State.StartedAt,
    image: c.Config.Image,
    ...(c.Path ? { path: c.Path } : {}),
    mounts: Object.fromEntries((c.Mounts ?? []).map((m) => [m.Destination ?? '', m.Source ?? ''])),
    ...(monitor ? { monitorAddress: monitor } : {}),
  };
}

/** Most natsfleet hashes of one file: its own files are small; a larger one is only said to be large. */
const MAX_HASHED_BYTES = 1024 * 1024;

/**
 * Whether dedicated directory `claim` is someone else's: it exists and is not natsfleet's (not in owned.dirs,
 * no file of its record there). Asked once per claim; the answer is kept in a shell variable.
 */
const foreignClaim = (claim: string) => {
  const c = shQuote(claim);
  return (
    `[ -e ${c} ] && ! grep -qxF ${c} ${OWNED_DIRS_PATH} 2>/dev/null && ` +
    `! grep -q ${shQuote(`^${claim}/`)} ${APPLIED_FILES_PATH} 2>/dev/null`
  );
};

/**
 * The marker of one asked path (a `file` or `dir` section), and the path added to the positional
 * parameters that the one find below looks at. A path inside a dedicated directory that is not
 * natsfleet's is not looked at, not even its mode: its section says `unowned` (the plan blocks the host on
 * that directory).
 */
function askPath(d: DesiredHost, kind: 'file' | 'dir', path: string): string[] {
  const i = d.claims.findIndex((c) => isInside(path, c));
  const ask = `set -- "$@" ${shQuote(path)}`;
  return [section(kind, path), i < 0 ? ask : `if [ -n "$nf_foreign${i}" ]; then echo unowned; else ${ask}; fi`];
}

/**
 * Every asked path's metadata (type, mode, owner, group, size; never through a link) and the host-side hash
 * of each regular file of at most MAX_HASHED_BYTES (find's -size counts KiB rounded up): ONE find, which runs
 * ONE sha256sum for all of them (`-exec ... +`; find flushes its own lines before it starts it, so no line is
 * split). A metadata line starts with one letter, a hash line with 64 hex digits. natsfleet never reads a
 * managed file's content back.
 */
const STAT_ALL = [
  section('stat'),
  `[ $# -eq 0 ] || find "$@" -maxdepth 0 -printf '%y %m %u %g %s %p\\n' ` +
    `\\( -type f -size -${MAX_HASHED_BYTES / 1024 + 1}k -exec sha256sum -- {} + \\) 2>/dev/null`,
];

interface PathStat {
  type: string;
  mode: string;
  owner: string;
  group: string;
  size: number;
}

/** The `stat` section's metadata and hash lines, by path. */
function pathStats(m: Marked): { stats: Map<string, PathStat>; hashes: Map<string, string> } {
  const stats = new Map<string, PathStat>();
  const hashes = new Map<string, string>();
  for (const l of m.lines('stat')) {
    const h = /^([0-9a-f]{64}) {2}(\/.*)$/.exec(l);
    if (h) {
      hashes.set(h[2], h[1]);
      continue;
    }
    const r = /^(\S) (\d+) (\S+) (\S+) (\d+) (\/.*)$/.exec(l);
    if (r) stats.set(r[6], { type: r[1], mode: r[2].padStart(4, '0'), owner: r[3], group: r[4], size: Number(r[5]) });
  }
  return { stats, hashes };
}

/**
 * One `file` section. Its body is `unowned`, or empty (the path's metadata and hash are in the `stat` and
 * `sha256` sections); a body of metadata and hash lines is read as such (one section per path, as
 * natsfleet's observe printed them before one find looked at every path).
 */
function parseFile(path: string, body: string[], all: ReturnType<typeof pathStats>): FileFact {
  const first = body[0]?.trim();
  if (first === 'unowned' || first === 'link' || first === 'other') return { exists: true, kind: first };
  if (first === 'missing') return { exists: false };
  if (first) {
    const [mode, owner, group, size] = first.split(' ');
    const hash = (body[1] ?? '').trim();
    return {
      exists: true,
      kind: 'file',
      mode: mode.padStart(4, '0'),
      owner,
      group,
      size: Number(size),
      sha256: /^[0-9a-f]{64}$/.test(hash) ? hash : undefined,
    };
  }
  const st = all.stats.get(path);
  if (!st) return { exists: false };
  if (st.type === 'l') return { exists: true, kind: 'link' };
  if (st.type !== 'f') return { exists: true, kind: 'other' };
  return {
    exists: true,
    kind: 'file',
    mode: st.mode,
    owner: st.owner,
    group: st.group,
    size: st.size,
    sha256: all.hashes.get(path),
  };
}

const os: Fact<'os'> = {
  provides: ['os'],
  shell: () => [
    section('os'),
    // Read by the shell itself (no process): only the three lines natsfleet uses leave the host.
    'if [ -f /etc/os-release ]; then while IFS= read -r l || [ -n "$l" ]; do case $l in ' +
      `ID=*|VERSION_ID=*|PRETTY_NAME=*) printf '%s\\n' "$l";; esac; done < /etc/os-release; fi`,
  ],
  parse: (m) => {
    const os = { id: '', versionId: '', pretty: '' };
    for (const l of m.lines('os')) {
      const r = /^(ID|VERSION_ID|PRETTY_NAME)="?([^"]*)"?$/.exec(l);
      if (r) os[r[1] === 'ID' ? 'id' : r[1] === 'VERSION_ID' ? 'versionId' : 'pretty'] = r[2];
    }
    return { os };
  },
};

const uid: Fact<'uid'> = {
  provides: ['uid'],
  // The effective uid (as `id -u`), from the shell's own /proc/self/status: no process.
  shell: () => [
    section('uid'),
    'while read -r k _ e _; do if [ "$k" = Uid: ]; then echo "$e"; break; fi; done < /proc/self/status',
  ],
  parse: (m) => ({ uid: Number(m.text('uid')) }),
};

/** Installed: the CLI is on PATH; running: the Engine API answered /version (asked by dockerApi). */
const docker: Fact<'docker'> = {
  provides: ['docker'],
  shell: () => [section('docker'), 'command -v docker >/dev/null 2>&1 && echo installed || echo missing'],
  parse: (m) => {
    const installed = m.text('docker') === 'installed';
    const version = dockerAnswers(m).version;
    // The /_ping answer with its headers (`Server: Docker/20.10.24+dfsg1 (linux)`), or a /version answer.
    const serverVersion =
      version?.status === 200
        ? (/^Server: Docker\/(\S+)/im.exec(version.body)?.[1] ?? json<{ Version: string }>(version.body)?.Version)
        : undefined;
    return { docker: { installed, running: installed && serverVersion !== undefined, version: serverVersion } };
  },
};

const compose: Fact<'compose'> = {
  provides: ['compose'],
  shell: () => [
    section('compose'),
    `for d in ${CLI_PLUGIN_DIRS.join(' ')}; do [ -x "$d/docker-compose" ] && { echo plugin; break; }; done`,
    'command -v docker-compose >/dev/null 2>&1 && echo standalone',
  ],
  parse: (m) => {
    const found = m.lines('compose').map((l) => l.trim());
    return { compose: found.includes('plugin') ? 'plugin' : found.includes('standalone') ? 'standalone' : 'none' };
  },
};

const curl: Fact<'curl'> = {
  provides: ['curl'],
  shell: () => [section('curl'), 'command -v curl >/dev/null 2>&1 && echo yes'],
  parse: (m) => ({ curl: m.text('curl') === 'yes' }),
};

/**
 * The Docker Engine API's answers, then NATS monitoring's at the desired address, by ONE curl. When the
 * running container publishes monitoring elsewhere (a new httpBind or httpPort is not in effect before the
 * restart; after a rollback the old one is again), those monitoring answers are not used (the monitor
 * fact) and observeHost asks monitoring where the container publishes it (monitorScript).
 */
const dockerApi: Fact<'container' | 'imageId' | 'proxy'> = {
  provides: ['container', 'imageId', 'proxy'],
  shell: ({ d }) => [
    section('docker-api'),
    httpGroups([
      { socket: DOCKER_SOCKET, headers: true, urls: [`http://docker${PING}`] },
      {
        socket: DOCKER_SOCKET,
        urls: dockerApiPaths(d)
          .slice(1)
          .map((p) => `http://docker${p}`),
      },
      { urls: monitorPaths(d).map((p) => `http://${monitorAddress(d)}/${p}`) },
    ]),
  ],
  parse: (m) => {
    const a = dockerAnswers(m);
    return {
      container: parseContainer(a.natsContainer),
      imageId: a.image?.status === 200 ? imageIdOf(a.image.body).id : undefined,
      proxy: { container: parseContainer(a.proxyContainer), volume: a.volume?.status === 200 },
    };
  },
};

/**
 * Every desired file and directory, and the files natsfleet put there before and may no longer want (from
 * its list): a section per path, then their metadata and hashes by one find and one sha256sum (STAT_ALL).
 */
const files: Fact<'files' | 'dirs'> = {
  provides: ['files', 'dirs'],
  shell: ({ d, paths }) => {
    // The listed paths are natsfleet's own writing; still, only plain absolute paths are looked at.
    const known = paths.map(shQuote).join('|');
    return [
      'set --',
      ...d.claims.map((c, i) => `if ${foreignClaim(c)}; then nf_foreign${i}=1; else nf_foreign${i}=; fi`),
      ...paths.flatMap((p) => askPath(d, 'file', p)),
      `if [ -f ${APPLIED_FILES_PATH} ]; then while IFS= read -r p || [ -n "$p" ]; do`,
      `  case $p in ${known ? `${known}|` : ''}*[!A-Za-z0-9._/-]*|[!/]*|'') continue;; esac`,
      `  ${echoMarkerOf(OBSERVE, 'file', '$p')}; set -- "$@" "$p"`,
      `done < ${APPLIED_FILES_PATH}; fi`,
      ...d.dirs.flatMap((dir) => askPath(d, 'dir', dir.path)),
      ...STAT_ALL,
    ];
  },
  parse: (m) => {
    const all = pathStats(m);
    const files: Record<string, FileFact> = {};
    for (const s of m.all('file')) files[s.arg] = parseFile(s.arg, s.body, all);
    const dirs: HostFacts['dirs'] = {};
    for (const s of m.all('dir')) {
      const l = s.body.join('').trim();
      const st = l ? undefined : all.stats.get(s.arg);
      if (l === 'unowned') dirs[s.arg] = { exists: true, unowned: true };
      else if (st) dirs[s.arg] = { exists: true, mode: st.mode, owner: st.owner, group: st.group };
      else if (l === 'missing' || !l) dirs[s.arg] = { exists: false };
      else {
        const [mode, owner, group] = l.split(' ');
        dirs[s.arg] = { exists: true, mode: mode.padStart(4, '0'), owner, group };
      }
    }
    return { files, dirs };
  },
};

/** `systemctl show -p ...` output (`Key=value` lines) as a record. */
const systemctlProps = (lines: string[]): Record<string, string> =>
  Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

/** The `unit` section's blocks: systemctl show prints each unit's properties, a blank line between units. */
function unitBlocks(m: Marked): string[][] {
  const blocks: string[][] = [[]];
  for (const l of m.lines('unit')) {
    if (l.trim() === '') blocks.push([]);
    else blocks[blocks.length - 1].push(l);
  }
  return blocks.filter((b) => b.length);
}

/**
 * The NATS unit and natsfleet's TLS renewal watch: ONE systemctl for both (tlsWatch reads the second block).
 * The watch is asked on every host whose watch unit file exists (a test of the shell, no process): an apply
 * that turns TLS off stops it, and its rollback starts it again only if it was enabled before.
 */
const unit: Fact<'unit'> = {
  provides: ['unit'],
  shell: ({ d }) => [
    section('unit'),
    `nf_watch=; [ -f ${shQuote(TLS_WATCH_PATH)} ] && nf_watch=${shQuote(TLS_WATCH_UNIT)}`,
    `systemctl show ${shQuote(d.nats.unit)} $nf_watch -p LoadState -p ActiveState -p SubState ` +
      '-p UnitFileState -p NeedDaemonReload --no-pager 2>/dev/null',
  ],
  parse: (m) => {
    const props = systemctlProps(unitBlocks(m)[0] ?? []);
    return {
      unit: {
        loadState: props.LoadState ?? 'unknown',
        activeState: props.ActiveState ?? 'unknown',
        subState: props.SubState ?? 'unknown',
        unitFileState: props.UnitFileState ?? '',
        needDaemonReload: props.NeedDaemonReload === 'yes',
      },
    };
  },
};

/** Who listens on the ports natsfleet needs (the wanted ports travel in the `ports-wanted` marker). */
const ports: Fact<'ports'> = {
  provides: ['ports'],
  shell: ({ d }) => [
    section('ports'),
    'ss -Htlnp 2>/dev/null',
    section(
      'ports-wanted',
      [
        d.nats.clientPort,
        d.nats.httpPort,
        ...(d.cluster ? [d.cluster.routePort] : []),
        ...(d.proxy ? [80, 443] : []),
      ].join(','),
    ),
  ],
  parse: (m) => {
    const wanted = m.arg('ports-wanted').split(',').filter(Boolean).map(Number);
    // `ss -Htln` lines (state, queues, local address, peer, process), or `local process` pairs.
    const listeners = m
      .lines('ports')
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f[0])
      .map((f) =>
        f.length >= 5 ? { local: f[3], process: f.slice(5).join(' ') } : { local: f[0], process: f[1] ?? '' },
      );
    const ports: PortFact[] = wanted.map((port) => {
      const hit = listeners.find((l) => new RegExp(`:${port}$`).test(l.local));
      return {
        port,
        held: Boolean(hit),
        process: hit ? (/users:\(\("([^"]+)"/.exec(hit.process)?.[1] ?? 'unknown') : undefined,
      };
    });
    return { ports };
  },
};

/**
 * Monitoring where the running container publishes it (the container's port binding), else at the desired
 * address: asked with the Docker API (dockerApi); a `monitor` section, when there is one, answers instead
 * (monitorScript's, asked where the container publishes it, when that is not the desired address).
 */
export const monitor: Fact<'healthz' | 'varz' | 'jsz' | 'routez'> = {
  provides: ['healthz', 'varz', 'jsz', 'routez'],
  shell: () => [],
  parse: (m, d) => {
    const published = dockerAnswers(m).natsContainer;
    const elsewhere = monitorElsewhere(parseContainer(published), d);
    const [healthz, varz, jsz, routez] = m.has('monitor')
      ? httpAnswers(m.lines('monitor').join('\n'))
      : elsewhere
        ? []
        : apiAnswers(m).slice(dockerApiPaths(d).length);
    return {
      healthz: healthz && healthz.status > 0 ? { status: healthz.status, body: healthz.body.trim() } : undefined,
      varz: varz?.status === 200 ? json(varz.body) : undefined,
      jsz: jsz?.status === 200 ? json(jsz.body) : undefined,
      routez: routez?.status === 200 ? json(routez.body) : undefined,
    };
  },
};

/** A state file's content; no process when it does not exist (pending, lock: most of the time). */
const catIf = (path: string) => `if [ -e ${path} ]; then cat ${path} 2>/dev/null; fi`;

const record: Fact<'record'> = {
  provides: ['record'],
  shell: () => [section('record'), `${catIf(RECORD_PATH)}; echo`],
  parse: (m) => ({ record: json(m.text('record')) }),
};

const owned: Fact<'ownedDirs'> = {
  provides: ['ownedDirs'],
  shell: () => [section('owned'), `${catIf(OWNED_DIRS_PATH)}; echo`],
  parse: (m) => ({
    ownedDirs: m
      .lines('owned')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/')),
  }),
};

const claims: Fact<'claims'> = {
  provides: ['claims'],
  shell: ({ d }) =>
    d.claims.flatMap((c) => [section('claim', c), `[ -e ${shQuote(c)} ] && echo exists || echo missing`]),
  parse: (m) => ({
    claims: Object.fromEntries(m.all('claim').map((s) => [s.arg, s.body.join('').trim() === 'exists'])),
  }),
};

const pending: Fact<'pending'> = {
  provides: ['pending'],
  shell: () => [
    section('pending'),
    `${catIf(PENDING_PATH)}; echo`,
    section('pending-done'),
    `${catIf(PENDING_DONE_PATH)}; echo`,
  ],
  parse: (m) => {
    const p = json<PendingRecord>(m.text('pending'));
    const done = m
      .lines('pending-done')
      .map((l) => l.trim())
      .filter(Boolean);
    return { pending: p ? { ...p, done } : undefined };
  },
};

const lock: Fact<'lock' | 'lockAgeSec'> = {
  provides: ['lock', 'lockAgeSec'],
  shell: () => [
    section('lock'),
    `${catIf(LOCK_INFO_PATH)}; echo`,
    section('lock-age'),
    `[ -d ${LOCK_DIR} ] && echo $(( $(date +%s) - $(stat -c %Y ${LOCK_DIR}) )) || true`,
  ],
  parse: (m) => {
    const age = m.text('lock-age');
    return { lock: json(m.text('lock')), lockAgeSec: /^-?\d+$/.test(age) ? Number(age) : undefined };
  },
};

/**
 * The PEM of the first certificate in a file: at most its first 64 KiB are read, and only the marker lines
 * and base64 lines between them are printed (a file's other content can never reach the observe output,
 * let alone forge one of its sections).
 */
export const firstCertificate = (path: string) =>
  `head -c 65536 -- ${shQuote(path)} 2>/dev/null | awk '/^-----BEGIN CERTIFICATE-----$/{p=1; print; next} ` +
  `p && /^-----END CERTIFICATE-----$/{print; exit} p && /^[A-Za-z0-9+\/=]+$/{print}' || true`;

/** A certificate's identity and dates (pure: Node parses the PEM; nothing of it is kept). */
export function certFact(pem: string): CertFact | undefined {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return undefined;
  try {
    const c = new X509Certificate(pem);
    return {
      fingerprint: c.fingerprint256,
      notBefore: new Date(c.validFrom).toISOString(),
      notAfter: new Date(c.validTo).toISOString(),
      subject: c.subject.replace(/\n/g, ', '),
      issuer: c.issuer.replace(/\n/g, ', '),
      names: (c.subjectAltName ?? '')
        .split(', ')
        .filter((n) => n.startsWith('DNS:'))
        .map((n) => n.slice(4)),
    };
  } catch {
    return undefined;
  }
}

const tls: Fact<'tls'> = {
  provides: ['tls'],
  shell: ({ d }) =>
    d.tls
      ? [
          section('tls-cert'),
          firstCertificate(d.tls.certPath),
          section('tls-lineage'),
          d.tls.lineagePath ? `[ -f ${shQuote(d.tls.lineagePath)} ] && echo yes || echo no` : 'echo no',
        ]
      : [],
  parse: (m, d) =>
    d.tls
      ? { tls: { file: certFact(m.lines('tls-cert').join('\n')), lineage: m.text('tls-lineage') === 'yes' } }
      : { tls: undefined },
};

/**
 * The renewal watch's state, wanted or not: the second block of the unit fact's systemctl; without its unit
 * file, not installed (as systemd would say); unknown when systemd did not answer.
 */
const tlsWatch: Fact<'tlsWatch'> = {
  provides: ['tlsWatch'],
  shell: () => [],
  parse: (m) => {
    const [nats, watch] = unitBlocks(m);
    if (nats && !watch) return { tlsWatch: { activeState: 'inactive', unitFileState: '' } };
    const props = systemctlProps(watch ?? []);
    return { tlsWatch: { activeState: props.ActiveState ?? 'unknown', unitFileState: props.UnitFileState ?? '' } };
  },
};

/** Every fact, in the order the observe script asks them. */
export const FACTS = [
  os,
  uid,
  docker,
  compose,
  curl,
  dockerApi,
  files,
  unit,
  ports,
  monitor,
  tls,
  tlsWatch,
  record,
  owned,
  claims,
  pending,
  lock,
] as const;

// Checked by the compiler: the table fills every field of HostFacts.
type Provided = (typeof FACTS)[number]['provides'][number];
const complete: [Exclude<keyof HostFacts, Provided>] extends [never] ? true : Exclude<keyof HostFacts, Provided> = true;
void complete;
