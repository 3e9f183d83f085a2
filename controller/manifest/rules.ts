// Owns the checks JSON Schema cannot express: relations between fields of one manifest
// (ports, auth, paths, proxy) and between manifests (names). Each rule returns problems by field path.
import { posix } from 'node:path';
import type { HostSpec } from './host-spec.js';
import { DEFAULT_PATH_POLICY, directoryProblem, isInside, type PathPolicy } from './path-policy.js';
import { hostKeyProblem } from './host-key.js';

export interface RuleFinding {
  path: string;
  severity: 'error' | 'warning';
  message: string;
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

const INT64_MAX = 2n ** 63n - 1n;
/** Exact size in bytes (BigInt: sizes above 2^53 must not silently round). */
export function sizeInBytesExact(size: string | number): bigint {
  if (typeof size === 'number') return Number.isSafeInteger(size) ? BigInt(size) : INT64_MAX + 1n;
  const m = /^(\d+)([A-Z]*)$/.exec(size)!;
  return BigInt(m[1]) * BigInt(SIZE_UNITS[m[2]]);
}

const SIZE_FIELDS = ['maxPayload', 'jetstream.maxMemory', 'jetstream.maxFile'] as const;

function checkSizes(h: HostSpec): RuleFinding[] {
  const out: RuleFinding[] = [];
  const values: Record<(typeof SIZE_FIELDS)[number], string | number | undefined> = {
    maxPayload: h.nats.maxPayload,
    'jetstream.maxMemory': h.nats.jetstream.maxMemory,
    'jetstream.maxFile': h.nats.jetstream.maxFile,
  };
  for (const f of SIZE_FIELDS) {
    const v = values[f];
    if (v === undefined) continue;
    if (typeof v === 'number' && !Number.isSafeInteger(v)) {
      out.push({
        path: `spec.nats.${f}`,
        severity: 'error',
        message: 'is too large to be exact: write it with a unit, such as 10GB',
      });
    } else if (sizeInBytesExact(v) > INT64_MAX) {
      out.push({
        path: `spec.nats.${f}`,
        severity: 'error',
        message: `${v} is more than NATS can hold (a 64-bit byte count)`,
      });
    }
  }
  return out;
}

/** Directories and files a manifest chooses, by field, for the path policy and overlap checks. */
function chosenPaths(h: HostSpec) {
  const n = h.nats;
  const dirs: { field: string; dir: string; group: 'nats' | 'proxy' }[] = [
    { field: 'spec.nats.confFile', dir: posix.dirname(n.confFile), group: 'nats' },
    { field: 'spec.nats.dataDir', dir: n.dataDir, group: 'nats' },
  ];
  if (n.jetstream.enabled)
    dirs.push({ field: 'spec.nats.jetstream.storeDir', dir: n.jetstream.storeDir, group: 'nats' });
  const files: { field: string; path: string }[] = [{ field: 'spec.nats.confFile', path: n.confFile }];
  if (h.proxy.enabled) {
    dirs.push(
      { field: 'spec.proxy.dir', dir: h.proxy.dir, group: 'proxy' },
      { field: 'spec.proxy.userConfDir', dir: h.proxy.userConfDir, group: 'proxy' },
      { field: 'spec.proxy.envFile', dir: posix.dirname(h.proxy.envFile), group: 'proxy' },
    );
    files.push(
      { field: 'spec.proxy.dir', path: posix.join(h.proxy.dir, 'compose.yml') },
      { field: 'spec.proxy.envFile', path: h.proxy.envFile },
    );
    if (h.proxy.domain)
      files.push({ field: 'spec.proxy.domain', path: posix.join(h.proxy.userConfDir, `${h.proxy.domain}.conf`) });
  }
  return { dirs, files };
}

/** The path policy (where natsfleet may write) and overlaps between what one manifest asks for. */
function checkPaths(h: HostSpec, policy: PathPolicy): RuleFinding[] {
  const out: RuleFinding[] = [];
  const { dirs, files } = chosenPaths(h);
  const seen = new Set<string>();
  for (const d of dirs) {
    const problem = directoryProblem(d.dir, policy);
    if (problem && !seen.has(d.field)) {
      seen.add(d.field);
      out.push({ path: d.field, severity: 'error', message: problem });
    }
  }
  const n = h.nats;
  const confDir = posix.dirname(n.confFile);
  if (isInside(confDir, n.dataDir) || isInside(n.dataDir, confDir)) {
    out.push({
      path: 'spec.nats.confFile',
      severity: 'error',
      message: `config directory ${confDir} must be separate from the data directory ${n.dataDir}`,
    });
  }
  if (!isInside(n.jetstream.storeDir, n.dataDir)) {
    out.push({
      path: 'spec.nats.jetstream.storeDir',
      severity: 'error',
      message: `must lie inside spec.nats.dataDir (${n.dataDir}), the only host directory the container sees`,
    });
  }
  // NATS directories are mounted into the NATS container: no proxy file may live in them, nor the reverse.
  for (const a of dirs.filter((x) => x.group === 'proxy')) {
    const clash = dirs.find((b) => b.group === 'nats' && (isInside(a.dir, b.dir) || isInside(b.dir, a.dir)));
    if (clash) {
      out.push({
        path: a.field,
        severity: 'error',
        message: `${a.dir} overlaps ${clash.dir} (${clash.field}): the proxy's and NATS's directories must be separate`,
      });
    }
  }
  for (const [i, f] of files.entries()) {
    const twin = files.findIndex((g) => g.path === f.path);
    if (twin !== i) {
      out.push({ path: f.field, severity: 'error', message: `${f.path} is also the file of ${files[twin].field}` });
    }
    if (posix.basename(f.path).length > 255) {
      out.push({ path: f.field, severity: 'error', message: `the file name of ${f.path} is longer than 255 bytes` });
    }
  }
  return out;
}

/** Monitoring is curled by natsfleet on the host at httpBind: never a link-local (metadata) or special address. */
function checkHttpBind(bind: string): RuleFinding[] {
  const [a, b] = bind.split('.').map(Number);
  const bad =
    (a === 169 && b === 254) || a >= 224 || (a === 0 && bind !== '0.0.0.0') || (a === 127 && bind !== '127.0.0.1');
  return bad
    ? [
        {
          path: 'spec.nats.httpBind',
          severity: 'error',
          message:
            `${bind} is not an address to publish monitoring on: ` + 'use 127.0.0.1, 0.0.0.0 or an address of the host',
        },
      ]
    : [];
}

/** Where a TLS file may be read from: inside a directory natsfleet may manage (never a system tree). */
function checkTls(h: HostSpec, policy: PathPolicy): RuleFinding[] {
  const t = h.nats.tls;
  if (!t.enabled) return [];
  const out: RuleFinding[] = [];
  const err = (f: string, message: string) => out.push({ path: `spec.nats.tls.${f}`, severity: 'error', message });
  if (t.source === 'proxy') {
    if (!h.proxy.enabled)
      err('source', 'proxy needs the proxy (spec.proxy.enabled: true), whose certbot obtains the certificate');
    for (const f of ['certFile', 'keyFile'] as const)
      if (t[f] !== undefined) err(f, 'is for source: files (source proxy uses the certificate of spec.proxy.domain)');
  } else {
    for (const f of ['certFile', 'keyFile'] as const) if (t[f] === undefined) err(f, 'is required with source: files');
  }
  if (t.verify && t.caFile === undefined)
    err('caFile', 'is required with verify: true (the CA client certificates must chain to)');
  for (const f of ['certFile', 'keyFile', 'caFile'] as const) {
    const path = t[f];
    if (path === undefined) continue;
    const problem = directoryProblem(posix.dirname(path), policy);
    if (problem) err(f, `${problem}; natsfleet mounts TLS files only from there`);
    else if (isInside(path, h.nats.dataDir) || isInside(path, h.nats.jetstream.storeDir))
      err(
        f,
        `lies in NATS's data directory (${h.nats.dataDir}), which NATS and its clients write: keep TLS files elsewhere`,
      );
  }
  return out;
}

/** spec.ssh: the pinned keys (the host's and its jump host's), and become. */
function checkSsh(h: HostSpec): RuleFinding[] {
  const out: RuleFinding[] = [];
  const keyProblem = hostKeyProblem(h.ssh.hostKey);
  if (keyProblem) out.push({ path: 'spec.ssh.hostKey', severity: 'error', message: keyProblem });
  const jump = h.ssh.proxyJump;
  const jumpKeyProblem = jump && hostKeyProblem(jump.hostKey);
  if (jumpKeyProblem) out.push({ path: 'spec.ssh.proxyJump.hostKey', severity: 'error', message: jumpKeyProblem });
  if (jump && jump.host === h.ssh.host && (jump.port ?? 22) === h.ssh.port)
    out.push({ path: 'spec.ssh.proxyJump', severity: 'error', message: 'is the host itself' });
  if (h.ssh.become === false && h.ssh.user !== 'root')
    out.push({
      path: 'spec.ssh.become',
      severity: 'warning',
      message:
        `is false for user ${h.ssh.user}: natsfleet needs root, ` + 'so the plan is blocked unless that user is uid 0',
    });
  return out;
}

/** Checks one manifest (already through the schema) on its own. */
export function checkHost(h: HostSpec, policy: PathPolicy = DEFAULT_PATH_POLICY): RuleFinding[] {
  const out: RuleFinding[] = checkSsh(h);
  out.push(...checkPaths(h, policy), ...checkSizes(h), ...checkHttpBind(h.nats.httpBind), ...checkTls(h, policy));
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
  return out;
}
