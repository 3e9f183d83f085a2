// Owns planning: desired state + observed facts in, HostPlan out. Pure. Decides which files change,
// which are drift, what blocks the host, and the service steps an expert would take
// (reload for hot-reloadable config, restart otherwise, daemon-reload for units, pull for images).
import { sha256 } from '../util/hash.js';
import { createTwoFilesPatch } from 'diff';
import type { DesiredHost, FileArtifact } from '../render/artifact.js';
import type { HostFacts } from '../observe/facts.js';
import { posix } from 'node:path';
import { isInside } from '../manifest/path-policy.js';
import { CONTAINER_DATA_DIR } from '../render/nats-config.js';
import { classifyConfigChange, type ConfigChangeClass } from './nats-conf.js';
import { imageVersion, parseNatsVersion, upgradeProblem } from './nats-versions.js';
import { healthDetail } from './health.js';
import { planTls } from './tls.js';
import { TLS_RELOAD_PATH, TLS_WATCH_PATH, TLS_WATCH_UNIT } from '../render/tls.js';
import { STEP_ORDER, type Change, type FileChange, type HostPlan, type Step, type StepPlan } from './types.js';

const SUPPORTED_OS = ['debian', 'ubuntu'];

export function prerequisites(d: DesiredHost, f: HostFacts): string[] {
  const out: string[] = [];
  if (!SUPPORTED_OS.includes(f.os.id))
    out.push(`unsupported OS "${f.os.pretty || f.os.id || 'unknown'}": natsfleet manages Debian and Ubuntu hosts`);
  if (f.uid !== 0)
    out.push(`the SSH user is not root (uid ${f.uid}): natsfleet needs root to manage Docker, systemd and files`);
  if (!f.docker.installed) out.push('Docker is not installed on the host');
  // The engine is asked through curl: without curl, only that is reported.
  if (!f.curl) out.push('curl is not installed on the host (needed to read Docker and NATS state)');
  else if (f.docker.installed && !f.docker.running) out.push('Docker is installed but its engine is not running');
  if (d.state === 'present' && d.proxy && f.compose === 'none')
    out.push('neither `docker compose` nor `docker-compose` is available (needed for the proxy)');
  if (d.state === 'present') {
    for (const p of f.ports) {
      if (!p.held) continue;
      const natsPort = [d.nats.clientPort, d.nats.httpPort, d.cluster?.routePort].includes(p.port);
      const ours = natsPort
        ? f.container.running === true && p.process === 'docker-proxy'
        : f.proxy.container.running === true && p.process === 'nginx';
      if (ours) continue;
      // A NATS deployed by hand under another container name: say how to take it over.
      if (natsPort && p.process === 'docker-proxy' && !f.container.running)
        out.push(
          `port ${p.port} is published by a Docker container other than ${d.nats.containerName} ` +
            '(spec.nats.containerName): if it is the NATS to take over, set containerName to its name ' +
            '(`natsfleet import` writes the manifest from the host), otherwise stop it',
        );
      else out.push(`port ${p.port} is held by another program (${p.process ?? 'unknown'})`);
    }
  }
  return out;
}

/**
 * How file contents are compared. `content`: the rendering with real secrets against the host's hash
 * (deploys). `display`: the rendering with secret placeholders against natsfleet's record of what it
 * wrote (pull-request plans, which never resolve a secret): a secret-bearing file is unchanged when the
 * host still holds natsfleet's last write and its display equals the new one.
 */
export type CompareMode = 'content' | 'display';

/** The host holds exactly what natsfleet last wrote at `path`. */
const holdsOurWrite = (f: HostFacts, path: string) => {
  const have = f.files[path];
  const rec = f.record?.files[path];
  return Boolean(have?.exists && have.kind === 'file' && rec && have.sha256 === rec.sha256);
};

function fileChange(
  want: FileArtifact | undefined,
  path: string,
  f: HostFacts,
  compare: CompareMode,
): FileChange | undefined {
  const have = f.files[path];
  // Not looked at (a directory that is not natsfleet's): the host is blocked on it, nothing to say here.
  if (have?.kind === 'unowned') return undefined;
  const rec = f.record?.files[path];
  const after = want && { mode: want.mode, owner: want.owner, group: want.group, sha256: sha256(want.content) };
  const before = have?.exists
    ? { mode: have.mode ?? '', owner: have.owner ?? '', group: have.group ?? '', sha256: have.sha256 ?? '' }
    : undefined;
  const ours = holdsOurWrite(f, path);
  // The only "before" text ever shown: natsfleet's own display of what it wrote, when the host still has it.
  const shownBefore = ours ? f.record?.rendered?.[path] : undefined;
  const diff = (a: string, b: string) =>
    createTwoFilesPatch(path, path, a, b, 'host', 'desired', { context: 3 }).split('\n').slice(2).join('\n');
  // Drift: natsfleet applied this file and the host no longer has what it applied.
  const drift = Boolean(rec) && (!before || before.sha256 !== rec!.sha256 || before.mode !== rec!.mode);
  if (!want) {
    // Only what natsfleet wrote, and still holds exactly that, is ever deleted: a path it did not write
    // (or that changed since) is left alone, whatever a manifest or the host's answers say.
    if (!before || !ours) return undefined;
    return {
      kind: 'file',
      path,
      action: 'delete',
      reason: 'no longer managed',
      before,
      drift: false,
      contentChanged: true,
    };
  }
  if (!before) {
    return {
      kind: 'file',
      path,
      action: 'create',
      reason: drift ? 'deleted on the host' : 'new file',
      after,
      diff: diff('', want.display),
      drift,
      contentChanged: true,
    };
  }
  const same =
    compare === 'display' && want.sensitive ? ours && shownBefore === want.display : before.sha256 === after!.sha256;
  const reasons: string[] = [];
  if (!same) {
    const notOurs = !rec ? ' (the file on the host was not written by natsfleet: its content is not shown)' : '';
    reasons.push(drift ? 'content changed on the host (content not shown)' : `content differs${notOurs}`);
  }
  if (before.mode !== after!.mode) reasons.push(`mode ${before.mode} -> ${after!.mode}`);
  if (before.owner !== after!.owner || before.group !== after!.group)
    reasons.push(`owner ${before.owner}:${before.group} -> ${after!.owner}:${after!.group}`);
  if (reasons.length === 0) return undefined;
  return {
    kind: 'file',
    path,
    action: 'update',
    reason: reasons.join(', '),
    before,
    after,
    diff: same ? undefined : diff(shownBefore ?? '', want.display),
    drift,
    contentChanged: !same,
  };
}

/**
 * Reload or restart for a config change, decided on displays (natsfleet's own renderings with secret
 * placeholders): the host's current config is known only when it still holds natsfleet's last write.
 */
function classifyConfig(f: HostFacts, conf: FileArtifact, changed: boolean): ConfigChangeClass {
  if (!changed) return { action: 'none', changed: [], restartKeys: [] };
  // A config deleted under a running server: the server still runs its old one, and a reload loads the new.
  if (!f.files[conf.path]?.exists) return { action: 'reload', changed: ['config file re-created'], restartKeys: [] };
  // The server runs natsfleet's last write when the file still holds it, or when it has not loaded any
  // config since natsfleet's apply (a hand edit not yet reloaded): then the change is known exactly.
  const loadedOurs = f.record?.configLoadTime !== undefined && f.varz?.config_load_time === f.record.configLoadTime;
  const before = holdsOurWrite(f, conf.path) || loadedOurs ? f.record?.rendered?.[conf.path] : undefined;
  if (before === undefined) {
    const why = '(current config not written by natsfleet: what it holds is unknown)';
    return { action: 'restart', changed: [why], restartKeys: [why] };
  }
  // The reload rules of the version that will read the new config: the running one (a restart makes
  // the question moot).
  const cls = classifyConfigChange(before, conf.display, parseNatsVersion(f.varz?.version));
  // Equal displays, different content: only a secret's value changed (authorization reloads).
  return cls.action === 'none'
    ? { action: 'reload', changed: ['authorization (a secret value)'], restartKeys: [] }
    : cls;
}

function presentPlan(
  d: DesiredHost,
  f: HostFacts,
  changes: Change[],
  drift: string[],
  configKeys: string[],
): StepPlan[] {
  const steps = new Map<Step, string>();
  // A step taken for several reasons lists them all.
  const add = (s: Step, reason: string) => {
    const had = steps.get(s);
    if (had === undefined) steps.set(s, reason);
    else if (!had.split('; ').includes(reason)) steps.set(s, `${had}; ${reason}`);
  };
  // Content changes drive service steps; a mode or owner fix alone needs none.
  const changed = (id: string) =>
    changes.some(
      (c) => c.kind === 'file' && d.files.find((x) => x.id === id)?.path === c.path && c.contentChanged === true,
    );
  const conf = d.files.find((x) => x.id === 'nats-config')!;
  const unit = d.files.find((x) => x.id === 'nats-unit')!;

  if (!f.imageId && d.nats.pullPolicy !== 'Never') add('pull', `image ${d.nats.image} is not on the host`);
  if (changed('nats-config')) add('test-config', 'check the new config with the target image before installing it');
  const tlsUnits = [TLS_WATCH_PATH, TLS_RELOAD_PATH];
  const tlsUnitsTouched = changes.some((c) => c.kind === 'file' && tlsUnits.includes(c.path));
  const unitTouched = tlsUnitsTouched || changes.some((c) => c.kind === 'file' && c.path === unit.path);
  // Any rewrite of the unit file (even a mode fix, which installs a new inode) makes systemd want a daemon-reload.
  if (unitTouched || f.unit.needDaemonReload)
    add('daemon-reload', changed('nats-unit') ? 'unit file changed' : 'unit file rewritten');
  if (f.unit.unitFileState !== 'enabled')
    add('enable', f.unit.unitFileState ? `unit is ${f.unit.unitFileState}` : 'unit not installed');
  // The watch is wanted for client or route TLS: its files are then desired.
  const watched = d.files.some((x) => x.id === 'tls-watch');
  if (tlsUnitsTouched)
    add(
      watched ? 'tls-watch' : 'tls-unwatch',
      watched ? 'renewal watch changed' : 'TLS turned off: the renewal watch goes',
    );
  else if (watched && f.tlsWatch && (f.tlsWatch.unitFileState !== 'enabled' || f.tlsWatch.activeState !== 'active'))
    add('tls-watch', `the renewal watch ${TLS_WATCH_UNIT} is not active`);

  const running = f.unit.activeState === 'active' && f.container.running === true;
  if (running && (f.container.image !== d.nats.image || (f.imageId && f.container.imageId !== f.imageId))) {
    add(
      'restart',
      f.container.image !== d.nats.image
        ? `image ${f.container.image} -> ${d.nats.image}`
        : `image ${d.nats.image} was updated on the host`,
    );
  }
  if (changed('nats-unit') && running) add('restart', 'unit file changed');
  const cls = classifyConfig(f, conf, changed('nats-config'));
  if (cls.changed.length) configKeys.push(...cls.changed);
  if (cls.action === 'restart' && running)
    add('restart', `config keys that need a restart: ${cls.restartKeys.join(', ')}`);
  // An interrupted apply: the steps it did not finish are finished now (none it finished is repeated).
  const interrupted =
    f.pending && `an earlier apply (revision ${f.pending.revision}) was interrupted before it finished`;
  const left = (f.pending?.actions ?? []).filter((a) => !(f.pending?.done ?? []).includes(a));
  for (const a of left) {
    if ((a === 'restart' || a === 'reload') && running) add(a, interrupted!);
    else if (a === 'daemon-reload' || a === 'enable') add(a, interrupted!);
    else if (d.proxy && (a === 'volume-create' || a === 'proxy-up')) add(a, interrupted!);
    else if (d.proxy && a === 'proxy-reload' && f.proxy.container.running) add(a, interrupted!);
  }
  if (!running && !steps.has('restart')) {
    add('start', !f.container.exists ? 'container is not running' : `service is ${f.unit.activeState}`);
  }
  if (cls.action === 'reload' && running && !steps.has('restart'))
    add('reload', `hot-reloadable config keys changed: ${cls.changed.join(', ')}`);
  // While an apply is unfinished, what it changed is not drift: it is finished (above), not reported.
  if (!running && f.record && !f.pending)
    drift.push(`service ${d.nats.unit} is ${f.unit.activeState}${f.container.exists ? '' : ', container missing'}`);
  if (f.record && f.container.exists && f.container.image !== f.record.image)
    drift.push(`container runs ${f.container.image}, natsfleet applied ${f.record.image}`);

  if (!d.proxy && f.proxy.container.exists) add('proxy-down', 'proxy disabled');
  if (d.proxy) {
    if (!f.proxy.volume) add('volume-create', `volume ${d.proxy.secretsVolume} does not exist`);
    const proxyFiles = changed('proxy-compose') || changed('proxy-env');
    if (proxyFiles || !f.proxy.container.running)
      add('proxy-up', proxyFiles ? 'proxy compose project changed' : 'proxy container is not running');
    else if (changed('proxy-site')) add('proxy-reload', 'server block changed');
    if (f.record && !f.pending && !f.proxy.container.running) drift.push('proxy container is not running');
  }
  // Every step of the interrupted apply ran, but it was cut before it was verified and recorded.
  if (interrupted && steps.size === 0 && !changes.length) add('finish', `${interrupted}: verify and record it`);
  return [...steps].map(([step, reason]) => ({ step, reason }));
}

function absentPlan(d: DesiredHost, f: HostFacts): StepPlan[] {
  const steps: StepPlan[] = [];
  if (f.proxy.container.exists) steps.push({ step: 'proxy-down', reason: 'host decommissioned (state: absent)' });
  if (f.unit.activeState === 'active' || f.unit.activeState === 'activating')
    steps.push({ step: 'stop', reason: 'host decommissioned (state: absent)' });
  if (f.unit.unitFileState === 'enabled')
    steps.push({ step: 'disable', reason: 'host decommissioned (state: absent)' });
  if (f.container.exists) steps.push({ step: 'remove-container', reason: 'host decommissioned (state: absent)' });
  if (f.files[d.nats.unitPath]?.exists) steps.push({ step: 'daemon-reload', reason: 'unit file removed' });
  return steps;
}

/** Dedicated directories natsfleet would write in that exist on the host and are not natsfleet's. */
export function ownershipProblems(d: DesiredHost, f: HostFacts): string[] {
  const recorded = Object.keys(f.record?.files ?? {});
  return d.claims
    .filter((c) => f.claims[c] && !f.ownedDirs.includes(c) && !recorded.some((p) => isInside(p, c)))
    .map(
      (c) =>
        `${c} exists and was not created by natsfleet: natsfleet writes only in directories it created ` +
        `or under the controller's allowed roots (paths.allowedRoots); its content is not read`,
    );
}

/**
 * The adoption trap: the running server keeps JetStream data in a host directory other than the one
 * the desired state points it at. Applying would start it on an empty store and every stream would
 * vanish (while the server reports Healthy). Blocked with where the data is, unless that store is empty.
 */
export function storeMoveProblems(d: DesiredHost, f: HostFacts): string[] {
  const want = d.verify.jetstream?.storeDir;
  const reported = f.jsz?.config?.store_dir;
  const dataMount = f.container.mounts?.[CONTAINER_DATA_DIR];
  if (!want || !reported || !dataMount || !f.container.running) return [];
  if (!f.jsz?.streams && !f.jsz?.bytes) return [];
  // NATS reports <store_dir>/jetstream, a path inside the container: map it to the host through /data.
  const inContainer = reported.replace(/\/jetstream\/?$/, '');
  if (!isInside(inContainer, CONTAINER_DATA_DIR)) return [];
  const running = posix.join(dataMount, posix.relative(CONTAINER_DATA_DIR, inContainer));
  if (running === want) return [];
  return [
    `JetStream keeps ${f.jsz.streams ?? 0} stream(s), ${f.jsz.bytes ?? 0} bytes in ${running} on the host, ` +
      `but the manifest points the store at ${want}: applying would hide them. Set spec.nats.dataDir and ` +
      `spec.nats.jetstream.storeDir to where the data is, or move the data there first`,
  ];
}

/**
 * A version change NATS does not support in place (a JetStream downgrade below the documented floor,
 * a major version): refused before anything runs, with what to do instead.
 */
export function versionProblems(d: DesiredHost, f: HostFacts): string[] {
  const from = parseNatsVersion(f.varz?.version);
  const to = imageVersion(d.nats.image);
  if (!from || !to || !f.container.running || f.container.image === d.nats.image) return [];
  const problem = upgradeProblem(from, to, { jetstream: Boolean(d.verify.jetstream) });
  return problem ? [problem] : [];
}

/**
 * A takeover: NATS runs on the host (a unit or a container by the desired name) and natsfleet has never
 * applied there (no record). The apply replaces the unit and the container; the restart is the one step
 * that interrupts clients. Undefined otherwise.
 */
export function takeoverOf(d: DesiredHost, f: HostFacts, steps: readonly StepPlan[]): string | undefined {
  if (d.state !== 'present' || f.record || f.pending) return undefined;
  const unit = f.unit.loadState === 'loaded' && f.unit.unitFileState !== '' ? `${d.nats.unit}` : undefined;
  const container = f.container.exists ? `container ${d.nats.containerName}` : undefined;
  if (!unit && !container) return undefined;
  const what = [unit, container].filter(Boolean).join(' and ');
  const restart = steps.some((s) => s.step === 'restart' || s.step === 'start');
  return (
    `${what} ${unit && container ? 'were' : 'was'} not deployed by natsfleet: this apply takes ` +
    `${unit && container ? 'them' : 'it'} over${restart ? ' (one restart; JetStream data stays where it is)' : ''}`
  );
}

/** Managed paths that hold something other than a regular file: natsfleet replaces only regular files. */
function nonRegularFiles(d: DesiredHost, f: HostFacts): string[] {
  return d.files
    .filter((x) => f.files[x.path]?.exists && !['file', 'unowned'].includes(f.files[x.path].kind ?? ''))
    .map(
      (x) =>
        `${x.path} is ${f.files[x.path].kind === 'link' ? 'a symbolic link' : 'not a regular file'}: ` +
        'natsfleet replaces only regular files',
    );
}

export function planHost(
  d: DesiredHost,
  f: HostFacts,
  revision: string,
  compare: CompareMode = 'content',
  /** When certificates are judged (expired, expiring). */
  now: Date = new Date(),
): HostPlan {
  const blocked =
    d.state === 'present'
      ? [
          ...prerequisites(d, f),
          ...ownershipProblems(d, f),
          ...nonRegularFiles(d, f),
          ...storeMoveProblems(d, f),
          ...versionProblems(d, f),
        ]
      : [...prerequisites(d, f).filter((p) => !p.startsWith('port')), ...ownershipProblems(d, f)];
  const drift: string[] = [];
  const changes: Change[] = [];
  if (d.state === 'present') {
    for (const dir of d.dirs) {
      const have = f.dirs[dir.path];
      if (have?.unowned) continue;
      if (!have?.exists)
        changes.push({ kind: 'dir', path: dir.path, action: 'create', reason: 'missing', after: dir, drift: false });
      else if (have.mode !== dir.mode || have.owner !== dir.owner || have.group !== dir.group) {
        changes.push({
          kind: 'dir',
          path: dir.path,
          action: 'update',
          reason: `mode/owner ${have.mode} ${have.owner}:${have.group} -> ${dir.mode} ${dir.owner}:${dir.group}`,
          before: { mode: have.mode!, owner: have.owner!, group: have.group! },
          after: dir,
          drift: false,
        });
      }
    }
  }
  const wanted = d.state === 'present' ? d.files : [];
  const paths = [...new Set([...d.files.map((x) => x.path), ...Object.keys(f.files)])];
  for (const path of paths) {
    const c = fileChange(
      wanted.find((w) => w.path === path),
      path,
      f,
      compare,
    );
    if (!c) continue;
    // A file an unfinished apply was writing is not drift: the apply is finished instead.
    if (c.drift && f.pending)
      Object.assign(c, { drift: false, reason: `${c.reason} (an earlier apply was interrupted)` });
    changes.push(c);
    if (c.drift) drift.push(`${path}: ${c.reason}`);
  }
  const configKeys: string[] = [];
  const steps = d.state === 'present' ? presentPlan(d, f, changes, drift, configKeys) : absentPlan(d, f);
  const tls = planTls(d, f, now);
  blocked.push(...tls.blocked);
  drift.push(...tls.drift);
  for (const s of tls.steps) {
    // A restart or start serves the file anyway; a step planned already keeps its reasons.
    if (s.step === 'reload' && steps.some((x) => x.step === 'restart' || x.step === 'start')) continue;
    const had = steps.find((x) => x.step === s.step);
    if (had) had.reason = had.reason.split('; ').includes(s.reason) ? had.reason : `${had.reason}; ${s.reason}`;
    else steps.push(s);
  }
  steps.sort((a, b) => STEP_ORDER.indexOf(a.step) - STEP_ORDER.indexOf(b.step));
  const work = changes.length > 0 || steps.length > 0;
  const takeover = work ? takeoverOf(d, f, steps) : undefined;
  const health = healthDetail(d, f);
  return {
    host: d.name,
    revision,
    state: d.state,
    blocked,
    changes,
    steps,
    drift,
    ...(tls.warnings.length ? { warnings: tls.warnings } : {}),
    ...(takeover ? { takeover } : {}),
    sync: work ? 'OutOfSync' : 'Synced',
    health: health.status,
    ...(health.reason && health.status !== 'Missing' ? { healthReason: health.reason } : {}),
    natsVersion: f.varz?.version,
    ...(configKeys.length ? { configKeys } : {}),
    applied: f.record ? { revision: f.record.revision, at: f.record.appliedAt } : undefined,
    lock:
      f.lockAgeSec !== undefined
        ? { owner: f.lock?.owner, since: f.lock?.since, ageSec: f.lockAgeSec, expiresAt: f.lock?.expiresAt }
        : undefined,
  };
}
