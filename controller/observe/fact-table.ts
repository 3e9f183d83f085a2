// Owns the facts natsfleet observes on a host (pyinfra's facts): each fact is one record holding the
// shell fragment that prints its section(s) of the observe output and the parser that reads them
// back. The observe script is this table's fragments in order (script.ts); HostFacts is the union of
// its parsers' results (parse.ts). The Docker Engine API and NATS monitoring are each read by ONE curl
// process (several URLs), instead of a docker CLI process per question.
import { X509Certificate } from 'node:crypto';
import { shQuote } from '../shell/quote.js';
import { isInside } from '../manifest/path-policy.js';
import type { DesiredHost } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';
import { TLS_WATCH_UNIT } from '../render/tls.js';
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
import { curlMany, echoMarker, echoMarkerOf, httpAnswers, OBSERVE, type Marked } from './protocol.js';

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

const DOCKER_SOCKET = '/var/run/docker.sock';
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

/** The Docker Engine API answers, in the order the curl asks for them (the volume only with a proxy). */
const DOCKER_ANSWERS = ['version', 'natsContainer', 'proxyContainer', 'image', 'volume'] as const;

function dockerApiPaths(d: DesiredHost): string[] {
  return [
    '/version',
    `/containers/${d.nats.containerName}/json`,
    `/containers/${PROXY_CONTAINER}/json`,
    `/images/${d.nats.image}/json`,
    ...(d.proxy ? [`/volumes/${d.proxy.secretsVolume}`] : []),
  ];
}

function dockerAnswers(m: Marked): Partial<Record<(typeof DOCKER_ANSWERS)[number], HttpFact>> {
  const answers = httpAnswers(m.lines('docker-api').join('\n'));
  return Object.fromEntries(DOCKER_ANSWERS.map((key, i) => [key, answers[i]]));
}

export const MONITOR_PATHS = ['healthz', 'varz', 'jsz'] as const;
/**
 * What monitoring is asked, in order: a cluster member's /jsz also lists every stream and consumer it
 * holds with their RAFT replicas (currency), and /routez its routes.
 */
export const monitorPaths = (d: DesiredHost): string[] =>
  d.cluster ? ['healthz', 'varz', 'jsz?accounts=true&streams=true&consumers=true', 'routez'] : [...MONITOR_PATHS];

function parseContainer(a: HttpFact | undefined): ContainerFact {
  const c =
    a?.status === 200
      ? json<{
          Id: string;
          Image: string;
          State: { Running: boolean; StartedAt: string };
          Config: { Image: string };
          Mounts?: { Source?: string; Destination?: string }[];
        }>(a.body)
      : undefined;
  if (!c) return { exists: false };
  return {
    exists: true,
    id: c.Id,
    imageId: c.Image,
    running: c.State.Running,
    startedAt: c.State.StartedAt,
    image: c.Config.Image,
    mounts: Object.fromEntries((c.Mounts ?? []).map((m) => [m.Destination ?? '', m.Source ?? ''])),
  };
}

/** Most natsfleet hashes of one file: its own files are small; a larger one is only said to be large. */
const MAX_HASHED_BYTES = 1024 * 1024;

/** Metadata and the host-side hash only: natsfleet never reads a managed file's content back. */
const fileFact = (p: string) =>
  `if [ -L ${p} ]; then echo link; elif [ -f ${p} ]; then m=$(stat -c '%a %U %G %s' ${p}); echo "$m"; ` +
  `if [ "\${m##* }" -le ${MAX_HASHED_BYTES} ]; then sha256sum < ${p} | cut -c1-64; else echo large; fi; ` +
  `elif [ -e ${p} ]; then echo other; else echo missing; fi`;

/**
 * A path inside a dedicated directory that exists and is not natsfleet's (not in owned.dirs, no file of
 * its record there) is not looked at, not even its mode: the plan blocks the host on that directory.
 */
function unlessForeign(d: DesiredHost, path: string, fact: string): string {
  const claim = d.claims.find((c) => isInside(path, c));
  if (!claim) return fact;
  const c = shQuote(claim);
  const foreign =
    `[ -e ${c} ] && ! grep -qxF ${c} ${OWNED_DIRS_PATH} 2>/dev/null && ` +
    `! grep -q ${shQuote(`^${claim}/`)} ${APPLIED_FILES_PATH} 2>/dev/null`;
  return `if ${foreign}; then echo unowned; else ${fact}; fi`;
}

function parseFile(body: string[]): FileFact {
  const first = body[0]?.trim();
  if (first === undefined || first === 'missing' || first === '') return { exists: false };
  if (first === 'link' || first === 'other' || first === 'unowned') return { exists: true, kind: first };
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

const os: Fact<'os'> = {
  provides: ['os'],
  shell: () => [section('os'), "grep -E '^(ID|VERSION_ID|PRETTY_NAME)=' /etc/os-release 2>/dev/null"],
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
  shell: () => [section('uid'), 'id -u'],
  parse: (m) => ({ uid: Number(m.text('uid')) }),
};

/** Installed: the CLI is on PATH; running: the Engine API answered /version (asked by dockerApi). */
const docker: Fact<'docker'> = {
  provides: ['docker'],
  shell: () => [section('docker'), 'command -v docker >/dev/null 2>&1 && echo installed || echo missing'],
  parse: (m) => {
    const installed = m.text('docker') === 'installed';
    const version = dockerAnswers(m).version;
    const serverVersion = version?.status === 200 ? json<{ Version: string }>(version.body)?.Version : undefined;
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

const dockerApi: Fact<'container' | 'imageId' | 'proxy'> = {
  provides: ['container', 'imageId', 'proxy'],
  shell: ({ d }) => [
    section('docker-api'),
    curlMany(
      [`--unix-socket ${DOCKER_SOCKET}`],
      dockerApiPaths(d).map((p) => shQuote(`http://docker${p}`)),
    ),
  ],
  parse: (m) => {
    const a = dockerAnswers(m);
    return {
      container: parseContainer(a.natsContainer),
      imageId: a.image?.status === 200 ? json<{ Id: string }>(a.image.body)?.Id : undefined,
      proxy: { container: parseContainer(a.proxyContainer), volume: a.volume?.status === 200 },
    };
  },
};

/** Every desired file, and the files natsfleet put there before and may no longer want (from its list). */
const files: Fact<'files'> = {
  provides: ['files'],
  shell: ({ d, paths }) => {
    // The listed paths are natsfleet's own writing; still, only plain absolute paths are looked at.
    const known = paths.map((p) => `-e ${shQuote(`^${p.replace(/[.]/g, '\\.')}$`)}`).join(' ');
    return [
      ...paths.flatMap((p) => [section('file', p), unlessForeign(d, p, fileFact(shQuote(p)))]),
      `if [ -f ${APPLIED_FILES_PATH} ]; then grep -v ${known} ${APPLIED_FILES_PATH} | ` +
        `grep '^/[A-Za-z0-9._/-]*$' | while read -r p; do`,
      `  ${echoMarkerOf(OBSERVE, 'file', '$p')}; ${fileFact('"$p"')}`,
      'done; fi',
    ];
  },
  parse: (m) => {
    const files: Record<string, FileFact> = {};
    for (const s of m.all('file')) files[s.arg] = parseFile(s.body);
    return { files };
  },
};

const dirs: Fact<'dirs'> = {
  provides: ['dirs'],
  shell: ({ d }) =>
    d.dirs.flatMap((dir) => [
      section('dir', dir.path),
      unlessForeign(d, dir.path, `stat -c '%a %U %G' ${shQuote(dir.path)} 2>/dev/null || echo missing`),
    ]),
  parse: (m) => {
    const dirs: HostFacts['dirs'] = {};
    for (const s of m.all('dir')) {
      const l = s.body.join('').trim();
      if (l === 'missing' || !l) dirs[s.arg] = { exists: false };
      else if (l === 'unowned') dirs[s.arg] = { exists: true, unowned: true };
      else {
        const [mode, owner, group] = l.split(' ');
        dirs[s.arg] = { exists: true, mode: mode.padStart(4, '0'), owner, group };
      }
    }
    return { dirs };
  },
};

/** `systemctl show -p ...` output (`Key=value` lines) as a record. */
const systemctlProps = (lines: string[]): Record<string, string> =>
  Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

const unit: Fact<'unit'> = {
  provides: ['unit'],
  shell: ({ d }) => [
    section('unit'),
    `systemctl show ${shQuote(d.nats.unit)} -p LoadState -p ActiveState -p SubState -p UnitFileState ` +
      '-p NeedDaemonReload --no-pager 2>/dev/null',
  ],
  parse: (m) => {
    const props = systemctlProps(m.lines('unit'));
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
    `ss -Htlnp 2>/dev/null | awk '{print $4, $6}'`,
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
    const listeners = m
      .lines('ports')
      .map((l) => l.trim())
      .filter(Boolean);
    const ports: PortFact[] = wanted.map((port) => {
      const hit = listeners.find((l) => new RegExp(`:${port}$`).test(l.split(' ')[0]));
      return {
        port,
        held: Boolean(hit),
        process: hit ? (/users:\(\("([^"]+)"/.exec(hit)?.[1] ?? 'unknown') : undefined,
      };
    });
    return { ports };
  },
};

const monitor: Fact<'healthz' | 'varz' | 'jsz' | 'routez'> = {
  provides: ['healthz', 'varz', 'jsz', 'routez'],
  shell: ({ d }) => [monitorLookup(d), section('monitor'), curlMany([], monitorPaths(d).map(monitorUrl))],
  parse: (m) => {
    const [healthz, varz, jsz, routez] = httpAnswers(m.lines('monitor').join('\n'));
    return {
      healthz: healthz && healthz.status > 0 ? { status: healthz.status, body: healthz.body.trim() } : undefined,
      varz: varz?.status === 200 ? json(varz.body) : undefined,
      jsz: jsz?.status === 200 ? json(jsz.body) : undefined,
      routez: routez?.status === 200 ? json(routez.body) : undefined,
    };
  },
};

const record: Fact<'record'> = {
  provides: ['record'],
  shell: () => [section('record'), `cat ${RECORD_PATH} 2>/dev/null; echo`],
  parse: (m) => ({ record: json(m.text('record')) }),
};

const owned: Fact<'ownedDirs'> = {
  provides: ['ownedDirs'],
  shell: () => [section('owned'), `cat ${OWNED_DIRS_PATH} 2>/dev/null; echo`],
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
    `cat ${PENDING_PATH} 2>/dev/null; echo`,
    section('pending-done'),
    `cat ${PENDING_DONE_PATH} 2>/dev/null; echo`,
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
    `cat ${LOCK_INFO_PATH} 2>/dev/null; echo`,
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

const tlsWatch: Fact<'tlsWatch'> = {
  provides: ['tlsWatch'],
  shell: ({ d }) =>
    d.files.some((f) => f.id === 'tls-watch')
      ? [
          section('tls-watch'),
          `systemctl show ${shQuote(TLS_WATCH_UNIT)} -p ActiveState -p UnitFileState --no-pager 2>/dev/null || true`,
        ]
      : [],
  parse: (m, d) => {
    if (!d.files.some((f) => f.id === 'tls-watch')) return { tlsWatch: undefined };
    const props = systemctlProps(m.lines('tls-watch'));
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
  dirs,
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
