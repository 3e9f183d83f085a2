// Benchmark support: a no-op drift sweep (observe + plan, no apply) of every host of a hosts
// directory, timed by phase, run in its own process so its peak memory (VmHWM) is its own.
// Prints one JSON line.
import { readFileSync } from 'node:fs';
import { loadManifests } from '../controller/manifest/load.js';
import { readManifestDir } from '../controller/manifest/read-dir.js';
import { prepareTargets } from '../controller/reconcile/reconcile.js';
import { mapLimit, SessionPool } from '../controller/reconcile/pool.js';
import { observeHost } from '../controller/observe/observe.js';
import { planHost } from '../controller/plan/plan.js';
import { secretResolver } from '../controller/secrets/resolve.js';

const [dir, keyPath, concurrency] = [process.argv[2], process.argv[3], Number(process.argv[4] ?? 100)];
const t0 = performance.now();
const { hosts, problems } = loadManifests(await readManifestDir(dir));
if (problems.some((p) => p.severity === 'error')) throw new Error(JSON.stringify(problems.slice(0, 3)));
const targets = prepareTargets(hosts, secretResolver({ env: {}, readFile: () => '' }));
const loaded = performance.now();
const pool = new SessionPool({ privateKey: readFileSync(keyPath) });
const phase = { connect: 0, observe: 0, plan: 0 };
let synced = 0;
let execs = 0;
const sweepStart = performance.now();
await mapLimit(targets, concurrency, async (t) => {
  const a = performance.now();
  const session = await pool.get(t.spec);
  const b = performance.now();
  const facts = await observeHost(session, t.desired);
  const c = performance.now();
  const plan = planHost(t.desired, facts, 'bench');
  phase.connect += b - a;
  phase.observe += c - b;
  phase.plan += performance.now() - c;
  execs += session.execCount;
  if (plan.sync === 'Synced') synced++;
});
const sweepMs = performance.now() - sweepStart;
await pool.closeAll();
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
console.log(
  JSON.stringify({
    hosts: targets.length,
    synced,
    execs,
    concurrency,
    loadSeconds: (loaded - t0) / 1000,
    sweepSeconds: sweepMs / 1000,
    peakRssMB: Math.round(hwm / 1024),
    // Summed over hosts (they overlap): where a host's time goes.
    perHostMs: {
      connect: phase.connect / targets.length,
      observe: phase.observe / targets.length,
      plan: phase.plan / targets.length,
    },
  }),
);
