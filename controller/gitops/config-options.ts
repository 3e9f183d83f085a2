// Owns what every CLI command needs of the controller's configuration without validating one: its type, the
// defaults, the schema (schemas/controller-config.schema.json) and the integer bounds read from it, and the
// error type. The validation (config.ts) loads ajv, a quarter of a CLI start-up: only the controller does.
import { readFileSync } from 'node:fs';
import type { RolloutPolicy } from '../plan/batches.js';
import type { LoadPolicy } from '../manifest/load.js';
import { packagePath } from '../package-root.js';

export interface ControllerConfig {
  repo: string;
  branch: string;
  hostsDir: string;
  pollIntervalSec: number;
  driftIntervalSec: number;
  stateDir: string;
  /** The SSH private key file; without one, the ssh-agent of SSH_AUTH_SOCK (see transport/auth.ts). */
  sshKey?: string;
  concurrency: number;
  listen?: string;
  webhookSecret?: string;
  /** Bearer token of the API (suspend, resume, sync); the API is off without one. */
  apiToken?: string;
  planUntrustedLive: boolean;
  /** Standalone hosts in batches (plan/batches.ts), per label when it has byLabel; all at once without. */
  rollout?: RolloutPolicy;
  /** Decommission hosts whose manifest left the branch (NatsCluster members excepted); off: they run on, unmanaged. */
  prune: boolean;
  /** State and leases in a NATS JetStream KV bucket shared by replicas; without it, state in stateDir. */
  stateNats?: { url: string; credentials?: string; bucket: string; leaseTtlSec: number; replicas: number };
  /** This replica's name in the bucket (with stateNats). */
  replicaId?: string;
  /** The least severe log records written (pino level). */
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /**
   * Where manifests may write on hosts and which secrets they may name (paths.allowedRoots, secrets.dir,
   * secrets.envPattern).
   */
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
  prune: false,
  logLevel: 'info' as ControllerConfig['logLevel'],
};

/** An invalid configuration: one line per problem, each naming its file and line, variable or flag. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
  }
}

export interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  minimum?: number;
  maximum?: number;
  'x-hint'?: string;
}

export const controllerConfigSchema: SchemaNode = JSON.parse(
  readFileSync(packagePath('schemas', 'controller-config.schema.json'), 'utf8'),
);

/** The schema node of a dotted key ("concurrency", "github.token"). */
export const schemaAt = (key: string): SchemaNode | undefined =>
  key.split('.').reduce<SchemaNode | undefined>((node, k) => node?.properties?.[k], controllerConfigSchema);

/** The bounds of an integer setting, from the schema: what the CLI's typed options check. */
export function integerRange(key: string): { min: number; max: number } {
  const node = schemaAt(key);
  if (node?.type !== 'integer') throw new Error(`${key} is not an integer setting`);
  return { min: node.minimum ?? 0, max: node.maximum ?? Number.MAX_SAFE_INTEGER };
}
