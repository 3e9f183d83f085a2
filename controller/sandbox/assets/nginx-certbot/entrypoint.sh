#!/bin/bash
# natsfleet sandbox stand-in for jonasal/nginx-certbot (its src/scripts/start_nginx_certbot.sh and
# run_certbot.sh), with Debian's nginx and certbot. Follows the real image's contract:
#   - CERTBOT_EMAIL is required; STAGING, RSA_KEY_SIZE, ELLIPTIC_CURVE, USE_ECDSA, RENEWAL_INTERVAL and
#     DHPARAM_SIZE mean what they mean there;
#   - server blocks come from /etc/nginx/user_conf.d/, linked into /etc/nginx/conf.d/ (which nginx reads)
#     by the certificate loop, at start and on SIGHUP; so `nginx -t` checks a new file only once the loop
#     has linked it, as in the real image. Each `ssl_certificate_key
#     /etc/letsencrypt/live/<name>/privkey.pem;` names a certificate, for the file's server_name domains,
#     which certbot obtains by HTTP-01 (webroot /var/www/letsencrypt, served on port 80) into a lineage
#     (live/<name>/ linking into archive/<name>/, renewal/<name>.conf);
#   - a loop runs certbot every RENEWAL_INTERVAL (certbot --keep renews only what is due), then reloads
#     nginx; SIGHUP runs that loop now.
# The ACME server: the image sets CERTBOT_PRODUCTION_URL and CERTBOT_STAGING_URL (which the real image
# also reads) both to the sandbox fleet's own pebble (https://pebble:14000/dir, trusted through
# REQUESTS_CA_BUNDLE): STAGING=1 keeps meaning "the test CA", and so does STAGING=0 here. Nothing in
# the sandbox reaches Let's Encrypt.
# One difference: where the real image leaves a server block out until its certificate exists, this
# one puts a temporary self-signed certificate in live/<name>/ so that nginx serves the block from the
# start. certbot replaces it: the placeholder is removed right before certbot runs (certbot refuses a
# live directory it did not make; nginx keeps the placeholder in memory meanwhile), and made again if
# certbot failed. Between the two, live/<name>/ does not exist for a few seconds.
set -uo pipefail

: "${CERTBOT_PRODUCTION_URL:=https://pebble:14000/dir}"
: "${CERTBOT_STAGING_URL:=https://pebble:14000/dir}"
: "${RENEWAL_INTERVAL:=8d}"
: "${RSA_KEY_SIZE:=2048}"
: "${ELLIPTIC_CURVE:=secp256r1}"
: "${USE_ECDSA:=1}"
: "${DHPARAM_SIZE:=2048}"
: "${STAGING:=0}"

LE=/etc/letsencrypt
WEBROOT=/var/www/letsencrypt
RERUN=/run/nginx-certbot.rerun
SLEEP_PID=/run/nginx-certbot.sleep

log() { echo "$(date '+%Y/%m/%d %T') [$1] $2"; }
info() { log info "$1"; }
error() { log error "$1" >&2; }

if [ -z "${CERTBOT_EMAIL:-}" ]; then
  error "CERTBOT_EMAIL environment variable undefined; certbot will do nothing!"
  exit 1
fi

# SIGHUP: run the certificate loop now (and so reload nginx). Set first: the controller may signal a
# container that has only just started.
# shellcheck disable=SC2317 # run by the trap
rerun() {
  info "Received SIGHUP signal; running the certificate loop now"
  : >"$RERUN"
  [ -s "$SLEEP_PID" ] && kill "$(cat "$SLEEP_PID")" 2>/dev/null
  return 0
}
trap rerun HUP
rm -f "$RERUN" "$SLEEP_PID"

# As the real image: a link in conf.d/ to every file of user_conf.d/, none to a file that is gone.
symlink_user_configs() {
  local link src
  for link in /etc/nginx/conf.d/*; do
    if [ -L "$link" ] && [ ! -e "$link" ]; then
      info "Removing broken symlink '$link' to '$(readlink "$link")'"
      rm -f "$link"
    fi
  done
  while IFS= read -r -d '' src; do
    link="/etc/nginx/conf.d/${src#/etc/nginx/user_conf.d/}"
    [ -L "$link" ] && [ "$(readlink "$link")" = "$src" ] && continue
    info "Creating symlink '$link' to '$src'"
    mkdir -p "$(dirname "$link")"
    ln -sfn "$src" "$link"
  done < <(find /etc/nginx/user_conf.d/ -type f -print0)
}

# cert name -> its domains (space-separated, first one first), from the server blocks nginx reads.
declare -A certs
parse_configs() {
  certs=()
  local conf name domains
  for conf in /etc/nginx/conf.d/*.conf; do
    [ -f "$conf" ] || continue
    # Domains as the real image takes them: regexes (~...) and nginx variables are left out.
    domains=$(sed -n -E 's&^\s*server_name\s+([^;]*);.*$&\1&p' "$conf" | xargs -n1 echo | grep -v -e '^~' -e '\$' || true)
    for name in $(sed -n -E 's&^\s*ssl_certificate_key\s+/etc/letsencrypt/live/(.*)/privkey.pem;.*&\1&p' "$conf" | uniq); do
      certs[$name]=$(echo "${certs[$name]:-}" "$domains" | xargs -n1 echo | awk '!a[$0]++' | tr '\n' ' ')
    done
  done
}

# A certificate certbot obtained (and renews) has a renewal config; anything else in live/ is ours.
is_lineage() { [ -s "$LE/renewal/$1.conf" ]; }

# dhparam for the server blocks' ssl_dhparam (DSA-style parameters: seconds instead of minutes).
ensure_dhparam() {
  local dh
  for dh in $(sed -n -E 's&^\s*ssl_dhparam\s+(.*);.*&\1&p' /etc/nginx/conf.d/*.conf 2>/dev/null | sort -u) \
    "$LE/dhparams/dhparam.pem"; do
    [ -s "$dh" ] && continue
    info "Creating the ${DHPARAM_SIZE} bit Diffie-Hellman parameters '$dh'"
    mkdir -p "$(dirname "$dh")"
    openssl dhparam -dsaparam -out "$dh" "$DHPARAM_SIZE" 2>/dev/null && chmod 600 "$dh"
  done
}

# A temporary self-signed certificate wherever a server block's certificate is missing.
ensure_placeholders() {
  local name live first
  for name in "${!certs[@]}"; do
    live="$LE/live/$name"
    if [ -s "$live/privkey.pem" ] && [ -s "$live/fullchain.pem" ] && [ -s "$live/chain.pem" ]; then continue; fi
    is_lineage "$name" && continue # certbot's own (even if broken): certbot's to mend
    first=${certs[$name]%% *}
    info "No certificate for '$name' yet: a temporary self-signed one until certbot obtains it"
    rm -rf "$live"
    mkdir -p "$live"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
      -subj "/CN=${first:-$name}" -addext "subjectAltName=DNS:${first:-$name}" \
      -keyout "$live/privkey.pem" -out "$live/fullchain.pem" 2>/dev/null
    cp "$live/fullchain.pem" "$live/chain.pem"
  done
}

last_reload=0
reload_nginx() {
  if nginx -t -q; then
    nginx -s reload
    last_reload=$EPOCHSECONDS
  else
    error "Nginx configuration is invalid, skipped reloading. Check the logs for details."
  fi
}

# As run_certbot.sh: one certbot run per certificate; certbot decides whether one is due.
run_certbot() {
  local url=$CERTBOT_PRODUCTION_URL name key_type domain
  [ "$STAGING" = 1 ] && url=$CERTBOT_STAGING_URL
  for name in "${!certs[@]}"; do
    if [[ "${name,,}" =~ (^|[-.])(ecdsa|ecc)([-.]|$) ]]; then
      key_type=ecdsa
    elif [[ "${name,,}" =~ (^|[-.])rsa([-.]|$) ]]; then
      key_type=rsa
    elif [ "$USE_ECDSA" = 0 ]; then
      key_type=rsa
    else
      key_type=ecdsa
    fi
    local domains=()
    for domain in ${certs[$name]}; do domains+=(-d "$domain"); done
    if ! is_lineage "$name"; then
      # nginx reloads after the signal: let it read the placeholder first (a reload that found it gone
      # would fail, keeping the old config).
      if ((EPOCHSECONDS - last_reload <= 1)); then sleep 1; fi
      # The placeholder (or a failed attempt's remains) must go: certbot makes live/ and archive/ itself.
      rm -rf "${LE:?}/live/$name" "${LE:?}/archive/$name"
    fi
    info "Requesting an ${key_type^^} certificate for '$name' (http-01 through webroot) from $url"
    if ! certbot certonly --agree-tos --keep -n --text \
      --preferred-challenges http-01 --authenticator webroot --webroot-path="$WEBROOT" \
      --email "$CERTBOT_EMAIL" --server "$url" \
      --rsa-key-size "$RSA_KEY_SIZE" --elliptic-curve "$ELLIPTIC_CURVE" --key-type "$key_type" \
      --cert-name "$name" "${domains[@]}"; then
      error "Certbot failed for '$name'. Check the logs for details."
    fi
  done
}

# The configs that are new since the last run are served at its end (as in the real image), with a
# placeholder if certbot could not obtain their certificate.
certificate_loop() {
  info "Running the certificate loop"
  symlink_user_configs
  parse_configs
  ensure_dhparam
  run_certbot
  ensure_placeholders
  reload_nginx
}

renewal_loop() {
  trap - HUP
  local sleeper
  while true; do
    rm -f "$RERUN"
    certificate_loop
    info "Certificate loop will now sleep $RENEWAL_INTERVAL"
    sleep "$RENEWAL_INTERVAL" &
    sleeper=$!
    echo "$sleeper" >"$SLEEP_PID"
    # A SIGHUP during the loop above: at once again.
    [ -e "$RERUN" ] && kill "$sleeper" 2>/dev/null
    wait "$sleeper"
  done
}

mkdir -p "$LE/live" "$WEBROOT"
symlink_user_configs
parse_configs
ensure_dhparam
ensure_placeholders

info "Starting the Nginx service"
rm -f /run/nginx.pid
nginx -g 'daemon off;' &
NGINX_PID=$!
# nginx writes its pid once it has read its config: only then may the loop replace a placeholder.
for _ in $(seq 100); do
  [ -s /run/nginx.pid ] || ! kill -0 "$NGINX_PID" 2>/dev/null && break
  sleep 0.1
done
renewal_loop &
LOOP_PID=$!

# shellcheck disable=SC2317 # run by the trap
stop() {
  info "Stopping"
  kill "$LOOP_PID" 2>/dev/null
  nginx -s quit 2>/dev/null || kill "$NGINX_PID" 2>/dev/null
  wait "$NGINX_PID"
  exit 0
}
trap stop TERM INT QUIT

# Like the real image: when nginx or the loop ends, so does the container. A trapped signal makes
# `wait` return early: wait again.
while kill -0 "$NGINX_PID" 2>/dev/null && kill -0 "$LOOP_PID" 2>/dev/null; do
  wait -n "$NGINX_PID" "$LOOP_PID"
done
kill "$LOOP_PID" "$NGINX_PID" 2>/dev/null
wait "$NGINX_PID"
exit 1
