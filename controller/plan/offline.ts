// Owns offline planning: the plan of a change computed from the repository alone, as if the host
// ran exactly the base revision. Used for pull requests that must not reach live hosts (forks,
// changed SSH targets, new hosts), and by the benchmarks.
import { sha256 } from '../util/hash.js';
import type { DesiredHost } from '../render/artifact.js';
import type { HostFacts } from '../observe/facts.js';
import { planHost } from './plan.js';
import type { HostPlan } from './types.js';

/** The facts of a host converged on `d` (or of an empty Debian host when `d` is undefined). */
export function convergedFacts(d: DesiredHost | undefined, revision = 'base'): HostFacts {
  const files = Object.fromEntries(
    (d && d.state === 'present' ? d.files : []).map((f) => [
      f.path,
      { exists: true, kind: 'file' as const, mode: f.mode, owner: f.owner, group: f.group, sha256: sha256(f.content) },
    ]),
  );
  const running = Boolean(d && d.state === 'present');
  return {
    os: { id: 'debian', versionId: '12', pretty: 'Debian GNU/Linux 12' },
    uid: 0,
    docker: { installed: true, running: true, version: 'offline' },
    compose: 'plugin',
    curl: true,
    files,
    dirs: Object.fromEntries(
      (d && d.state === 'present' ? d.dirs : []).map((x) => [
        x.path,
        { exists: true, mode: x.mode, owner: x.owner, group: x.group },
      ]),
    ),
    unit: running
      ? {
          loadState: 'loaded',
          activeState: 'active',
          subState: 'running',
          unitFileState: 'enabled',
          needDaemonReload: false,
        }
      : {
          loadState: 'not-found',
          activeState: 'inactive',
          subState: 'dead',
          unitFileState: '',
          needDaemonReload: false,
        },
    container: running
      ? { exists: true, running: true, image: d!.nats.image, imageId: 'sha256:base' }
      : { exists: false },
    imageId: running ? 'sha256:base' : undefined,
    proxy: {
      container: { exists: Boolean(running && d!.proxy), running: Boolean(running && d!.proxy) },
      volume: Boolean(running && d!.proxy),
    },
    ports: [],
    healthz: running ? { status: 200, body: '{"status":"ok"}' } : undefined,
    record: d
      ? {
          revision,
          appliedAt: '',
          by: 'offline',
          image: d.nats.image,
          files: Object.fromEntries(Object.entries(files).map(([p, f]) => [p, { sha256: f.sha256, mode: f.mode }])),
          rendered: Object.fromEntries((d.state === 'present' ? d.files : []).map((f) => [f.path, f.display])),
        }
      : undefined,
    ownedDirs: d?.claims ?? [],
    claims: Object.fromEntries((d?.claims ?? []).map((c) => [c, true])),
  };
}

export function planOffline(base: DesiredHost | undefined, next: DesiredHost, revision: string): HostPlan {
  const facts = convergedFacts(base);
  // The image id of the target is unknown offline: assume present when unchanged.
  if (base && base.nats.image !== next.nats.image) facts.imageId = undefined;
  const p = planHost(next, facts, revision);
  return { ...p, health: 'Missing', natsVersion: undefined, applied: undefined };
}

/** A fingerprint of everything natsfleet would put on a host: equal fingerprints, nothing to apply. */
export function desiredFingerprint(d: DesiredHost): string {
  return sha256(
    JSON.stringify({
      files: d.files.map((f) => [f.path, f.mode, f.owner, f.group, sha256(f.content)]),
      dirs: d.dirs,
      nats: d.nats,
      proxy: d.proxy ?? null,
      state: d.state,
    }),
  );
}
