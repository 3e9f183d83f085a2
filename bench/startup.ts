// Benchmark scenario "startup" (bench/run.ts): the CLI's start-up, bundled (bin/natsfleet.js loading
// dist/natsfleet.cjs with V8's code cache, bin/load-bundle.js and scripts/bundle.mjs; and the same bundle
// without a cache, as a command's first run) against unbundled (the same sources as tsc compiled them,
// dist/controller/cli/main.js, run by a wrapper as bin/natsfleet.js did before the bundle), alternating in
// the same run: `--version`, `validate` of the example hosts/, and the one-host `plan --host` whole process
// against a simulated host (no Docker). Its section of RESULTS.md. Needs `npm run build`.
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ssh2 from 'ssh2';
import { fmt, median } from './cluster.js';
import { simManifest, simName } from './fake-host.js';

const ROOT = resolve(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 21);
export const STARTUP_HEADING = '## CLI start-up, bundled and unbundled';

const VARIANTS = ['unbundled', 'nocache', 'bundled'] as const;
type Variant = (typeof VARIANTS)[number];
interface Measure {
  what: string;
  runs: number;
  seconds: Record<Variant, number[]>;
}

/** `node ARGS`, whole process, from spawn to exit; throws unless it exits with `expect`. */
function timed(args: string[], expect = 0): number {
  const t = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const s = (performance.now() - t) / 1000;
  if (r.status !== expect)
    throw new Error(`node ${args.join(' ')}: exit ${r.status} (wanted ${expect})\n${r.stdout}${r.stderr}`);
  return s;
}

/** `runs` rounds, each variant once per round, the first of them rotating; one warm-up each. */
function compare(what: string, entries: Record<Variant, string>, args: string[], runs: number, expect = 0): Measure {
  const seconds: Record<Variant, number[]> = { unbundled: [], nocache: [], bundled: [] };
  for (const v of VARIANTS) timed([entries[v], ...args], expect);
  for (let i = 0; i < runs; i++)
    for (let j = 0; j < VARIANTS.length; j++) {
      const v = VARIANTS[(i + j) % VARIANTS.length];
      seconds[v].push(timed([entries[v], ...args], expect));
    }
  return { what, runs, seconds };
}

/**
 * One simulated converged host (bench/fake-fleet.ts: ssh2's server on a loopback port, answering the
 * observe command at once), its manifest and a client key: `plan --host` of it is a whole CLI run (start,
 * load, SSH handshake, observe, plan) without Docker.
 */
async function planOneHost(work: string, entries: Record<Variant, string>, log: (s: string) => void) {
  const dir = join(work, 'startup', 'sim');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'hosts'), { recursive: true });
  const keyPath = join(dir, 'id_ed25519');
  writeFileSync(keyPath, ssh2.utils.generateKeyPairSync('ed25519').private, { mode: 0o600 });
  const server = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/fake-fleet.ts'), '1', '0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const { ports, hostKey } = await new Promise<{ ports: number[]; hostKey: string }>((ok, fail) => {
      let buf = '';
      server.stdout.on('data', (b) => {
        buf += b;
        if (buf.includes('\n')) ok(JSON.parse(buf));
      });
      server.on('exit', (code) => fail(new Error(`bench/fake-fleet.ts exited (${code}) before listening`)));
    });
    writeFileSync(join(dir, 'hosts', `${simName(0)}.yaml`), simManifest(0, ports[0], hostKey));
    log('startup: plan --host of one simulated host');
    const args = ['plan', '--host', simName(0), '--hosts', join(dir, 'hosts'), '--ssh-key', keyPath];
    return compare(
      '`plan --host` of one converged host, simulated (start, load, SSH handshake, observe, plan)',
      entries,
      args,
      RUNS,
    );
  } finally {
    server.kill();
  }
}

export async function startupBench(work: string, log: (s: string) => void): Promise<{ md: string; summary: string }> {
  const bundle = join(ROOT, 'dist/natsfleet.cjs');
  const compiled = join(ROOT, 'dist/controller/cli/main.js');
  for (const f of [bundle, compiled]) if (!existsSync(f)) throw new Error(`${f} missing: run \`npm run build\``);
  const dir = join(work, 'startup');
  mkdirSync(dir, { recursive: true });
  const wrapper = join(dir, 'unbundled.mjs');
  // bin/natsfleet.js as it was before the bundle.
  writeFileSync(
    wrapper,
    `import { main } from ${JSON.stringify(pathToFileURL(compiled).href)};
main(process.argv).then((c) => (process.exitCode = c), (e) => { console.error(e); process.exitCode = 1; });
`,
  );
  // The same bundle with no code cache: a copy in a package of its own without the build's identity
  // (load-bundle.js then neither reads nor writes one), as every command's first run is.
  const pkg = join(dir, 'nocache');
  rmSync(pkg, { recursive: true, force: true });
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
  for (const d of ['schemas', 'node_modules']) symlinkSync(join(ROOT, d), join(pkg, d));
  copyFileSync(bundle, join(pkg, 'dist/natsfleet.cjs'));
  const nocache = join(dir, 'nocache.mjs');
  writeFileSync(
    nocache,
    `import { loadBundle } from ${JSON.stringify(pathToFileURL(join(ROOT, 'bin/load-bundle.js')).href)};
const cli = loadBundle(${JSON.stringify(join(pkg, 'dist/natsfleet.cjs'))}, process.argv);
if (cli.cache !== 'none') throw new Error('a code cache was used');
cli.main(process.argv).then((c) => (process.exitCode = c), (e) => { console.error(e); process.exitCode = 1; });
`,
  );
  const entries: Record<Variant, string> = { unbundled: wrapper, nocache, bundled: join(ROOT, 'bin/natsfleet.js') };

  const loadBefore = loadavg()[0];
  const nodeAlone: number[] = [];
  for (let i = 0; i < RUNS; i++) nodeAlone.push(timed(['-e', '0']));
  const rows: Measure[] = [];
  rows.push(compare('`natsfleet --version`', entries, ['--version'], RUNS));
  log(`startup: --version ${fmt(median(rows[0].seconds.unbundled))} s -> ${fmt(median(rows[0].seconds.bundled))} s`);
  rows.push(compare('`natsfleet validate hosts` (the 6 example manifests)', entries, ['validate', 'hosts'], RUNS));
  log(`startup: validate ${fmt(median(rows[1].seconds.unbundled))} s -> ${fmt(median(rows[1].seconds.bundled))} s`);
  rows.push(await planOneHost(work, entries, log));
  log(`startup: plan ${fmt(median(rows[2].seconds.unbundled))} s -> ${fmt(median(rows[2].seconds.bundled))} s`);

  const ms = (s: number) => `${Math.round(s * 1000)} ms`;
  const cell = (xs: number[]) => `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
  const ratio = (m: Measure) => `${(median(m.seconds.unbundled) / median(m.seconds.bundled)).toFixed(1)}x`;
  const table = [
    '| whole process, median (min–max) | runs | unbundled | bundled, no code cache | bundled | unbundled / bundled |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (m) =>
        `| ${m.what} | ${m.runs} | ${cell(m.seconds.unbundled)} | ${cell(m.seconds.nocache)} | ` +
        `${cell(m.seconds.bundled)} | ${ratio(m)} |`,
    ),
    `| Node alone (\`node -e 0\`), for scale | ${RUNS} | ${cell(nodeAlone)} | | | |`,
  ].join('\n');
  const md = `${STARTUP_HEADING}

Produced by \`npm run bench\` (this section alone: \`npm run bench -- startup\`) on ${new Date().toISOString().slice(0, 10)};
machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 1024 ** 3)} GiB, Node ${process.version}.
The three in the same run, alternating, after one warm-up each; times from spawn to exit. Load average
(1 min) ${loadBefore.toFixed(2)} before, ${loadavg()[0].toFixed(2)} after: other work on the machine slows both alike.

${table}

Unbundled: the same sources as \`tsc\` compiled them (\`dist/controller/cli/main.js\`, run by a wrapper as
\`bin/natsfleet.js\` ran it before the bundle), Node loading each module and dependency file by file, the JSON
Schemas compiled by ajv on first use. Bundled: \`bin/natsfleet.js\` running \`dist/natsfleet.cjs\`
(scripts/bundle.mjs, esbuild: the CLI and its dependencies, ssh2 included, in one CommonJS file; the modules
only some commands need initialised when one of them runs; the schema validators precompiled, ajv standalone
code) through \`bin/load-bundle.js\`, with V8's code cache that the warm-up run of each command wrote
(\`dist/code-cache/\`: V8 then compiles almost nothing). Bundled, no code cache: the same file, as a command's
first run is (Node 20 keeps no compiled code between runs by itself).
`;
  const summary = rows
    .map((m) => `${m.what}: ${ms(median(m.seconds.unbundled))} unbundled, ${ms(median(m.seconds.bundled))} bundled`)
    .join('\n');
  return { md, summary };
}
