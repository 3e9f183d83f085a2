// Owns the observe command: ONE POSIX shell script, built from the desired state, that prints
// every fact of a host in marked sections (a fact is a command plus a parser: see parse.ts).
// It is cheap on the host: the Docker Engine API and NATS monitoring are each read by ONE curl
// process (several URLs), instead of a docker CLI process per question.
import { shQuote } from '../shell/quote.js';
import type { DesiredHost } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';

export const STATE_DIR = '/var/lib/natsfleet';
export const RECORD_PATH = `${STATE_DIR}/applied.json`;
export const PENDING_PATH = `${STATE_DIR}/pending.json`;
export const LOCK_DIR = `${STATE_DIR}/lock`;
/** One path per line: every file natsfleet manages on the host, so files it no longer wants are seen too. */
export const APPLIED_FILES_PATH = `${STATE_DIR}/applied.files`;
/** One path per line: every dedicated directory natsfleet created (and so owns) on the host. */
export const OWNED_DIRS_PATH = `${STATE_DIR}/owned.dirs`;
const DOCKER_SOCKET = '/var/run/docker.sock';
/** Where Docker looks for CLI plugins (the `docker compose` v2 plugin). */
const CLI_PLUGIN_DIRS = [
  '/usr/libexec/docker/cli-plugins',
  '/usr/lib/docker/cli-plugins',
  '/usr/local/lib/docker/cli-plugins',
  '/usr/local/libexec/docker/cli-plugins',
  '/root/.docker/cli-plugins',
];

export const MARK = '@@natsfleet';
/** Ends each response of a multi-URL curl: the HTTP status follows (000 when nothing answered). */
export const HTTP_MARK = '@@http';
const section = (name: string, arg = '') => `echo ${shQuote(`${MARK} ${name}${arg ? ` ${arg}` : ''}`)}`;
const curlMany = (extra: string[], urls: string[]) =>
  `curl -s -m 3 ${extra.join(' ')} -w ${shQuote(`\n${HTTP_MARK} %{http_code}\n`)} ${urls.map(shQuote).join(' ')} 2>/dev/null`;

/** The address NATS monitoring answers on from the host itself. */
export const monitorAddress = (d: DesiredHost) =>
  `${d.nats.httpBind === '0.0.0.0' ? '127.0.0.1' : d.nats.httpBind}:${d.nats.httpPort}`;

/** The Docker Engine API paths asked, in order (parse.ts reads the answers in the same order). */
export function dockerApiPaths(d: DesiredHost): string[] {
  return [
    '/version',
    `/containers/${d.nats.containerName}/json`,
    `/containers/${PROXY_CONTAINER}/json`,
    `/images/${d.nats.image}/json`,
    ...(d.proxy ? [`/volumes/${d.proxy.secretsVolume}`] : []),
  ];
}

export const MONITOR_PATHS = ['healthz', 'varz', 'jsz'] as const;

export function observeScript(d: DesiredHost, extraPaths: readonly string[] = []): string {
  const n = d.nats;
  const paths = [...new Set([...d.files.map((f) => f.path), ...extraPaths])];
  const lines = [
    'export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    section('os'),
    "grep -E '^(ID|VERSION_ID|PRETTY_NAME)=' /etc/os-release 2>/dev/null",
    section('uid'),
    'id -u',
    section('docker'),
    'command -v docker >/dev/null 2>&1 && echo installed || echo missing',
    section('compose'),
    `for d in ${CLI_PLUGIN_DIRS.join(' ')}; do [ -x "$d/docker-compose" ] && { echo plugin; break; }; done`,
    'command -v docker-compose >/dev/null 2>&1 && echo standalone',
    section('curl'),
    'command -v curl >/dev/null 2>&1 && echo yes',
    section('docker-api'),
    curlMany(
      [`--unix-socket ${DOCKER_SOCKET}`],
      dockerApiPaths(d).map((p) => `http://docker${p}`),
    ),
  ];
  // Metadata and the host-side hash only: natsfleet never reads a managed file's content back.
  const fileFact = (p: string) =>
    `if [ -L ${p} ]; then echo link; elif [ -f ${p} ]; then stat -c '%a %U %G %s' ${p}; sha256sum < ${p} | cut -c1-64; ` +
    `elif [ -e ${p} ]; then echo other; else echo missing; fi`;
  for (const p of paths) lines.push(section('file', p), fileFact(shQuote(p)));
  // Files natsfleet put there before and may no longer want (their paths are natsfleet's own writing).
  const known = paths.map((p) => `-e ${shQuote(`^${p.replace(/[.]/g, '\\.')}$`)}`).join(' ');
  lines.push(
    `if [ -f ${APPLIED_FILES_PATH} ]; then grep -v ${known} ${APPLIED_FILES_PATH} | grep '^/[A-Za-z0-9._/-]*$' | while read -r p; do`,
    `  echo "${MARK} file $p"; ${fileFact('"$p"')}`,
    'done; fi',
  );
  for (const dir of d.dirs) {
    lines.push(section('dir', dir.path), `stat -c '%a %U %G' ${shQuote(dir.path)} 2>/dev/null || echo missing`);
  }
  const ports = [n.clientPort, n.httpPort, ...(d.proxy ? [80, 443] : [])];
  lines.push(
    section('unit'),
    `systemctl show ${shQuote(n.unit)} -p LoadState -p ActiveState -p SubState -p UnitFileState -p NeedDaemonReload --no-pager 2>/dev/null`,
    section('ports'),
    `ss -Htlnp 2>/dev/null | awk '{print $4, $6}'`,
    section('ports-wanted', ports.join(',')),
    section('monitor'),
    curlMany(
      [],
      MONITOR_PATHS.map((p) => `http://${monitorAddress(d)}/${p}`),
    ),
    section('record'),
    `cat ${RECORD_PATH} 2>/dev/null; echo`,
    section('owned'),
    `cat ${OWNED_DIRS_PATH} 2>/dev/null; echo`,
    ...d.claims.flatMap((c) => [section('claim', c), `[ -e ${shQuote(c)} ] && echo exists || echo missing`]),
    section('pending'),
    `cat ${PENDING_PATH} 2>/dev/null; echo`,
    section('lock'),
    `cat ${LOCK_DIR}/info 2>/dev/null; echo`,
    section('end'),
  );
  return lines.join('\n');
}
