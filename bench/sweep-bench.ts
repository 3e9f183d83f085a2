// Benchmark support: the "sweep" scenario of bench/run.ts. N simulated converged hosts (bench/fake-fleet.ts,
// in processes of at most 5,000 hosts each: two file descriptors a host), their manifests written, then the
// controller's no-op drift sweep (bench/sweep.ts) cold and warm in one process, and split over 3 replicas
// (three processes at once, each sweeping the hosts controller/ha/shard.ts gives it). Returns its section
// of RESULTS.md. Settings: BENCH_SIM_HOSTS (10000), BENCH_SIM_CONCURRENCY (250), BENCH_SIM_DELAY_MS (the
// observe time on a warm connection from RESULTS.md's "One host" table, else 100).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { simManifest, simName } from './fake-host.js';

const ROOT = resolve(import.meta.dirname, '..');
/** Hosts per simulator process: each holds a listener and a connection per host, under the open-file limit. */
const FLEET_CHUNK = 5_000;
const REPLICAS = ['replica-1', 'replica-2', 'replica-3'];
/** NODE_OPTIONS of the deployed controller, read from deploy/natsfleet.service: its sweeps are measured with it. */
export const DEPLOYED_NODE_FLAGS = (
  /^Environment=NODE_OPTIONS=(.*)$/m.exec(readFileSync(join(ROOT, 'deploy/natsfleet.service'), 'utf8'))?.[1] ?? ''
)
  .split(' ')
  .filter(Boolean);
const TARGETS = { coldSeconds: 40, coldMB: 1024, warmSeconds: 10 };

interface SweepRun {
  seconds: number;
  synced: number;
  errors: number;
  firstError?: string;
  connects: number;
  reconnects: number;
  perHostMs: number;
  rssMB: number;
  peakRssMB: number;
}
export interface SweepResult {
  replica?: string;
  hosts: number;
  totalHosts: number;
  concurrency: number;
  loadSeconds: number;
  cold: SweepRun;
  warm: SweepRun;
  peakRssMB: number;
  /** Wall time of the whole process, start to exit (Node and module loading included). */
  processSeconds: number;
}

const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

/** The observe time on a warm connection measured on a sandbox host by the hosts scenario, if any. */
function measuredObserveMs(): number | undefined {
  const results = join(ROOT, 'bench/RESULTS.md');
  if (!existsSync(results)) return undefined;
  const m = /that command on a warm connection[^|]*\| ([\d.]+) ms/.exec(readFileSync(results, 'utf8'));
  return m ? Number(m[1]) : undefined;
}

function startFleet(count: number, delayMs: number, first: number) {
  const child = spawn(
    'node',
    ['--import', 'tsx', join(ROOT, 'bench/fake-fleet.ts'), String(count), String(delayMs), String(first)],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = new Promise<{ ports: number[]; hostKey: string }>((ok, fail) => {
    let buf = '';
    child.stdout.on('data', (b) => {
      buf += b;
      if (buf.includes('\n')) ok(JSON.parse(buf));
    });
    child.on('exit', (code) => fail(new Error(`the simulated fleet exited (${code})`)));
  });
  return { child, ready };
}

function sweepProcess(args: string[]): Promise<SweepResult> {
  return new Promise((ok, fail) => {
    const t = performance.now();
    // The young generation the deployed controller runs with (deploy/natsfleet.service, deploy/Dockerfile).
    const child = spawn('node', [...DEPLOYED_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'bench/sweep.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('close', (code) => {
      if (code !== 0) return fail(new Error(`sweep failed (exit ${code}):\n${out.slice(-2000)}`));
      ok({ ...JSON.parse(out.trim().split('\n').pop()!), processSeconds: (performance.now() - t) / 1000 });
    });
  });
}

export async function sweepBench(
  work: string,
  log: (s: string) => void,
): Promise<{ md: string; summary: string; failure?: string }> {
  const hosts = Number(process.env.BENCH_SIM_HOSTS ?? 10_000);
  const concurrency = Number(process.env.BENCH_SIM_CONCURRENCY ?? 250);
  const delayMs = Math.round(Number(process.env.BENCH_SIM_DELAY_MS ?? measuredObserveMs() ?? 100));
  const dir = join(work, 'sim');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  const keyPath = join(dir, 'id_ed25519');
  await new Promise<void>((ok, fail) =>
    spawn('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyPath], { stdio: 'ignore' }).on('close', (c) =>
      c === 0 ? ok() : fail(new Error('ssh-keygen failed')),
    ),
  );
  const fleets: ChildProcess[] = [];
  try {
    log(`starting ${hosts} simulated hosts (${Math.ceil(hosts / FLEET_CHUNK)} processes)`);
    const started = [];
    for (let first = 0; first < hosts; first += FLEET_CHUNK) {
      const f = startFleet(Math.min(FLEET_CHUNK, hosts - first), delayMs, first);
      fleets.push(f.child);
      started.push({ first, ...(await f.ready) });
    }
    for (const { first, ports, hostKey } of started)
      ports.forEach((p, i) =>
        writeFileSync(join(dir, 'hosts', `${simName(first + i)}.yaml`), simManifest(first + i, p, hostKey)),
      );
    const hostsDir = join(dir, 'hosts');
    // The load average before each run: other work on the machine shows in the times (2 cores).
    const load = [loadavg()[0]];
    const one = await sweepProcess([hostsDir, keyPath, String(concurrency), '--warm']);
    load.push(loadavg()[0]);
    log(
      `sweep of ${hosts}: load ${fmt(one.loadSeconds)} s, cold ${fmt(one.cold.seconds)} s, warm ${fmt(one.warm.seconds)} s, peak ${one.peakRssMB} MB`,
    );
    const t = performance.now();
    const split = await Promise.all(
      REPLICAS.map((r) =>
        sweepProcess([
          hostsDir,
          keyPath,
          String(concurrency),
          '--warm',
          '--replica',
          r,
          '--replicas',
          REPLICAS.join(','),
        ]),
      ),
    );
    const splitSeconds = (performance.now() - t) / 1000;
    log(
      `split over ${REPLICAS.length} replicas: ${split.map((s) => `${s.hosts} hosts, cold ${fmt(s.cold.seconds)} s`).join('; ')}`,
    );
    return sweepSection({ hosts, concurrency, delayMs, one, split, splitSeconds, load });
  } finally {
    for (const f of fleets) f.kill();
  }
}

function sweepSection(r: {
  hosts: number;
  concurrency: number;
  delayMs: number;
  one: SweepResult;
  split: SweepResult[];
  splitSeconds: number;
  load: number[];
}): { md: string; summary: string; failure?: string } {
  const { one, split } = r;
  const coldTotal = one.loadSeconds + one.cold.seconds;
  const runs = [one, ...split];
  const wrong = runs.flatMap((s) =>
    [s.cold, s.warm]
      .filter((x) => x.synced !== s.hosts)
      .map((x) => `${s.hosts - x.synced} not Synced (${x.firstError ?? 'no error'})`),
  );
  const row = (name: string, s: SweepResult, x: SweepRun, load: boolean) =>
    `| ${name} | ${s.hosts} | ${load ? `${fmt(s.loadSeconds)} s` : '-'} | ${fmt(x.seconds)} s | ${x.rssMB} MB | ${x.peakRssMB} MB | ${x.synced} | ${x.errors} | ${x.connects + x.reconnects} |`;
  const met = (ok: boolean) => (ok ? 'met' : '**missed**');
  const md = `## No-op drift sweep of ${r.hosts} hosts (simulated)

Produced by \`npm run bench\` (this section alone: \`node --import tsx bench/run.ts sweep\`) on
${new Date().toISOString().slice(0, 10)}; machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}.

${r.hosts} converged hosts answered by ssh2's SSH server (bench/fake-fleet.ts: ${Math.ceil(r.hosts / FLEET_CHUNK)} processes on
the same 2 cores as the controller, one 127.0.0.1 port per host, one ed25519 host key pinned in every
manifest), each remote command delayed by ${r.delayMs} ms (the observe time measured on a sandbox host). The
sweep is the controller's drift sweep without apply (bench/sweep.ts): load and validate ${r.hosts} manifests,
render, then \`reconcileAll\` at concurrency ${r.concurrency}: per host one SSH connection from the session
pool (real handshake, pinned key), one observe command, the plan. **Cold**: every connection new.
**Warm**: the same sweep again in the same process, on the connections the pool kept (keepalive every 30 s).
Peak RSS is the sweeping process's VmHWM after that sweep. The process runs with the Node flags the deployed
controller has (\`${DEPLOYED_NODE_FLAGS.join(' ')}\`, deploy/natsfleet.service and deploy/Dockerfile: a
larger young generation; without it, garbage collection was a fifth of a warm sweep's CPU).

| run | hosts | load and render | sweep | RSS after | peak RSS | Synced | errors | connections opened |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${row('cold, one process', one, one.cold, true)}
${row('warm, same process', one, one.warm, false)}
${split.flatMap((s) => [row(`${s.replica}: cold`, s, s.cold, true), row(`${s.replica}: warm`, s, s.warm, false)]).join('\n')}

One process: cold **${fmt(coldTotal)} s** (load ${fmt(one.loadSeconds)} s + sweep ${fmt(one.cold.seconds)} s; target
${TARGETS.coldSeconds} s: ${met(coldTotal <= TARGETS.coldSeconds)}), peak RSS **${one.cold.peakRssMB} MB** after it (target ${TARGETS.coldMB} MB:
${met(one.cold.peakRssMB <= TARGETS.coldMB)}; ${one.peakRssMB} MB after the warm sweep too); warm **${fmt(one.warm.seconds)} s** (target
${TARGETS.warmSeconds} s: ${met(one.warm.seconds <= TARGETS.warmSeconds)}).
Split over ${split.length} replicas (three processes at once, each sweeping the hosts \`ownerOf(shardKey(host),
[${REPLICAS.join(', ')}])\` gives it, cold then warm): ${split.map((s) => s.hosts).join(' + ')} hosts, **${fmt(r.splitSeconds)} s**
wall time for all three (start to exit, both sweeps), cold ${split.map((s) => `${fmt(s.loadSeconds + s.cold.seconds)} s`).join(' / ')},
warm ${split.map((s) => `${fmt(s.warm.seconds)} s`).join(' / ')}, peak RSS ${split.map((s) => `${s.peakRssMB} MB`).join(' / ')}.
The three share the same 2 cores (with the simulator), so the split shows memory and the per-replica share,
not a speed-up: on separate machines each replica's time is about its share of the one-process time.
Load average (1 min) before the one-process run and before the split: ${r.load.map((l) => l.toFixed(1)).join(', ')}
(above about 2, other work shared the cores and the times are longer than the code's).
`;
  const summary =
    `${r.hosts}-host no-op sweep: cold ${fmt(coldTotal)} s, warm ${fmt(one.warm.seconds)} s, peak ${one.peakRssMB} MB; ` +
    `3 replicas: ${fmt(r.splitSeconds)} s, peak ${split.map((s) => `${s.peakRssMB}`).join('/')} MB`;
  return { md, summary, failure: wrong.length ? wrong.join('; ') : undefined };
}
