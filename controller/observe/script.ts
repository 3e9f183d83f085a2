// Owns the observe command: ONE POSIX shell script, built from the desired state, that prints
// every fact of a host in marked sections (a fact is a command plus a parser: see parse.ts).
import { shQuote } from '../shell/quote.js';
import type { DesiredHost } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';

export const STATE_DIR = '/var/lib/natsfleet';
export const RECORD_PATH = `${STATE_DIR}/applied.json`;
export const PENDING_PATH = `${STATE_DIR}/pending.json`;
export const LOCK_DIR = `${STATE_DIR}/lock`;
/** One path per line: every file natsfleet manages on the host, so files it no longer wants are seen too. */
export const APPLIED_FILES_PATH = `${STATE_DIR}/applied.files`;
const MAX_FILE_BYTES = 1024 * 1024;

export const MARK = '@@natsfleet';
const section = (name: string, arg = '') => `echo ${shQuote(`${MARK} ${name}${arg ? ` ${arg}` : ''}`)}`;

/** The address NATS monitoring answers on from the host itself. */
export const monitorAddress = (d: DesiredHost) =>
  `${d.nats.httpBind === '0.0.0.0' ? '127.0.0.1' : d.nats.httpBind}:${d.nats.httpPort}`;

export function observeScript(d: DesiredHost, extraPaths: readonly string[] = []): string {
  const n = d.nats;
  const mon = `http://${monitorAddress(d)}`;
  const paths = [...new Set([...d.files.map((f) => f.path), ...extraPaths])];
  const lines = [
    'export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    section('os'),
    "grep -E '^(ID|VERSION_ID|PRETTY_NAME)=' /etc/os-release 2>/dev/null",
    section('uid'),
    'id -u',
    section('docker'),
    "if command -v docker >/dev/null 2>&1; then echo installed; docker version --format '{{.Server.Version}}' 2>/dev/null || echo not-running; else echo missing; fi",
    section('compose'),
    'docker compose version >/dev/null 2>&1 && echo plugin',
    'command -v docker-compose >/dev/null 2>&1 && echo standalone',
    section('curl'),
    'command -v curl >/dev/null 2>&1 && echo yes',
  ];
  const fileFact = (p: string) =>
    `if [ -f ${p} ]; then stat -c '%a %U %G %s' ${p}; head -c ${MAX_FILE_BYTES} ${p} | base64 -w0; echo; else echo missing; fi`;
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
  lines.push(
    section('unit'),
    `systemctl show ${shQuote(n.unit)} -p LoadState -p ActiveState -p SubState -p UnitFileState -p NeedDaemonReload --no-pager 2>/dev/null`,
    section('container'),
    `docker inspect --format '{{.Id}} {{.Image}} {{.State.Running}} {{.State.StartedAt}} {{.Config.Image}}' ${shQuote(n.containerName)} 2>/dev/null || echo missing`,
    section('image'),
    `docker image inspect --format '{{.Id}}' ${shQuote(n.image)} 2>/dev/null || echo missing`,
  );
  // The proxy container is looked for even when the proxy is off: disabling it must stop it.
  lines.push(
    section('proxy-container'),
    `docker inspect --format '{{.Id}} {{.Image}} {{.State.Running}} {{.State.StartedAt}} {{.Config.Image}}' ${shQuote(PROXY_CONTAINER)} 2>/dev/null || echo missing`,
  );
  if (d.proxy) {
    lines.push(
      section('proxy-volume'),
      `docker volume inspect ${shQuote(d.proxy.secretsVolume)} >/dev/null 2>&1 && echo yes`,
    );
  }
  const ports = [n.clientPort, n.httpPort, ...(d.proxy ? [80, 443] : [])];
  lines.push(section('ports'), `ss -Htlnp 2>/dev/null | awk '{print $4, $6}'`, section('ports-wanted', ports.join(',')));
  lines.push(
    section('healthz'),
    `curl -s -m 2 -w '\\n%{http_code}' ${shQuote(`${mon}/healthz`)} 2>/dev/null; echo`,
    section('varz'),
    `curl -s -m 2 ${shQuote(`${mon}/varz`)} 2>/dev/null; echo`,
    section('jsz'),
    `curl -s -m 2 ${shQuote(`${mon}/jsz`)} 2>/dev/null; echo`,
    section('record'),
    `cat ${RECORD_PATH} 2>/dev/null; echo`,
    section('pending'),
    `cat ${PENDING_PATH} 2>/dev/null; echo`,
    section('lock'),
    `cat ${LOCK_DIR}/info 2>/dev/null; echo`,
    section('end'),
  );
  return lines.join('\n');
}

