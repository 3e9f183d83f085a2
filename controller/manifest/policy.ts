// Owns building the operator's LoadPolicy (path and secret policies) from plain settings, as the
// controller's configuration, the CLI's flags and NATSFLEET_* variables give them; refuses a policy
// that would let a manifest reach the system or the controller's own credentials. Pure.
import { resolve } from 'node:path';
import { DEFAULT_LOAD_POLICY, type LoadPolicy } from './load.js';
import { allowedRootProblem } from './path-policy.js';
import { secretPolicyProblem } from './secret-policy.js';

export interface PolicySettings {
  /** Replaces the default allowed roots when given. */
  allowedRoots?: readonly string[];
  secretsDir?: string;
  secretEnvPattern?: string;
}

export class PolicyError extends Error {}

export function loadPolicyFrom(s: PolicySettings): LoadPolicy {
  const allowedRoots = s.allowedRoots?.length ? [...s.allowedRoots] : [...DEFAULT_LOAD_POLICY.paths.allowedRoots];
  for (const root of allowedRoots) {
    const problem = allowedRootProblem(root);
    if (problem) throw new PolicyError(`paths.allowedRoots: ${problem}`);
  }
  const secrets = {
    // A relative secrets directory is taken from the working directory (never from the hosts repository).
    dir: s.secretsDir ? resolve(s.secretsDir) : DEFAULT_LOAD_POLICY.secrets.dir,
    envPattern: s.secretEnvPattern ?? DEFAULT_LOAD_POLICY.secrets.envPattern,
  };
  const problem = secretPolicyProblem(secrets);
  if (problem) throw new PolicyError(problem);
  return { paths: { allowedRoots }, secrets };
}

/**
 * The settings NATSFLEET_ALLOWED_ROOTS (comma-separated), NATSFLEET_SECRETS_DIR and
 * NATSFLEET_SECRET_ENV_PATTERN give.
 */
export function policySettingsFromEnv(env: Readonly<Record<string, string | undefined>>): PolicySettings {
  return {
    allowedRoots: env.NATSFLEET_ALLOWED_ROOTS?.split(',')
      .map((r) => r.trim())
      .filter(Boolean),
    secretsDir: env.NATSFLEET_SECRETS_DIR || undefined,
    secretEnvPattern: env.NATSFLEET_SECRET_ENV_PATTERN || undefined,
  };
}
