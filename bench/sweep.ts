// Benchmark support: the controller's no-op drift sweep (load and validate every manifest, render,
// then reconcileAll without apply: observe and plan each host) run in its own process so its peak
// memory (VmHWM) is its own. Cold: every connection new; warm (--warm): the same sweep again in the
// same process, on the connections the pool kept. With --replica NAME --replicas A,B,C it sweeps only
// the hosts that replica owns (controller/ha/shard.ts), as one of several replicas would.
// Usage: sweep.ts HOSTS_DIR KEY [CONCURRENCY] [--warm] [--replica NAME --replicas A,B,C]. Prints one JSON line.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadManifests } from '../controller/manifest/load.js';
import { readManifestDir } from '../controller/manifest/read-dir.js';
import { prepareTargets, reconcileAll } from '../controller/reconcile/reconcile.js';
import { SessionPool } from '../controller/reconcile/pool.js';
import { secretResolver } from '../controller/secrets/resolve.js';
import { ownerOf, shardKey } from '../controller/ha/shard.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { warm: { type: 'boolean' }, replica: { type: 'string' }, replicas: { type: 'string' } },
});
const [dir, keyPath] = positionals;
const concurrency = Number(positionals[2] ?? 100);
const status = (field: string) =>
  Math.round(Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024);

const t0 = performance.now();
const { hosts: all, problems } = loadManifests(await readManifestDir(dir));
if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems.slice(0, 3)));
const replicas = values.replicas?.split(',');
const hosts = values.replica
  ? all.filter((h) => ownerOf(shardKey(h.name, h.cluster?.name), replicas!) === values.replica)
  : all;
const targets = prepareTargets(hosts, secretResolver({ env: {}, readFile: () => '' }));
const loadSeconds = (performance.now() - t0) / 1000;
// Every host's connection kept: the bound is the fleet's size here (the default is half the open-file limit).
const pool = new SessionPool({ privateKey: readFileSync(keyPath) }, { maxOpen: targets.length });

async function sweep() {
  const before = pool.stats();
  const start = performance.now();
  const runs = await reconcileAll(targets, { pool, revision: 'bench', apply: false, concurrency, keepFacts: false });
  const seconds = (performance.now() - start) / 1000;
  const after = pool.stats();
  const errors = runs.filter((r) => r.error).map((r) => r.error!);
  const odd = runs.find((r) => !r.error && r.plan?.sync !== 'Synced');
  return {
    seconds,
    synced: runs.filter((r) => r.plan?.sync === 'Synced').length,
    errors: errors.length,
    firstError: errors[0],
    firstNotSynced:
      odd &&
      `${odd.host}: ${odd.plan?.sync}: ${JSON.stringify([...(odd.plan?.drift ?? []), ...(odd.plan?.blocked ?? []), ...(odd.plan?.changes ?? []), ...(odd.plan?.steps ?? [])].slice(0, 3)).slice(0, 600)}`,
    connects: after.connects - before.connects,
    reconnects: after.reconnects - before.reconnects,
    perHostMs: runs.reduce((a, r) => a + r.durationMs, 0) / Math.max(1, runs.length),
    rssMB: status('VmRSS'),
    peakRssMB: status('VmHWM'),
  };
}

const cold = await sweep();
const warm = values.warm ? await sweep() : undefined;
await pool.closeAll();
console.log(
  JSON.stringify({
    replica: values.replica,
    hosts: targets.length,
    totalHosts: all.length,
    concurrency,
    loadSeconds,
    cold,
    warm,
    peakRssMB: status('VmHWM'),
  }),
);
