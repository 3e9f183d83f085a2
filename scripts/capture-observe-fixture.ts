// Recaptures test/fixtures/observe/converged.txt: the real output of the observe script on a sandbox
// host converged on test/fixtures/observe/converged.manifest.yaml (bcrypt token: no secret is
// captured; the record holds displays with placeholders, never a secret). Run after changing the
// observe script or the renderers: `node --import tsx scripts/capture-observe-fixture.ts`.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { fleetDown, fleetUp } from '../controller/sandbox/fleet.js';
import { loadManifests } from '../controller/manifest/load.js';
import type { NatsHost } from '../controller/manifest/natshost.gen.js';
import { prepareTargets, reconcileOne } from '../controller/reconcile/reconcile.js';
import { SessionPool } from '../controller/reconcile/pool.js';
import { observeScript } from '../controller/observe/script.js';
import { placeholderSecrets } from '../controller/render/desired.js';

const ROOT = join(import.meta.dirname, '..');
const MANIFEST = join(ROOT, 'test/fixtures/observe/converged.manifest.yaml');
const OUTPUT = join(ROOT, 'test/fixtures/observe/converged.txt');

const fleet = await fleetUp({
  hosts: 1,
  id: 'capture',
  dir: mkdtempSync(join(tmpdir(), 'nf-capture-')),
  log: console.log,
});
const pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
try {
  const h = fleet.hosts[0];
  const doc = load(readFileSync(MANIFEST, 'utf8')) as NatsHost;
  doc.spec.ssh = { ...doc.spec.ssh, host: '127.0.0.1', port: h.sshPort, hostKey: h.hostKey };
  const { hosts, problems } = loadManifests([{ path: 'hosts/nats-sb-1.yaml', text: dump(doc) }]);
  if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems));
  // bcrypt only: nothing to resolve.
  const [target] = prepareTargets(hosts, placeholderSecrets);
  const run = await reconcileOne(target, { pool, revision: 'fixture-rev', apply: true, concurrency: 1 });
  if (run.apply?.outcome !== 'applied') throw new Error(`apply failed: ${JSON.stringify(run.apply ?? run.error)}`);
  const session = await pool.get(target.spec);
  const r = await session.runScript(observeScript(target.desired), 60_000);
  if (r.code !== 0) throw new Error(`observe failed: ${r.stderr}`);
  writeFileSync(OUTPUT, r.stdout);
  console.log(`wrote ${OUTPUT} (${r.stdout.length} bytes)`);
} finally {
  await pool.closeAll();
  await fleetDown('capture');
}
