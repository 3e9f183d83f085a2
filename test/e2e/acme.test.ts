// Real certificates in the sandbox: natsfleet deploys a host with the proxy on (the sandbox manifest's
// nginx-certbot stand-in: Debian's nginx and certbot), the certbot in it obtains a certificate for the
// host's domain from the fleet's own ACME server (pebble) by HTTP-01 on the host's port 80, nginx
// serves it, and a forced renewal gives a new one. Nothing leaves the fleet's network.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { acmeRootCA, sandboxDomain, sandboxVolumePath } from '../../controller/sandbox/fleet.js';
import { PROXY_IMAGE } from '../../controller/sandbox/images.js';

const fleet = inject('fleet');
const h = fleet.hosts[0];
const s = new Scenario(fleet, h);
const domain = sandboxDomain(h.name);
const VOLUME = 'nginx_secrets'; // the manifest's spec.proxy.secretsVolume (the default)
const letsencrypt = sandboxVolumePath(VOLUME);
const live = `${letsencrypt}/live/${domain}`;
const ROOT = '/tmp/natsfleet-e2e-pebble-root.pem';

const fingerprint = (file: string) => s.sh(`openssl x509 -noout -fingerprint -sha256 -in ${file}`);
/** The certificate nginx presents for the domain on the host's port 443. */
const served = () =>
  s.sh(
    `echo | openssl s_client -connect 127.0.0.1:443 -servername ${domain} 2>/dev/null | openssl x509 -noout -fingerprint -sha256`,
  );
/** /varz through nginx, the certificate checked against pebble's root (no -k). */
const verifiedHttps = () => s.sh(`curl -sSf --cacert ${ROOT} --resolve ${domain}:443:127.0.0.1 https://${domain}/varz`);

async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await get().catch((e: unknown) => e as T);
    if (ok(v)) return v;
    if (Date.now() - started > timeoutMs)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s (last: ${String(v)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  await s.wipe();
  // Certificates of earlier runs on this host go too: this file obtains its own.
  await s.sh(`docker volume rm -f ${VOLUME} >/dev/null`);
});
afterAll(async () => {
  await s.wipe();
  await s.close();
});

describe('certificates from the fleet ACME server (pebble), obtained by the proxy stand-in certbot', () => {
  it('issues a real certificate for the host domain, which nginx serves', async () => {
    // The host's containers (host network) resolve the fleet's pebble and the host's own domain.
    const resolved = await s.sh(
      `docker run --rm --network host --entrypoint getent ${PROXY_IMAGE} hosts pebble ${domain} | awk '{print $2}'`,
    );
    expect(resolved.split('\n')).toEqual(['pebble', domain]);

    const started = Date.now();
    const run = await s.apply(await s.manifest());
    expect(run.apply).toMatchObject({ outcome: 'applied', health: 'Healthy' });
    expect(run.apply!.steps).toContain('proxy-up');
    // certbot's lineage: live/<domain>/ links into archive/<domain>/, renewal/<domain>.conf.
    await until(
      'the lineage',
      () => s.sh(`test -s ${letsencrypt}/renewal/${domain}.conf && readlink ${live}/fullchain.pem`),
      (v) => v === `../../archive/${domain}/fullchain1.pem`,
    );
    console.log(`[acme] apply to certificate: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(await s.sh(`grep '^server = ' ${letsencrypt}/renewal/${domain}.conf`)).toBe(
      `server = ${fleet.acme.directory}`,
    );

    // Issued by pebble: the chain verifies against its root, the certificate is not self-signed.
    await s.sh(`cat > ${ROOT} <<'EOF'\n${(await acmeRootCA(fleet)).trim()}\nEOF`);
    expect(await s.sh(`openssl verify -CAfile ${ROOT} -untrusted ${live}/chain.pem ${live}/fullchain.pem`)).toBe(
      `${live}/fullchain.pem: OK`,
    );
    const subject = await s.sh(`openssl x509 -noout -subject -in ${live}/fullchain.pem`);
    const issuer = await s.sh(`openssl x509 -noout -issuer -in ${live}/fullchain.pem`);
    expect(subject).toBe(`subject=CN = ${domain}`);
    expect(issuer).toMatch(/^issuer=CN = Pebble Intermediate CA /);
    expect(await s.sh(`openssl x509 -noout -checkend 86400 -in ${live}/fullchain.pem`)).toContain('will not expire');

    // nginx presents it (after the reload that follows certbot), and HTTPS verifies against pebble's root.
    const file = await fingerprint(`${live}/fullchain.pem`);
    await until('nginx serving the certificate', served, (v) => v === file, 20_000);
    expect(JSON.parse(await verifiedHttps()).server_name).toBe(h.name);
  });

  it('renews on `certbot renew --force-renewal`; SIGHUP makes nginx serve the new certificate', async () => {
    const before = await fingerprint(`${live}/fullchain.pem`);
    const started = Date.now();
    const out = await s.sh('docker exec nginx-certbot certbot renew --force-renewal 2>&1');
    console.log(`[acme] forced renewal: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(out).toContain('all renewals succeeded');
    expect(await s.sh(`readlink ${live}/fullchain.pem`)).toBe(`../../archive/${domain}/fullchain2.pem`);
    const after = await fingerprint(`${live}/fullchain.pem`);
    expect(after).not.toBe(before);
    expect(await s.sh(`openssl verify -CAfile ${ROOT} -untrusted ${live}/chain.pem ${live}/fullchain.pem`)).toBe(
      `${live}/fullchain.pem: OK`,
    );

    // The controller's proxy reload: SIGHUP runs the certificate loop (nothing due) and reloads nginx.
    await s.sh('docker kill --signal=HUP nginx-certbot >/dev/null');
    await until('nginx serving the renewed certificate', served, (v) => v === after, 30_000);
    expect(JSON.parse(await verifiedHttps()).server_name).toBe(h.name);
    // The lineage is the same one, renewed: no second certificate was requested.
    expect(await s.sh(`ls ${letsencrypt}/archive`)).toBe(domain);
  });
});
