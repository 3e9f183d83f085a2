// Owns turning what `natsfleet import` read from a host into the NatsHost manifest that reproduces it:
// image, container name, published ports and binding, config and data paths, the JetStream store the
// server really uses (mapped from the container back to the host) and its limits, auth as secret
// references to fill in (a bcrypt hash is kept: it is safe in Git), the proxy. What the manifest cannot
// express is said plainly, never dropped in silence. Pure: facts in, a document and notes out.
import { posix } from 'node:path';
import { dump } from 'js-yaml';
import type { NatsHost } from '../manifest/natshost.gen.js';
import { dedicatedRoot, type PathPolicy } from '../manifest/path-policy.js';
import { SCHEMA_MODELINE } from '../manifest/schema.js';
import { containerConfigPath, hostPathOf, type ContainerDetail, type ImportFacts } from './import-facts.js';
import { ConfSyntaxError, isMap, pick, readNatsConf, type ConfMap, type ConfValue } from './nats-conf-reader.js';

export interface ImportOptions {
  name: string;
  ssh: { host: string; port: number; user: string; hostKey: string };
  paths: PathPolicy;
}

export interface Imported {
  manifest: NatsHost;
  /** Environment variables the manifest reads, with where their value is on the host today. */
  secrets: { env: string; what: string }[];
  /** What the manifest does not reproduce, or what the operator must do before `apply`. */
  notes: string[];
  /** Directories the takeover writes in that the controller's policy does not allow yet. */
  rootsToAllow: string[];
}

/** Top-level config keys the manifest reproduces (NATS key names, lower case). */
const HANDLED = new Set([
  'server_name',
  'port',
  'http_port',
  'monitor_port',
  'host',
  'net',
  'listen',
  'authorization',
  'jetstream',
  'max_payload',
  'max_connections',
  'max_conn',
  'lame_duck_duration',
  'lame_duck_grace_period',
  'debug',
  'trace',
  'logtime',
]);

const DEFAULT_CONTAINER_NAME = 'nats';
const BCRYPT = /^\$2[abxy]?\$\d\d\$/;
const SIZE = /^\d+(\.\d+)?\s*([kmgt]i?b?|b)?$/i;

/** `nats-us-1` -> `NATS_US_1_` (the default secret pattern is ^NATS_[A-Z0-9_]+$). */
const envPrefix = (name: string) =>
  `NATS_${name.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_`.replace(/^NATS_NATS_/, 'NATS_');

/**
 * A config key as a note quotes it: a setting's name, else not its text (what was read may not be a NATS
 * config at all, and the notes are printed and written into the manifest).
 */
const keyText = (key: string) =>
  /^[A-Za-z_$][A-Za-z0-9_-]{0,39}$/.test(key)
    ? JSON.stringify(key)
    : `a key that is no setting name (${key.length} characters)`;

const str = (v: ConfValue | undefined) => (typeof v === 'string' || typeof v === 'number' ? String(v) : undefined);
const size = (v: ConfValue | undefined): string | number | undefined =>
  typeof v === 'number' ? v : typeof v === 'string' && SIZE.test(v.trim()) ? v.trim().replace(/\s+/g, '') : undefined;

export function importManifest(f: ImportFacts, o: ImportOptions): Imported {
  const notes: string[] = [];
  const secrets: Imported['secrets'] = [];
  const c = f.nats;
  let conf: ConfMap = {};
  if (f.configNotRead)
    notes.push(
      `${f.configNotRead}: not read (not a regular file, or a symbolic link on the way): settings not imported`,
    );
  else if (!f.config)
    notes.push(`the config file ${containerConfigPath(c)} is not on a host mount: settings not imported`);
  else
    try {
      conf = readNatsConf(f.config.text);
    } catch (e) {
      if (!(e instanceof ConfSyntaxError)) throw e;
      notes.push(`${f.config.hostPath}: not read (${e.message}): settings not imported`);
    }
  for (const key of Object.keys(conf))
    if (!HANDLED.has(key.toLowerCase()))
      notes.push(
        `${f.config!.hostPath}: ${keyText(key)} is not reproduced by the manifest: ` +
          `natsfleet's config will not have it (${hint(key)})`,
      );

  const clientInside = Number(pick(conf, 'port') ?? 4222);
  const httpInside = Number(pick(conf, 'http_port', 'monitor_port') ?? 8222);
  const client = c.bindings[`${clientInside}/tcp`];
  const http = c.bindings[`${httpInside}/tcp`];
  if (!client) notes.push(`the container does not publish its client port ${clientInside}: clientPort left at 4222`);
  if (!http) notes.push(`the container does not publish monitoring (${httpInside}): httpPort left at 8222`);

  const confFile = f.config?.hostPath;
  const dataDir = hostPathOf(c, '/data') ?? dataMountOf(c);
  const nats: NonNullable<NatsHost['spec']['nats']> = {
    image: c.image,
    ...(c.name !== DEFAULT_CONTAINER_NAME ? { containerName: c.name } : {}),
    ...(str(pick(conf, 'server_name')) ? { serverName: str(pick(conf, 'server_name')) } : {}),
    ...(client ? { clientPort: client.port } : {}),
    ...(http ? { httpPort: http.port, httpBind: http.ip || '0.0.0.0' } : {}),
    ...(confFile ? { confFile } : {}),
    ...(dataDir ? { dataDir } : {}),
  };

  const auth = pick(conf, 'authorization');
  if (isMap(auth)) {
    const prefix = envPrefix(o.name);
    const token = str(pick(auth, 'token'));
    const user = str(pick(auth, 'user'));
    const pass = str(pick(auth, 'password', 'pass'));
    const secret = (value: string, field: string, env: string) => {
      if (BCRYPT.test(value)) return { bcrypt: value };
      secrets.push({ env, what: `the ${field} in ${f.config!.hostPath} on the host` });
      return { env };
    };
    if (token !== undefined) nats.auth = { token: secret(token, 'token', `${prefix}TOKEN`) };
    else if (user !== undefined && pass !== undefined)
      nats.auth = { user, password: secret(pass, 'password', `${prefix}PASSWORD`) };
    for (const k of Object.keys(auth))
      if (!['token', 'user', 'password', 'pass', 'timeout'].includes(k.toLowerCase()))
        notes.push(
          `authorization.${keyText(k)} is not reproduced (natsfleet renders a token or one user and password)`,
        );
    if (!nats.auth) notes.push('authorization has no token or user/password: the imported host has no auth');
  } else notes.push('the server has no authorization: clients connect without credentials (validate warns)');

  const js = pick(conf, 'jetstream');
  if (js !== undefined && js !== false) {
    const m = isMap(js) ? js : {};
    nats.jetstream = { enabled: true };
    const store = storeDirOf(f, c, m);
    if (store) nats.jetstream.storeDir = store;
    else notes.push('the JetStream store directory is not on a host mount: storeDir left at its default');
    const mem = size(pick(m, 'max_memory_store', 'max_mem_store', 'max_mem')) ?? f.jsz?.config?.max_memory;
    const file = size(pick(m, 'max_file_store', 'max_file')) ?? f.jsz?.config?.max_storage;
    if (mem !== undefined && isMap(js)) nats.jetstream.maxMemory = mem;
    if (file !== undefined && isMap(js)) nats.jetstream.maxFile = file;
  }
  const maxPayload = size(pick(conf, 'max_payload'));
  if (maxPayload !== undefined) nats.maxPayload = maxPayload;
  const maxConn = pick(conf, 'max_connections', 'max_conn');
  if (typeof maxConn === 'number') nats.maxConnections = maxConn;
  const ldd = str(pick(conf, 'lame_duck_duration'));
  const ldg = str(pick(conf, 'lame_duck_grace_period'));
  if (ldd || ldg) nats.lameDuck = { ...(ldd ? { duration: ldd } : {}), ...(ldg ? { gracePeriod: ldg } : {}) };
  const logging = Object.fromEntries(
    (['debug', 'trace', 'logtime'] as const)
      .map((k) => [k, pick(conf, k)] as const)
      .filter(([, v]) => typeof v === 'boolean'),
  );
  if (Object.keys(logging).length) nats.logging = logging;

  const manifest: NatsHost = {
    apiVersion: 'natsfleet/v1alpha1',
    kind: 'NatsHost',
    metadata: { name: o.name },
    spec: {
      ssh: {
        host: o.ssh.host,
        ...(o.ssh.port !== 22 ? { port: o.ssh.port } : {}),
        ...(o.ssh.user !== 'root' ? { user: o.ssh.user } : {}),
        hostKey: o.ssh.hostKey,
      },
      nats,
      ...(f.proxy ? { proxy: proxyOf(f, notes) } : {}),
      policy: { selfHeal: false },
    },
  };
  const paths = [
    confFile && posix.dirname(confFile),
    dataDir,
    nats.jetstream?.storeDir,
    manifest.spec.proxy?.dir,
    manifest.spec.proxy?.userConfDir,
    manifest.spec.proxy?.envFile && posix.dirname(manifest.spec.proxy.envFile),
  ].filter((p): p is string => Boolean(p));
  const rootsToAllow = [
    ...new Set(
      paths
        .map((p) => ({ p, r: dedicatedRoot(p, o.paths) }))
        // A directory natsfleet did not create is written in only under an allowed root.
        .filter(({ r }) => !r?.allowed)
        .map(({ p, r }) => r?.root ?? p),
    ),
  ].sort();
  return { manifest, secrets, notes, rootsToAllow };
}

/** The host directory mounted at /data, or the one holding the store when the image mounts elsewhere. */
function dataMountOf(c: ContainerDetail): string | undefined {
  return c.mounts.find((m) => m.type === 'bind' && m.rw && !m.destination.startsWith('/etc'))?.source;
}

/**
 * The store the server really uses, as natsfleet's storeDir (NATS keeps its files in <storeDir>/jetstream):
 * /jsz reports <store_dir>/jetstream inside the container; the config's store_dir is the fallback.
 */
function storeDirOf(f: ImportFacts, c: ContainerDetail, js: ConfMap): string | undefined {
  const reported = f.jsz?.config?.store_dir?.replace(/\/jetstream\/?$/, '');
  const configured = str(pick(js, 'store_dir', 'store'));
  const inContainer = reported ?? configured;
  return inContainer && posix.isAbsolute(inContainer) ? hostPathOf(c, posix.normalize(inContainer)) : undefined;
}

function proxyOf(f: ImportFacts, notes: string[]): NonNullable<NatsHost['spec']['proxy']> {
  const p = f.proxy!;
  const env = Object.fromEntries(p.container.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const dir = p.container.labels['com.docker.compose.project.working_dir'];
  const envFileLine = /env_file:\s*(?:-\s*)?["']?([^\s"']+)/.exec(p.composeText ?? '')?.[1];
  const envFile = envFileLine && dir ? posix.resolve(dir, envFileLine) : undefined;
  const domain = p.serverNames[0];
  if (!domain) notes.push('no server_name in the proxy site files: set spec.proxy.domain');
  if (p.serverNames.length > 1) notes.push(`the proxy serves ${p.serverNames.join(', ')}: only ${domain} is kept`);
  const volume = p.container.mounts.find((m) => m.destination === '/etc/letsencrypt' && m.type === 'volume')?.name;
  const userConfDir = p.container.mounts.find((m) => m.destination === '/etc/nginx/user_conf.d')?.source;
  return {
    enabled: true,
    ...(domain ? { domain } : {}),
    ...(env.CERTBOT_EMAIL ? { email: env.CERTBOT_EMAIL } : {}),
    image: p.container.image,
    ...(env.STAGING === '1' ? { staging: true } : {}),
    ...(dir ? { dir } : {}),
    ...(userConfDir ? { userConfDir } : {}),
    ...(envFile ? { envFile } : {}),
    ...(volume ? { secretsVolume: volume } : {}),
  };
}

function hint(key: string): string {
  const k = key.toLowerCase();
  if (k === 'tls') return 'set spec.nats.tls';
  if (k === 'cluster') return 'describe the cluster in a NatsCluster manifest';
  if (k === 'include') return 'inline the included file';
  return 'remove it from the host config first, or keep managing this host by hand';
}

/**
 * A comment's text on one line: notes quote the host (its config keys, paths, site names), and a line
 * break there would end the comment and put the host's text into the manifest itself.
 */
const commentText = (s: string) =>
  s.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** The manifest as YAML, with a header saying where it came from and what to fill in. */
export function manifestYaml(r: Imported, source: string, at: string): string {
  const head = [
    SCHEMA_MODELINE,
    `# NatsHost imported by \`natsfleet import\` from ${commentText(source)} at ${at}.`,
    '# Check it, then `natsfleet plan`: the first apply takes the host over with one restart.',
    ...r.secrets.map((s) => `# Secret: set ${s.env} in the controller's environment to ${commentText(s.what)}.`),
    ...r.notes.map((n) => `# Note: ${commentText(n)}`),
  ];
  return `${head.join('\n')}\n${dump(r.manifest, { lineWidth: 120 })}`;
}
