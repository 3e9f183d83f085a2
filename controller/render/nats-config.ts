// Owns the NATS server configuration file (nats-server.conf) rendered from a HostSpec.
// Inside the container NATS always listens on 4222/8222; the host ports live in the unit.
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import { MANAGED_HEADER } from './artifact.js';
import { routeTlsBlock, tlsBlock } from './tls.js';

/** Container paths: the config directory is mounted at /etc/nats, the data directory at /data. */
export const CONTAINER_CONF_DIR = '/etc/nats';
export const CONTAINER_DATA_DIR = '/data';
export const CONTAINER_CLIENT_PORT = 4222;
export const CONTAINER_HTTP_PORT = 8222;
export const CONTAINER_ROUTE_PORT = 6222;

export const containerConfPath = (h: HostSpec) => posix.join(CONTAINER_CONF_DIR, posix.basename(h.nats.confFile));

/** Maps a host path inside dataDir to the path the container sees. */
export function containerDataPath(h: HostSpec, hostPath: string): string {
  const rel = posix.relative(h.nats.dataDir, hostPath);
  return rel ? posix.join(CONTAINER_DATA_DIR, rel) : CONTAINER_DATA_DIR;
}

export interface ResolvedAuth {
  token?: string;
  user?: string;
  password?: string;
}

/** Route credentials: the password as it sits in the config, and as it sits in a route URL. */
export interface ResolvedRouteAuth {
  user: string;
  password: string;
  passwordInUrl: string;
}

/**
 * A NATS string literal. Every value reaching here is schema-restricted or a checked secret (no quote,
 * backslash or newline).
 */
const str = (s: string) => {
  if (/["\\\n\r]/.test(s)) throw new Error('refusing to render an unsafe NATS config string');
  return `"${s}"`;
};
const size = (v: string | number) => (typeof v === 'number' ? String(v) : v);

/** `cluster {}`: the routes to the other members, this member's advertised address, route credentials. */
function clusterBlock(h: HostSpec, route: ResolvedRouteAuth | undefined): string[] {
  const c = h.cluster!;
  const cred = route ? `${encodeURIComponent(route.user)}:${route.passwordInUrl}@` : '';
  return [
    '',
    'cluster {',
    `  name: ${str(c.name)}`,
    `  listen: ${str(`0.0.0.0:${CONTAINER_ROUTE_PORT}`)}`,
    // Peers reach this member through the host's published port, not the container's own address.
    `  advertise: ${str(`${c.routeAddress}:${c.routePort}`)}`,
    // Clients are not told the containers' addresses (unreachable from outside the host).
    '  no_advertise: true',
    ...(route
      ? ['  authorization {', `    user: ${str(route.user)}`, `    password: ${str(route.password)}`, '  }']
      : []),
    ...(c.tls ? routeTlsBlock(h) : []),
    '  routes: [',
    ...c.peers.map((p) => `    ${str(`nats-route://${cred}${p.routeAddress}:${c.routePort}`)}`),
    '  ]',
    '}',
  ];
}

/**
 * @param system natsfleet's system account user (a cluster with `systemAccount`): client users are then
 *   rendered as a users list, the one form NATS accepts beside an accounts block.
 */
export function renderNatsConfig(
  h: HostSpec,
  auth: ResolvedAuth | undefined,
  route?: ResolvedRouteAuth,
  system?: { user: string; password: string },
  /** false: without the tls block (the first step of enabling TLS, while the certificate is obtained). */
  withTls = true,
): string {
  const n = h.nats;
  const lines = [
    `# ${MANAGED_HEADER}`,
    `# NatsHost ${h.name}`,
    '',
    `server_name: ${str(n.serverName)}`,
    `port: ${CONTAINER_CLIENT_PORT}`,
    `http_port: ${CONTAINER_HTTP_PORT}`,
  ];
  if (n.maxPayload !== undefined) lines.push(`max_payload: ${size(n.maxPayload)}`);
  if (n.maxConnections !== undefined) lines.push(`max_connections: ${n.maxConnections}`);
  lines.push(
    `lame_duck_duration: ${str(n.lameDuck.duration)}`,
    `lame_duck_grace_period: ${str(n.lameDuck.gracePeriod)}`,
  );
  lines.push(`debug: ${n.logging.debug}`, `trace: ${n.logging.trace}`, `logtime: ${n.logging.logtime}`);
  if (auth && system && auth.token === undefined) {
    lines.push(
      '',
      'authorization {',
      `  users: [ { user: ${str(auth.user!)}, password: ${str(auth.password!)} } ]`,
      '}',
      '',
      // The default system account by its own name: members with and without this block share it, so
      // the change reloads member by member (RAFT traffic runs in the system account).
      'accounts {',
      '  "$SYS" {',
      `    users: [ { user: ${str(system.user)}, password: ${str(system.password)} } ]`,
      '  }',
      '}',
    );
  } else if (auth) {
    lines.push('', 'authorization {');
    if (auth.token !== undefined) lines.push(`  token: ${str(auth.token)}`);
    else lines.push(`  user: ${str(auth.user!)}`, `  password: ${str(auth.password!)}`);
    lines.push('}');
  }
  if (n.tls.enabled && withTls) lines.push(...tlsBlock(h));
  if (n.jetstream.enabled) {
    lines.push('', 'jetstream {', `  store_dir: ${str(containerDataPath(h, n.jetstream.storeDir))}`);
    if (n.jetstream.maxMemory !== undefined) lines.push(`  max_memory_store: ${size(n.jetstream.maxMemory)}`);
    if (n.jetstream.maxFile !== undefined) lines.push(`  max_file_store: ${size(n.jetstream.maxFile)}`);
    lines.push('}');
  }
  if (h.cluster) lines.push(...clusterBlock(h, route));
  return `${lines.join('\n')}\n`;
}
