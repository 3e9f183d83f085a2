// Owns the controller's configuration: defaults (config-options.ts), then an optional YAML file, then NATSFLEET_*
// environment variables, then command-line flags. Every layer is checked against
// schemas/controller-config.schema.json (environment and flag strings coerced to its types first), and
// a problem names where it comes from: `FILE:LINE: key.path: message`, the variable or the flag.
// Secrets (GitHub token, App key, webhook secret, API token) come from the environment or files, never from the
// hosts repository.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { load } from 'js-yaml';
import type { BatchPolicy, LabelPolicy, RolloutPolicy } from '../plan/batches.js';
import { parseSelector, SelectorError } from '../manifest/selector.js';
import type { LoadPolicy } from '../manifest/load.js';
import { loadPolicyFrom, PolicyError } from '../manifest/policy.js';
import { buildLineMap, lineOf } from '../manifest/yaml-positions.js';
import {
  ConfigError,
  controllerConfigSchema,
  DEFAULTS,
  schemaAt,
  type ControllerConfig,
  type SchemaNode,
} from './config-options.js';

export {
  ConfigError,
  controllerConfigSchema,
  DEFAULTS,
  integerRange,
  type ControllerConfig,
} from './config-options.js';

/** Settings by dotted key path ("concurrency", "github.token", "paths.allowedRoots"). */
type Flat = Record<string, string | number | boolean | string[] | undefined>;

let compiled: ValidateFunction | undefined;
/** Compiled on first use (only the controller command loads this module: the others, config-options.ts). */
function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
    ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
    compiled = ajv.compile(controllerConfigSchema);
  }
  return compiled;
}

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
  NATSFLEET_API_TOKEN: 'apiToken',
  NATSFLEET_LOG_LEVEL: 'logLevel',
  NATSFLEET_PRUNE: 'prune',
  NATSFLEET_STATE_NATS: 'state.nats.url',
  NATSFLEET_STATE_NATS_CREDENTIALS: 'state.nats.credentials',
  NATSFLEET_STATE_NATS_BUCKET: 'state.nats.bucket',
  NATSFLEET_REPLICA_ID: 'replicaId',
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

/** The `natsfleet controller` flag of a key, where it is not the key in kebab case. */
const FLAGS: Record<string, string> = {
  pollIntervalSec: '--poll-interval',
  driftIntervalSec: '--drift-interval',
  'github.repository': '--github-repository',
  'github.apiUrl': '--github-api-url',
  'paths.allowedRoots': '--allowed-root',
  'secrets.dir': '--secrets-dir',
  'secrets.envPattern': '--secret-env-pattern',
  'state.nats.url': '--state-nats',
  'state.nats.credentials': '--state-nats-credentials',
  'state.nats.bucket': '--state-nats-bucket',
  'state.nats.leaseTtlSec': '--lease-ttl',
};
const flagOf = (key: string) => FLAGS[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** A string from the environment or a flag, in the type the schema wants; left as is when it cannot be. */
function coerce(key: string, value: unknown): unknown {
  if (typeof value !== 'string') return value;
  switch (schemaAt(key)?.type) {
    case 'integer':
      return /^\s*\d+\s*$/.test(value) ? Number(value) : value;
    case 'boolean':
      return value === 'true' ? true : value === 'false' ? false : value;
    case 'array':
      return value
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean);
    default:
      return value;
  }
}

function flatten(obj: Record<string, unknown>, prefix = ''): Flat {
  const out: Flat = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v && typeof v === 'object' && !Array.isArray(v))
      Object.assign(out, flatten(v as Record<string, unknown>, `${prefix}${k}.`));
    else out[`${prefix}${k}`] = v as Flat[string];
  }
  return out;
}

function nest(flat: Flat): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(flat)) {
    if (v === undefined) continue;
    const parts = key.split('.');
    let node = out;
    for (const p of parts.slice(0, -1)) {
      if (!node[p] || typeof node[p] !== 'object') node[p] = {};
      node = node[p] as Record<string, unknown>;
    }
    node[parts[parts.length - 1]] = v;
  }
  return out;
}

interface Problem {
  /** Dotted key path; array items as [i] (paths.allowedRoots[0]), as yaml-positions names them. */
  path: string;
  message: string;
}

const pointerToPath = (pointer: string): string =>
  pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, s) => (/^\d+$/.test(s) ? `${path}[${s}]` : path ? `${path}.${s}` : s), '');

const join = (a: string, b: string) => (a ? `${a}.${b}` : b);

function describe(e: ErrorObject): Problem {
  const path = pointerToPath(e.instancePath);
  switch (e.keyword) {
    case 'additionalProperties':
      return {
        path: join(path, (e.params as { additionalProperty: string }).additionalProperty),
        message: 'unknown key',
      };
    case 'dependencies': {
      const p = e.params as { property: string; missingProperty: string };
      return { path: join(path, p.property), message: `needs ${join(path, p.missingProperty)} too` };
    }
    default:
      return { path, message: (e.parentSchema as SchemaNode | undefined)?.['x-hint'] ?? e.message ?? e.keyword };
  }
}

/**
 * Problems of one layer (`cross` false: types, ranges, unknown keys) or of the merged settings (`cross`
 * true: the rules between keys, such as a GitHub App needing its key and installation). One per key.
 */
function schemaProblems(doc: Record<string, unknown>, cross: boolean): Problem[] {
  const validate = validator();
  if (validate(doc)) return [];
  const out: Problem[] = [];
  for (const e of validate.errors ?? []) {
    if ((e.keyword === 'dependencies') !== cross) continue;
    const d = describe(e);
    const same = out.find((o) => o.path === d.path);
    // Several keys missing for one: "needs github.appPrivateKeyFile and github.installationId too".
    if (same && e.keyword === 'dependencies')
      same.message = same.message.replace(/ too$/, ` and ${d.message.replace(/^needs /, '')}`);
    else if (!same) out.push(d);
  }
  return out;
}

/** The settings of one source, and where each of them comes from ("FILE:LINE", "NATSFLEET_X", "--flag"). */
interface Layer {
  values: Flat;
  origin: Map<string, string>;
  problems: string[];
}

/** The origin of a problem's key: the layer's key it is (or is an item of), else the layer's fallback. */
function originOf(origin: Map<string, string>, path: string, fallback: (path: string) => string): string {
  for (const [key, where] of origin) if (path === key || path.startsWith(`${key}[`)) return where;
  return fallback(path);
}

function fileLayer(file: string): Layer {
  const fail = (message: string, line?: number): Layer => ({
    values: {},
    origin: new Map(),
    problems: [`${file}${line ? `:${line}` : ''}: ${message}`],
  });
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    const why = { ENOENT: 'no such file', EACCES: 'permission denied', EISDIR: 'is a directory' }[code];
    return fail(`cannot read the config file: ${why ?? (e as Error).message}`);
  }
  // A file of comments only sets nothing.
  if (!/\S/.test(text.replace(/#.*$/gm, ''))) return { values: {}, origin: new Map(), problems: [] };
  let doc: unknown;
  try {
    doc = load(text, { filename: file, maxDepth: 32, maxAliases: 16 });
  } catch (e) {
    const mark = (e as { mark?: { line: number } }).mark;
    return fail(`invalid YAML: ${(e as { reason?: string }).reason ?? (e as Error).message}`, mark && mark.line + 1);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    return fail('must be a YAML mapping of settings (see deploy/natsfleet.yaml)');
  const settings = doc as Record<string, unknown>;
  // A section left empty (`github:` with every key commented out) sets nothing.
  for (const section of ['github', 'paths', 'secrets', 'state'])
    if (settings[section] === null) delete settings[section];
  const lines = buildLineMap(text);
  const at = (path: string) => {
    const line = lineOf(lines, path);
    return line ? `${file}:${line}` : file;
  };
  const problems = schemaProblems(settings, false)
    .sort((a, b) => (lineOf(lines, a.path) ?? 0) - (lineOf(lines, b.path) ?? 0))
    .map((p) => `${at(p.path)}: ${p.path}: ${p.message}`);
  if (problems.length) return { values: {}, origin: new Map(), problems };
  const values = flatten(settings);
  return { values, origin: new Map(Object.keys(values).map((k) => [k, at(k)])), problems: [] };
}

/** Environment variables or flags: strings coerced to the schema's types, then checked. */
function coercedLayer(entries: [key: string, value: unknown, where: string][], fallback: (path: string) => string) {
  const values: Flat = {};
  const origin = new Map<string, string>();
  for (const [key, value, where] of entries) {
    values[key] = coerce(key, value) as Flat[string];
    origin.set(key, where);
  }
  const problems = schemaProblems(nest(values), false).map(
    (p) => `${originOf(origin, p.path, fallback)}: ${p.path}: ${p.message}`,
  );
  return { values, origin, problems };
}

/**
 * The controller's configuration from flags (by key path: `concurrency`, `github.repository`; strings or
 * typed values), the environment and an optional YAML file. Throws ConfigError naming every problem.
 */
export function resolveConfig(flags: Flat, env: NodeJS.ProcessEnv, configFile?: string): ControllerConfig {
  const layers: Layer[] = [];
  if (configFile) layers.push(fileLayer(configFile));
  layers.push(
    coercedLayer(
      Object.entries(ENV)
        .filter(([name]) => env[name])
        .map(([name, key]) => [key, env[name], name]),
      () => 'environment',
    ),
  );
  layers.push(
    coercedLayer(
      Object.entries(flags)
        .filter(([, v]) => v !== undefined)
        .map(([key, v]) => [key, v, flagOf(key)]),
      flagOf,
    ),
  );
  const invalid = layers.flatMap((l) => l.problems);
  if (invalid.length) throw new ConfigError(invalid);

  const merged: Flat = { ...DEFAULTS };
  const origin = new Map<string, string>();
  for (const layer of layers) {
    Object.assign(merged, layer.values);
    for (const [k, where] of layer.origin) origin.set(k, where);
  }
  const where = (key: string) => origin.get(key) ?? 'config';

  // Without a key file the keys of a running ssh-agent are used (checked when the controller starts).
  for (const k of ['repo', ...(env.SSH_AUTH_SOCK ? [] : ['sshKey'])])
    if (!merged[k])
      throw new ConfigError([
        `config: ${k} is required (flag ${flagOf(k)}, ` +
          `${Object.keys(ENV).find((e) => ENV[e] === k)} or the config file)`,
      ]);
  const problems = schemaProblems(nest(merged), true).map((p) => `${where(p.path)}: ${p.path}: ${p.message}`);
  // A GitHub setting without a repository would turn reporting off in silence; a token in the
  // environment alone is not one (GITHUB_TOKEN is often set for other tools).
  const github = Object.keys(merged).filter(
    (k) => k.startsWith('github.') && merged[k] !== undefined && !(k === 'github.token' && ENV[where(k)]),
  );
  if (!merged['github.repository'] && github.length)
    problems.push(
      `${where(github[0])}: github.repository: is required to report on GitHub ` +
        `(${github.join(', ')} ${github.length > 1 ? 'are' : 'is'} set)`,
    );
  let policy: LoadPolicy | undefined;
  try {
    policy = loadPolicyFrom({
      allowedRoots: merged['paths.allowedRoots'] as string[] | undefined,
      secretsDir: merged['secrets.dir'] as string | undefined,
      secretEnvPattern: merged['secrets.envPattern'] as string | undefined,
    });
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    const key = /^(paths\.allowedRoots|secrets\.dir|secrets\.envPattern)\b/.exec(e.message)?.[1];
    problems.push(`${key ? where(key) : 'config'}: ${e.message}`);
  }
  // A policy per label names its hosts with a selector, read as `natsfleet plan -l` reads one.
  const byLabel = (merged['rollout.byLabel'] ?? []) as unknown as Record<string, unknown>[];
  for (const [i, l] of byLabel.entries()) {
    try {
      parseSelector(String(l.selector));
    } catch (e) {
      if (!(e instanceof SelectorError)) throw e;
      problems.push(`${where('rollout.byLabel')}: rollout.byLabel[${i}].selector: ${e.message}`);
    }
  }
  if (problems.length || !policy) throw new ConfigError(problems);

  const str = (k: string) => (merged[k] === undefined ? undefined : String(merged[k]));
  const repo = String(merged.repo);
  const cfg: ControllerConfig = {
    // A local path is made absolute: git resolves a relative remote against the mirror, not the cwd.
    repo: /^[a-z][a-z0-9+.-]*:|^[^/]+@[^/]+:/i.test(repo) ? repo : resolve(repo),
    branch: String(merged.branch),
    hostsDir: String(merged.hostsDir),
    pollIntervalSec: merged.pollIntervalSec as number,
    driftIntervalSec: merged.driftIntervalSec as number,
    stateDir: String(merged.stateDir),
    sshKey: str('sshKey'),
    concurrency: merged.concurrency as number,
    listen: str('listen'),
    webhookSecret: str('webhookSecret'),
    apiToken: str('apiToken'),
    planUntrustedLive: merged.planUntrustedLive === true,
    prune: merged.prune === true,
    logLevel: merged.logLevel as ControllerConfig['logLevel'],
    policy,
  };
  // The config's keys (batchSize, batchPercent) as plan/batches.ts names them (size, percent); unset ones left out.
  const batchPolicy = (get: (k: string) => unknown): BatchPolicy =>
    Object.fromEntries(
      Object.entries({
        size: get('batchSize'),
        percent: get('batchPercent'),
        canary: get('canary'),
        pauseSec: get('pauseSec'),
        maxFailures: get('maxFailures'),
      }).filter(([, v]) => v !== undefined),
    );
  const rollout: RolloutPolicy = batchPolicy((k) => merged[`rollout.${k}`]);
  if (byLabel.length)
    rollout.byLabel = byLabel.map((l): LabelPolicy => ({ selector: String(l.selector), ...batchPolicy((k) => l[k]) }));
  if (Object.keys(rollout).length) cfg.rollout = rollout;
  if (merged['state.nats.url'])
    cfg.stateNats = {
      url: String(merged['state.nats.url']),
      credentials: str('state.nats.credentials'),
      bucket: str('state.nats.bucket') ?? 'natsfleet',
      leaseTtlSec: (merged['state.nats.leaseTtlSec'] as number | undefined) ?? 15,
      replicas: (merged['state.nats.replicas'] as number | undefined) ?? 1,
    };
  else {
    const stray = Object.keys(merged).find(
      (k) => (k.startsWith('state.nats.') || k === 'replicaId') && merged[k] !== undefined,
    );
    if (stray) throw new ConfigError([`${where(stray)}: state.nats.url: is required with ${stray}`]);
  }
  if (merged.replicaId) cfg.replicaId = String(merged.replicaId);
  if (merged['github.repository']) {
    cfg.github = {
      repository: String(merged['github.repository']),
      apiUrl: str('github.apiUrl'),
      token: str('github.token'),
      appId: merged['github.appId'] as number | undefined,
      appPrivateKeyFile: str('github.appPrivateKeyFile'),
      installationId: merged['github.installationId'] as number | undefined,
    };
  }
  return cfg;
}
