// Owns the systemd unit that runs the NATS container (docker run in the foreground, so systemd
// supervises it): remove a stale container, pull per policy, reload by SIGHUP, stop in lame duck.
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import { durationMs } from '../manifest/rules.js';
import { sh, systemdArgv } from '../shell/quote.js';
import { MANAGED_HEADER } from './artifact.js';
import { tlsMounts } from './tls.js';
import {
  CONTAINER_CLIENT_PORT,
  CONTAINER_CONF_DIR,
  CONTAINER_DATA_DIR,
  CONTAINER_HTTP_PORT,
  CONTAINER_ROUTE_PORT,
  containerConfPath,
} from './nats-config.js';

export const NATS_UNIT = 'nats.service';
export const NATS_UNIT_PATH = `/etc/systemd/system/${NATS_UNIT}`;
const DOCKER = '/usr/bin/docker';
const PULL_TIMEOUT_SEC = 120;

/** Seconds a stop may take: lame duck grace period and duration plus a margin. */
export function stopTimeoutSec(h: HostSpec): number {
  const ld = h.nats.lameDuck;
  return Math.ceil((durationMs(ld.duration) + durationMs(ld.gracePeriod)) / 1000) + 10;
}

/** The `docker run` argv of the NATS container; also used by the observer to compare. */
export function dockerRunArgv(h: HostSpec): string[] {
  const n = h.nats;
  return [
    DOCKER,
    'run',
    '--rm',
    '--name',
    n.containerName,
    '--label',
    `io.natsfleet.host=${h.name}`,
    '-p',
    `${n.clientPort}:${CONTAINER_CLIENT_PORT}`,
    '-p',
    `${n.httpBind}:${n.httpPort}:${CONTAINER_HTTP_PORT}`,
    ...(h.cluster ? ['-p', `${h.cluster.routePort}:${CONTAINER_ROUTE_PORT}`] : []),
    '-v',
    `${posix.dirname(n.confFile)}:${CONTAINER_CONF_DIR}:ro`,
    '-v',
    `${n.dataDir}:${CONTAINER_DATA_DIR}`,
    ...tlsMounts(h).flatMap((m) => ['--mount', m]),
    '--stop-signal',
    'SIGUSR2',
    '--stop-timeout',
    String(stopTimeoutSec(h)),
    n.image,
    '-c',
    containerConfPath(h),
  ];
}

function pullLine(h: HostSpec): string[] {
  const image = h.nats.image;
  const pull = ['/usr/bin/timeout', String(PULL_TIMEOUT_SEC), DOCKER, 'pull', image];
  switch (h.nats.imagePullPolicy) {
    case 'Always':
      return [`ExecStartPre=-${systemdArgv(pull)}`];
    case 'IfNotPresent': {
      const script = `${sh(DOCKER, 'image', 'inspect', image)} >/dev/null 2>&1 || exec ${sh(...pull)}`;
      return [`ExecStartPre=-/bin/sh -c ${JSON.stringify(script)}`];
    }
    case 'Never':
      return [];
  }
}

export function renderSystemdUnit(h: HostSpec): string {
  const n = h.nats;
  const stop = stopTimeoutSec(h);
  return [
    `# ${MANAGED_HEADER}`,
    '[Unit]',
    `Description=NATS server ${n.serverName} (natsfleet NatsHost ${h.name})`,
    'Documentation=https://docs.nats.io/',
    // Wants, not Requires: stopping Docker (a package upgrade) must not stop this unit for good; it
    // restarts until Docker answers again (Restart=always, no start limit).
    'After=docker.service network-online.target',
    'Wants=docker.service network-online.target',
    'StartLimitIntervalSec=0',
    '',
    '[Service]',
    'Type=simple',
    `ExecStartPre=-${systemdArgv([DOCKER, 'rm', '--force', n.containerName])}`,
    ...pullLine(h),
    `ExecStart=${systemdArgv(dockerRunArgv(h))}`,
    `ExecReload=${systemdArgv([DOCKER, 'kill', '--signal=HUP', n.containerName])}`,
    `ExecStop=${systemdArgv([DOCKER, 'stop', '--time', String(stop), n.containerName])}`,
    `TimeoutStartSec=${PULL_TIMEOUT_SEC + 60}`,
    `TimeoutStopSec=${stop + 15}`,
    'Restart=always',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}
