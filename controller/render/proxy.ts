// Owns the nginx + certbot proxy files (jonasal/nginx-certbot contract): the compose project,
// its env file and the TLS server block that fronts NATS monitoring. Every value keeps its meaning in
// the file it lands in: compose.yml strings are double-quoted (a volume named `true` stays a string)
// with `$` escaped from Compose's interpolation; a value that no quoting can keep (a volume name
// Compose would read as a path, an e-mail the env file would cut or expand, a domain that is not a
// DNS name inside the nginx server block) is refused, naming its field. The schema refuses them all
// first: these checks hold for a HostSpec however it was built.
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import { MANAGED_HEADER } from './artifact.js';

export const PROXY_CONTAINER = 'nginx-certbot';
/** Where the image keeps certificates and reads server blocks. */
export const LETSENCRYPT = '/etc/letsencrypt';
const USER_CONF_D = '/etc/nginx/user_conf.d';

/** `value`, or an error naming `field` when it does not match `ok`. */
function checked(field: string, value: unknown, ok: RegExp, what: string): string {
  if (typeof value !== 'string' || !ok.test(value))
    throw new Error(`${field}: ${JSON.stringify(value)} ${what}, so it cannot be written to the proxy's files`);
  return value;
}
/** Docker's rule for volume names: anything else is read as a host path (`~`, `.`, `/`) or refused. */
const volumeName = (h: HostSpec) =>
  checked(
    'spec.proxy.secretsVolume',
    h.proxy.secretsVolume,
    /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    'is not a Docker volume name',
  );
/** A bind mount's source: absolute, and without the `:` that separates a mount's fields. */
const hostDir = (h: HostSpec) =>
  checked('spec.proxy.userConfDir', h.proxy.userConfDir, /^\/[^:]*$/, 'is not an absolute path without ":"');
/** Lower-case DNS name: goes unquoted into nginx directives and into a file name. */
const domain = (h: HostSpec) =>
  checked(
    'spec.proxy.domain',
    h.proxy.domain,
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/,
    'is not a lower-case domain name',
  );
/**
 * The characters an env file value keeps as they are under both Compose v1 (no quoting, no
 * interpolation) and v2 (`#` starts a comment, `$` expands, quotes are stripped, blanks trimmed).
 */
const email = (h: HostSpec) =>
  checked('spec.proxy.email', h.proxy.email, /^[A-Za-z0-9._%+@-]+$/, 'is not an e-mail address the env file keeps');
/** A port number: nginx's proxy_pass takes what follows the colon. */
const port = (field: string, n: unknown) => checked(field, String(n), /^[1-9][0-9]{0,4}$/, 'is not a port number');

/**
 * A compose.yml string: YAML double-quoted (JSON's escapes are YAML's; characters YAML does not
 * allow raw, or that YAML 1.1 parsers such as Compose v1's read as line breaks, escaped too), with
 * `$` doubled so that Compose does not interpolate it.
 */
export function composeString(s: string): string {
  return JSON.stringify(s.replace(/\$/g, '$$$$')).replace(
    /[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** The proxy's compose file name, in spec.proxy.dir. */
export const PROXY_COMPOSE_FILE = 'compose.yml';
export const proxyComposePath = (h: HostSpec) => posix.join(h.proxy.dir, PROXY_COMPOSE_FILE);
export const proxySitePath = (h: HostSpec) => posix.join(h.proxy.userConfDir, `${domain(h)}.conf`);

export function renderCompose(h: HostSpec): string {
  const p = h.proxy;
  const q = composeString;
  return [
    `# ${MANAGED_HEADER}`,
    'services:',
    '  nginx:',
    `    image: ${q(p.image)}`,
    `    container_name: ${q(PROXY_CONTAINER)}`,
    // always, not unless-stopped: a container the daemon stopped on its way down (a Docker upgrade) was
    // seen to stay exited with unless-stopped; always brings it back when Docker starts again.
    `    restart: ${q('always')}`,
    `    network_mode: ${q('host')}`,
    '    env_file:',
    `      - ${q(p.envFile)}`,
    '    volumes:',
    `      - ${q(`${volumeName(h)}:${LETSENCRYPT}`)}`,
    `      - ${q(`${hostDir(h)}:${USER_CONF_D}:ro`)}`,
    'volumes:',
    `  ${q(p.secretsVolume)}:`,
    '    external: true',
    '',
  ].join('\n');
}

export function renderProxyEnv(h: HostSpec): string {
  return [
    `# ${MANAGED_HEADER}`,
    `CERTBOT_EMAIL=${email(h)}`,
    `STAGING=${h.proxy.staging ? 1 : 0}`,
    'DHPARAM_SIZE=2048',
    'RSA_KEY_SIZE=2048',
    'ELLIPTIC_CURVE=secp256r1',
    'USE_ECDSA=1',
    'RENEWAL_INTERVAL=8d',
    '',
  ].join('\n');
}

export function renderProxySite(h: HostSpec): string {
  const d = domain(h);
  const live = `${LETSENCRYPT}/live/${d}`;
  const upstream = `http://127.0.0.1:${port('spec.nats.httpPort', h.nats.httpPort)}`;
  // A comment ends at the line break: none may come from a value.
  const serverName = String(h.nats.serverName).replace(/[\u0000-\u001f\u007f\u0085\u2028\u2029]/g, '?');
  return [
    `# ${MANAGED_HEADER}`,
    `# TLS in front of NATS monitoring of ${serverName}.`,
    'server {',
    '    listen 443 ssl;',
    '    listen [::]:443 ssl;',
    `    server_name ${d};`,
    '',
    `    ssl_certificate         ${live}/fullchain.pem;`,
    `    ssl_certificate_key     ${live}/privkey.pem;`,
    `    ssl_trusted_certificate ${live}/chain.pem;`,
    `    ssl_dhparam ${LETSENCRYPT}/dhparams/dhparam.pem;`,
    '',
    '    location / {',
    `        proxy_pass ${upstream};`,
    '        proxy_http_version 1.1;',
    '        proxy_set_header Host $host;',
    '        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;',
    '        proxy_set_header X-Forwarded-Proto https;',
    '    }',
    '}',
    '',
  ].join('\n');
}
