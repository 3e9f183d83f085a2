// Owns `natsfleet plan`, `apply`, `status`, `hostkey scan` and `unlock`: load and validate the
// hosts (nothing runs anywhere when any manifest is invalid or a secret is missing), then observe,
// plan and apply over SSH.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors } from '../manifest/problems.js';
import { readManifestDir } from '../manifest/read-dir.js';
import { policyResolver } from '../secrets/resolve.js';
import { integerArg, policyFrom, policyOptions, type PolicyFlags } from './policy-options.js';
import { integerRange } from '../gitops/config.js';
import { distinctRollouts } from '../gitops/decide.js';
import { prepareTargets, reconcileAll, type HostRun } from '../reconcile/reconcile.js';
import { SessionPool } from '../reconcile/pool.js';
import { formatClusterHealth, formatPlan, formatRollout, lockText, planSummary } from '../plan/format.js';
import { formatApply, formatTable } from '../report/terminal.js';
import { localRevision } from '../source/revision.js';
import { scanHostKey } from '../transport/ssh.js';
import { randomUUID } from 'node:crypto';
import { isSuccessful } from '../apply/result.js';
import { shortRev } from '../util/rev.js';
import { planVerdict } from '../plan/types.js';
import { lockReleaseAbandoned, lockReportScript, parseHeldLock, unlockScript } from '../apply/commands.js';
import { describeLock, takeOverReason } from '../apply/lock.js';

interface Common extends PolicyFlags {
  hosts: string;
  host: string[];
  sshKey?: string;
  concurrency: number;
  output: 'text' | 'json';
}

/** Why a host is not in sync and healthy, in one line (the status table's last column, and its JSON). */
function statusReason(r: HostRun): string {
  const p = r.plan!;
  const parts = [
    ...(r.error ? [`unreachable: ${r.error}`] : []),
    ...p.blocked.map((b) => `blocked: ${b}`),
    ...(p.lock ? [lockText(p.lock)] : []),
    ...p.drift.map((d) => `drift: ${d}`),
    ...(p.sync === 'OutOfSync' && !p.drift.length && !p.blocked.length ? ['changes to apply (see plan)'] : []),
  ];
  return parts.join('; ') || '-';
}

function sshKey(opts: Common): Buffer {
  const path = opts.sshKey ?? process.env.NATSFLEET_SSH_KEY;
  if (!path) throw new Error('no SSH private key: pass --ssh-key PATH or set NATSFLEET_SSH_KEY');
  return readFileSync(path);
}

async function run(opts: Common, apply: boolean, out: (l: string) => void): Promise<HostRun[] | undefined> {
  const policy = policyFrom(opts);
  const { hosts, problems } = loadManifests(await readManifestDir(opts.hosts), policy);
  for (const p of problems) out(formatProblem(p));
  if (hasErrors(problems)) {
    out('error: invalid manifests: nothing was run on any host');
    return undefined;
  }
  // A cluster member brings its whole cluster: a rollout judges quorum on every member.
  const clustersOf = new Set(hosts.filter((h) => opts.host.includes(h.name) && h.cluster).map((h) => h.cluster!.name));
  const selected = opts.host.length
    ? hosts.filter((h) => opts.host.includes(h.name) || (h.cluster && clustersOf.has(h.cluster.name)))
    : hosts;
  const unknown = opts.host.filter((n) => !hosts.some((h) => h.name === n));
  if (unknown.length) {
    out(`error: no host named ${unknown.join(', ')} in ${opts.hosts}`);
    return undefined;
  }
  const targets = prepareTargets(selected, await policyResolver(selected, policy.secrets), policy.paths);
  const pool = new SessionPool({ privateKey: sshKey(opts) });
  try {
    return await reconcileAll(targets, {
      pool,
      revision: await localRevision(opts.hosts),
      apply,
      concurrency: Number(opts.concurrency),
    });
  } finally {
    await pool.closeAll();
  }
}

function common(cmd: Command): Command {
  const concurrency = integerRange('concurrency');
  return policyOptions(cmd)
    .option('--hosts <dir>', 'hosts directory', 'hosts')
    .option('--host <name>', 'only this host (repeatable)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--ssh-key <path>', 'SSH private key (default: $NATSFLEET_SSH_KEY)')
    .option('--concurrency <n>', 'hosts handled at once', integerArg(concurrency.min, concurrency.max), 10)
    .addOption(new Option('--output <format>', 'text or json').choices(['text', 'json']).default('text'));
}

export function reconcileCommands(
  program: Command,
  out: (l: string) => void,
  setCode: (c: number) => void,
  err: (l: string) => void = out,
) {
  common(
    program
      .command('plan')
      .description('observe hosts and show what apply would change (exit 0: none, 2: changes, 1: error)'),
  ).action(async (opts: Common) => {
    const runs = await run(opts, false, out);
    if (!runs) return setCode(1);
    const plans = runs.map((r) => r.plan!);
    if (opts.output === 'json') out(JSON.stringify(plans, null, 2));
    else {
      for (const p of plans) out(formatPlan(p));
      for (const r of distinctRollouts(runs)) out(formatRollout(r));
      out(planSummary(plans));
    }
    setCode(
      plans.some((p) => ['unknown', 'blocked'].includes(planVerdict(p)))
        ? 1
        : plans.some((p) => p.sync === 'OutOfSync')
          ? 2
          : 0,
    );
  });
  common(
    program.command('apply').description('apply the plan and verify (exit 0 when every host ends healthy and in sync)'),
  ).action(async (opts: Common) => {
    const runs = await run(opts, true, out);
    if (!runs) return setCode(1);
    if (opts.output === 'json')
      out(
        JSON.stringify(
          runs.map((r) => ({ plan: r.plan, result: r.apply, error: r.error })),
          null,
          2,
        ),
      );
    else {
      for (const r of distinctRollouts(runs)) out(formatRollout(r));
      for (const r of runs) out(r.apply ? formatApply(r.apply) : `${r.host}: Unknown: ${r.error}`);
    }
    const ok = runs.every((r) => isSuccessful(r.apply));
    setCode(ok ? 0 : 1);
  });
  common(program.command('status').description('sync and health of every host')).action(async (opts: Common) => {
    const runs = await run(opts, false, out);
    if (!runs) return setCode(1);
    const rows = runs.map((r) => ({
      host: r.host,
      sync: r.plan!.sync,
      health: r.error ? 'Unknown' : r.plan!.health,
      version: r.plan!.natsVersion ?? '-',
      revision: r.plan!.applied ? shortRev(r.plan!.applied.revision) : '-',
      appliedAt: r.plan!.applied?.at ?? '-',
      reason: statusReason(r),
    }));
    if (opts.output === 'json') out(JSON.stringify(rows, null, 2));
    else {
      out(formatTable(rows));
      for (const r of distinctRollouts(runs)) for (const l of formatClusterHealth(r)) out(l);
    }
    setCode(rows.every((r) => r.sync === 'Synced' && r.health === 'Healthy') ? 0 : 1);
  });

  const hostkey = program.command('hostkey').description('host keys');
  hostkey
    .command('scan')
    .description('print the key HOST presents, to pin it in a manifest (verify it out of band!)')
    .argument('<host>', 'HOST or HOST:PORT')
    .action(async (target: string) => {
      const m = /^(.*?)(?::(\d+))?$/.exec(target)!;
      out(await scanHostKey(m[1], m[2] ? Number(m[2]) : 22));
    });

  common(
    program
      .command('unlock')
      .description('remove an apply lock left on a host: one whose owner is gone or whose lease ended; --force for any')
      .option('--force', 'also remove a lock that looks alive (only when you know no apply is running)'),
  ).action(async (opts: Common & { force?: boolean }) => {
    if (!opts.host.length) {
      err('error: unlock needs --host NAME (repeatable): which host to unlock');
      return setCode(1);
    }
    const policy = policyFrom(opts);
    const { hosts } = loadManifests(await readManifestDir(opts.hosts), policy);
    const unknown = opts.host.filter((n) => !hosts.some((h) => h.name === n));
    if (unknown.length) {
      err(`error: no valid host named ${unknown.join(', ')} in ${opts.hosts}`);
      return setCode(1);
    }
    const pool = new SessionPool({ privateKey: sshKey(opts) });
    let code = 0;
    try {
      for (const h of hosts.filter((x) => opts.host.includes(x.name))) {
        const s = await pool.get(h);
        const report = await s.runScript(lockReportScript());
        if (!report.stdout.trim()) {
          out(`${h.name}: no lock`);
          continue;
        }
        const held = parseHeldLock(report.stdout);
        const why = takeOverReason(held);
        if (!why && !opts.force) {
          err(`${h.name}: refusing: ${describeLock(held)}; if you know no apply is running, pass --force`);
          code = 1;
          continue;
        }
        const r = await s.runScript(why ? lockReleaseAbandoned(held.info?.token, randomUUID()) : unlockScript());
        if (r.code !== 0) {
          err(`${h.name}: the lock changed hands meanwhile: ${describeLock(parseHeldLock(r.stdout))}`);
          code = 1;
          continue;
        }
        out(`${h.name}: lock removed (${why ?? `--force: ${describeLock(held)}`})`);
      }
    } finally {
      await pool.closeAll();
    }
    setCode(code);
  });
}
