// Owns the shell scripts apply runs on a host, as pure builders (Kamal-style: commands are data,
// tested as strings). Every argument is quoted by shQuote; file contents travel base64-encoded.
import { posix } from 'node:path';
import { sh, shQuote } from '../shell/quote.js';

import type { DesiredHost, FileArtifact } from '../render/artifact.js';
import { PROXY_CONTAINER } from '../render/proxy.js';
import { DOCKER_VOLUMES_DIR, TLS_RELOAD_PATH, TLS_RELOAD_UNIT, TLS_WATCH_PATH, TLS_WATCH_UNIT } from '../render/tls.js';
import {
  APPLIED_FILES_PATH,
  BACKUP_DIR,
  HISTORY_PATH,
  LOCK_DIR,
  LOCK_INFO_PATH,
  OWNED_DIRS_PATH,
  PENDING_DONE_PATH,
  PENDING_PATH,
  RECORD_PATH,
  STATE_DIR,
} from '../observe/host-layout.js';
import {
  echoMarker,
  echoMarkerOf,
  HTTP_MARK,
  MAX_HTTP_ANSWER_BYTES,
  HAS_PERL,
  NONCE,
  PERL_ASK,
  STEP,
  VERIFY,
} from '../observe/protocol.js';
import { DOCKER_SOCKET, monitorUrl } from '../observe/fact-table.js';
import { sha256 } from '../util/hash.js';
import type { AppliedRecord, HostFacts, LockInfo, PendingRecord } from '../observe/facts.js';
import type { Step } from '../plan/types.js';
import { HISTORY_LIMIT, historyLine, type HistoryEntry } from './history.js';

/** Exit code of the lock script when another apply holds the lock. */
export const LOCK_HELD = 75;

const b64 = (s: string) => Buffer.from(s).toString('base64');

/**
 * Every script apply runs starts so: any failed command ends the whole script (`set -eu`; the
 * builders never hide a failure in an `&&` chain or a pipeline's middle), `>` never overwrites
 * (`set -C`: a staged file is created exclusively, a planted link is refused), new files are private.
 */
export const STRICT_PRELUDE = ['set -eu', 'set -C', 'umask 077', 'fail() { echo "natsfleet: $*" >&2; exit 1; }'].join(
  '\n',
);
export const strict = (...lines: string[]) => [STRICT_PRELUDE, ...lines].join('\n');

/**
 * Where `path` is staged during one apply: beside it (same filesystem, so install is a rename), named by
 * the apply's token.
 */
export const stagedPath = (path: string, token: string) =>
  `${path}.natsfleet-${token.replace(/[^A-Za-z0-9]/g, '').slice(0, 16)}`;

/**
 * Checks that `path` holds exactly `content`: its SHA-256 (one process on the host); when that differs, its
 * size says whether it was cut short (disk full) or holds other bytes.
 */
export function verifyFile(path: string, content: string): string[] {
  const bytes = Buffer.byteLength(content);
  return [
    `[ "$(sha256sum < ${shQuote(path)})" = ${shQuote(`${sha256(content)}  -`)} ] || ` +
      `{ [ "$(stat -c %s ${shQuote(path)})" = ${bytes} ] || ` +
      `fail ${shQuote(`${path}: not ${bytes} bytes as rendered (disk full?)`)}; ` +
      `fail ${shQuote(`${path}: content differs from the rendering`)}; }`,
  ];
}

/** Writes `content` to `staged` (created exclusively), flushes it to disk and verifies its size and hash. */
function writeChecked(staged: string, content: string): string[] {
  return [
    `printf '%s' ${shQuote(b64(content))} | base64 -d > ${shQuote(staged)}`,
    sh('sync', staged),
    ...verifyFile(staged, content),
  ];
}

/**
 * Writes `content` to `staged` (created exclusively), flushes it to disk, verifies its size and hash,
 * then sets its owner and mode. Nothing is renamed over a live file here.
 */
export function stageFile(staged: string, content: string, mode: string, owner: string, group: string): string[] {
  return [...writeChecked(staged, content), sh('chown', `${owner}:${group}`, staged), sh('chmod', mode, staged)];
}

/**
 * Writes `content` to `path`, one of natsfleet's own root files: staged beside it under the token's name,
 * verified, then renamed over it. A 0600 file needs no chown or chmod: scripts run as root, and a file the
 * script creates under `umask 077` is root's and 0600 already.
 */
export function writeVerified(path: string, content: string, token: string, mode = '0600'): string[] {
  const staged = stagedPath(path, token);
  const lines = mode === '0600' ? writeChecked(staged, content) : stageFile(staged, content, mode, 'root', 'root');
  return [...lines, sh('mv', '-f', staged, path)];
}

/** natsfleet's own state directory on the host: private to root. */
const stateDirLines = () => [sh('mkdir', '-p', STATE_DIR), sh('chmod', '0700', STATE_DIR)];

/**
 * Takes the lock: the lock directory is built complete (with its owner file, verified) under a
 * private name, then renamed into place in one step, so a full disk leaves no ownerless lock.
 */
export const lockAcquire = (info: LockInfo): string => strict(...lockAcquireLines(info));

/** lockAcquire's lines, for a script of its own or at the start of the prepare script. */
function lockAcquireLines(info: LockInfo): string[] {
  const fresh = `${LOCK_DIR}.new-${stagedPath('', info.token).slice('.natsfleet-'.length)}`;
  return [
    ...stateDirLines(),
    // The private name is the new token's: nothing can be there yet (mkdir fails if something is).
    sh('mkdir', fresh),
    `trap ${shQuote(`rm -rf ${shQuote(fresh)}`)} EXIT`,
    ...writeVerified(`${fresh}/info`, JSON.stringify(info), info.token, '0600'),
    // rename(2) would replace an EMPTY directory: an ownerless lock left behind must be respected too.
    `if [ -e ${shQuote(LOCK_DIR)} ] || ! mv -T ${shQuote(fresh)} ${shQuote(LOCK_DIR)} 2>/dev/null; then ` +
      `${heldLockReport()}; exit ${LOCK_HELD}; fi`,
  ];
}

/** What a script prints of a lock it found held: its owner file (one line, maybe empty), then its age. */
export const heldLockReport = () =>
  `{ cat ${shQuote(LOCK_INFO_PATH)} 2>/dev/null || true; echo; ` +
  `echo "@@age $(( $(date +%s) - $(stat -c %Y ${shQuote(LOCK_DIR)} 2>/dev/null || date +%s) ))"; }`;

/** Prints the lock's report when a lock is held, nothing otherwise. */
export const lockReportScript = () => strict(`if [ -d ${shQuote(LOCK_DIR)} ]; then ${heldLockReport()}; fi`);

/** Parses heldLockReport's output. */
export function parseHeldLock(stdout: string): { info?: LockInfo; ageSec: number } {
  const [first] = stdout.split('\n');
  let info: LockInfo | undefined;
  try {
    info = first?.trim() ? (JSON.parse(first) as LockInfo) : undefined;
  } catch {
    info = undefined;
  }
  const age = /@@age (-?\d+)/.exec(stdout);
  return { info, ageSec: age ? Number(age[1]) : 0 };
}

const ownsLock = (token: string) =>
  `grep -qF ${shQuote(`"token":"${token}"`)} ${shQuote(`${LOCK_DIR}/info`)} 2>/dev/null`;

/** Exit code of a mutating script that found the apply lock no longer its own: it changed nothing. */
export const LOCK_LOST = 93;

/**
 * The fence first line of every script that changes a host after the lock was taken: the lock must still
 * be this apply's (a controller replica cut off from its peers may find the host taken over meanwhile).
 */
export const fence = (token: string) =>
  `${ownsLock(token)} || ` +
  `{ echo 'natsfleet: the apply lock is no longer ours: nothing changed' >&2; exit ${LOCK_LOST}; }`;

/** Releases the lock only when it is still ours (the token matches). */
export const lockRelease = (token: string) => strict(`if ${ownsLock(token)}; then ${sh('rm', '-rf', LOCK_DIR)}; fi`);

/**
 * Removes the apply lock whoever holds it: `natsfleet unlock --force`, the operator's decision that no
 * apply is running. Without --force, unlock uses lockReleaseAbandoned (only a lock judged abandoned).
 */
export const unlockScript = () => strict(sh('rm', '-rf', LOCK_DIR));

/**
 * Moves aside, in one step (only one taker can), the lock judged abandoned: the one whose owner file
 * has `oldToken`, or, when `oldToken` is undefined, a lock without an owner file. A lock that changed
 * hands meanwhile is put back and reported held.
 */
export function lockReleaseAbandoned(oldToken: string | undefined, myToken: string): string {
  const aside = `${LOCK_DIR}.stale-${stagedPath('', myToken).slice('.natsfleet-'.length)}`;
  const same =
    oldToken === undefined
      ? `[ ! -s ${shQuote(`${aside}/info`)} ]`
      : `grep -qF ${shQuote(`"token":"${oldToken}"`)} ${shQuote(`${aside}/info`)} 2>/dev/null`;
  return strict(
    `if mv -T ${shQuote(LOCK_DIR)} ${shQuote(aside)} 2>/dev/null; then`,
    `  if ! ${same}; then`,
    `    mv -T ${shQuote(aside)} ${shQuote(LOCK_DIR)} 2>/dev/null || true; ${heldLockReport()}; exit ${LOCK_HELD}`,
    '  fi',
    `  ${sh('rm', '-rf', aside)}`,
    'fi',
  );
}

/** Takes over a lock judged abandoned (see lockReleaseAbandoned), then acquires. */
export function lockTakeOver(oldToken: string | undefined, info: LockInfo): string {
  return [
    lockReleaseAbandoned(oldToken, info.token),
    // A new script: its own prelude and trap.
    `( ${lockAcquire(info).replace(/\n/g, '\n  ')}\n)`,
  ].join('\n');
}

/**
 * Makes directories and stages changed files beside their targets under the apply's token. A dedicated
 * directory natsfleet claims is recorded as natsfleet's BEFORE it is created, so an interrupted apply
 * never leaves a directory natsfleet made but does not own. Existing parents are never re-moded.
 */
export const stageScript = (d: DesiredHost, files: readonly FileArtifact[], token: string): string =>
  strict(...stageLines(d, files, token));

function stageLines(d: DesiredHost, files: readonly FileArtifact[], token: string, stateDir = true): string[] {
  const lines = [...(stateDir ? stateDirLines() : []), 'umask 022'];
  for (const c of d.claims) {
    lines.push(
      `if [ ! -e ${shQuote(c)} ]; then echo ${shQuote(c)} >> ${shQuote(OWNED_DIRS_PATH)}; ${sh('mkdir', '-p', c)}; fi`,
    );
  }
  lines.push(...dirLines(d.dirs));
  lines.push('umask 077');
  for (const f of files) {
    lines.push(sh('mkdir', '-p', posix.dirname(f.path)));
    lines.push(...stageFile(stagedPath(f.path, token), f.content, f.mode, f.owner, f.group));
  }
  return lines;
}

/**
 * Makes the desired directories: none may be a link (one planted in a directory a container can write:
 * chown/chmod would follow it), all are made (one mkdir), and none leads elsewhere through a link in its path
 * (one realpath for all, before any file is staged in them). Their modes and owners as they are (one stat):
 * when every one is as desired, nothing more runs (the common case: 3 processes instead of 3 per directory);
 * otherwise each directory is checked again right before its owner and mode are set (chown and chmod follow
 * a link swapped in later).
 */
export function dirLines(dirs: readonly { path: string; owner: string; group: string; mode: string }[]): string[] {
  if (!dirs.length) return [];
  const paths = dirs.map((x) => x.path);
  const words = paths.map(shQuote).join(' ');
  const leadsHere = (p: string) =>
    `[ "$(realpath -e ${shQuote(p)})" = ${shQuote(p)} ] || fail ${shQuote(`${p} leads elsewhere through a link`)}`;
  // stat's %a has no leading zero (0755 -> 755); %U:%G are names (a numeric owner never matches: then set).
  const wanted = dirs.map((x) => `${Number.parseInt(x.mode, 8).toString(8)} ${x.owner}:${x.group}`).join('\n');
  return [
    ...paths.map((p) => `if [ -L ${shQuote(p)} ]; then fail ${shQuote(`${p} is a symbolic link`)}; fi`),
    sh('mkdir', '-p', ...paths),
    `[ "$(realpath -e -- ${words})" = ${shQuote(paths.join('\n'))} ] || ` +
      `fail ${shQuote(`a directory leads elsewhere through a link: ${paths.join(', ')}`)}`,
    `if [ "$(stat -c '%a %U:%G' -- ${words} 2>/dev/null)" != ${shQuote(wanted)} ]; then`,
    ...dirs.flatMap((x) => [
      `  ${leadsHere(x.path)}`,
      `  ${sh('chown', '-h', `${x.owner}:${x.group}`, x.path)}`,
      `  ${sh('chmod', x.mode, x.path)}`,
    ]),
    'fi',
  ];
}

/** Removes this apply's staged files (after a refused config or a failed pull). */
export const unstageScript = (paths: readonly string[], token: string) =>
  strict(...paths.map((p) => sh('rm', '-f', stagedPath(p, token))));

/** The running NATS container a staged config can be tested in (docker exec), and its nats-server. */
export interface ExecTest {
  /** The container's id (as observed: a container replaced since is not the one tested in). */
  container: string;
  /** The program it runs (its entrypoint): an absolute path ending in /nats-server. */
  program: string;
}

/**
 * Where the target image's nats-server can test the staged config without starting a container: the
 * running container, when it runs the target image (the tag still names the image it runs: no pull), the
 * unit that starts it does not change (nor waits for a daemon-reload), and it mounts the config's directory
 * and every TLS directory exactly as the unit does, with no other mount inside them: then the staged file,
 * its includes and its TLS files resolve inside it exactly as they will for the server that loads them.
 * Undefined otherwise: a new container of the target image tests it (testConfigScript's docker run).
 */
export function execConfigTest(
  d: DesiredHost,
  f: Pick<HostFacts, 'container' | 'imageId' | 'unit'>,
  changedFiles: readonly string[],
  steps: readonly Step[],
): ExecTest | undefined {
  const c = f.container;
  if (!c.exists || !c.running || !c.id || !c.path || !c.mounts) return undefined;
  if (c.image !== d.nats.image || !f.imageId || c.imageId !== f.imageId || steps.includes('pull')) return undefined;
  if (changedFiles.includes(d.nats.unitPath) || f.unit.needDaemonReload) return undefined;
  if (!c.path.startsWith('/') || posix.basename(c.path) !== 'nats-server') return undefined;
  const wanted = new Map([[posix.dirname(d.nats.containerConfFile), posix.dirname(d.nats.confFile)]]);
  for (const m of d.nats.tlsMounts) {
    // `type=bind,source=S,target=T,readonly` (tlsMounts): key=value options, and flags.
    const o = Object.fromEntries(
      m
        .split(',')
        .map((kv) => (kv.includes('=') ? [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] : [kv, ''])),
    );
    if (!o.target || !o.source || (o.type !== 'bind' && o.type !== 'volume')) return undefined;
    wanted.set(o.target, o.type === 'bind' ? o.source : posix.join(DOCKER_VOLUMES_DIR, o.source, '_data'));
  }
  for (const [target, source] of wanted) if (c.mounts[target] !== source) return undefined;
  const shadows = Object.keys(c.mounts).some(
    (dst) => !wanted.has(dst) && [...wanted.keys()].some((t) => isInside(dst, t) || isInside(t, dst)),
  );
  return shadows ? undefined : { container: c.id, program: c.path };
}

/** `path` is `dir` or below it. */
const isInside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/** Exit code of prepareScript when pulling the target image failed. */
export const PULL_FAILED = 90;
/** Exit code of prepareScript when nats-server refused the staged config. */
export const CONFIG_REJECTED = 91;

/**
 * The lines that check the staged NATS config with the image that will run it (nats-server -t), after
 * checking that the staged file is exactly the rendered one (an empty or truncated file never reaches the
 * test): in the running container when `exec` says it can (see execConfigTest), else in a new container of
 * the target image, offline, with the config's directory and the TLS directories mounted read-only.
 */
function testConfigLines(d: DesiredHost, token: string, exec?: ExecTest): string[] {
  const conf = d.files.find((f) => f.id === 'nats-config')!;
  const dir = posix.dirname(d.nats.confFile);
  const containerDir = posix.dirname(d.nats.containerConfFile);
  const staged = stagedPath(d.nats.containerConfFile, token);
  const mount = `${dir}:${containerDir}:ro`;
  const tls = d.nats.tlsMounts.flatMap((m) => ['--mount', m]);
  const verify = [echoMarker(STEP, 'test-config'), ...verifyFile(stagedPath(d.nats.confFile, token), conf.content)];
  if (exec) return [...verify, ...execTestLines(exec, staged)];
  return [
    ...verify,
    `${sh('docker', 'run', '--rm', '--network', 'none', '-v', mount, ...tls, d.nats.image, '-t', '-c', staged)} ` +
      `2>&1 || exit ${CONFIG_REJECTED}`,
  ];
}

/**
 * The exec test in ONE Perl process (PERL_ASK): the exec created (its id), started (its output, on a TTY: no
 * stream headers, printed), then its state asked until it no longer says running (40 more times at most,
 * 50 ms apart); exit 0 only for exit code 0. Arguments: the socket, the container, the create request.
 */
const PERL_EXEC_TEST = `${PERL_ASK}my ($s, $c, $create) = @ARGV;
my ($code, $hd, $b) = ask($s, "docker", 0, "POST", "/containers/$c/exec", 10, $create);
$code =~ /^2/ && $b =~ /"Id":"([0-9a-f]+)"/ or exit 1;
my $id = $1;
($code, $hd, $b) = ask($s, "docker", 0, "POST", "/exec/$id/start", 120, q({"Detach":false,"Tty":true}));
$code =~ /^2/ or exit 1;
print "$b\\n";
for (0 .. 40) {
  ($code, $hd, $b) = ask($s, "docker", 0, "GET", "/exec/$id/json", 10);
  $code =~ /^2/ or exit 1;
  exit($b =~ /"ExitCode":0[,}]/ ? 0 : 1) unless $b =~ /"Running":true/;
  select(undef, undef, undef, 0.05);
}
exit 1;`;

/** A POST with no body to the Docker API (PERL_ASK): exit 0 on a 2xx answer, else 1 with the answer on stderr. */
const PERL_POST = `${PERL_ASK}my ($c, $h, $b) = ask($ARGV[0], "docker", 0, "POST", $ARGV[1], 30, "");
$c =~ /^2/ and exit 0;
print STDERR "the Docker API answered $c to POST $ARGV[1]: $b\\n";
exit 1;`;

/**
 * `docker exec CONTAINER PROGRAM -t -c STAGED`, asked of the Docker API (not the docker CLI: about 25 ms less
 * of the host's CPU): by Perl where the host has it (PERL_EXEC_TEST: one process), else by curl (two
 * processes, and one per state asked again): the exec is created, started (its output, on a TTY: no stream
 * headers, is printed), then its exit code read (asked again while the engine says it is running).
 * Anything but exit code 0 exits CONFIG_REJECTED, and apply tests again in a new container, whose verdict
 * counts: a failure to exec is never taken for a refusal nor for an acceptance.
 */
function execTestLines(exec: ExecTest, staged: string): string[] {
  const api = (path: string) => shQuote(`http://docker${path}`);
  const json = ['-H', shQuote('Content-Type: application/json')].join(' ');
  const create = JSON.stringify({
    AttachStdout: true,
    AttachStderr: true,
    Tty: true,
    Cmd: [exec.program, '-t', '-c', staged],
  });
  // The exec's state: asked with --next after the start, and alone again while it says running.
  const state = `-s -m 10 --unix-socket ${DOCKER_SOCKET} "http://docker/exec/$nf_x/json"`;
  const perl = `perl -e ${shQuote(PERL_EXEC_TEST)} ${sh(DOCKER_SOCKET, exec.container, create)}`;
  return [
    `if ${HAS_PERL}; then`,
    `  ${perl} || exit ${CONFIG_REJECTED}`,
    'else',
    ...[
      NONCE,
      `nf_x=$(curl -sf -m 10 --unix-socket ${DOCKER_SOCKET} ${json} -d ${shQuote(create)} ` +
        `${api(`/containers/${exec.container}/exec`)}) || exit ${CONFIG_REJECTED}`,
      `nf_x=\${nf_x#*'"Id":"'}; nf_x=\${nf_x%%'"'*}`,
      `case $nf_x in ''|*[!0-9a-f]*) exit ${CONFIG_REJECTED};; esac`,
      // The output, then a mark with a nonce (the program's output cannot forge it), then the exec's state.
      `nf_o=$(curl -s -m 120 --unix-socket ${DOCKER_SOCKET} ${json} -d '{"Detach":false,"Tty":true}' ` +
        `-w "\\n@@exec-$n\\n" "http://docker/exec/$nf_x/start" --next ${state}) || exit ${CONFIG_REJECTED}`,
      `printf '%s\\n' "\${nf_o%%"@@exec-$n"*}"`,
      `nf_s=\${nf_o##*"@@exec-$n"}; nf_i=0`,
      `while case $nf_s in *'"Running":true'*) true;; *) false;; esac; do ` +
        `[ $nf_i -lt 40 ] || exit ${CONFIG_REJECTED}; nf_i=$((nf_i+1)); sleep 0.05; ` +
        `nf_s=$(curl ${state}) || exit ${CONFIG_REJECTED}; done`,
      `case $nf_s in *'"ExitCode":0,'*|*'"ExitCode":0}'*) ;; *) exit ${CONFIG_REJECTED};; esac`,
    ].map((l) => `  ${l}`),
    'fi',
  ];
}

/** Checks the staged NATS config (see testConfigLines): a script of its own. */
export const testConfigScript = (d: DesiredHost, token: string, exec?: ExecTest): string =>
  strict(...testConfigLines(d, token, exec));

/**
 * Everything before the install, in ONE script that fails as a whole: stages the files (stageScript), pulls
 * the target image when asked (exit PULL_FAILED when it cannot), and tests the staged config (exit
 * CONFIG_REJECTED when nats-server refuses it; see testConfigLines). Nothing is installed here.
 */
export function prepareScript(
  d: DesiredHost,
  files: readonly FileArtifact[],
  token: string,
  x: { pull: boolean; test: boolean; exec?: ExecTest; lock?: LockInfo },
): string {
  if (x.lock && x.lock.token !== token) throw new Error("prepareScript: the lock is not the apply's token");
  const test = x.test ? testConfigLines(d, token, x.exec) : [];
  return strict(
    // With `lock`, the apply lock is taken first, in the same round trip (exit LOCK_HELD, nothing staged,
    // when another holds it); the `locked` step marks that it was.
    ...(x.lock ? [...lockAcquireLines(x.lock), echoMarker(STEP, 'locked')] : []),
    ...stageLines(d, files, token, !x.lock),
    ...(x.pull ? [`${pullScript(d)} || exit ${PULL_FAILED}`] : []),
    ...test,
  );
}

export const pullScript = (d: DesiredHost) => `${sh('timeout', '300', 'docker', 'pull', d.nats.image)} 2>&1`;

/** A compose command run in the project's directory, in a subshell (a failed `cd` fails the line). */
const compose = (kind: 'plugin' | 'standalone', dir: string, ...args: string[]) =>
  `( cd ${shQuote(dir)}; ${kind === 'plugin' ? sh('docker', 'compose', ...args) : sh('docker-compose', ...args)} )`;

/** The shell lines for one service step (each line fails the script when it fails, unless marked tolerant). */
export function stepCommand(step: Step, d: DesiredHost, composeKind: 'plugin' | 'standalone'): string[] {
  const unit = d.nats.unit;
  switch (step) {
    case 'pull':
      return [pullScript(d)];
    case 'test-config':
      return []; // run separately, before anything is installed
    case 'volume-create':
      return [`${sh('docker', 'volume', 'create', d.proxy!.secretsVolume)} >/dev/null`];
    case 'daemon-reload':
      return [sh('systemctl', 'daemon-reload')];
    case 'enable':
      return [sh('systemctl', 'enable', '--quiet', unit)];
    case 'restart':
      return [sh('systemctl', 'restart', unit)];
    case 'start':
      return [sh('systemctl', 'start', unit)];
    case 'reload': {
      const path = `/containers/${d.nats.containerName}/kill?signal=HUP`;
      // What the unit's ExecReload does (docker kill --signal=HUP), asked of the Docker API directly: one
      // process (perl, else curl) instead of systemctl, systemd and the docker CLI (60 ms of the host's CPU
      // -> 12 with curl, 8 with perl). A container that is not running refuses it (409), which fails the step
      // as `systemctl reload` would.
      const perl = sh('perl', '-e', PERL_POST, DOCKER_SOCKET, path);
      const curl = sh('curl', '-sSf', '-m', '30', '-X', 'POST', '--unix-socket', DOCKER_SOCKET, `http://docker${path}`);
      return [`if ${HAS_PERL}; then ${perl}; else ${curl} >/dev/null; fi`];
    }
    case 'stop':
      return [sh('systemctl', 'stop', unit)];
    case 'disable':
      return [sh('systemctl', 'disable', '--quiet', unit)];
    case 'remove-container':
      // Tolerant: the container may already be gone.
      return [`${sh('docker', 'rm', '--force', d.nats.containerName)} >/dev/null 2>&1 || true`];
    case 'proxy-up':
      return [`${compose(composeKind, d.proxy!.dir, 'up', '-d', '--remove-orphans')} 2>&1`];
    case 'proxy-reload':
      return [
        // certbot may be obtaining a first certificate (the domain's live directory is missing for a few
        // seconds): only that error is waited out, for up to 60 s; any other fails the step at once.
        `i=0; until out=$(${sh('docker', 'exec', d.proxy!.containerName, 'nginx', '-t')} 2>&1); do ` +
          `case "$out" in *'cannot load certificate'*) i=$((i+1)); ` +
          `if [ $i -ge 60 ]; then echo "$out"; exit 1; fi; sleep 1;; *) echo "$out"; exit 1;; esac; done`,
        `${sh('docker', 'kill', '--signal=HUP', d.proxy!.containerName)} >/dev/null`,
      ];
    case 'tls-watch':
      return [
        sh('systemctl', 'enable', '--quiet', TLS_WATCH_UNIT),
        // restart: a changed path list is watched only from a (re)start.
        sh('systemctl', 'restart', TLS_WATCH_UNIT),
      ];
    case 'tls-unwatch':
      // Tolerant: the watch may never have been installed or be gone already. A reload it started is
      // stopped too (its unit file goes next: a unit running without one ends failed).
      return [
        `${sh('systemctl', 'disable', '--now', '--quiet', TLS_WATCH_UNIT)} >/dev/null 2>&1 || true`,
        `${sh('systemctl', 'stop', TLS_RELOAD_UNIT)} >/dev/null 2>&1 || true`,
      ];
    case 'renew-cert':
      // certbot renews only a certificate that is due, with the settings it obtained it with (its lineage).
      return [`${sh('docker', 'exec', d.proxy!.containerName, ...certbotRenew(d.proxy!.domain))} 2>&1`];
    case 'finish':
      return []; // verification and the record follow the script
    case 'proxy-down':
      // By container name: the compose file may already be gone (or never have been ours to read). Tolerant.
      return [`${sh('docker', 'rm', '--force', PROXY_CONTAINER)} >/dev/null 2>&1 || true`];
  }
}

/** certbot's renewal of one certificate, now, when it is due (the settings are those of its lineage). */
export const certbotRenew = (domain: string) => [
  'certbot',
  'renew',
  '--cert-name',
  domain,
  '--no-random-sleep-on-renew',
  '-n',
];

/** Says why natsfleet's own state directory refused a write: full, or another write error. */
const FREE_SPACE = `df -P ${STATE_DIR} | awk 'NR==2 { print ($4 > 0 ? "write error" : "No space left on device") }'`;

/** Steps that run before the files are installed (stopping and removal). */
export const BEFORE_INSTALL: readonly Step[] = ['proxy-down', 'stop', 'disable', 'tls-unwatch', 'remove-container'];

/** Steps after which the NATS container is another one (or none): monitoring may answer elsewhere. */
export const CONTAINER_STEPS: readonly Step[] = ['restart', 'start', 'stop', 'remove-container', 'disable'];

/** Forgets a pending record whose apply changed nothing (it failed while preparing). */
export const clearPendingScript = () => strict(sh('rm', '-rf', PENDING_PATH, PENDING_DONE_PATH, BACKUP_DIR));

export interface InstallInput {
  /** Files to put in place (staged before under `token`): each is verified again right before its rename. */
  install: readonly { path: string; content: string }[];
  /** Files to remove. */
  remove: readonly string[];
  steps: readonly Step[];
  pending: PendingRecord;
  composeKind: 'plugin' | 'standalone';
  token: string;
  /** A verifyScript run right after the steps succeeded (its output follows `@@step done`, then `@@verified CODE`). */
  verify?: string;
}

/**
 * Backs up every file about to change, records the pending actions (so an interrupted apply is
 * finished by the next one), renames verified staged files into place, deletes removed ones, and runs
 * the service steps. Prints `@@step NAME` before each step so a failure names its step.
 */
/**
 * A step's lines with all their output on stderr: stdout carries only natsfleet's own lines (step marks,
 * verification), which nothing a step runs (compose, certbot in a proxy image) can then forge.
 */
const toStderr = (lines: string[]) => (lines.length ? [`{\n${lines.join('\n')}\n} >&2`] : []);

export function installScript(d: DesiredHost, x: InstallInput): string {
  // natsfleet's state directory holds the lock the fence found: it exists.
  const lines = [fence(x.token), sh('rm', '-rf', BACKUP_DIR), sh('mkdir', '-p', BACKUP_DIR)];
  const touched = [...x.install.map((f) => f.path), ...x.remove];
  for (const p of touched) {
    lines.push(
      `if [ -f ${shQuote(p)} ]; then`,
      `  ${sh('mkdir', '-p', posix.join(BACKUP_DIR, posix.dirname(p)))}`,
      `  ${sh('cp', '-p', p, posix.join(BACKUP_DIR, p))}`,
      // A backup cut short by a full disk must stop the apply here, before anything is replaced.
      `  cmp -s ${shQuote(p)} ${shQuote(posix.join(BACKUP_DIR, p))} || fail ${shQuote(`backup of ${p} is incomplete`)}`,
      'fi',
    );
  }
  // The pending record names the steps; each finished step is appended to pending.done, so an
  // interrupted apply is finished by the next one without repeating what it did (a restart twice).
  lines.push(sh('rm', '-f', PENDING_DONE_PATH), ...writeVerified(PENDING_PATH, JSON.stringify(x.pending), x.token));
  const done = (s: string) =>
    `{ echo ${shQuote(s)} >> ${shQuote(PENDING_DONE_PATH)}; } 2>/dev/null || ` +
    `fail "cannot record progress in ${PENDING_DONE_PATH}: $(${FREE_SPACE})"`;
  // Stopping and removal run before files go away; the rest after the new files are in place.
  const before = BEFORE_INSTALL;
  for (const s of x.steps.filter((s) => before.includes(s)))
    lines.push(echoMarker(STEP, s), ...toStderr(stepCommand(s, d, x.composeKind)), done(s));
  lines.push(echoMarker(STEP, 'install'));
  for (const f of x.install) {
    const staged = stagedPath(f.path, x.token);
    lines.push(...verifyFile(staged, f.content), sh('mv', '-f', staged, f.path));
  }
  for (const p of x.remove) lines.push(sh('rm', '-f', p));
  lines.push(done('install'));
  for (const s of x.steps.filter((s) => !before.includes(s) && s !== 'pull' && s !== 'test-config')) {
    lines.push(echoMarker(STEP, s), ...toStderr(stepCommand(s, d, x.composeKind)), done(s));
  }
  lines.push(echoMarker(STEP, 'done'));
  // Verification in the same round trip, once every step went through: its exit code is said, not taken.
  if (x.verify) lines.push('nf_rc=0', `(\n${x.verify}\n) || nf_rc=$?`, echoMarkerOf(VERIFY, 'verified', '$nf_rc'));
  return strict(...lines);
}

/**
 * Puts the backed-up files back (atomically), removes files that did not exist before, restarts. Every
 * line is attempted even when one fails (a rollback does what it can); the exit code says whether all did.
 */
export function rollbackScript(
  d: DesiredHost,
  x: {
    install: readonly string[];
    /** Files the apply deleted: put back from their backups too. */
    remove?: readonly string[];
    composeKind: 'plugin' | 'standalone';
    proxyTouched: boolean;
    /** A first deploy (no unit by the service's name loaded, no container, before it): rolled back to nothing. */
    nothingBefore?: boolean;
    /** Whether the proxy's container existed before the apply (false: the one it started is removed). */
    proxyBefore?: boolean;
    /**
     * The directory of the proxy's compose file before the apply, when the apply deleted that file (the proxy
     * turned off, or spec.proxy.dir changed): the previous proxy comes back up from there once it is restored.
     */
    proxyDirBefore?: string;
    /** Whether the unit was enabled before the apply (a decommission disables it: enabled again). */
    enabledBefore?: boolean;
    /** The apply stopped the TLS renewal watch (tls-unwatch), which was enabled before: started again. */
    watchBefore?: boolean;
    token: string;
    /** The rolled-back apply's line in the host's history (written if the host still can; never fails it). */
    history?: HistoryEntry;
  },
): string {
  const attempt = (line: string) => `${line} || rc=1`;
  const lines = ['set -u', 'umask 077', fence(x.token), 'rc=0'];
  // A first deploy's unit is stopped and disabled while its file still says how (systemd keeps a unit whose
  // file is gone running, stops it then without its ExecStop, and may refuse to disable it); its container
  // goes too. TLS watch units this apply created go the same way.
  const created = (p: string) => `[ -f ${shQuote(p)} ] && [ ! -f ${shQuote(posix.join(BACKUP_DIR, p))} ]`;
  const disableNow = (unit: string) => sh('systemctl', 'disable', '--now', '--quiet', unit);
  if (x.nothingBefore)
    lines.push(
      `if [ -f ${shQuote(d.nats.unitPath)} ]; then ${attempt(disableNow(d.nats.unit))}; fi`,
      `${sh('docker', 'rm', '--force', d.nats.containerName)} >/dev/null 2>&1 || true`,
    );
  if (x.install.includes(TLS_WATCH_PATH))
    lines.push(`if ${created(TLS_WATCH_PATH)}; then ${attempt(disableNow(TLS_WATCH_UNIT))}; fi`);
  if (x.install.includes(TLS_RELOAD_PATH))
    lines.push(`if ${created(TLS_RELOAD_PATH)}; then ${attempt(sh('systemctl', 'stop', TLS_RELOAD_UNIT))}; fi`);
  for (const p of x.install) {
    const bak = posix.join(BACKUP_DIR, p);
    const staged = `${stagedPath(p, x.token)}.rollback`;
    lines.push(
      `if [ -f ${shQuote(bak)} ]; then`,
      `  ${attempt(`{ ${sh('cp', '-p', bak, staged)} && ${sh('mv', '-f', staged, p)}; }`)}`,
      'else',
      `  ${attempt(sh('rm', '-f', p))}`,
      'fi',
      `${sh('rm', '-f', stagedPath(p, x.token))}`,
    );
  }
  for (const p of x.remove ?? []) {
    const bak = posix.join(BACKUP_DIR, p);
    const staged = `${stagedPath(p, x.token)}.rollback`;
    lines.push(
      `if [ -f ${shQuote(bak)} ] && [ ! -e ${shQuote(p)} ]; then`,
      `  ${attempt(`{ ${sh('cp', '-p', bak, staged)} && ${sh('mv', '-f', staged, p)}; }`)}`,
      'fi',
    );
  }
  // The previous unit runs again (a unit file elsewhere counts: one this apply's overrode); a first deploy's
  // is gone, and its failed state forgotten.
  lines.push(
    attempt(sh('systemctl', 'daemon-reload')),
    x.nothingBefore
      ? `${sh('systemctl', 'reset-failed', d.nats.unit)} >/dev/null 2>&1 || true`
      : attempt(sh('systemctl', 'restart', d.nats.unit)),
  );
  if (x.enabledBefore && !x.nothingBefore) lines.push(attempt(sh('systemctl', 'enable', '--quiet', d.nats.unit)));
  // Its files are back (restored above, with the daemon-reload): as the tls-watch step starts it.
  const startWatch = attempt(sh('systemctl', 'enable', '--now', '--quiet', TLS_WATCH_UNIT));
  if (x.watchBefore) lines.push(`if [ -f ${shQuote(TLS_WATCH_PATH)} ]; then ${startWatch}; fi`);
  const proxyDir = x.proxyDirBefore ?? d.proxy?.dir;
  const removeProxy = `${sh('docker', 'rm', '--force', PROXY_CONTAINER)} >/dev/null 2>&1 || true`;
  if (x.proxyTouched && x.proxyBefore === false)
    // No proxy ran before this apply: the one it started goes (by name, as proxy-down does).
    lines.push(removeProxy);
  else if (x.proxyTouched && proxyDir) {
    // A proxy started from another directory is another compose project holding the same container name.
    if (d.proxy && x.proxyDirBefore && x.proxyDirBefore !== d.proxy.dir) lines.push(removeProxy);
    lines.push(attempt(`${compose(x.composeKind, proxyDir, 'up', '-d', '--remove-orphans')} >/dev/null 2>&1`));
  }
  lines.push(sh('rm', '-f', PENDING_PATH, PENDING_DONE_PATH));
  if (x.history) {
    const history = strict(...stateDirLines(), ...appendHistory(x.history, x.token));
    lines.push(
      `(\n${history}\n) || echo 'natsfleet: the apply history was not written' >&2`,
      sh('rm', '-f', stagedPath(HISTORY_PATH, x.token)),
    );
  }
  lines.push('exit $rc');
  return lines.join('\n');
}

/**
 * Appends one line to the host's apply history, keeping the last `limit` lines: the kept lines, then the
 * new one, go to a file staged under the apply's token (a line that is not one JSON object is dropped),
 * which is flushed and checked (the kept part hashes as the lines it copied, the new line ends it whole)
 * before it is renamed over the history. A full disk leaves the previous history as it was.
 */
export function appendHistory(entry: HistoryEntry, token: string, limit = HISTORY_LIMIT): string[] {
  // The line goes into the script without its newline (printf adds it): no quoted text spans two lines.
  const text = historyLine(entry);
  const line = `${text}\n`;
  const bytes = Buffer.byteLength(line);
  const staged = stagedPath(HISTORY_PATH, token);
  const kept = limit - 1;
  // The last `kept` lines that are one JSON object each (a line cut short by hand is not carried on).
  const program =
    `/^\\{.*\\}$/ { n++; l[n] = $0 } ` +
    `END { for (i = (n > ${kept} ? n - ${kept - 1} : 1); i <= n; i++) print l[i] }`;
  const keep = `awk ${shQuote(program)} ${shQuote(HISTORY_PATH)}`;
  const hashOf = (cmd: string) => `"$(${cmd} | sha256sum)"`;
  const exists = `[ -f ${shQuote(HISTORY_PATH)} ]`;
  return [
    `if ${exists}; then ${keep} > ${shQuote(staged)}; else : > ${shQuote(staged)}; fi`,
    `nf_kept=$(stat -c %s ${shQuote(staged)})`,
    `printf '%s\\n' ${shQuote(text)} >> ${shQuote(staged)}`,
    sh('sync', staged),
    `[ "$(stat -c %s ${shQuote(staged)})" = "$((nf_kept + ${bytes}))" ] || ` +
      `fail ${shQuote(`${HISTORY_PATH}: the new line was not written whole (disk full?)`)}`,
    `[ ${hashOf(`tail -c ${bytes} ${shQuote(staged)}`)} = ${shQuote(`${sha256(line)}  -`)} ] || ` +
      `fail ${shQuote(`${HISTORY_PATH}: the new line differs from the one sent`)}`,
    `if ${exists}; then [ ${hashOf(`head -c "$nf_kept" ${shQuote(staged)}`)} = ${hashOf(keep)} ] || ` +
      `fail ${shQuote(`${HISTORY_PATH}: the earlier lines were not copied whole (disk full?)`)}; fi`,
    sh('chmod', '0600', staged),
    sh('mv', '-f', staged, HISTORY_PATH),
  ];
}

/** Prints the host's apply history (nothing when there is none), at most 1 MiB of it. */
export const historyScript = () =>
  strict(`if [ -f ${shQuote(HISTORY_PATH)} ]; then ${sh('head', '-c', '1048576', HISTORY_PATH)}; fi`);

/**
 * Records what was applied (the host's own memory, for drift) and, with `history`, appends the apply to the
 * host's history; clears pending state and backups, unlocks.
 */
export function finalizeScript(record: AppliedRecord, lockToken: string, history?: HistoryEntry): string {
  return strict(
    fence(lockToken),
    ...(history ? appendHistory(history, lockToken) : []),
    ...writeVerified(RECORD_PATH, `${JSON.stringify(record, null, 2)}\n`, lockToken),
    ...writeVerified(
      APPLIED_FILES_PATH,
      Object.keys(record.files)
        .map((p) => `${p}\n`)
        .join(''),
      lockToken,
    ),
    sh('rm', '-rf', PENDING_PATH, PENDING_DONE_PATH, BACKUP_DIR),
    `if ${ownsLock(lockToken)}; then ${sh('rm', '-rf', LOCK_DIR)}; fi`,
  );
}

export interface VerifyScriptInput {
  /** The shell line that sets $nf_mon, where monitoring answers (observe's monitorLookup). */
  lookup: string;
  /**
   * Where monitoring answers when that is known not to change (a reload: the same container): asked there,
   * with no lookup (a Docker API call and three more processes on every try).
   */
  address?: string;
  timeoutSec: number;
  /** config_load_time before a reload: /varz must show another one (SIGHUP is handled asynchronously). */
  reloadedFrom?: string;
  /** The proxy's domain: its HTTPS answer for /varz is asked too (on 127.0.0.1:443). */
  proxyDomain?: string;
}

/** How long verifyScript waits, after /healthz, for a reload to show in /varz. */
const RELOAD_WAIT_SEC = 10;
/** How long verifyScript asks again a proxy that does not answer yet. */
const PROXY_WAIT_SEC = 20;
/** The longest verifyScript may run (its timeout, the reload's wait, the proxy's, a try's 8 s each). */
export const verifyBudgetSec = (timeoutSec: number) => timeoutSec + RELOAD_WAIT_SEC + PROXY_WAIT_SEC + 30;

/** What verifyScript's answers hold, in order (httpAnswers of its `answers` section). */
export const VERIFY_ANSWERS = ['healthz', 'varz', 'jsz', 'proxy'] as const;

/**
 * Waits for /healthz 200 (and, after a reload, for /varz to show a new config_load_time), then prints what
 * /healthz, /varz, /jsz and the proxy answered, as one base64 line (`answers`, see curlGroups: a body can
 * forge no mark). Each try is ONE curl process asking all of them. A proxy that does not answer yet is asked
 * again for up to 20 s (`proxy ok` or `proxy failed`). Exit 3 when /healthz did not answer 200 in time.
 * Runs under `set -eu` (appended to the install script) as well as alone.
 */
export function verifyScript(v: VerifyScriptInput): string {
  const url = monitorUrl;
  const curlOpts = (extra = '') => `-s -m 2${extra} -w "\\n${HTTP_MARK}-$n %{http_code}\\n"`;
  const proxyHttps = `https://${v.proxyDomain}/varz`;
  const proxyUrl = v.proxyDomain && shQuote(proxyHttps);
  const proxyAt = `${v.proxyDomain}:443:127.0.0.1`;
  const resolve = v.proxyDomain && shQuote(proxyAt);
  const ask =
    `nf_a=$(curl ${curlOpts()} ${url('healthz')} --next ${curlOpts()} ${url('varz')} ` +
    `--next ${curlOpts()} ${url('jsz')}` +
    (proxyUrl ? ` --next ${curlOpts(` -k -o /dev/null --resolve ${resolve}`)} ${proxyUrl}` : '') +
    ' 2>/dev/null) || true';
  const answers = () =>
    `${echoMarker(VERIFY, 'answers')}; ` +
    `{ echo "$n"; printf '%s\\n' "$nf_a"; } | head -c ${MAX_HTTP_ANSWER_BYTES} | base64 -w0; echo`;
  // The first mark is /healthz's (a body cannot hold the nonce).
  const healthy = `case "\${nf_a#*"${HTTP_MARK}-$n "}" in 200*) true;; *) false;; esac`;
  const stale = v.reloadedFrom
    ? // The key is part of the pattern: /varz "start" holds the same timestamp until the first reload.
      `case "$nf_a" in *${shQuote(`"config_load_time": "${v.reloadedFrom}"`)}*) true;; *) false;; esac`
    : 'false';
  return [
    NONCE,
    'nf_a=',
    // A deadline, not a count of tries: a try may itself take its 2 s (an address that drops packets).
    `nf_end=$(( $(date +%s) + ${v.timeoutSec} ))`,
    ...(v.address ? [`nf_mon=${shQuote(v.address)}`] : []),
    // After a reload: up to 10 s more for the new config to show (then verification says it did not).
    `nf_seen=$(( $(date +%s) + ${RELOAD_WAIT_SEC} ))`,
    'while :; do',
    ...(v.address ? [] : [`  ${v.lookup}`]),
    `  ${ask}`,
    `  if ${healthy}; then`,
    `    if ${stale}; then if [ "$(date +%s)" -lt "$nf_seen" ]; then sleep 0.05; continue; fi; fi`,
    '    break',
    '  fi',
    `  if [ "$(date +%s)" -ge "$nf_end" ]; then ${echoMarker(VERIFY, 'healthz', 'timeout')}; ${answers()}; exit 3; fi`,
    '  sleep 0.5',
    'done',
    answers(),
    ...(proxyUrl
      ? [
          // The proxy's answer is the last mark: 2xx or 3xx is an answer (as curl -f).
          `case "\${nf_a##*"${HTTP_MARK}-$n "}" in [23]??*) nf_p=ok;; *) nf_p=failed;; esac`,
          `nf_j=$(( $(date +%s) + ${PROXY_WAIT_SEC} )); while [ $nf_p = failed ]; do ` +
            '[ "$(date +%s)" -lt "$nf_j" ] || break; sleep 0.5; ' +
            `if ${sh('curl', '-sfk', '-m', '3', '--resolve', proxyAt, '-o', '/dev/null', proxyHttps)}; ` +
            'then nf_p=ok; fi; done',
          `echo "${VERIFY}proxy $nf_p"`,
        ]
      : []),
  ].join('\n');
}
