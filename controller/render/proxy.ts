// Owns the nginx + certbot proxy files (jonasal/nginx-certbot contract): the compose project,
// its env file and the TLS server block that fronts NATS monitoring.
import { posix } from 'node:path';
import type { HostSpec } from '../manifest/host-spec.js';
import { MANAGED_HEADER } from './artifact.js';

export const PROXY_CONTAINER = 'nginx-certbot';
/** Where the image keeps certificates and reads server blocks. */
const LETSENCRYPT = '/etc/letsencrypt';
const USER_CONF_D = '/etc/nginx/user_conf.d';

export const proxyComposePath = (h: HostSpec) => posix.join(h.proxy.dir, 'compose.yml');
export const proxySitePath = (h: HostSpec) => posix.join(h.proxy.userConfDir, `${h.proxy.domain}.conf`);

export function renderCompose(h: HostSpec): string {
  const p = h.proxy;
  return [
    `# ${MANAGED_HEADER}`,
    'services:',
    '  nginx:',
    `    image: ${p.image}`,
    `    container_name: ${PROXY_CONTAINER}`,
    '    restart: unless-stopped',
    '    network_mode: host',
    '    env_file:',
    `      - ${p.envFile}`,
    '    volumes:',
    `      - ${p.secretsVolume}:${LETSENCRYPT}`,
    `      - ${p.userConfDir}:${USER_CONF_D}:ro`,
    'volumes:',
    `  ${p.secretsVolume}:`,
    '    external: true',
    '',
  ].join('\n');
}

export function renderProxyEnv(h: HostSpec): string {
  return [
    `# ${MANAGED_HEADER}`,
    `CERTBOT_EMAIL=${h.proxy.email}`,
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
  const d = h.proxy.domain!;
  const live = `${LETSENCRYPT}/live/${d}`;
  const upstream = `http://127.0.0.1:${h.nats.httpPort}`;
  return [
    `# ${MANAGED_HEADER}`,
    `# TLS in front of NATS monitoring of ${h.nats.serverName}.`,
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
