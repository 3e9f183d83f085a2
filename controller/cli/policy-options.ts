// Owns the CLI's shared options: the policy flags (--allowed-root, --secrets-dir, --secret-env-pattern),
// shared by every command that loads manifests, with NATSFLEET_ALLOWED_ROOTS, NATSFLEET_SECRETS_DIR and
// NATSFLEET_SECRET_ENV_PATTERN as fallbacks (the same policy the controller's configuration sets), and
// the parser of integer options, which makes a bad number a usage error.
import { InvalidArgumentError, type Command } from 'commander';
import type { LoadPolicy } from '../manifest/load.js';
import { loadPolicyFrom, policySettingsFromEnv } from '../manifest/policy.js';

export interface PolicyFlags {
  allowedRoot?: string[];
  secretsDir?: string;
  secretEnvPattern?: string;
}

export function policyOptions(cmd: Command): Command {
  return cmd
    .option(
      '--allowed-root <dir>',
      'a root natsfleet may write in (repeatable; replaces the defaults ' +
        '/etc/nats, /var/lib/nats, /root/nginx, /data/nginx)',
      (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
    )
    .option('--secrets-dir <dir>', '{file: PATH} secrets must lie here (default /etc/natsfleet/secrets)')
    .option('--secret-env-pattern <regex>', '{env: NAME} names must match (default ^NATS_[A-Z0-9_]+$)');
}

/** Flags first, then the environment, then the defaults. Throws PolicyError on a policy it refuses. */
export function policyFrom(flags: PolicyFlags, env: NodeJS.ProcessEnv = process.env): LoadPolicy {
  const fromEnv = policySettingsFromEnv(env);
  return loadPolicyFrom({
    allowedRoots: flags.allowedRoot?.length ? flags.allowedRoot : fromEnv.allowedRoots,
    secretsDir: flags.secretsDir ?? fromEnv.secretsDir,
    secretEnvPattern: flags.secretEnvPattern ?? fromEnv.secretEnvPattern,
  });
}

/** A commander argument parser for a whole number from min to max: anything else is a usage error. */
export function integerArg(min: number, max: number): (value: string) => number {
  return (value: string) => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return n;
  };
}
