// Owns the secret policy: which secret references a manifest may use. `{env: NAME}` only for names
// that match the operator's pattern (default ^NATS_[A-Z0-9_]+$) and are never one of the
// controller's own variables; `{file: PATH}` only for regular files under the operator's secrets
// directory (default /etc/natsfleet/secrets), at most 64 KiB. Checked statically (validate, and the
// controller before anything runs), and again when a value is read (resolve.ts). Pure.
import { posix } from 'node:path';
import type { Secret } from './natshost.gen.js';
import type { HostSpec } from './host-spec.js';

export interface SecretPolicy {
  /** A regular expression (source text) that `{env: NAME}` names must match. */
  envPattern: string;
  /** The directory `{file: PATH}` secrets must lie in. */
  dir: string;
}

export const DEFAULT_SECRET_POLICY: SecretPolicy = { envPattern: '^NATS_[A-Z0-9_]+$', dir: '/etc/natsfleet/secrets' };
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** The controller's own variables and the process's environment plumbing: never a secret of a manifest. */
const CONTROLLER_ENV = /^(NATSFLEET_|GITHUB_|GIT_|SSH_|NODE_|NPM_|LD_|DYLD_)|^(PATH|HOME|USER|LOGNAME|SHELL|PWD)$/i;

export const isControllerEnv = (name: string) => CONTROLLER_ENV.test(name);

/** One secret reference of a manifest, with the field it sits in. */
export interface SecretRef {
  field: string;
  ref: Secret;
  /** The reference is written in the host's NatsCluster manifest (checked there), not in its own. */
  inCluster?: boolean;
}

/** The field of a host's cluster's route password, as messages name it. */
export const routePasswordField = (h: HostSpec) =>
  `spec.routeAuth.password of NatsCluster ${h.cluster!.name} (${h.cluster!.file})`;
/** The field of a host's cluster's system account password, as messages name it. */
export const systemPasswordField = (h: HostSpec) =>
  `spec.systemAccount.password of NatsCluster ${h.cluster!.name} (${h.cluster!.file})`;

/** Every secret a host's rendering needs: its own, and its cluster's route password. */
export function secretRefs(h: HostSpec): SecretRef[] {
  const a = h.nats.auth;
  const out: SecretRef[] = [];
  if (a?.token) out.push({ field: 'spec.nats.auth.token', ref: a.token });
  if (a?.password) out.push({ field: 'spec.nats.auth.password', ref: a.password });
  const route = h.cluster?.routeAuth?.password;
  if (route) out.push({ field: routePasswordField(h), ref: route, inCluster: true });
  const system = h.cluster?.systemAccount?.password;
  if (system) out.push({ field: systemPasswordField(h), ref: system, inCluster: true });
  return out;
}

/** Why the policy refuses `ref`, or undefined. */
export function secretRefProblem(ref: Secret, policy: SecretPolicy): string | undefined {
  if (ref.env !== undefined) {
    if (isControllerEnv(ref.env)) return `{env: ${ref.env}} names a variable of the controller itself, never a secret`;
    if (!new RegExp(policy.envPattern).test(ref.env)) {
      return (
        `{env: ${ref.env}} is not allowed: secret variables must match ${policy.envPattern} ` +
        "(the controller's secrets.envPattern)"
      );
    }
  }
  if (ref.file !== undefined) {
    const dir = posix.normalize(policy.dir).replace(/\/$/, '');
    const file = posix.normalize(ref.file);
    if (file !== ref.file || !file.startsWith(`${dir}/`)) {
      return `{file: ${ref.file}} is not allowed: secret files must lie in ${dir}/ (the controller's secrets.dir)`;
    }
  }
  return undefined;
}

/** Findings of the secret policy for one manifest, by field. */
export function checkSecretPolicy(h: HostSpec, policy: SecretPolicy): { path: string; message: string }[] {
  return secretRefs(h).flatMap(({ field, ref, inCluster }) => {
    const problem = !inCluster && secretRefProblem(ref, policy);
    return problem ? [{ path: field, message: problem }] : [];
  });
}

/** Checks an operator's policy: a valid pattern that cannot match the controller's own variables. */
export function secretPolicyProblem(p: SecretPolicy): string | undefined {
  try {
    new RegExp(p.envPattern);
  } catch {
    return `secrets.envPattern ${JSON.stringify(p.envPattern)} is not a regular expression`;
  }
  if (!posix.isAbsolute(p.dir)) return `secrets.dir ${JSON.stringify(p.dir)} must be an absolute path`;
  return undefined;
}
