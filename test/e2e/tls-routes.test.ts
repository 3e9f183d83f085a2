// Issue 13's proof 4, end to end on the sandbox: a three-member JetStream cluster whose routes use TLS
// from an operator CA (each member's certificate names its route address), routes up and TLS-only;
// then a member whose certificate comes from another CA is refused by its peers and the rollout halts.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mainWithin } from '../helpers/cli.js';
import { loadManifests } from '../../controller/manifest/load.js';
import { readManifestDir } from '../../controller/manifest/read-dir.js';
import { policyResolver } from '../../controller/secrets/resolve.js';
import { prepareTargets, reconcileAll } from '../../controller/reconcile/reconcile.js';
import { Scenario } from './helpers.js';
import { selfSignedAt } from '../helpers/certs.js';

const fleet = inject('fleet');
const MEMBERS = fleet.hosts.slice(0, 3);
const names = MEMBERS.map((h) => h.name);
const dir = mkdtempSync(join(tmpdir(), 'nf-e2e-tls-routes-'));
const pki = mkdtempSync(join(tmpdir(), 'nf-e2e-pki-'));
const scenarios = new Map(MEMBERS.map((h) => [h.name, new Scenario(fleet, h)]));
const sh = (host: string, cmd: string) => scenarios.get(host)!.sh(cmd);
const TLS_DIR = '/etc/nats/tls';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML manifests, edited freely
type Doc = Record<string, any>;
let cluster: Doc;
const hosts = new Map<string, Doc>();

function write(): void {
  writeFileSync(join(dir, 'core.yaml'), dump(cluster));
  for (const [name, d] of hosts) writeFileSync(join(dir, `${name}.yaml`), dump(d));
}

async function cli(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const flags = ['--hosts', dir, '--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir];
  const code = await mainWithin([...args, ...flags], lines);
  return { code, out: lines.join('\n') };
}

const openssl = (...args: string[]) => {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
};

/** A CA named `name` in the test's PKI directory. */
function ca(name: string): void {
  selfSignedAt(name, 2, join(pki, `${name}.key`), join(pki, `${name}.pem`));
}

/** A route certificate for `ip`, signed by CA `by`: for client and server use (routes are both). */
function routeCert(name: string, ip: string, by: string): void {
  const ext = join(pki, `${name}.ext`);
  writeFileSync(ext, `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    join(pki, `${name}.key`),
    '-out',
    join(pki, `${name}.csr`),
  );
  openssl(
    'x509',
    '-req',
    '-in',
    join(pki, `${name}.csr`),
    '-CA',
    join(pki, `${by}.pem`),
    '-CAkey',
    join(pki, `${by}.key`),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    join(pki, `${name}.pem`),
  );
}

/** Puts a certificate, its key and the CA on a member, where the cluster manifest says. */
async function install(host: string, cert: string): Promise<void> {
  const b64 = (f: string) => readFileSync(join(pki, f)).toString('base64');
  await sh(
    host,
    `mkdir -p ${TLS_DIR} && chmod 700 ${TLS_DIR} && ` +
      `echo ${b64(`${cert}.pem`)} | base64 -d > ${TLS_DIR}/route.pem.new && mv ${TLS_DIR}/route.pem.new ${TLS_DIR}/route.pem && ` +
      `echo ${b64(`${cert}.key`)} | base64 -d > ${TLS_DIR}/route-key.pem.new && mv ${TLS_DIR}/route-key.pem.new ${TLS_DIR}/route-key.pem && ` +
      `echo ${b64('ca.pem')} | base64 -d > ${TLS_DIR}/ca.pem`,
  );
}

const monitor = async (host: string, path: string) => JSON.parse(await sh(host, `curl -s '127.0.0.1:8222/${path}'`));
const routes = async (host: string) =>
  new Set((await monitor(host, 'routez')).routes.map((r: { remote_id: string }) => r.remote_id)).size;
const startedAt = (host: string) => sh(host, "docker inspect --format '{{.State.StartedAt}}' nats");

beforeAll(async () => {
  await Promise.all(names.map((h) => scenarios.get(h)!.wipe()));
  ca('ca');
  ca('other-ca');
  for (const h of MEMBERS) routeCert(h.name, h.clusterAddress, 'ca');
  routeCert('stranger', MEMBERS[0].clusterAddress, 'other-ca');
  await Promise.all(names.map((h) => install(h, h)));
  cluster = load(readFileSync(fleet.clusterManifest!, 'utf8')) as Doc;
  cluster.spec.members = cluster.spec.members.slice(0, 3);
  cluster.spec.nats = {
    image: fleet.natsImages.old,
    jetstream: { enabled: true, maxMemory: '64MB', maxFile: '256MB' },
  };
  cluster.spec.rollout = { maxUnavailable: 1, settle: '2s', timeout: '30s' };
  cluster.spec.tls = {
    enabled: true,
    certFile: `${TLS_DIR}/route.pem`,
    keyFile: `${TLS_DIR}/route-key.pem`,
    caFile: `${TLS_DIR}/ca.pem`,
  };
  for (const h of names) {
    const d = load(readFileSync(join(fleet.hostsDir, `${h}.yaml`), 'utf8')) as Doc;
    delete d.spec.nats.image;
    delete d.spec.nats.jetstream;
    delete d.spec.proxy;
    d.spec.nats.httpBind = '127.0.0.1';
    hosts.set(h, d);
  }
  write();
}, 120_000);

afterAll(async () => {
  await Promise.all(names.map((h) => scenarios.get(h)!.wipe()));
  for (const s of scenarios.values()) await s.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(pki, { recursive: true, force: true });
}, 120_000);

describe('route TLS from an operator CA (issue 13, proof 4)', () => {
  it('a cold start: every member has its 2 routes, routes require TLS: a plaintext peer gets nothing', async () => {
    const r = await cli('apply');
    expect(r.code, r.out).toBe(0);
    for (const h of names) {
      expect(await routes(h)).toBe(2);
      const varz = await monitor(h, 'varz');
      expect(varz.cluster).toMatchObject({ tls_required: true, tls_verify: true });
    }
    // A route opens with the TLS handshake (NATS sends its INFO only after it): a plaintext peer reads
    // nothing, a TLS client is shown the member's own certificate, issued by the operator CA.
    const peer = MEMBERS[1];
    const plain = await sh(
      names[0],
      `timeout 3 bash -c 'exec 3<>/dev/tcp/${peer.clusterAddress}/6222; head -n1 <&3' || true`,
    );
    expect(plain).toBe('');
    const hello = await sh(
      names[0],
      `timeout 5 openssl s_client -connect ${peer.clusterAddress}:6222 </dev/null 2>&1 || true`,
    );
    expect(hello).toMatch(new RegExp(`subject=CN ?= ?${peer.name}`));
    expect(hello).toMatch(/issuer=CN ?= ?ca\b/);
    expect((await cli('plan')).code).toBe(0);
  });

  it('a member with a certificate from another CA is refused by its peers: the rollout halts there', async () => {
    // The change restarts every member; the first in the rollout's order gets the stranger's certificate.
    cluster.spec.nats.lameDuck = { duration: '31s' };
    write();
    const s = scenarios.get(names[0])!;
    const { hosts: specs } = loadManifests(await readManifestDir(dir), s.policy);
    const targets = prepareTargets(specs, await policyResolver(specs, s.policy.secrets), s.policy.paths);
    const runs = await reconcileAll(targets, { pool: s.pool, revision: 'e2e', apply: false, concurrency: 3 });
    const first = runs[0].rollout!.batches[0][0];
    const firstHost = MEMBERS.find((h) => h.name === first)!;
    routeCert('stranger', firstHost.clusterAddress, 'other-ca');
    await install(first, 'stranger');
    const others = names.filter((n) => n !== first);
    const before = await Promise.all(others.map(startedAt));
    const r = await cli('apply');
    expect(r.code, r.out).toBe(1);
    expect(r.out).toMatch(new RegExp(`${first}.*(rolled back|rolled-back|failed)`));
    expect(r.out).toMatch(/halted/);
    // The others never restarted, and still route to each other but not to the stranger.
    expect(await Promise.all(others.map(startedAt))).toEqual(before);
    for (const h of others) expect(await routes(h)).toBe(1);
    expect(await routes(first)).toBe(0);
    const log = await sh(others[0], 'journalctl -u nats.service --no-pager -n 200 2>/dev/null || true');
    expect(log).toMatch(/certificate|tls|TLS/);
  });
});
