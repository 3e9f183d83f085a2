// Owns renderHost: HostSpec (+ resolved secrets) in, DesiredHost out. Pure: the one place that
// decides which files and directories a host gets. Every file is rendered twice from the same model:
// with the real secrets (what goes on the host) and with each secret replaced by a placeholder naming
// its reference (`display`: the only text natsfleet ever shows; structural redaction, not a regex).
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import type { Secret } from '../manifest/natshost.gen.js';
import { dedicatedRoot, DEFAULT_PATH_POLICY, type PathPolicy } from '../manifest/path-policy.js';
import { sizeInBytes } from '../manifest/rules.js';
import { isPlaintext, type SecretResolver } from '../secrets/resolve.js';
import type { DesiredHost, DirArtifact, FileArtifact, VerifyExpectations } from './artifact.js';
import { containerConfPath, renderNatsConfig, type ResolvedAuth, type ResolvedRouteAuth } from './nats-config.js';
import { routePasswordField, systemPasswordField } from '../manifest/secret-policy.js';
import { NATS_UNIT, NATS_UNIT_PATH, renderSystemdUnit, stopTimeoutSec } from './systemd-unit.js';
import {
  anyTls,
  tlsMounts,
  hostCertPath,
  lineagePath,
  renderTlsReload,
  renderTlsWatch,
  TLS_RELOAD_PATH,
  TLS_WATCH_PATH,
  TLS_WATCH_UNIT,
} from './tls.js';
import {
  PROXY_CONTAINER,
  proxyComposePath,
  proxySitePath,
  renderCompose,
  renderProxyEnv,
  renderProxySite,
} from './proxy.js';

const rootFile = (
  f: Omit<FileArtifact, 'owner' | 'group' | 'sensitive' | 'display'> & { sensitive?: boolean; display?: string },
): FileArtifact => ({
  owner: 'root',
  group: 'root',
  sensitive: false,
  display: f.content,
  ...f,
});

/** What stands in a displayed file for a secret: the reference, never the value. */
export const secretPlaceholder = (ref: Secret) =>
  ref.bcrypt !== undefined
    ? ref.bcrypt
    : ref.env !== undefined
      ? `<secret:env:${ref.env}>`
      : `<secret:file:${ref.file}>`;
export const placeholderSecrets: SecretResolver = (ref) => secretPlaceholder(ref);
const rootDir = (path: string): DirArtifact => ({ path, mode: '0755', owner: 'root', group: 'root' });

function resolveAuth(h: HostSpec, resolve: SecretResolver): ResolvedAuth | undefined {
  const a = h.nats.auth;
  if (!a) return undefined;
  if (a.token) return { token: resolve(a.token, 'spec.nats.auth.token') };
  return { user: a.user, password: resolve(a.password!, 'spec.nats.auth.password') };
}

function resolveRouteAuth(h: HostSpec, resolve: SecretResolver, forUrl: boolean): ResolvedRouteAuth | undefined {
  const r = h.cluster?.routeAuth;
  if (!r) return undefined;
  const password = resolve(r.password, routePasswordField(h));
  return { user: r.user, password, passwordInUrl: forUrl ? encodeURIComponent(password) : password };
}

function resolveSystem(h: HostSpec, resolve: SecretResolver) {
  const s = h.cluster?.systemAccount;
  return s && { user: s.user, password: resolve(s.password, systemPasswordField(h)) };
}

/** What verification expects of the running server (JetStream limits in bytes, the kind of auth). */
function verifyExpectations(h: HostSpec): VerifyExpectations {
  const { jetstream: js, auth } = h.nats;
  const bytes = (size: string | number | undefined) => (size === undefined ? undefined : sizeInBytes(size));
  return {
    jetstream: js.enabled
      ? { maxMemoryBytes: bytes(js.maxMemory), maxFileBytes: bytes(js.maxFile), storeDir: js.storeDir }
      : undefined,
    auth: !auth ? { kind: 'none' } : auth.token ? { kind: 'token' } : { kind: 'user-password', user: auth.user! },
  };
}

export function renderHost(h: HostSpec, resolve: SecretResolver, paths: PathPolicy = DEFAULT_PATH_POLICY): DesiredHost {
  const n = h.nats;
  const secretInFile =
    isPlaintext(n.auth?.token) ||
    isPlaintext(n.auth?.password) ||
    isPlaintext(h.cluster?.routeAuth?.password) ||
    isPlaintext(h.cluster?.systemAccount?.password);
  const config = (withTls: boolean) =>
    rootFile({
      id: 'nats-config',
      path: n.confFile,
      content: renderNatsConfig(
        h,
        resolveAuth(h, resolve),
        resolveRouteAuth(h, resolve, true),
        resolveSystem(h, resolve),
        withTls,
      ),
      // Placeholders stay readable inside route URLs (never URL-encoded).
      display: renderNatsConfig(
        h,
        resolveAuth(h, placeholderSecrets),
        resolveRouteAuth(h, placeholderSecrets, false),
        resolveSystem(h, placeholderSecrets),
        withTls,
      ),
      // The seed uses 0644; a config holding a plaintext token or password is kept from other users.
      mode: secretInFile ? '0600' : '0644',
      sensitive: secretInFile,
    });
  const files: FileArtifact[] = [
    config(true),
    rootFile({ id: 'nats-unit', path: NATS_UNIT_PATH, content: renderSystemdUnit(h), mode: '0644' }),
  ];
  if (anyTls(h))
    files.push(
      rootFile({ id: 'tls-watch', path: TLS_WATCH_PATH, content: renderTlsWatch(h, NATS_UNIT), mode: '0644' }),
      rootFile({ id: 'tls-reload', path: TLS_RELOAD_PATH, content: renderTlsReload(NATS_UNIT), mode: '0644' }),
    );
  const dirs = [rootDir(posix.dirname(n.confFile)), rootDir(n.dataDir)];
  if (n.jetstream.enabled && n.jetstream.storeDir !== n.dataDir) dirs.push(rootDir(n.jetstream.storeDir));
  const p = h.proxy;
  if (p.enabled) {
    dirs.push(rootDir(p.dir), rootDir(p.userConfDir), rootDir(posix.dirname(p.envFile)));
    files.push(
      rootFile({ id: 'proxy-compose', path: proxyComposePath(h), content: renderCompose(h), mode: '0644' }),
      rootFile({ id: 'proxy-env', path: p.envFile, content: renderProxyEnv(h), mode: '0644' }),
      rootFile({ id: 'proxy-site', path: proxySitePath(h), content: renderProxySite(h), mode: '0644' }),
    );
  }
  return {
    name: h.name,
    state: h.state,
    files,
    dirs: dirs.filter((d, i) => dirs.findIndex((o) => o.path === d.path) === i),
    claims: [
      ...new Set(
        [...dirs.map((d) => d.path), ...files.map((f) => posix.dirname(f.path))]
          .map((path) => dedicatedRoot(path, paths))
          .filter((r) => r && !r.allowed)
          .map((r) => r!.root),
      ),
    ].sort(),
    nats: {
      unit: NATS_UNIT,
      confFile: n.confFile,
      containerConfFile: containerConfPath(h),
      unitPath: NATS_UNIT_PATH,
      containerName: n.containerName,
      image: n.image,
      pullPolicy: n.imagePullPolicy,
      clientPort: n.clientPort,
      httpPort: n.httpPort,
      httpBind: n.httpBind,
      serverName: n.serverName,
      stopTimeoutSec: stopTimeoutSec(h),
      tlsMounts: tlsMounts(h),
    },
    proxy: p.enabled
      ? {
          dir: p.dir,
          image: p.image,
          containerName: PROXY_CONTAINER,
          secretsVolume: p.secretsVolume,
          domain: p.domain!,
        }
      : undefined,
    verify: verifyExpectations(h),
    cluster: h.cluster && {
      name: h.cluster.name,
      routePort: h.cluster.routePort,
      routeAddress: h.cluster.routeAddress,
      peers: h.cluster.peers.map((p) => ({
        host: p.host,
        serverName: p.serverName ?? p.host,
        routeAddress: p.routeAddress,
      })),
      members: h.cluster.members,
    },
    tls: n.tls.enabled
      ? {
          source: n.tls.source,
          certPath: hostCertPath(h),
          lineagePath: lineagePath(h),
          serverName: n.tls.source === 'proxy' ? p.domain : undefined,
          handshakeFirst: n.tls.handshakeFirst,
          verifyClients: n.tls.verify,
          watchUnit: TLS_WATCH_UNIT,
          withheldConfig: config(false),
        }
      : undefined,
  };
}
