// Owns the checks JSON Schema cannot express: relations between fields of one manifest
// (ports, auth, paths, proxy) and between manifests (names). Each rule returns problems by field path.
import { posix } from 'node:path';
import type { HostSpec } from './host-spec.js';

export interface RuleFinding {
  path: string;
  severity: 'error' | 'warning';
  message: string;
}

/** Trees a data or config directory must never be, nor lie inside. */
const SYSTEM_TREES = [
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/bin',
  '/sbin',
  '/lib',
  '/lib64',
  '/usr',
  '/run',
  '/var/lib/docker',
];
/** Directories that may hold ours but must not be ours (mounting them would expose the host). */
const SYSTEM_DIRS = ['/', '/etc', '/root', '/home', '/var', '/var/lib', '/tmp', '/data', '/opt', '/srv'];

const inside = (path: string, dir: string) => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

function checkDir(path: string, field: string, what: string): RuleFinding[] {
  const tree = SYSTEM_TREES.find((t) => inside(path, t));
  if (tree) return [{ path: field, severity: 'error', message: `${what} ${path} lies in the system tree ${tree}` }];
  if (SYSTEM_DIRS.includes(path))
    return [{ path: field, severity: 'error', message: `${what} must be a dedicated directory, not ${path}` }];
  return [];
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  K: 1e3,
  KB: 1024,
  M: 1e6,
  MB: 1024 ** 2,
  G: 1e9,
  GB: 1024 ** 3,
  T: 1e12,
  TB: 1024 ** 4,
};
export function sizeInBytes(size: string | number): number {
  if (typeof size === 'number') return size;
  const m = /^(\d+)([A-Z]*)$/.exec(size)!;
  return Number(m[1]) * SIZE_UNITS[m[2]];
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
export function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d)!;
  return Number(m[1]) * DURATION_UNITS[m[2]];
}

function checkHostKey(hostKey: string): RuleFinding[] {
  const [type, b64] = hostKey.split(' ');
  const blob = Buffer.from(b64, 'base64');
  const len = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  const inner = len > 0 && len + 4 <= blob.length ? blob.subarray(4, 4 + len).toString('latin1') : '';
  if (inner !== type) {
    return [
      {
        path: 'spec.ssh.hostKey',
        severity: 'error',
        message: `is not a valid ${type} public key (the key data names "${inner || 'nothing'}")`,
      },
    ];
  }
  return [];
}

/** Checks one manifest (already through the schema) on its own. */
export function checkHost(h: HostSpec): RuleFinding[] {
  const out: RuleFinding[] = [...checkHostKey(h.ssh.hostKey)];
  const n = h.nats;
  if (n.clientPort === n.httpPort) {
    out.push({
      path: 'spec.nats.httpPort',
      severity: 'error',
      message: `clashes with spec.nats.clientPort (${n.clientPort})`,
    });
  }
  if (h.proxy.enabled) {
    for (const f of ['clientPort', 'httpPort'] as const) {
      if (n[f] === 80 || n[f] === 443) {
        out.push({
          path: `spec.nats.${f}`,
          severity: 'error',
          message: `port ${n[f]} is taken by the proxy (nginx listens on 80 and 443)`,
        });
      }
    }
    if (!h.proxy.domain)
      out.push({ path: 'spec.proxy.domain', severity: 'error', message: 'is required when the proxy is enabled' });
    if (!h.proxy.email)
      out.push({
        path: 'spec.proxy.email',
        severity: 'error',
        message: 'is required when the proxy is enabled (CERTBOT_EMAIL)',
      });
    if (n.httpBind === '0.0.0.0') {
      out.push({
        path: 'spec.nats.httpBind',
        severity: 'warning',
        message: 'monitoring (no authentication) is published on all interfaces although the proxy fronts it',
      });
    }
  }
  const auth = n.auth;
  if (!auth) {
    out.push({
      path: 'spec.nats.auth',
      severity: 'warning',
      message: 'no auth block: any client can connect to this server',
    });
  } else if (auth.token && (auth.user !== undefined || auth.password)) {
    out.push({
      path: 'spec.nats.auth',
      severity: 'error',
      message: 'token and user/password are mutually exclusive (NATS refuses both)',
    });
  } else if (!auth.token && (auth.user === undefined) !== (auth.password === undefined)) {
    out.push({
      path: `spec.nats.auth.${auth.user === undefined ? 'user' : 'password'}`,
      severity: 'error',
      message: 'is required together with ' + (auth.user === undefined ? 'password' : 'user'),
    });
  } else if (!auth.token && auth.user === undefined) {
    out.push({ path: 'spec.nats.auth', severity: 'error', message: 'must set token, or user and password' });
  }
  const confDir = posix.dirname(n.confFile);
  out.push(...checkDir(n.dataDir, 'spec.nats.dataDir', 'data directory'));
  out.push(...checkDir(confDir, 'spec.nats.confFile', 'config directory'));
  if (inside(confDir, n.dataDir) || inside(n.dataDir, confDir)) {
    out.push({
      path: 'spec.nats.confFile',
      severity: 'error',
      message: `config directory ${confDir} must be separate from the data directory ${n.dataDir}`,
    });
  }
  if (!inside(n.jetstream.storeDir, n.dataDir)) {
    out.push({
      path: 'spec.nats.jetstream.storeDir',
      severity: 'error',
      message: `must lie inside spec.nats.dataDir (${n.dataDir}), the only host directory the container sees`,
    });
  }
  if (!n.jetstream.enabled && (n.jetstream.maxMemory !== undefined || n.jetstream.maxFile !== undefined)) {
    out.push({
      path: 'spec.nats.jetstream',
      severity: 'warning',
      message: 'limits are set but JetStream is not enabled',
    });
  }
  if (n.maxPayload !== undefined && sizeInBytes(n.maxPayload) > 64 * 1024 * 1024) {
    out.push({ path: 'spec.nats.maxPayload', severity: 'error', message: 'must be at most 64MB (NATS limit)' });
  }
  const ld = n.lameDuck;
  if (durationMs(ld.duration) < 30_000) {
    out.push({
      path: 'spec.nats.lameDuck.duration',
      severity: 'error',
      message: 'must be at least 30s (NATS minimum)',
    });
  }
  if (durationMs(ld.gracePeriod) >= durationMs(ld.duration)) {
    out.push({
      path: 'spec.nats.lameDuck.gracePeriod',
      severity: 'error',
      message: `must be shorter than lameDuck.duration (${ld.duration}); nats-server refuses to start otherwise`,
    });
  }
  if (h.proxy.enabled) {
    for (const f of ['dir', 'userConfDir'] as const)
      out.push(...checkDir(h.proxy[f], `spec.proxy.${f}`, 'proxy directory'));
  }
  return out;
}
