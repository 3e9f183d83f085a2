// Owns the path policy: where natsfleet may write on a host. Policy by ownership, not a deny-list:
// natsfleet writes only under the roots the operator allows in the controller's configuration, or
// inside a dedicated directory it creates itself under /srv, /opt, /data or /var/lib (recorded on the
// host; see the plan's ownership check). System trees and other owners' areas are refused here,
// statically, so that `validate` gives an early, clear message. Pure.
export interface PathPolicy {
  /** Directories natsfleet may write in (and below), whoever created them. */
  allowedRoots: readonly string[];
}

/** The seed deployment's directories. */
export const DEFAULT_ALLOWED_ROOTS = ['/etc/nats', '/var/lib/nats', '/root/nginx', '/data/nginx'] as const;
export const DEFAULT_PATH_POLICY: PathPolicy = { allowedRoots: DEFAULT_ALLOWED_ROOTS };

/** natsfleet's own record on every host (never a target of a manifest). */
export const HOST_STATE_DIR = '/var/lib/natsfleet';
/** The one unit natsfleet writes, and only there. */
export const UNIT_DIR = '/etc/systemd/system';

/** Trees natsfleet never writes in, whatever the configuration: the system's and other owners' areas. */
export const FORBIDDEN_TREES = [
  '/proc',
  '/sys',
  '/dev',
  '/boot',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/usr',
  '/run',
  '/var/run',
  '/var/lock',
  '/var/log',
  '/var/tmp',
  '/tmp',
  '/home',
  '/root/.ssh',
  '/root/.config',
  '/root/.docker',
  '/var/spool',
  '/var/cache',
  '/var/mail',
  '/var/backups',
  '/var/lib/docker',
  '/var/lib/containerd',
  '/var/lib/dpkg',
  '/var/lib/apt',
  '/var/lib/systemd',
  HOST_STATE_DIR,
  '/var/lib/natsfleet-controller',
  '/etc/natsfleet',
  '/etc/systemd',
  '/etc/ssh',
  '/etc/sudoers.d',
  '/etc/cron.d',
  '/lost+found',
  '/snap',
  '/mnt',
  '/media',
] as const;

/** Where a manifest may ask for a dedicated directory of its own (natsfleet creates it and then owns it). */
export const DEDICATED_ZONES = ['/srv', '/opt', '/data', '/var/lib'] as const;

export const isInside = (path: string, dir: string) => path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);

/**
 * The directory whose ownership decides whether natsfleet may write at `path`: the allowed root that
 * holds it, or the dedicated directory (the first level under a zone). Undefined when there is none.
 */
export function dedicatedRoot(path: string, policy: PathPolicy): { root: string; allowed: boolean } | undefined {
  const allowed = policy.allowedRoots.find((r) => isInside(path, r));
  if (allowed) return { root: allowed, allowed: true };
  for (const zone of DEDICATED_ZONES) {
    if (!isInside(path, zone) || path === zone) continue;
    const first = path.slice(zone.length + 1).split('/')[0];
    // /var/lib/<x> is a zone only for names no other owner has taken (checked by FORBIDDEN_TREES).
    return { root: `${zone}/${first}`, allowed: false };
  }
  return undefined;
}

/**
 * Why natsfleet may not manage the directory `dir` (a config, data, store or proxy directory), or
 * undefined when it may. `what` names the directory in the message.
 */
export function directoryProblem(dir: string, policy: PathPolicy): string | undefined {
  const tree = FORBIDDEN_TREES.find((t) => isInside(dir, t));
  if (tree) return `${dir} lies in ${tree}, which natsfleet never writes (system or another owner's area)`;
  if (dedicatedRoot(dir, policy)) return undefined;
  const roots = policy.allowedRoots.join(', ');
  if (DEDICATED_ZONES.includes(dir as (typeof DEDICATED_ZONES)[number])) {
    return `must be a dedicated directory such as ${dir}/nats, not ${dir} itself`;
  }
  return (
    `${dir} is outside natsfleet's allowed roots (${roots}) and is not a dedicated directory under ` +
    `${DEDICATED_ZONES.join(', ')}; an operator may allow a root in the controller's configuration (paths.allowedRoots)`
  );
}

/** Checks an operator-configured root: never a forbidden tree, never '/' or a whole zone. */
export function allowedRootProblem(root: string): string | undefined {
  if (!/^(\/[A-Za-z0-9._-]+)+$/.test(root) || root.split('/').some((s) => s === '.' || s === '..')) {
    return `${JSON.stringify(root)} is not a normalised absolute path`;
  }
  const tree = FORBIDDEN_TREES.find((t) => isInside(root, t) || isInside(t, root));
  if (tree) return `${root} overlaps ${tree}, which natsfleet never writes`;
  if (['/etc', '/root', '/var', '/var/lib', ...DEDICATED_ZONES].includes(root)) {
    return `${root} is too wide: allow a dedicated directory below it`;
  }
  return undefined;
}
