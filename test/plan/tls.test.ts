// TLS on the client port as planning sees it, on plain values: the first enablement in two steps, the
// served certificate against the file (renewal not loaded, expired, expiring), the renewal watch.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { certificateFirst, planTls } from '../../controller/plan/tls.js';
import { planHost } from '../../controller/plan/plan.js';
import { formatPlan } from '../../controller/plan/format.js';
import { selfSigned } from '../helpers/certs.js';
import { certFact, firstCertificate } from '../../controller/observe/fact-table.js';
import type { CertFact, HostFacts } from '../../controller/observe/facts.js';
import { desiredFrom, factsFrom } from '../helpers/observed.js';
import { allGoodHosts, fixtureSecrets } from '../helpers/fixtures.js';
import { renderHost } from '../../controller/render/desired.js';

const NOW = new Date('2026-11-26T12:00:00Z');
const cert = (fingerprint: string, notAfter: string, notBefore = '2026-09-01T00:00:00Z'): CertFact => ({
  fingerprint,
  notBefore,
  notAfter,
  subject: 'CN=nats-sb-1.sandbox.test',
  issuer: 'CN=Pebble Intermediate CA',
  names: ['nats-sb-1.sandbox.test'],
});
const VALID = cert('AA:11', '2027-02-24T00:00:00Z');
const RENEWED = cert('BB:22', '2027-03-01T00:00:00Z');
const EXPIRED = cert('CC:33', '2026-11-01T00:00:00Z', '2026-08-01T00:00:00Z');
const EXPIRING = cert('DD:44', '2026-12-03T00:00:00Z');

const tlsDesired = (tls: Record<string, unknown> = { enabled: true, source: 'proxy' }) =>
  desiredFrom((doc) => (doc.spec.nats.tls = tls));
const withTls = (d: ReturnType<typeof tlsDesired>, tls: Partial<NonNullable<HostFacts['tls']>>, tlsRequired = true) =>
  factsFrom(d, undefined, (f) => {
    f.tls = { lineage: true, ...tls };
    f.tlsWatch = { activeState: 'active', unitFileState: 'enabled' };
    f.varz = { ...f.varz, tls_required: tlsRequired };
  });
const steps = (x: { steps: { step: string }[] }) => x.steps.map((s) => s.step);

describe('first enablement with the proxy certificate: the certificate first, then one reload', () => {
  const d = tlsDesired();

  it('no certificate yet: the config keeps no tls block, the proxy and the watch go in, a note warns', () => {
    const f = withTls(d, { lineage: false }, false);
    const first = certificateFirst(d, f)!;
    expect(first.tls!.withheld).toBe(true);
    const conf = first.files.find((x) => x.id === 'nats-config')!;
    expect(conf.content).not.toContain('tls {');
    expect(d.files.find((x) => x.id === 'nats-config')!.content).toContain('tls {');
    expect(first.files.map((x) => x.id)).toContain('tls-watch');
    const p = planHost(first, f, 'r', 'content', NOW);
    expect(p.blocked).toEqual([]);
    expect(p.warnings).toEqual([
      expect.stringMatching(/^TLS waits for the certificate: the proxy obtains it for nats-sb-1/),
    ]);
    expect(formatPlan(p)).toContain('note: TLS waits for the certificate');
  });

  it('the certificate exists: the whole desired state, and clients are warned that plaintext is refused', () => {
    const f = withTls(d, { file: VALID, served: { plaintext: true } }, false);
    expect(certificateFirst(d, f)).toBeUndefined();
    const p = planHost(d, f, 'r', 'content', NOW);
    expect(p.warnings).toEqual([
      'port 4222 becomes TLS-only with this apply: clients connecting without TLS are refused ' +
        '(they connect to tls://nats-sb-1.sandbox.test:4222)',
    ]);
  });

  it('a server that serves TLS already is never taken back to plaintext, whatever certbot has', () => {
    expect(certificateFirst(d, withTls(d, { lineage: false, file: VALID }, true))).toBeUndefined();
  });

  it('operator files are never withheld (they exist or the host is blocked)', () => {
    const files = tlsDesired({
      enabled: true,
      source: 'files',
      certFile: '/etc/nats/tls/c.pem',
      keyFile: '/etc/nats/tls/k.pem',
    });
    const f = withTls(files, { lineage: false }, false);
    expect(certificateFirst(files, f)).toBeUndefined();
    expect(planTls(files, f, NOW).blocked).toEqual([
      '/etc/nats/tls/c.pem is missing or holds no certificate: NATS cannot be pointed at it',
    ]);
  });
});

describe('planTls: served certificate against the file', () => {
  const d = tlsDesired();
  const cases: [string, Partial<NonNullable<HostFacts['tls']>>, string[], RegExp[]][] = [
    ['served = file, valid, watch on: nothing', { file: VALID, served: { cert: VALID } }, [], []],
    [
      'a renewal not loaded: drift, a reload serves the file',
      { file: RENEWED, served: { cert: VALID } },
      ['reload'],
      [
        /^NATS serves AA:11… \(valid 2026-09-01 to 2027-02-24\), but the file holds BB:22… .*the renewal was not loaded$/,
      ],
    ],
    [
      'expired, the file too: drift with its dates, certbot renews, a reload serves it',
      { file: EXPIRED, served: { cert: EXPIRED } },
      ['renew-cert', 'reload'],
      [/^NATS serves a certificate that expired on 2026-11-01: CC:33… \(valid 2026-08-01 to 2026-11-01\)$/],
    ],
    [
      'expires within two weeks: reported, certbot renews',
      { file: EXPIRING, served: { cert: EXPIRING } },
      ['renew-cert', 'reload'],
      [/^NATS serves a certificate that expires on 2026-12-03/],
    ],
    [
      'expired served, valid file (a reload was missed): reload only',
      { file: VALID, served: { cert: EXPIRED } },
      ['reload'],
      [/expired on 2026-11-01/, /the renewal was not loaded/],
    ],
  ];
  it.each(cases)('%s', (_n, tls, want, drift) => {
    const p = planTls(d, withTls(d, tls), NOW);
    expect(steps(p)).toEqual(want);
    expect(p.drift).toHaveLength(drift.length);
    drift.forEach((re, i) => expect(p.drift[i]).toMatch(re));
    expect(p.blocked).toEqual([]);
  });

  it('operator files: an expired file is drift to fix by hand (natsfleet cannot renew it)', () => {
    const files = tlsDesired({
      enabled: true,
      source: 'files',
      certFile: '/etc/nats/tls/c.pem',
      keyFile: '/etc/nats/tls/k.pem',
    });
    const p = planTls(files, withTls(files, { file: EXPIRED, served: { cert: EXPIRED } }), NOW);
    expect(steps(p)).toEqual([]);
    expect(p.drift[1]).toMatch(/^the certificate file \/etc\/nats\/tls\/c.pem expired on 2026-11-01: replace it/);
  });

  it('handshakeFirst on a 2.9 image is blocked before anything runs', () => {
    const hf = tlsDesired({ enabled: true, source: 'proxy', handshakeFirst: true });
    expect(planTls(hf, withTls(hf, { file: VALID, served: { cert: VALID } }), NOW).blocked).toEqual([
      'handshakeFirst needs NATS 2.10 or later (handshake_first); nats:2.9.10 runs 2.9',
    ]);
  });

  it('route TLS alone: installing the renewal watch enables it (never "TLS turned off")', () => {
    const core = renderHost(
      allGoodHosts().find((h) => h.name === 'core-a')!,
      fixtureSecrets,
    );
    expect(core.tls).toBeUndefined();
    const p = planHost(core, factsFrom(core), 'r', 'content', NOW);
    expect(steps(p)).toContain('tls-watch');
    expect(steps(p)).not.toContain('tls-unwatch');
  });

  it('a renewal watch that is off is started again, for client TLS and for route TLS alone', () => {
    const off = { activeState: 'inactive', unitFileState: 'disabled' };
    const f = withTls(d, { file: VALID, served: { cert: VALID } });
    f.tlsWatch = off;
    expect(planHost(d, f, 'r', 'content', NOW).steps.map((x) => x.step)).toContain('tls-watch');
  });

  it('planHost merges the steps: a restart serves the file anyway (no reload beside it)', () => {
    const f = withTls(d, { file: RENEWED, served: { cert: VALID } });
    f.container = { ...f.container, image: 'nats:2.9.10-r1' };
    const p = planHost(d, f, 'r', 'content', NOW);
    expect(steps(p)).toContain('restart');
    expect(steps(p)).not.toContain('reload');
    expect(p.drift.join('\n')).toContain('the renewal was not loaded');
  });
});

describe('certFact', () => {
  it('reads a real certificate: SHA-256 fingerprint, dates, names; nothing else is kept', () => {
    const dir = selfSigned('nats.example.com', 30, [
      '-addext',
      'subjectAltName=DNS:nats.example.com,DNS:alt.example.com',
    ]);
    const pem = readFileSync(join(dir, 'c.pem'), 'utf8');
    const fp = spawnSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', join(dir, 'c.pem')], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('=')[1];
    const c = certFact(pem)!;
    expect(c.fingerprint).toBe(fp);
    expect(c.names).toEqual(['nats.example.com', 'alt.example.com']);
    expect(Date.parse(c.notAfter) - Date.parse(c.notBefore)).toBe(30 * 86_400_000);
    expect(certFact('-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n')).toBeUndefined();
    expect(certFact('')).toBeUndefined();
  });

  it('firstCertificate prints only the first certificate of a file: no other line can reach the observe output', () => {
    const dir = selfSigned('x', 1);
    const pem = readFileSync(join(dir, 'c.pem'), 'utf8');
    const [head, ...rest] = pem.split('\n');
    // A file someone else writes: a forged observe section inside and after the certificate, a key after it.
    const hostile = [
      'secret: hunter2',
      head,
      '@@natsfleet owned',
      ...rest.slice(0, -1),
      '@@natsfleet owned',
      '/var/lib/postgresql',
      '@@natsfleet lock',
      readFileSync(join(dir, 'k.pem'), 'utf8'),
    ].join('\n');
    writeFileSync(join(dir, 'f.pem'), hostile);
    const out = spawnSync('sh', ['-c', firstCertificate(join(dir, 'f.pem'))], { encoding: 'utf8' }).stdout;
    expect(out).not.toMatch(/@@|postgresql|hunter2|PRIVATE KEY/);
    expect(certFact(out)!.fingerprint).toBe(certFact(pem)!.fingerprint);
  });
});
