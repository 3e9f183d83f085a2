// Owns TLS on the client port: where NATS reads its certificate inside the container (the proxy's
// certbot volume mounted read-only, or the operator's directories), the `tls {}` block of the config,
// and the systemd path unit that reloads NATS when the certificate file changes on the host (renewal
// closes the loop without a human: TLS material is hot-reloadable).
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import { MANAGED_HEADER } from './artifact.js';
import { LETSENCRYPT } from './proxy.js';

/** Where Docker keeps named volumes on the host (Debian's and Docker's default data root). */
export const DOCKER_VOLUMES_DIR = '/var/lib/docker/volumes';
/** Where the operator's TLS directories appear in the container (one numbered mount per directory). */
const CONTAINER_TLS_DIR = '/etc/nats-tls';
export const TLS_WATCH_UNIT = 'nats-tls-reload.path';
export const TLS_RELOAD_UNIT = 'nats-tls-reload.service';
export const TLS_WATCH_PATH = `/etc/systemd/system/${TLS_WATCH_UNIT}`;
export const TLS_RELOAD_PATH = `/etc/systemd/system/${TLS_RELOAD_UNIT}`;
/** Seconds the reload waits after a change: certbot replaces several links one after the other. */
const SETTLE_SEC = 3;

export const tlsEnabled = (h: HostSpec) => h.nats.tls.enabled;
/** Client TLS or route TLS: NATS reads certificates, and a renewal must reach it. */
export const anyTls = (h: HostSpec) => h.nats.tls.enabled || h.cluster?.tls !== undefined;

/** The operator's files NATS reads: client TLS (its CA also with source proxy) and route TLS. */
function operatorFiles(h: HostSpec): string[] {
  const t = h.nats.tls;
  const client = !t.enabled ? [] : t.source === 'files' ? [t.certFile, t.keyFile, t.caFile] : [t.caFile];
  const r = h.cluster?.tls;
  return [...client, ...(r ? [r.certFile, r.keyFile, r.caFile] : [])].filter((p): p is string => p !== undefined);
}

/** The host directories of the operator's files, in a stable order, each with its mount point. */
function fileDirs(h: HostSpec): { host: string; container: string }[] {
  const dirs = [...new Set(operatorFiles(h).map(posix.dirname))];
  return dirs.map((host, i) => ({ host, container: `${CONTAINER_TLS_DIR}/${i}` }));
}

/** A host path of the operator's as the container sees it. */
function inContainer(h: HostSpec, path: string): string {
  const dir = fileDirs(h).find((d) => d.host === posix.dirname(path))!;
  return posix.join(dir.container, posix.basename(path));
}

/**
 * `docker run --mount` values the TLS files need, read-only. `--mount`, not `-v`: a missing host directory
 * fails the start instead of being created (as root, outside natsfleet's ownership record).
 */
export function tlsMounts(h: HostSpec): string[] {
  const proxy =
    tlsEnabled(h) && h.nats.tls.source === 'proxy'
      ? [`type=volume,source=${h.proxy.secretsVolume},target=${LETSENCRYPT},readonly`]
      : [];
  return [...proxy, ...fileDirs(h).map((d) => `type=bind,source=${d.host},target=${d.container},readonly`)];
}

/** The proxy's certificate directory for its domain, on the host and in the container. */
const liveDir = (h: HostSpec, root: string) => posix.join(root, 'live', h.proxy.domain!);
const volumeRoot = (h: HostSpec) => posix.join(DOCKER_VOLUMES_DIR, h.proxy.secretsVolume, '_data');

/** The certificate chain on the host (what NATS reads, what the path unit watches). */
export function hostCertPath(h: HostSpec): string {
  const t = h.nats.tls;
  return t.source === 'proxy' ? posix.join(liveDir(h, volumeRoot(h)), 'fullchain.pem') : t.certFile!;
}

/** source proxy: certbot's renewal config of the domain (exists once certbot obtained the certificate). */
export const lineagePath = (h: HostSpec) =>
  h.nats.tls.source === 'proxy' ? posix.join(volumeRoot(h), 'renewal', `${h.proxy.domain}.conf`) : undefined;

/** The `tls {}` block of nats-server.conf (values are schema-checked paths: no quote, no newline). */
export function tlsBlock(h: HostSpec): string[] {
  const t = h.nats.tls;
  const [cert, key] =
    t.source === 'proxy'
      ? [posix.join(liveDir(h, LETSENCRYPT), 'fullchain.pem'), posix.join(liveDir(h, LETSENCRYPT), 'privkey.pem')]
      : [inContainer(h, t.certFile!), inContainer(h, t.keyFile!)];
  const q = (s: string) => {
    if (/["\\\n\r]/.test(s)) throw new Error('refusing to render an unsafe TLS path');
    return `"${s}"`;
  };
  return [
    '',
    'tls {',
    `  cert_file: ${q(cert)}`,
    `  key_file: ${q(key)}`,
    ...(t.caFile !== undefined ? [`  ca_file: ${q(inContainer(h, t.caFile))}`] : []),
    ...(t.verify ? ['  verify: true'] : []),
    ...(t.handshakeFirst ? ['  handshake_first: true'] : []),
    '}',
  ];
}

/** The `tls {}` block inside `cluster {}`: the member's route certificate, peers verified against the CA. */
export function routeTlsBlock(h: HostSpec): string[] {
  const r = h.cluster!.tls!;
  return [
    '  tls {',
    `    cert_file: "${inContainer(h, r.certFile)}"`,
    `    key_file: "${inContainer(h, r.keyFile)}"`,
    `    ca_file: "${inContainer(h, r.caFile)}"`,
    // Peers must present a certificate too (mutual TLS); the route address is checked against theirs.
    '    verify: true',
    '  }',
  ];
}

/** The paths whose changes mean a new certificate or key (a renewal replaces files or links there). */
function watchedPaths(h: HostSpec): string[] {
  const t = h.nats.tls;
  const r = h.cluster?.tls;
  const client = !t.enabled
    ? []
    : t.source === 'proxy'
      ? [liveDir(h, volumeRoot(h)), hostCertPath(h)]
      : [posix.dirname(t.certFile!), posix.dirname(t.keyFile!), t.certFile!];
  const route = r ? [posix.dirname(r.certFile), posix.dirname(r.keyFile), r.certFile] : [];
  return [...new Set([...client, ...route])];
}

/** A path in a unit file: systemd reads `%` as a specifier and blanks as separators (schema paths have neither). */
const unitPath = (p: string) => {
  if (!/^\/[A-Za-z0-9._/@+-]*$/.test(p)) throw new Error(`refusing to put ${JSON.stringify(p)} in a unit file`);
  return p;
};

export function renderTlsWatch(h: HostSpec, natsUnit: string): string {
  return [
    `# ${MANAGED_HEADER}`,
    '[Unit]',
    `Description=Reload ${natsUnit} when its TLS certificate changes (natsfleet NatsHost ${h.name})`,
    '',
    '[Path]',
    ...watchedPaths(h).map((d) => `PathChanged=${unitPath(d)}`),
    `Unit=${TLS_RELOAD_UNIT}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export function renderTlsReload(natsUnit: string): string {
  return [
    `# ${MANAGED_HEADER}`,
    '[Unit]',
    `Description=Reload ${natsUnit} for a renewed TLS certificate (natsfleet)`,
    `After=${natsUnit}`,
    '',
    '[Service]',
    'Type=oneshot',
    // A renewal replaces the chain and the key one after the other: load them once both are in place.
    `ExecStartPre=/bin/sleep ${SETTLE_SEC}`,
    // Only a running server is reloaded (a stopped one reads the new files when it starts). A failed reload
    // (the key replaced after the chain, say) is not a failed unit: NATS keeps serving the old certificate,
    // the next change reloads again, and observation reports a certificate not served as drift.
    `ExecStart=-/bin/sh -c 'systemctl is-active --quiet ${natsUnit} || exit 0; exec systemctl reload ${natsUnit}'`,
    '',
  ].join('\n');
}
