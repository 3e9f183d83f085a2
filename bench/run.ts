// `npm run bench`: natsfleet against the Ansible playbook that does the same job (bench/ansible), on
// the same sandbox hosts in the same run, alternating, several rounds; the time from a git push to a
// host serving the change; a 10,000-host no-op drift sweep against simulated SSH hosts (bench/sweep-bench.ts,
// cold, warm and over 3 replicas); and the rolling
// upgrade of a 3-member JetStream cluster under an acknowledged publisher (bench/cluster.ts, on a fleet
// of its own). Prints a table and writes bench/RESULTS.md. Settings: BENCH_HOSTS (10), BENCH_ROUNDS (5),
// BENCH_PUSH_ROUNDS (3), BENCH_SIM_HOSTS (10000), BENCH_SIM_CONCURRENCY (250), BENCH_POLL_SEC (10),
// BENCH_CLUSTER_ROUNDS (5).
// Scenarios (main() below): hosts, sweep, startup (bench/startup.ts), takeover (bench/takeover.ts), cluster;
// `node --import tsx bench/run.ts [scenario ...]` (or `npm run bench -- startup cluster`) runs those alone
// and replaces only their sections of RESULTS.md (bench/sections.ts).
import { spawn, execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { dump, load } from 'js-yaml';
import pino from 'pino';
import { fleetDown, fleetUp, type Fleet } from '../controller/sandbox/fleet.js';
import { SshSession } from '../controller/transport/ssh.js';
import { observeScript } from '../controller/observe/script.js';
import { loadManifests } from '../controller/manifest/load.js';
import type { NatsHost } from '../controller/manifest/natshost.gen.js';
import { readManifestDir } from '../controller/manifest/read-dir.js';
import { prepareTargets, reconcileOne } from '../controller/reconcile/reconcile.js';
import { SessionPool } from '../controller/reconcile/pool.js';
import { policyResolver } from '../controller/secrets/resolve.js';
import { loadPolicyFrom } from '../controller/manifest/policy.js';
import { startController } from '../controller/gitops/run.js';
import { DEFAULTS } from '../controller/gitops/config.js';
import { sweepBench } from './sweep-bench.js';
import { DEFAULT_ROUNDS, clusterBench, clusterSection, fmt, median } from './cluster.js';
import { mergeSections } from './sections.js';

const ROOT = resolve(import.meta.dirname, '..');
const N = Number(process.env.BENCH_HOSTS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const PUSH_ROUNDS = Number(process.env.BENCH_PUSH_ROUNDS ?? 3);
const POLL_SEC = Number(process.env.BENCH_POLL_SEC ?? 10);
const CLUSTER_ROUNDS = Number(process.env.BENCH_CLUSTER_ROUNDS ?? DEFAULT_ROUNDS);
const RESULTS = join(ROOT, 'bench/RESULTS.md');
const WORK = join(ROOT, '.sandbox', 'bench');
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);

interface Run {
  code: number;
  out: string;
  seconds: number;
}
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<Run> {
  return new Promise((resolveRun) => {
    const t = performance.now();
    const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    child.on('close', (code) => resolveRun({ code: code ?? 1, out, seconds: (performance.now() - t) / 1000 }));
  });
}
const must = (r: Run, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.out.slice(-3000)}`);
  return r;
};
const changedCount = (ansibleOut: string) =>
  [...ansibleOut.matchAll(/changed=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);

function natsfleet(fleet: Fleet, ...args: string[]) {
  return run('node', [
    join(ROOT, 'bin/natsfleet.js'),
    ...args,
    '--hosts',
    fleet.hostsDir,
    '--ssh-key',
    fleet.privateKeyPath,
    '--secrets-dir',
    fleet.secretsDir,
    '--concurrency',
    String(N),
  ]);
}

function ansibleSetup(fleet: Fleet) {
  const dir = join(WORK, 'ansible');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'known_hosts'), fleet.hosts.map((h) => `[127.0.0.1]:${h.sshPort} ${h.hostKey}\n`).join(''));
  const token = readFileSync(fleet.tokenPath, 'utf8').trim();
  writeFileSync(
    join(dir, 'inventory.ini'),
    [
      '[nats]',
      ...fleet.hosts.map((h) => `${h.name} ansible_host=127.0.0.1 ansible_port=${h.sshPort}`),
      '[nats:vars]',
      'ansible_user=root',
      `ansible_ssh_private_key_file=${fleet.privateKeyPath}`,
      `ansible_ssh_common_args='-o UserKnownHostsFile=${join(dir, 'known_hosts')}'`,
      `nats_token=${token}`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return (...extra: string[]) =>
    run('ansible-playbook', ['-i', join(dir, 'inventory.ini'), join(ROOT, 'bench/ansible/nats.yml'), ...extra], {
      ANSIBLE_CONFIG: join(ROOT, 'bench/ansible/ansible.cfg'),
      // A fresh control directory per run: each run starts cold, as natsfleet's CLI does; within one run
      // ControlMaster reuses the connection across tasks, as natsfleet reuses its session. (ansible-core
      // 2.14 reads ANSIBLE_SSH_CONTROL_PATH_DIR; ANSIBLE_CONTROL_PATH_DIR is ignored.)
      ANSIBLE_SSH_CONTROL_PATH_DIR: mkdtempSync(join(dir, 'cp-')),
    });
}

function setDebug(fleet: Fleet, debug: boolean) {
  for (const f of readdirSync(fleet.hostsDir)) {
    const p = join(fleet.hostsDir, f);
    const doc = load(readFileSync(p, 'utf8')) as NatsHost;
    doc.spec.nats!.logging = { debug };
    writeFileSync(p, dump(doc, { lineWidth: -1 }));
  }
}

async function connect(fleet: Fleet, i = 0) {
  const h = fleet.hosts[i];
  return SshSession.connect(
    { host: '127.0.0.1', port: h.sshPort, user: 'root', hostKey: h.hostKey },
    { privateKey: readFileSync(fleet.privateKeyPath) },
  );
}

async function pushToServing(fleet: Fleet) {
  const origin = join(WORK, 'origin.git');
  const work = join(WORK, 'hosts-repo');
  rmSync(origin, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
  const git = (...a: string[]) => execFileSync('git', ['-C', work, ...a], { encoding: 'utf8' }).trim();
  execFileSync('git', ['init', '--bare', '-q', '-b', 'main', origin]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  mkdirSync(join(work, 'hosts'));
  for (const f of readdirSync(fleet.hostsDir))
    writeFileSync(join(work, 'hosts', f), readFileSync(join(fleet.hostsDir, f)));
  const commit = (m: string) => {
    git('add', '-A');
    git('-c', 'user.name=bench', '-c', 'user.email=bench@example.com', 'commit', '-q', '-m', m);
    git('push', '-q', 'origin', 'main');
  };
  git('remote', 'add', 'origin', origin);
  commit('hosts');
  const secret = 'bench-webhook-secret';
  rmSync(join(WORK, 'controller-state'), { recursive: true, force: true });
  const running = await startController(
    {
      ...DEFAULTS,
      repo: origin,
      stateDir: join(WORK, 'controller-state'),
      sshKey: fleet.privateKeyPath,
      pollIntervalSec: POLL_SEC,
      driftIntervalSec: 3600,
      concurrency: N,
      listen: '127.0.0.1:0',
      webhookSecret: secret,
      policy: loadPolicyFrom({ secretsDir: fleet.secretsDir }),
    },
    pino({ level: 'warn' }),
  );
  // The first deploy converges the hosts on the repository; measurements start after it.
  const deadline = Date.now() + 300_000;
  while (running.controller.state.appliedRevision !== git('rev-parse', 'HEAD')) {
    if (Date.now() > deadline) throw new Error('the controller did not deploy the benchmark repository');
    await running.nextTick();
  }
  const session = await connect(fleet);
  const file = join(work, 'hosts', `${fleet.hosts[0].name}.yaml`);
  const results: Record<'poll' | 'webhook', number[]> = { poll: [], webhook: [] };
  for (let i = 0; i < PUSH_ROUNDS * 2; i++) {
    const trigger = i % 2 === 0 ? 'poll' : 'webhook';
    const payload = (2 + (i % 2)) * 1024 * 1024;
    const doc = load(readFileSync(file, 'utf8')) as NatsHost;
    doc.spec.nats!.maxPayload = payload;
    writeFileSync(file, dump(doc, { lineWidth: -1 }));
    const t = performance.now();
    commit(`max_payload ${payload}`);
    if (trigger === 'webhook') {
      const body = JSON.stringify({ ref: 'refs/heads/main' });
      await fetch(`${running.url}/webhook`, {
        method: 'POST',
        body,
        headers: {
          'x-github-event': 'push',
          'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
        },
      });
    }
    for (const until = Date.now() + 120_000; ;) {
      if (Date.now() > until) throw new Error(`the host did not serve max_payload ${payload} within 120 s`);
      const r = await session.exec('curl -s 127.0.0.1:8222/varz');
      if (JSON.parse(r.stdout).max_payload === payload) break;
      await new Promise((w) => setTimeout(w, 100));
    }
    results[trigger].push((performance.now() - t) / 1000);
    log(`push -> serving (${trigger}): ${fmt(results[trigger].at(-1)!)} s`);
  }
  session.close();
  await running.stop();
  return results;
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memGiB: Math.round(totalmem() / 1024 ** 3),
  node: process.version,
  date: new Date().toISOString().slice(0, 10),
};

/** A sandbox host's CPU time so far (its container's cgroup: every process of the host), in µs. */
function hostCpuUsec(container: string): number | undefined {
  const id = execFileSync('docker', ['inspect', '-f', '{{.Id}}', container], { encoding: 'utf8' }).trim();
  for (const [path, perUsec] of [
    [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, 0],
    [`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 1000],
    [`/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`, 1000],
  ] as const) {
    try {
      const text = readFileSync(path, 'utf8');
      return perUsec ? Number(text) / perUsec : Number(/usage_usec (\d+)/.exec(text)?.[1]);
    } catch {
      // another cgroup layout
    }
  }
  return undefined;
}

/**
 * The observe script's CPU time on one sandbox host, per run (50 runs, 3 times; medians): its own process
 * tree (the shell and every program it starts: curl, find, systemctl...; bash's `times`), and the whole
 * host (its cgroup, less its idle rate: also dockerd, systemd and nats-server answering it).
 */
async function observeCpu(fleet: Fleet, script: string) {
  const runs = 50;
  const h = fleet.hosts[0];
  const session = await connect(fleet);
  try {
    must(
      { ...(await session.exec('cat > /tmp/nf-observe.sh', { stdin: script })), out: '', seconds: 0 },
      'upload the observe script',
    );
    const tree: number[] = [];
    const host: number[] = [];
    const wall: number[] = [];
    for (let rep = 0; rep < 3; rep++) {
      const i0 = hostCpuUsec(h.container);
      const t0 = performance.now();
      await new Promise((w) => setTimeout(w, 2000));
      const idlePerMs = i0 === undefined ? 0 : (hostCpuUsec(h.container)! - i0) / (performance.now() - t0);
      const c0 = hostCpuUsec(h.container);
      const t1 = performance.now();
      const r = await session.exec(
        `bash -c 'for i in $(seq ${runs}); do sh /tmp/nf-observe.sh >/dev/null; done; times'`,
      );
      const ms = performance.now() - t1;
      const c1 = hostCpuUsec(h.container);
      // `times`: the shell's user and system time, then its children's (every observe run).
      const [user, sys] = (r.stdout.trim().split('\n')[1] ?? '').split(' ').map((x) => {
        const m = /(\d+)m([\d.]+)s/.exec(x);
        return m ? Number(m[1]) * 60 + Number(m[2]) : NaN;
      });
      tree.push(((user + sys) * 1000) / runs);
      if (c0 !== undefined && c1 !== undefined) host.push((c1 - c0 - idlePerMs * ms) / 1000 / runs);
      wall.push(ms / runs);
    }
    await session.exec('rm -f /tmp/nf-observe.sh');
    return { treeMs: median(tree), hostMs: host.length ? median(host) : undefined, wallMs: median(wall) };
  } finally {
    session.close();
  }
}

/**
 * Where a reload-safe change's time goes on each host: the same change as the CLI's rounds, applied to every
 * host at once in this process (no start-up), with apply's phases timed per host; medians over hosts.
 */
async function changeProfile(fleet: Fleet, debug: boolean) {
  setDebug(fleet, debug);
  const policy = loadPolicyFrom({ secretsDir: fleet.secretsDir });
  const { hosts } = loadManifests(await readManifestDir(fleet.hostsDir), policy);
  const targets = prepareTargets(hosts, await policyResolver(hosts, policy.secrets));
  const pool = new SessionPool({ privateKey: readFileSync(fleet.privateKeyPath) });
  const t0 = performance.now();
  try {
    const phases = await Promise.all(
      targets.map(async (t) => {
        const at: Record<string, number> = {};
        const r = await reconcileOne(t, {
          pool,
          revision: `profile-${debug}`,
          apply: true,
          concurrency: N,
          onPhase: (_host, phase) => {
            at[phase] = performance.now() - t0;
          },
        });
        if (r.apply?.outcome !== 'applied') throw new Error(`profile apply: ${JSON.stringify(r.apply ?? r.error)}`);
        return { ...at, done: performance.now() - t0 };
      }),
    );
    const step = (from: string | undefined, to: string) =>
      median(phases.map((p) => (p as Record<string, number>)[to] - (from ? (p as Record<string, number>)[from] : 0)));
    return {
      wall: (performance.now() - t0) / 1000,
      observeAndLock: step(undefined, 'locked'),
      prepare: step('locked', 'staged'),
      install: step('installing', 'verifying'),
      verifyAndRecord: step('verifying', 'done'),
    };
  } finally {
    await pool.closeAll();
  }
}

/** The 10-host comparison with Ansible and push to serving: their part of RESULTS.md. */
async function hostsBench(): Promise<{ md: string; summary: string }> {
  const ansibleVersion = execFileSync('ansible-playbook', ['--version'], { encoding: 'utf8' }).split('\n')[0];
  log(`starting ${N} sandbox hosts`);
  const fleet = await fleetUp({ hosts: N, id: 'bench', dir: WORK, log });
  try {
    const ansible = ansibleSetup(fleet);
    must(await natsfleet(fleet, 'apply'), 'natsfleet converge');
    // The two tools manage byte-identical files: Ansible in check mode finds nothing to change on
    // hosts natsfleet converged, and natsfleet plans nothing on hosts Ansible converged.
    const check = must(await ansible('--check', '--diff'), 'ansible --check');
    if (changedCount(check.out) !== 0)
      throw new Error(`Ansible would change natsfleet's files:\n${check.out.slice(-4000)}`);
    must(await ansible(), 'ansible converge');
    const plan = await natsfleet(fleet, 'plan');
    if (plan.code !== 0) throw new Error(`natsfleet would change Ansible's files:\n${plan.out.slice(-4000)}`);
    log('byte-identical: yes (ansible --check: 0 changed; natsfleet plan: no changes)');

    const noop = { natsfleet: [] as number[], ansible: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      const a = must(await natsfleet(fleet, 'apply'), 'natsfleet no-op');
      if (!/unchanged/.test(a.out) || /applied/.test(a.out))
        throw new Error(`natsfleet no-op changed something:\n${a.out}`);
      noop.natsfleet.push(a.seconds);
      const b = must(await ansible(), 'ansible no-op');
      if (changedCount(b.out) !== 0) throw new Error(`ansible no-op changed something:\n${b.out.slice(-3000)}`);
      noop.ansible.push(b.seconds);
      log(`no-op round ${r + 1}: natsfleet ${fmt(a.seconds)} s, ansible ${fmt(b.seconds)} s`);
    }

    // Each tool makes the same change from the same state, which it wrote itself: natsfleet plans a reload
    // only for a config it knows the server runs (its own last write), so each tool puts its change back
    // (not measured) before the other's turn.
    const change = { natsfleet: [] as number[], ansible: [] as number[] };
    for (let r = 0; r < ROUNDS; r++) {
      setDebug(fleet, true);
      const a = must(await natsfleet(fleet, 'apply'), 'natsfleet change');
      if ((a.out.match(/reload/g) ?? []).length < N) throw new Error(`natsfleet did not reload every host:\n${a.out}`);
      change.natsfleet.push(a.seconds);
      if (a.seconds > 2 * Math.min(...change.natsfleet)) log(`slow natsfleet change round:\n${a.out}`);
      setDebug(fleet, false);
      must(await natsfleet(fleet, 'apply'), 'natsfleet change back');
      const b = must(await ansible('-e', 'nats_debug=true'), 'ansible change');
      if (!/RUNNING HANDLER \[Reload NATS\]/.test(b.out))
        throw new Error(`ansible did not reload:\n${b.out.slice(-3000)}`);
      change.ansible.push(b.seconds);
      must(await ansible('-e', 'nats_debug=false'), 'ansible change back');
      log(`change round ${r + 1}: natsfleet ${fmt(a.seconds)} s, ansible ${fmt(b.seconds)} s`);
    }
    // Where the change's time goes per host (in process: no start-up), there and back.
    const profiles = [await changeProfile(fleet, true), await changeProfile(fleet, false)];
    setDebug(fleet, false);
    must(await natsfleet(fleet, 'apply'), 'natsfleet converge');

    // One host, no-op: one SSH command; its time on loopback on a warm connection, and the whole CLI.
    const policy = loadPolicyFrom({ secretsDir: fleet.secretsDir });
    const { hosts } = loadManifests(await readManifestDir(fleet.hostsDir), policy);
    const [target] = prepareTargets(hosts, await policyResolver(hosts, policy.secrets));
    const session = await connect(fleet);
    const observeMs: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await session.runScript(observeScript(target.desired));
      observeMs.push(performance.now() - t);
    }
    session.close();
    const cpu = await observeCpu(fleet, observeScript(target.desired));
    log(
      `observe CPU per host: ${fmt(cpu.treeMs)} ms (script), ${cpu.hostMs === undefined ? '?' : fmt(cpu.hostMs)} ms (host)`,
    );
    const cliPlan: number[] = [];
    for (let i = 0; i < ROUNDS; i++)
      cliPlan.push(must(await natsfleet(fleet, 'plan', '--host', fleet.hosts[0].name), 'plan one host').seconds);
    const nodeStart: number[] = [];
    for (let i = 0; i < ROUNDS; i++)
      nodeStart.push((await run('node', [join(ROOT, 'bin/natsfleet.js'), '--version'])).seconds);

    const push = await pushToServing(fleet);

    const rows: [string, string, string, string][] = [
      [
        `no-op apply, ${N} hosts (new process)`,
        fmt(median(noop.natsfleet)),
        fmt(median(noop.ansible)),
        `${(median(noop.ansible) / median(noop.natsfleet)).toFixed(1)}x`,
      ],
      [
        `reload-safe change on ${N} hosts, to healthy`,
        fmt(median(change.natsfleet)),
        fmt(median(change.ansible)),
        `${(median(change.ansible) / median(change.natsfleet)).toFixed(1)}x`,
      ],
    ];
    const table = [
      '| benchmark (median seconds) | natsfleet | Ansible | Ansible / natsfleet |',
      '| --- | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.join(' | ')} |`),
    ].join('\n');
    const md = `# natsfleet benchmarks

Produced by \`npm run bench\` on ${machine.date}; every number is a median, each comparison ran both tools
on the same ${N} sandbox hosts in the same run, alternating, ${ROUNDS} rounds.

Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, Node ${machine.node}, ${ansibleVersion}.

${table}

The playbook (\`bench/ansible/nats.yml\`) manages the same directories, files (same templates' output),
unit, service, certificate volume and proxy, with pipelining on, forks = 50, no fact gathering, SSH
ControlPersist. Checked in the same run: Ansible in check mode finds nothing to change on hosts natsfleet
converged, and natsfleet plans nothing on hosts Ansible converged (byte-identical files, same modes).
Both tools include a health check (natsfleet: in its one observe command, and full verification after a
change; Ansible: a \`uri\` task on /healthz).

## One host

| what | median |
| --- | ---: |
| no-op observe of one host: SSH commands | 1 |
| that command on a warm connection (loopback, sandbox host) | ${fmt(median(observeMs))} ms |
| \`natsfleet plan --host\` of one host, whole process (start, connect, observe, plan) | ${fmt(median(cliPlan))} s |
| of which starting Node and loading natsfleet (\`natsfleet --version\`) | ${fmt(median(nodeStart))} s |
| observe CPU time per host, the script's processes (shell, perl, find, sha256sum, systemctl, ss) | ${fmt(cpu.treeMs)} ms |
| observe CPU time per host, the whole host (its cgroup, idle rate removed: also dockerd, systemd, nats-server answering) | ${cpu.hostMs === undefined ? 'n/a' : `${fmt(cpu.hostMs)} ms`} |
| that script's wall time on the host, runs back to back | ${fmt(cpu.wallMs)} ms |

The observe script's CPU time, measured the same way on a sandbox host on 2026-11-27 before issue 16's
work, was 78 ms (its processes) and 92 ms (the whole host) per run: three curl processes (the Docker API,
a second one for monitoring's address, monitoring), a \`stat\`, \`sha256sum\` and \`cut\` per file and a
\`stat\` per directory, \`cat\` of five state files, and \`/version\`, which makes dockerd run runc and
docker-init. Now one curl (the Docker API and monitoring at the desired address, \`--next\`; the engine's
version from the \`Server\` header of \`/_ping\`), one \`find\` and one \`sha256sum\` for every path,
state files read only when they exist, the OS, uid and nonce read by the shell itself.

## Where a reload-safe change's time goes (${N} hosts at once, in one process: no start-up)

The same change as above, applied by \`reconcileOne\` to every host at once, each apply's phases timed
(medians over hosts; two runs, there and back). An apply is four SSH round trips after the observe: the
lock, staging and the config test (in the running container: \`docker exec\` through the Docker API, same
image, same mounts); the install, reload and the checks of /healthz, /varz, /jsz and the proxy (one curl
per try); NATS clients through the connection (no shell); the record and the unlock.

| phase (median per host) | run 1 | run 2 |
| --- | ---: | ---: |
| connect, observe, plan | ${profiles.map((p) => `${fmt(p.observeAndLock)} ms`).join(' | ')} |
| take the lock, stage the files, test the config (one script) | ${profiles.map((p) => `${fmt(p.prepare)} ms`).join(' | ')} |
| install (backups, pending record, rename, reload) and /healthz, /varz, /jsz, proxy (one script) | ${profiles.map((p) => `${fmt(p.install)} ms`).join(' | ')} |
| NATS clients (auth) through the connection, and the record | ${profiles.map((p) => `${fmt(p.verifyAndRecord)} ms`).join(' | ')} |
| all ${N} hosts, wall | ${profiles.map((p) => `${fmt(p.wall)} s`).join(' | ')} |

Issue 16's targets, in this run: no-op apply at least 45x faster than Ansible:
${median(noop.ansible) / median(noop.natsfleet) >= 45 ? 'met' : 'not met'} (${(median(noop.ansible) / median(noop.natsfleet)).toFixed(1)}x);
reload-safe change at least 14x: ${median(change.ansible) / median(change.natsfleet) >= 14 ? 'met' : 'not met'} (${(median(change.ansible) / median(change.natsfleet)).toFixed(1)}x).
The hosts share the machine's ${machine.cores} cores with the controller, so the phases above overlap and
are CPU-bound: SSH handshakes and the observe (first row), the exec in ${N} containers at once (dockerd,
containerd-shim and runc start a process in each: about 75 ms of a host's CPU) and staging's checks
(second row), the reload and the checks (third), and the NATS clients and the record (fourth). One host's
change costs it about 320 ms of CPU (its cgroup; 450-510 ms before the last round of this work).

## From git push to the host serving the change (controller running, one host)

| trigger | median | runs |
| --- | ---: | ---: |
| poll (interval ${POLL_SEC} s) | ${fmt(median(push.poll))} s | ${push.poll.length} |
| webhook | ${fmt(median(push.webhook))} s | ${push.webhook.length} |

With polling, the wait for the next poll dominates: each push here follows the previous deploy at once, so this is the worst case (a whole interval; half of it on average for pushes at random times). With the webhook,
what remains is fetch, validation, one observe, staging, \`nats-server -t\` with the target image,
install, reload and verification (including a NATS client authenticating through an SSH tunnel).
`;
    const summary = table;
    return { md, summary };
  } finally {
    await fleetDown('bench');
  }
}

/** A benchmark scenario: its sections of RESULTS.md, a summary for the terminal, a failure if any. */
interface Outcome {
  md: string;
  summary: string;
  /** Set when the scenario measured but found a failure: its sections are written all the same. */
  failure?: string;
}
interface Scenario {
  name: string;
  run: () => Promise<Outcome>;
  /** Measured by that other scenario for now: left out of a default run (run fails when named). */
  partOf?: string;
}

/** The lead's takeover benchmark (bench/takeover.ts), loaded only when run: a missing file fails its section. */
async function takeoverScenario(): Promise<Outcome> {
  const spec = './takeover.js'; // not a literal: the file may not exist yet, and typecheck must pass without it
  const { takeoverBench } = (await import(spec)) as {
    takeoverBench: (work: string, log: (s: string) => void) => Promise<{ md: string; summary: string }>;
  };
  return takeoverBench(WORK, log);
}

async function clusterScenario(): Promise<Outcome> {
  const cluster = await clusterBench(WORK, CLUSTER_ROUNDS, log);
  const section = clusterSection(cluster, machine);
  const lost = cluster.rounds.reduce((a, r) => a + (r.lost ?? 0), 0);
  const unread = cluster.rounds.filter((r) => r.lost === undefined).length;
  const failed = cluster.rounds.filter((r) => r.failed).length;
  const failure =
    lost > 0 || unread > 0 || failed > 0
      ? `${failed} upgrade(s) failed, ${lost} acknowledged messages lost, ${unread} stream(s) not read back`
      : undefined;
  return { ...section, failure };
}

/** In the order of a default run (and of their sections in a new RESULTS.md). */
const SCENARIOS: Scenario[] = [
  { name: 'hosts', run: hostsBench },
  { name: 'sweep', run: () => sweepBench(WORK, log) },
  { name: 'startup', run: async () => (await import('./startup.js')).startupBench(WORK, log) },
  { name: 'takeover', run: takeoverScenario },
  { name: 'cluster', run: clusterScenario },
];

/**
 * `bench/run.ts [scenario ...]`: runs the named scenarios (all by default), each writing its sections of
 * RESULTS.md as soon as it is done (the other sections stay as they are). A scenario that fails (its
 * module missing included) leaves its sections as they were, the others run, and the exit code is 1.
 */
async function main() {
  const started = Date.now();
  const names = process.argv.slice(2);
  const known = SCENARIOS.map((s) => s.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length) {
    log(`unknown scenario ${unknown.join(', ')} (scenarios: ${known.join(', ')})`);
    process.exitCode = 2;
    return;
  }
  const chosen = names.length ? SCENARIOS.filter((s) => names.includes(s.name)) : SCENARIOS.filter((s) => !s.partOf);
  const summaries: string[] = [];
  const failures: string[] = [];
  for (const scenario of chosen) {
    const t = Date.now();
    log(`scenario ${scenario.name}`);
    try {
      const outcome = await scenario.run();
      const old = existsSync(RESULTS) ? readFileSync(RESULTS, 'utf8') : '';
      writeFileSync(RESULTS, mergeSections(old, outcome.md));
      summaries.push(`${scenario.name} (${((Date.now() - t) / 1000).toFixed(0)} s):\n${outcome.summary}`);
      if (outcome.failure) failures.push(`${scenario.name}: ${outcome.failure}`);
    } catch (e) {
      failures.push(`${scenario.name} (its sections of RESULTS.md are left as they were): ${(e as Error).message}`);
      log(`FAIL: ${failures.at(-1)}`);
    }
  }
  const took = `${((Date.now() - started) / 1000).toFixed(0)} s`;
  process.stdout.write(
    summaries.length
      ? `${summaries.join('\n\n')}\nwritten: bench/RESULTS.md (${took})\n`
      : `nothing written (${took})\n`,
  );
  if (failures.length) {
    process.stderr.write(failures.map((f) => `[bench] FAIL: ${f}\n`).join(''));
    process.exitCode = 1;
  }
}

await main();
