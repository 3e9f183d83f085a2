// Owns preparing the hosts to reconcile: each one rendered with its secrets resolved up front, so that a host
// whose secret is refused or missing is never contacted. No SSH here: the CLI renders (and so checks every
// secret) before it loads the SSH library, and opens its first connections meanwhile (transport/predial.ts).
import type { HostSpec } from '../manifest/host-spec.js';
import { renderHost } from '../render/desired.js';
import type { SecretResolver } from '../secrets/resolve.js';
import { DEFAULT_PATH_POLICY, type PathPolicy } from '../manifest/path-policy.js';
import type { Credentials } from '../apply/nats-probe.js';
import { systemPasswordField } from '../manifest/secret-policy.js';
import type { Target } from './host.js';

export interface PreparedTargets {
  targets: Target[];
  /** Hosts that could not be rendered (a secret refused or missing), with the reason naming file and field. */
  failures: { host: string; error: string }[];
}

/** Renders every host that can be rendered; each failure names the host's file and the field. */
export function prepareEach(
  hosts: readonly HostSpec[],
  resolve: SecretResolver,
  paths: PathPolicy = DEFAULT_PATH_POLICY,
): PreparedTargets {
  const out: PreparedTargets = { targets: [], failures: [] };
  for (const spec of hosts) {
    try {
      out.targets.push(prepareOne(spec, resolve, paths));
    } catch (e) {
      out.failures.push({ host: spec.name, error: `${spec.file}: ${(e as Error).message}` });
    }
  }
  return out;
}

/** Renders every host; throws (naming file and field) before anything is contacted when any fails. */
export function prepareTargets(
  hosts: readonly HostSpec[],
  resolve: SecretResolver,
  paths: PathPolicy = DEFAULT_PATH_POLICY,
): Target[] {
  const { targets, failures } = prepareEach(hosts, resolve, paths);
  if (failures.length) throw new Error(failures.map((f) => f.error).join('; '));
  return targets;
}

function prepareOne(spec: HostSpec, resolve: SecretResolver, paths: PathPolicy): Target {
  let credentials: Credentials | undefined;
  let systemCredentials: Target['systemCredentials'];
  const tracking: SecretResolver = (ref, field) => {
    const v = resolve(ref, field);
    if (ref.bcrypt === undefined) {
      if (field.endsWith('token')) credentials = { token: v };
      if (field.endsWith('password')) credentials = { user: spec.nats.auth!.user!, pass: v };
      if (spec.cluster?.systemAccount && field === systemPasswordField(spec))
        systemCredentials = { user: spec.cluster!.systemAccount!.user, pass: v };
    }
    return v;
  };
  const desired = renderHost(spec, tracking, paths);
  return { spec, desired, credentials, ...(systemCredentials ? { systemCredentials } : {}) };
}
