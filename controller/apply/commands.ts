// Owns the shell scripts apply runs on a host, as pure builders (Kamal-style: commands are data,
// tested as strings). Every argument is quoted by shQuote; file contents travel base64-encoded.
import { posix } from 'node:path';
import { sh, shQuote } from '../shell/quote.js';

export { remoteScript } from '../shell/quote.js';
import type { DesiredHost, FileArtifact } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';
import { APPLIED_FILES_PATH, LOCK_DIR, PENDING_PATH, RECORD_PATH, STATE_DIR } from '../observe/script.js';
import type { AppliedRecord, LockInfo, PendingRecord } from '../observe/facts.js';
import type { Step } from '../plan/types.js';

export const STAGED_SUFFIX = '.natsfleet-new';
export const BACKUP_DIR = `${STATE_DIR}/backup`;
/** Exit code of the lock script when another apply holds the lock. */
export const LOCK_HELD = 75;

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Writes `content` beside `path` (`path` + STAGED_SUFFIX, same filesystem) with its mode and owner. */
function stageFile(path: string, content: string, mode: string, owner: string, group: string): string {
  const tmp = `${path}${STAGED_SUFFIX}`;
  return [
    `printf '%s' ${shQuote(b64(content))} | base64 -d > ${shQuote(tmp)}`,
    sh('chown', `${owner}:${group}`, tmp),
    sh('chmod', mode, tmp),
  ].join(' && ');
}

/** Writes `content` to `path` atomically: staged beside it, then renamed over it. */
export function writeAtomic(path: string, content: string, mode = '0644', owner = 'root', group = 'root'): string {
  return `${stageFile(path, content, mode, owner, group)} && ${sh('mv', '-f', `${path}${STAGED_SUFFIX}`, path)}`;
}

export function lockAcquire(info: LockInfo): string {
  return [
    'set -e',
    sh('mkdir', '-p', STATE_DIR),
    `if ! mkdir ${shQuote(LOCK_DIR)} 2>/dev/null; then cat ${shQuote(`${LOCK_DIR}/info`)} 2>/dev/null; exit ${LOCK_HELD}; fi`,
    writeAtomic(`${LOCK_DIR}/info`, JSON.stringify(info), '0644'),
  ].join('\n');
}

/** Releases the lock only when it is still ours (the token matches). */
export const lockRelease = (token: string) =>
  `grep -q ${shQuote(`"token":"${token}"`)} ${shQuote(`${LOCK_DIR}/info`)} 2>/dev/null && rm -rf ${shQuote(LOCK_DIR)}; true`;

/** Takes over a lock left by a natsfleet process that is known to be gone, then acquires it. */
export const lockTakeOver = (oldToken: string, info: LockInfo) => `${lockRelease(oldToken)}\n${lockAcquire(info)}`;

/** Stages changed files beside their targets (same filesystem, so install is a rename) and makes directories. */
export function stageScript(d: DesiredHost, files: readonly FileArtifact[]): string {
  const lines = ['set -e', 'umask 077'];
  for (const dir of d.dirs) {
    lines.push(
      `${sh('mkdir', '-p', dir.path)} && ${sh('chown', `${dir.owner}:${dir.group}`, dir.path)} && ${sh('chmod', dir.mode, dir.path)}`,
    );
  }
  for (const f of files)
    lines.push(sh('mkdir', '-p', posix.dirname(f.path)), stageFile(f.path, f.content, f.mode, f.owner, f.group));
  return lines.join('\n');
}

/** Checks the staged NATS config with the image that will run it (nats-server -t). */
export function testConfigScript(d: DesiredHost): string {
  const dir = posix.dirname(d.nats.confFile);
  const staged = `${d.nats.containerConfFile}${STAGED_SUFFIX}`;
  return `${sh('docker', 'run', '--rm', '--network', 'none', '-v', `${dir}:${posix.dirname(d.nats.containerConfFile)}:ro`, d.nats.image, '-t', '-c', staged)} 2>&1`;
}

export const pullScript = (d: DesiredHost) => `${sh('timeout', '300', 'docker', 'pull', d.nats.image)} 2>&1`;

const compose = (kind: 'plugin' | 'standalone', dir: string, ...args: string[]) =>
  `cd ${shQuote(dir)} && ${kind === 'plugin' ? sh('docker', 'compose', ...args) : sh('docker-compose', ...args)}`;

/** The shell line for one service step; `record` carries context steps need. */
export function stepCommand(step: Step, d: DesiredHost, composeKind: 'plugin' | 'standalone'): string {
  const unit = d.nats.unit;
  switch (step) {
    case 'pull':
      return pullScript(d);
    case 'test-config':
      return 'true'; // run separately, before anything is installed
    case 'volume-create':
      return sh('docker', 'volume', 'create', d.proxy!.secretsVolume) + ' >/dev/null';
    case 'daemon-reload':
      return sh('systemctl', 'daemon-reload');
    case 'enable':
      return sh('systemctl', 'enable', '--quiet', unit);
    case 'restart':
      return sh('systemctl', 'restart', unit);
    case 'start':
      return sh('systemctl', 'start', unit);
    case 'reload':
      return sh('systemctl', 'reload', unit);
    case 'stop':
      return sh('systemctl', 'stop', unit);
    case 'disable':
      return sh('systemctl', 'disable', '--quiet', unit);
    case 'remove-container':
      return `${sh('docker', 'rm', '--force', d.nats.containerName)} >/dev/null 2>&1 || true`;
    case 'proxy-up':
      return `${compose(composeKind, d.proxy!.dir, 'up', '-d', '--remove-orphans')} 2>&1`;
    case 'proxy-reload':
      return `${sh('docker', 'exec', d.proxy!.containerName, 'nginx', '-t')} 2>&1 && ${sh('docker', 'kill', '--signal=HUP', d.proxy!.containerName)} >/dev/null`;
    case 'proxy-down':
      // By container name: the compose file may already be gone (or never have been ours to read).
      return `${sh('docker', 'rm', '--force', PROXY_CONTAINER)} >/dev/null 2>&1 || true`;
  }
}

export interface InstallInput {
  /** Files to put in place (staged before). */
  install: readonly string[];
  /** Files to remove. */
  remove: readonly string[];
  steps: readonly Step[];
  pending: PendingRecord;
  composeKind: 'plugin' | 'standalone';
}

/**
 * Backs up every file about to change, records the pending actions (so an interrupted apply is
 * finished by the next one), renames staged files into place, deletes removed ones, and runs the
 * service steps. Prints `@@step NAME` before each step so a failure names its step.
 */
export function installScript(d: DesiredHost, x: InstallInput): string {
  const lines = ['set -e', sh('rm', '-rf', BACKUP_DIR), sh('mkdir', '-p', BACKUP_DIR)];
  const touched = [...x.install, ...x.remove];
  for (const p of touched) {
    lines.push(
      `if [ -f ${shQuote(p)} ]; then ${sh('mkdir', '-p', posix.join(BACKUP_DIR, posix.dirname(p)))} && ${sh('cp', '-p', p, posix.join(BACKUP_DIR, p))}; fi`,
    );
  }
  lines.push(writeAtomic(PENDING_PATH, JSON.stringify(x.pending)));
  // Stopping and removal run before files go away; the rest after the new files are in place.
  const before: Step[] = ['proxy-down', 'stop', 'disable', 'remove-container'];
  for (const s of x.steps.filter((s) => before.includes(s)))
    lines.push(`echo '@@step ${s}'`, stepCommand(s, d, x.composeKind));
  for (const p of x.install) lines.push(sh('mv', '-f', `${p}${STAGED_SUFFIX}`, p));
  for (const p of x.remove) lines.push(sh('rm', '-f', p));
  for (const s of x.steps.filter((s) => !before.includes(s) && s !== 'pull' && s !== 'test-config')) {
    lines.push(`echo '@@step ${s}'`, stepCommand(s, d, x.composeKind));
  }
  lines.push("echo '@@step done'");
  return lines.join('\n');
}

/** Puts the backed-up files back (atomically), removes files that did not exist before. */
export function rollbackScript(
  d: DesiredHost,
  x: { install: readonly string[]; composeKind: 'plugin' | 'standalone'; proxyTouched: boolean },
): string {
  const lines: string[] = [];
  for (const p of x.install) {
    const bak = posix.join(BACKUP_DIR, p);
    lines.push(
      `if [ -f ${shQuote(bak)} ]; then ${sh('cp', '-p', bak, `${p}${STAGED_SUFFIX}`)} && ${sh('mv', '-f', `${p}${STAGED_SUFFIX}`, p)}; else ${sh('rm', '-f', p)}; fi`,
    );
  }
  lines.push(sh('systemctl', 'daemon-reload'), `${sh('systemctl', 'restart', d.nats.unit)} || true`);
  if (x.proxyTouched && d.proxy)
    lines.push(`${compose(x.composeKind, d.proxy.dir, 'up', '-d', '--remove-orphans')} >/dev/null 2>&1 || true`);
  lines.push(sh('rm', '-f', PENDING_PATH));
  return lines.join('\n');
}

/** Records what was applied (the host's own memory, for drift) and clears pending state and backups. */
export function finalizeScript(record: AppliedRecord, lockToken: string): string {
  return [
    'set -e',
    writeAtomic(RECORD_PATH, `${JSON.stringify(record, null, 2)}\n`),
    writeAtomic(
      APPLIED_FILES_PATH,
      Object.keys(record.files)
        .map((p) => `${p}\n`)
        .join(''),
    ),
    sh('rm', '-rf', PENDING_PATH, BACKUP_DIR),
    lockRelease(lockToken),
  ].join('\n');
}

/**
 * Waits for /healthz 200 and, after a reload, for /varz to show a new config_load_time (SIGHUP is
 * handled asynchronously), then prints varz and jsz (one round trip).
 */
export function verifyScript(monitor: string, timeoutSec: number, reloadedFrom?: string): string {
  const url = (p: string) => shQuote(`http://${monitor}/${p}`);
  return [
    `i=0; while [ "$(curl -s -m 2 -o /dev/null -w '%{http_code}' ${url('healthz')})" != 200 ]; do`,
    `  i=$((i+1)); if [ $i -gt ${timeoutSec * 2} ]; then echo '@@healthz timeout'; curl -s -m 2 ${url('healthz')}; exit 3; fi; sleep 0.5`,
    'done',
    ...(reloadedFrom
      ? // The key is part of the pattern: /varz "start" holds the same timestamp until the first reload.
        [
          `i=0; while curl -s -m 2 ${url('varz')} | grep -qF ${shQuote(`"config_load_time": "${reloadedFrom}"`)} && [ $i -lt 50 ]; do i=$((i+1)); sleep 0.2; done`,
        ]
      : []),
    `echo '@@varz'; curl -s -m 2 ${url('varz')}; echo`,
    `echo '@@jsz'; curl -s -m 2 ${url('jsz')}; echo`,
  ].join('\n');
}
