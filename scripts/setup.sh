#!/usr/bin/env bash
# Installs what natsfleet's demo and tests need on a fresh Debian machine, and starts the Docker
# engine when none answers. Idempotent and quick once done (a few dpkg queries and `docker info`).
set -euo pipefail
cd "$(dirname "$0")/.."

# debian-archive-keyring: the sandbox checks the trixie and sid nats-server packages it downloads with it.
PKGS=(docker.io docker-compose debootstrap debian-archive-keyring busybox-static nats-server nginx-light openssl ansible systemd iproute2 openssh-client shellcheck)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "setup: need root to install: ${missing[*]}" >&2; exit 1; }
  echo "setup: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# promtool (Debian's prometheus package) checks the controller's /metrics in the tests. Only the tool is
# wanted: a policy-rc.d keeps the package's Prometheus server from being started by its install.
if ! command -v promtool >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "setup: need root to install prometheus (promtool)" >&2; exit 1; }
  echo "setup: installing prometheus (for promtool)" >&2
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own_policy=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  [ "$own_policy" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi

# npm ci whenever package-lock.json changed since the last install (it also builds dist/).
stamp=node_modules/.natsfleet-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -d dist ]; then
  npm ci --no-fund --no-audit --loglevel=error
  echo "$want" > "$stamp"
fi
# dist/ (what bin/natsfleet.js runs, and the e2e tests spawn: the tsc output and the CLI bundle made from
# it) is rebuilt every time: about 3 s, never stale.
npm run build --silent

# The Docker engine: Debian's dockerd, started detached when no daemon answers.
if ! docker info >/dev/null 2>&1; then
  echo "setup: starting dockerd (log: /var/log/natsfleet-dockerd.log)" >&2
  nohup dockerd >/var/log/natsfleet-dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "setup: dockerd did not start; see /var/log/natsfleet-dockerd.log" >&2; exit 1; }
fi
