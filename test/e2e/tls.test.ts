// Issue 13's proofs 1-3, end to end on the sandbox with real certbot and a real ACME server (pebble):
// TLS on the client port with the certificate the proxy obtains, a forced renewal served within 60 s
// without a restart or a natsfleet run, and an expired certificate reported as drift and healed.
import type { TlsOptions } from 'nats';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { acmeRootCA, sandboxDomain } from '../../controller/sandbox/fleet.js';
import { plaintextClient, probeServedTls } from '../../controller/observe/tls-probe.js';
import { certFact, firstCertificate } from '../../controller/observe/fact-table.js';
import { driftIssueBody } from '../../controller/report/markdown.js';
import type { ServedTls } from '../../controller/observe/facts.js';
import { Scenario } from './helpers.js';

const fleet = inject('fleet');
const h = fleet.hosts[3];
const s = new Scenario(fleet, h, 'e2e-tls');
const domain = sandboxDomain(h.name);
const live = `/var/lib/docker/volumes/nginx_secrets/_data/live/${domain}`;
let root: string;

const served = async (): Promise<ServedTls> => {
  await s.sh('true');
  return probeServedTls(s.shell!, 4222, { servername: domain, handshakeFirst: false });
};
const fingerprint = async () => {
  const r = await served();
  if (!('cert' in r)) throw new Error(`no certificate served: ${JSON.stringify(r)}`);
  return r.cert;
};
const fileCert = async () => certFact(await s.sh(firstCertificate(`${live}/fullchain.pem`)))!;
const varz = async () => JSON.parse(await s.sh('curl -s 127.0.0.1:8222/varz'));
const tlsManifest = () =>
  s.manifest((d) => {
    d.spec.nats.tls = { enabled: true, source: 'proxy' };
    d.spec.nats.image = fleet.natsImages.next;
  });

beforeAll(async () => {
  await s.wipe();
  root = await acmeRootCA(fleet);
}, 120_000);

afterAll(async () => {
  await s.wipe();
  await s.close();
}, 120_000);

describe('TLS on the client port with the proxy certificate (issue 13)', () => {
  it('1. first enablement: certbot obtains the certificate from pebble, then NATS turns TLS-only', async () => {
    const t = await tlsManifest();
    const plan = await s.plan(t);
    expect(plan.plan!.warnings?.[0]).toMatch(/^TLS waits for the certificate: the proxy obtains it for/);
    const run = await s.apply(t);
    expect(run.apply?.outcome, JSON.stringify(run.apply)).toBe('applied');
    expect(run.plan!.warnings?.[0]).toMatch(
      /^first step applied without TLS .* certbot obtained the certificate in \d+ s$/,
    );
    const v = await varz();
    expect(v.tls_required).toBe(true);
    // The switch to TLS was a reload of the server the first step started (not a restart).
    expect(v.config_load_time).not.toBe(v.start);

    // A client that verifies the chain against pebble's CA and the host name connects and publishes.
    const ok = await s.nats({ token: s.token() }, 4222, { ca: root, servername: domain } as TlsOptions);
    expect(ok.error).toBeUndefined();
    const sub = ok.nc!.subscribe('tls.check', { max: 1 });
    ok.nc!.publish('tls.check', 'over TLS');
    for await (const m of sub) expect(m.string()).toBe('over TLS');
    await ok.close();
    // Without pebble's CA, or for another name, the client's own check refuses the server.
    for (const tls of [{ servername: domain }, { ca: root, servername: 'other.sandbox.test' }]) {
      const refused = await s.nats({ token: s.token() }, 4222, tls as TlsOptions);
      expect(refused.error).toBeDefined();
    }
    // A plaintext client is refused.
    expect(await plaintextClient(s.shell!, 4222)).toBe('refused');
    // The certificate was issued by pebble (not a stand-in's self-signed one) and is what NATS serves.
    const file = await fileCert();
    expect(file.issuer).toMatch(/Pebble/i);
    expect((await fingerprint()).fingerprint).toBe(file.fingerprint);
    expect((await s.plan(await tlsManifest())).plan).toMatchObject({ sync: 'Synced', drift: [] });
  });

  it('2. a forced renewal is served within 60 s, with no restart and no natsfleet run', async () => {
    const before = await fingerprint();
    const start = (await varz()).start;
    await s.sh('docker exec nginx-certbot certbot renew --force-renewal -n >/dev/null 2>&1');
    const renewed = await fileCert();
    expect(renewed.fingerprint).not.toBe(before.fingerprint);
    const t0 = Date.now();
    let now = before;
    while (Date.now() - t0 < 60_000) {
      now = await fingerprint();
      if (now.fingerprint === renewed.fingerprint) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect(now.fingerprint).toBe(renewed.fingerprint);
    expect((await varz()).start).toBe(start);
    console.log(`renewal served after ${Math.round((Date.now() - t0) / 1000)} s`);
  });

  it('3. an expired certificate is drift with its dates; selfHeal renews it and NATS serves a valid one', async () => {
    // The same key, a certificate that ended last month, written through certbot's links (as a botched
    // manual renewal would): the path unit makes NATS serve it.
    await s.sh(
      [
        'set -e; d=$(mktemp -d); cd "$d"',
        `printf '[ca]\\ndefault_ca=d\\n[d]\\ndatabase=index\\nnew_certs_dir=.\\nserial=serial\\ndefault_md=sha256\\npolicy=p\\ncopy_extensions=copy\\n[p]\\ncommonName=supplied\\n' > ca.cnf`,
        'touch index; echo 01 > serial',
        `openssl req -new -key ${live}/privkey.pem -subj /CN=${domain} -addext subjectAltName=DNS:${domain} -out r.csr`,
        `openssl ca -batch -config ca.cnf -selfsign -keyfile ${live}/privkey.pem -in r.csr -startdate 20260901000000Z -enddate 20261101000000Z -out x.pem 2>/dev/null`,
        `openssl x509 -in x.pem > ${live}/cert.pem`,
        `openssl x509 -in x.pem > ${live}/fullchain.pem`,
        'rm -rf "$d"',
      ].join('\n'),
    );
    let now = await fingerprint();
    for (let i = 0; i < 30 && !now.notAfter.startsWith('2026-11-01'); i++) {
      await new Promise((r) => setTimeout(r, 1000));
      now = await fingerprint();
    }
    expect(now.notAfter).toMatch(/^2026-11-01/);
    const t = await tlsManifest();
    const sweep = await s.plan(t);
    const drift = sweep.plan!.drift.join('\n');
    expect(drift).toMatch(
      /NATS serves a certificate that expired on 2026-11-01: .* \(valid 2026-09-01 to 2026-11-01\)/,
    );
    expect(sweep.plan!.steps.map((x) => x.step)).toEqual(['renew-cert', 'reload']);
    expect(driftIssueBody(sweep.plan!, true, 'e2e-tls')).toMatch(/expired on 2026-11-01/);
    const heal = await s.apply(t);
    expect(heal.apply?.outcome, JSON.stringify(heal.apply)).toBe('applied');
    const after = await fingerprint();
    expect(Date.parse(after.notAfter)).toBeGreaterThan(Date.now());
    expect(after.fingerprint).toBe((await fileCert()).fingerprint);
    expect((await s.plan(t)).plan).toMatchObject({ sync: 'Synced', drift: [] });
  });
});
