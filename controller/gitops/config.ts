// Owns the controller's configuration: defaults, then an optional YAML file, then NATSFLEET_*
// environment variables, then command-line flags. Secrets (GitHub token, App key, webhook secret)
// come from the environment or files, never from the hosts repository.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { load } from 'js-yaml';
import type { LoadPolicy } from '../manifest/load.js';
import { loadPolicyFrom } from '../manifest/policy.js';

export interface ControllerConfig {
  repo: string;
  branch: string;
  hostsDir: string;
  pollIntervalSec: number;
  driftIntervalSec: number;
  stateDir: string;
  sshKey: string;
  concurrency: number;
  listen?: string;
  webhookSecret?: string;
  planUntrustedLive: boolean;
  /** Where manifests may write on hosts and which secrets they may name (paths.allowedRoots, secrets.dir, secrets.envPattern). */
  policy: LoadPolicy;
  github?: {
    repository: string;
    apiUrl?: string;
    token?: string;
    appId?: number;
    appPrivateKeyFile?: string;
    installationId?: number;
  };
}

export const DEFAULTS = {
  branch: 'main',
  hostsDir: 'hosts',
  pollIntervalSec: 30,
  driftIntervalSec: 300,
  stateDir: '/var/lib/natsfleet-controller',
  concurrency: 10,
  planUntrustedLive: false,
};

type Flat = Record<string, string | number | boolean | string[] | undefined>;

const ENV: Record<string, string> = {
  NATSFLEET_REPO: 'repo',
  NATSFLEET_BRANCH: 'branch',
  NATSFLEET_HOSTS_DIR: 'hostsDir',
  NATSFLEET_POLL_INTERVAL: 'pollIntervalSec',
  NATSFLEET_DRIFT_INTERVAL: 'driftIntervalSec',
  NATSFLEET_STATE_DIR: 'stateDir',
  NATSFLEET_SSH_KEY: 'sshKey',
  NATSFLEET_CONCURRENCY: 'concurrency',
  NATSFLEET_LISTEN: 'listen',
  NATSFLEET_WEBHOOK_SECRET: 'webhookSecret',
  NATSFLEET_ALLOWED_ROOTS: 'paths.allowedRoots',
  NATSFLEET_SECRETS_DIR: 'secrets.dir',
  NATSFLEET_SECRET_ENV_PATTERN: 'secrets.envPattern',
  NATSFLEET_GITHUB_REPOSITORY: 'github.repository',
  NATSFLEET_GITHUB_API_URL: 'github.apiUrl',
  GITHUB_TOKEN: 'github.token',
  NATSFLEET_GITHUB_TOKEN: 'github.token',
  NATSFLEET_GITHUB_APP_ID: 'github.appId',
  NATSFLEET_GITHUB_APP_PRIVATE_KEY_FILE: 'github.appPrivateKeyFile',
  NATSFLEET_GITHUB_INSTALLATION_ID: 'github.installationId',
};

function flatten(obj: Record<string, unknown>, prefix = ''): Flat {
  const out: Flat = {};
  for (const [k, v] of Object.entries(obj ?? {})) {
    if (v && typeof v === 'object' && !Array.isArray(v))
      Object.assign(out, flatten(v as Record<string, unknown>, `${prefix}${k}.`));
    else out[`${prefix}${k}`] = v as string;
  }
  return out;
}

/** A list from the config file, or a comma-separated list from the environment. */
const roots = (v: unknown): string[] | undefined =>
  v === undefined
    ? undefined
    : (Array.isArray(v) ? v.map(String) : String(v).split(',')).map((r) => r.trim()).filter(Boolean);

export function resolveConfig(flags: Flat, env: NodeJS.ProcessEnv, configFile?: string): ControllerConfig {
  const merged: Flat = { ...DEFAULTS };
  if (configFile) Object.assign(merged, flatten(load(readFileSync(configFile, 'utf8')) as Record<string, unknown>));
  for (const [name, key] of Object.entries(ENV)) if (env[name]) merged[key] = env[name];
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  const num = (k: string) => {
    const n = Number(merged[k]);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`config: ${k} must be a positive number`);
    return n;
  };
  for (const k of ['repo', 'sshKey'])
    if (!merged[k])
      throw new Error(
        `config: ${k} is required (flag --${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}, ${Object.keys(ENV).find((e) => ENV[e] === k)} or the config file)`,
      );
  const repo = String(merged.repo);
  const cfg: ControllerConfig = {
    // A local path is made absolute: git resolves a relative remote against the mirror, not the cwd.
    repo: /^[a-z][a-z0-9+.-]*:|^[^/]+@[^/]+:/i.test(repo) ? repo : resolve(repo),
    branch: String(merged.branch),
    hostsDir: String(merged.hostsDir),
    pollIntervalSec: num('pollIntervalSec'),
    driftIntervalSec: num('driftIntervalSec'),
    stateDir: String(merged.stateDir),
    sshKey: String(merged.sshKey),
    concurrency: num('concurrency'),
    listen: merged.listen ? String(merged.listen) : undefined,
    webhookSecret: merged.webhookSecret ? String(merged.webhookSecret) : undefined,
    planUntrustedLive: merged.planUntrustedLive === true || merged.planUntrustedLive === 'true',
    policy: loadPolicyFrom({
      allowedRoots: roots(merged['paths.allowedRoots']),
      secretsDir: merged['secrets.dir'] ? String(merged['secrets.dir']) : undefined,
      secretEnvPattern: merged['secrets.envPattern'] ? String(merged['secrets.envPattern']) : undefined,
    }),
  };
  if (merged['github.repository']) {
    cfg.github = {
      repository: String(merged['github.repository']),
      apiUrl: merged['github.apiUrl'] ? String(merged['github.apiUrl']) : undefined,
      token: merged['github.token'] ? String(merged['github.token']) : undefined,
      appId: merged['github.appId'] ? Number(merged['github.appId']) : undefined,
      appPrivateKeyFile: merged['github.appPrivateKeyFile'] ? String(merged['github.appPrivateKeyFile']) : undefined,
      installationId: merged['github.installationId'] ? Number(merged['github.installationId']) : undefined,
    };
  }
  return cfg;
}
