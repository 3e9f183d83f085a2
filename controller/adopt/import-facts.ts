// Owns what `natsfleet import` reads from a host that runs NATS without natsfleet (the seed's Ansible
// role, or by hand): the shell fragments and their parsers, kept together (pyinfra's facts). Two round
// trips: an inventory (OS, user, the unit, the running containers), then the details of the NATS and
// proxy containers it found (Engine API inspect, the config file, monitoring, the proxy's site files).
// Pure: the edge (cli/import.ts) runs the scripts. Every answer travels base64-encoded behind a marker,
// so nothing a container or a file holds can forge a section.
import { posix } from 'node:path';
import { shQuote } from '../shell/quote.js';
import { echoMarker, httpAnswers, httpMany, Marked, OBSERVE, type Section } from '../observe/protocol.js';
import { DOCKER_SOCKET } from '../observe/fact-table.js';

/** Most bytes of one file read (a NATS config or a compose file is a few KiB). */
const MAX_FILE_BYTES = 256 * 1024;
const section = (name: string, arg = '') => echoMarker(OBSERVE, name, arg);
/** What fileBase64 prints instead of a file it does not read (not base64: '!' is outside its alphabet). */
const NOT_READ = '!not-read';
/**
 * A file's first bytes, base64 on one line: only a regular file reached without a symbolic link. The
 * script reads as root on the host, so a link planted in a directory a container or another user may
 * write in (the config directory, bind-mounted) would otherwise have it read any file of the host.
 */
const fileBase64 = (path: string) =>
  `p=${shQuote(path)}; if [ -f "$p" ] && [ "$(readlink -f -- "$p")" = "$p" ]; then ` +
  `head -c ${MAX_FILE_BYTES} -- "$p" 2>/dev/null | base64 -w0; else printf '%s' '${NOT_READ}'; fi; echo`;

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  /** Container port -> published host address. */
  ports: { privatePort: number; publicPort?: number; ip?: string }[];
}

export interface Inventory {
  os: { id: string; pretty: string };
  uid: number;
  unit: { name: string; fragmentPath?: string; activeState?: string; execStart?: string };
  dockerRunning: boolean;
  containers: ContainerSummary[];
}

export interface ContainerDetail {
  id: string;
  name: string;
  image: string;
  /** Path and arguments of the container's process (`-c /etc/nats/nats-server.conf`). */
  args: string[];
  env: string[];
  mounts: { type: string; source: string; destination: string; name?: string; rw: boolean }[];
  /** "4222/tcp" -> the first host binding. */
  bindings: Record<string, { ip: string; port: number } | undefined>;
  labels: Record<string, string>;
}

export interface ImportFacts {
  inventory: Inventory;
  nats: ContainerDetail;
  /** The config file as the container reads it, and where it is on the host. */
  config?: { hostPath: string; containerPath: string; text: string };
  /** The config's host path when it was not read: not a regular file, or reached through a link. */
  configNotRead?: string;
  varz?: { server_name?: string; server_id?: string; version?: string };
  jsz?: { config?: { max_memory?: number; max_storage?: number; store_dir?: string } };
  proxy?: {
    container: ContainerDetail;
    composeText?: string;
    /** server_name lines of the site files in the user_conf.d mount. */
    serverNames: string[];
  };
}

const decode = (s: string) => Buffer.from(s.trim(), 'base64').toString('utf8');
const json = <T>(text: string | undefined): T | undefined => {
  if (!text?.trim()) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
};

/** The first round trip. `unit` is a unit name the operator gave (checked by the caller). */
export function inventoryScript(unit: string): string {
  return [
    section('os'),
    '( . /etc/os-release 2>/dev/null; echo "${ID:-}"; echo "${PRETTY_NAME:-}" )',
    section('uid'),
    'id -u',
    section('unit'),
    `systemctl show ${shQuote(unit)} -p FragmentPath -p ActiveState -p ExecStart --no-pager 2>/dev/null || true`,
    section('containers'),
    httpMany({ socket: DOCKER_SOCKET, urls: ['http://docker/containers/json'] }),
    section('end'),
  ].join('\n');
}

/** systemd's `ExecStart={ path=... ; argv[]=... ; ... }`: the argv part. */
const argvOf = (execStart: string) => /argv\[\]=(.*?)(?: ;|$)/.exec(execStart)?.[1]?.trim();

export function parseInventory(output: string, unit: string): Inventory {
  const m = new Marked(output, OBSERVE);
  if (!m.has('end')) throw new Error('the host did not answer the whole inventory (output cut short)');
  const [id = '', pretty = ''] = m.lines('os');
  const props = Object.fromEntries(
    m
      .lines('unit')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const [list] = httpAnswers(m.text('containers'));
  const raw = list?.status === 200 ? json<RawSummary[]>(list.body) : undefined;
  return {
    os: { id: id.trim(), pretty: pretty.trim() },
    uid: Number(m.text('uid') || -1),
    unit: {
      name: unit,
      fragmentPath: props.FragmentPath || undefined,
      activeState: props.ActiveState || undefined,
      execStart: props.ExecStart ? argvOf(props.ExecStart) : undefined,
    },
    dockerRunning: list?.status === 200,
    containers: (raw ?? []).map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      ports: (c.Ports ?? []).map((p) => ({ privatePort: p.PrivatePort, publicPort: p.PublicPort, ip: p.IP })),
    })),
  };
}

interface RawSummary {
  Id: string;
  Names?: string[];
  Image: string;
  Ports?: { PrivatePort: number; PublicPort?: number; IP?: string }[];
}

/** The running NATS container: the one asked for by name, else the one serving 4222 inside. */
export function findNatsContainer(inv: Inventory, name?: string): ContainerSummary | undefined {
  if (name) return inv.containers.find((c) => c.name === name);
  const serving = inv.containers.filter((c) => c.ports.some((p) => p.privatePort === 4222));
  return serving.length === 1 ? serving[0] : serving.find((c) => /nats/i.test(c.image));
}

/** The proxy: the jonasal/nginx-certbot container (by image or by the seed's name). */
export const findProxyContainer = (inv: Inventory) =>
  inv.containers.find((c) => /nginx-certbot/.test(c.image) || c.name === 'nginx-certbot');

const CONTAINER_ID = /^[0-9a-f]{12,64}$/;

/** The second round trip: inspect both containers; the details script comes after (it needs the mounts). */
export function inspectScript(natsId: string, proxyId?: string): string {
  for (const id of [natsId, proxyId]) if (id !== undefined && !CONTAINER_ID.test(id)) throw new Error('bad id');
  const urls = [natsId, ...(proxyId ? [proxyId] : [])].map((id) => `http://docker/containers/${id}/json`);
  return [section('inspect'), httpMany({ socket: DOCKER_SOCKET, urls }), section('end')].join('\n');
}

interface RawInspect {
  Id: string;
  Name: string;
  Path?: string;
  Args?: string[];
  Config?: { Image?: string; Env?: string[]; Labels?: Record<string, string> };
  Mounts?: { Type?: string; Source?: string; Destination?: string; Name?: string; RW?: boolean }[];
  HostConfig?: { PortBindings?: Record<string, { HostIp?: string; HostPort?: string }[] | null> };
}

function detail(raw: RawInspect): ContainerDetail {
  return {
    id: raw.Id,
    name: raw.Name.replace(/^\//, ''),
    image: raw.Config?.Image ?? '',
    args: [raw.Path ?? '', ...(raw.Args ?? [])].filter(Boolean),
    env: raw.Config?.Env ?? [],
    labels: raw.Config?.Labels ?? {},
    mounts: (raw.Mounts ?? []).map((x) => ({
      type: x.Type ?? '',
      source: x.Source ?? '',
      destination: x.Destination ?? '',
      name: x.Name,
      rw: x.RW !== false,
    })),
    bindings: Object.fromEntries(
      Object.entries(raw.HostConfig?.PortBindings ?? {}).map(([k, v]) => [
        k,
        v?.[0] ? { ip: v[0].HostIp ?? '', port: Number(v[0].HostPort) } : undefined,
      ]),
    ),
  };
}

export function parseInspect(output: string): { nats?: ContainerDetail; proxy?: ContainerDetail } {
  const m = new Marked(output, OBSERVE);
  if (!m.has('end')) throw new Error('the host did not answer the container inspection (output cut short)');
  const [nats, proxy] = httpAnswers(m.text('inspect')).map((a) =>
    a.status === 200 ? json<RawInspect>(a.body) : undefined,
  );
  return { nats: nats && detail(nats), proxy: proxy && detail(proxy) };
}

/** The config path inside the container: after -c / --config, else the image's default. */
export function containerConfigPath(c: ContainerDetail): string {
  const i = c.args.findIndex((a) => a === '-c' || a === '--config');
  const given = i >= 0 ? c.args[i + 1] : c.args.find((a) => /^--?config=/.test(a))?.replace(/^--?config=/, '');
  return given && posix.isAbsolute(given) ? posix.normalize(given) : '/etc/nats/nats-server.conf';
}

/** Maps a container path to the host through the container's bind mounts (the deepest mount wins). */
export function hostPathOf(c: ContainerDetail, path: string): string | undefined {
  const m = c.mounts
    .filter((x) => x.type === 'bind' && (path === x.destination || path.startsWith(`${x.destination}/`)))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  return m && posix.join(m.source, posix.relative(m.destination, path));
}

/** Where monitoring answers on the host: the published 8222, loopback for a wildcard binding. */
export function monitorAddressOf(c: ContainerDetail): string | undefined {
  const b = c.bindings['8222/tcp'];
  if (!b || !b.port) return undefined;
  const ip = !b.ip || b.ip === '0.0.0.0' || b.ip === '::' ? '127.0.0.1' : b.ip;
  return `${ip}:${b.port}`;
}

/** The third round trip: the config file, monitoring, and the proxy's compose and site files. */
export function detailsScript(nats: ContainerDetail, proxy?: ContainerDetail): string {
  const conf = hostPathOf(nats, containerConfigPath(nats));
  const mon = monitorAddressOf(nats);
  const lines: string[] = [];
  if (conf) lines.push(section('config', conf), fileBase64(conf));
  if (mon) lines.push(section('monitor'), httpMany({ urls: [`http://${mon}/varz`, `http://${mon}/jsz`] }));
  if (proxy) {
    const dir = proxy.labels['com.docker.compose.project.working_dir'];
    if (dir && posix.isAbsolute(dir)) {
      const compose = ['compose.yml', 'compose.yaml', 'docker-compose.yml', 'docker-compose.yaml'].map((f) =>
        shQuote(posix.join(dir, f)),
      );
      lines.push(
        section('compose'),
        `for f in ${compose.join(' ')}; do [ -f "$f" ] && ` +
          `{ head -c ${MAX_FILE_BYTES} "$f" | base64 -w0; break; }; done; echo`,
      );
    }
    const site = proxy.mounts.find((x) => x.destination === '/etc/nginx/user_conf.d')?.source;
    if (site && posix.isAbsolute(site))
      lines.push(
        section('sites'),
        `cat ${shQuote(site)}/*.conf 2>/dev/null | grep -o 'server_name[^;]*' | head -n 20 | base64 -w0; echo`,
      );
  }
  return [...lines, section('end')].join('\n');
}

export function parseDetails(
  output: string,
  nats: ContainerDetail,
  inventory: Inventory,
  proxy?: ContainerDetail,
): ImportFacts {
  const m = new Marked(output, OBSERVE);
  if (!m.has('end')) throw new Error('the host did not answer the details (output cut short)');
  const found: Section | undefined = m.sections.find((s) => s.name === 'config');
  const notRead = found?.body.join('').trim() === NOT_READ;
  const cfg = notRead ? undefined : found;
  const [varz, jsz] = httpAnswers(m.text('monitor')).map((a) => (a.status === 200 ? json(a.body) : undefined));
  const sites = decode(m.text('sites'));
  return {
    inventory,
    nats,
    config: cfg
      ? { hostPath: cfg.arg, containerPath: containerConfigPath(nats), text: decode(cfg.body.join('')) }
      : undefined,
    ...(notRead ? { configNotRead: found!.arg } : {}),
    varz: varz as ImportFacts['varz'],
    jsz: jsz as ImportFacts['jsz'],
    proxy: proxy && {
      container: proxy,
      composeText: m.has('compose') ? decode(m.text('compose')) || undefined : undefined,
      serverNames: sites
        .split('\n')
        .flatMap((l) => l.replace(/^server_name\s*/, '').split(/\s+/))
        .filter((n) => n && n !== '_'),
    },
  };
}
