#!/bin/sh
# natsfleet sandbox stand-in for jonasal/nginx-certbot. Follows the real image's contract: requires
# CERTBOT_EMAIL, reads server blocks from /etc/nginx/user_conf.d, keeps certificates in
# /etc/letsencrypt/live/<name>/ (the <name> taken from each ssl_certificate_key path). No ACME
# server is reachable, so a missing certificate is made self-signed instead of requested.
# SIGHUP re-runs the certificate loop and reloads nginx, as in the real image.
set -eu
if [ -z "${CERTBOT_EMAIL:-}" ]; then
  echo "CERTBOT_EMAIL environment variable undefined; certbot will do nothing!" >&2
  exit 1
fi

ensure_certs() {
  mkdir -p /etc/letsencrypt/live /etc/letsencrypt/dhparams /var/www/letsencrypt
  if [ ! -s /etc/letsencrypt/dhparams/dhparam.pem ]; then
    openssl dhparam -dsaparam -out /etc/letsencrypt/dhparams/dhparam.pem "${DHPARAM_SIZE:-2048}" 2>/dev/null
  fi
  for conf in /etc/nginx/user_conf.d/*.conf; do
    [ -f "$conf" ] || continue
    for name in $(sed -n 's#^[[:space:]]*ssl_certificate_key[[:space:]]*/etc/letsencrypt/live/\([^/]*\)/privkey.pem;.*#\1#p' "$conf"); do
      live="/etc/letsencrypt/live/$name"
      [ -s "$live/privkey.pem" ] && continue
      echo "no certificate for $name: creating a self-signed one (sandbox stand-in, no ACME)"
      mkdir -p "$live"
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
        -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
        -keyout "$live/privkey.pem" -out "$live/fullchain.pem" 2>/dev/null
      cp "$live/fullchain.pem" "$live/chain.pem"
    done
  done
}

ensure_certs
nginx -g 'daemon off;' &
pid=$!
trap 'ensure_certs && nginx -s reload' HUP
trap 'nginx -s quit; wait "$pid"; exit 0' TERM INT QUIT
while kill -0 "$pid" 2>/dev/null; do
  wait "$pid" || true
done
