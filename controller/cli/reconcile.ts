// Owns `natsfleet plan`, `apply`, `status`, `hostkey scan` and `unlock`: load and validate the
// hosts (nothing runs anywhere when any manifest is invalid or a secret is missing), then observe,
// plan and apply over SSH.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors } from '../manifest/problems.js';
import { readManifestDir } from '../manifest/read-dir.js';
import { policyResolver } from '../secrets/resolve.js';
import { integerArg, policyFrom, policyOptions, type PolicyFlags } from './policy-options.js';
import { integerRange } from '../gitops/config-options.js';
import { distinctRollouts, splitSuspended, suspendItem, suspensionText } from '../gitops/decide.js';
import { API_TOKEN_ENV, controllerView, RemoteError } from './remote.js';
import { formatBatches, rollsInBatches, standaloneBatches, type BatchPolicy } from '../plan/batches.js';
import type { HostRun } from '../reconcile/reconcile.js';
import { formatClusterHealth, formatPlan, formatRollout, lockText, planSummary } from '../plan/format.js';
import { formatApply, formatTable } from '../report/terminal.js';
import { localRevision } from '../source/revision.js';
import { randomUUID } from 'node:crypto';
import { isSuccessful } from '../apply/result.js';
import { shortRev } from '../util/rev.js';
import { hasWork, planVerdict, type HostPlan } from '../plan/types.js';
import type { HostSpec } from '../manifest/host-spec.js';
import { matchesAny, parseSelector, SelectorError } from '../manifest/selector.js';
import { createInterface } from 'node:readline/promises';
import { paint, Progress, terminalOf } from './progress.js';
import { lockReleaseAbandoned, lockReportScript, parseHeldLock, unlockScript } from '../apply/commands.js';
import { describeLock, takeOverReason } from '../apply/lock.js';
import { parseTarget, SSH_KEY_HELP, sshAuth, sshPool } from './ssh-options.js';

// Loaded by the commands that reach hosts (ssh2, the apply engine, NATS): the others start without it.
const engine = () => import('../reconcile/reconcile.js');

interface Common extends PolicyFlags {
  hosts: string;
  host: string[];
  selector: string[];
  sshKey?: string;
  concurrency: number;
  output: 'text' | 'json';
  batchSize?: number;
  batchPercent?: number;
  canary?: number;
  batchPause?: number;
  maxFailures?: number;
}

/** The batch policy of --batch-size/--batch-percent/--canary/--batch-pause/--max-failures, if any. */
function batchPolicy(o: Common): BatchPolicy | undefined {
  const p: BatchPolicy = {
    size: o.batchSize,
    percent: o.batchPercent,
    canary: o.canary,
    pauseSec: o.batchPause,
    maxFailures: o.maxFailures,
  };
  const set = Object.entries(p).filter(([, v]) => v !== undefined);
  return set.length ? Object.fromEntries(set) : undefined;
}

/** plan and apply: standalone hosts in batches (NatsCluster members roll member by member anyway). */
function batchOptions(cmd: Command): Command {
  return cmd
    .option('--batch-size <n>', 'standalone hosts per batch', integerArg(1, 10000))
    .option('--batch-percent <n>', 'or a share of the standalone hosts per batch (percent)', integerArg(1, 100))
    .option('--canary <n>', 'hosts in a first batch of their own', integerArg(0, 10000))
    .option('--batch-pause <sec>', 'seconds between two batches', integerArg(0, 86400))
    .option('--max-failures <n>', 'stop once more hosts than this failed (default 0)', integerArg(0, 10000));
}

/** Why a host is not in sync and healthy, in one line (the status table's last column, and its JSON). */
function statusReason(r: HostRun): string {
  const p = r.plan!;
  const parts = [
    ...(r.error ? [`unreachable: ${r.error}`] : []),
    ...p.blocked.map((b) => `blocked: ${b}`),
    ...(p.lock ? [lockText(p.lock)] : []),
    ...p.drift.map((d) => `drift: ${d}`),
    ...(p.healthReason && !r.error ? [`${p.health.toLowerCase()}: ${p.healthReason}`] : []),
    ...(p.sync === 'OutOfSync' && !p.drift.length && !p.blocked.length ? ['changes to apply (see plan)'] : []),
  ];
  return parts.join('; ') || '-';
}

/** The hosts a command is about: --host names and -l selectors (a member brings its whole cluster). */
function selectHosts(hosts: HostSpec[], opts: Common): { selected: HostSpec[]; error?: string } {
  const unknown = opts.host.filter((n) => !hosts.some((h) => h.name === n));
  if (unknown.length) return { selected: [], error: `no host named ${unknown.join(', ')} in ${opts.hosts}` };
  const selectors = opts.selector.map(parseSelector); // checked when the flag was read
  const chosen = hosts.filter(
    (h) => (!opts.host.length || opts.host.includes(h.name)) && matchesAny(selectors, h.labels),
  );
  // A cluster member brings its whole cluster: a rollout judges quorum on every member.
  const clusters = new Set(chosen.filter((h) => h.cluster).map((h) => h.cluster!.name));
  const selected = hosts.filter((h) => chosen.includes(h) || (h.cluster && clusters.has(h.cluster.name)));
  if (!selected.length) return { selected, error: `no host in ${opts.hosts} matches ${opts.selector.join(' or ')}` };
  return { selected };
}

/** Loads, validates and selects the hosts, or says on `err` why nothing runs. */
async function prepare(opts: Common, err: (l: string) => void) {
  const policy = policyFrom(opts);
  // The revision's git processes run while the manifests are read and rendered.
  const revision = localRevision(opts.hosts);
  const files = await readManifestDir(opts.hosts);
  if (!files.length) {
    err(`error: ${opts.hosts}: no manifests (*.yaml) found: nothing to do (pass --hosts DIR)`);
    return undefined;
  }
  const { hosts, problems } = loadManifests(files, policy);
  for (const p of problems) err(formatProblem(p));
  if (hasErrors(problems)) {
    err('error: invalid manifests: nothing was run on any host');
    return undefined;
  }
  const { selected, error } = selectHosts(hosts, opts);
  if (error) {
    err(`error: ${error}`);
    return undefined;
  }
  const { prepareTargets } = await engine();
  const targets = prepareTargets(selected, await policyResolver(selected, policy.secrets), policy.paths);
  // Credentials before any host and before the progress line (a passphrase may be asked on the terminal).
  return { targets, revision: await revision, auth: await sshAuth(opts) };
}

type Prepared = NonNullable<Awaited<ReturnType<typeof prepare>>>;

async function run(
  opts: Common,
  ready: Prepared,
  apply: boolean,
  onHostDone?: (r: HostRun) => void,
): Promise<HostRun[]> {
  const [{ reconcileAll }, { SessionPool }] = await Promise.all([engine(), import('../reconcile/pool.js')]);
  const pool = new SessionPool(ready.auth);
  try {
    return await reconcileAll(ready.targets, {
      pool,
      revision: ready.revision,
      apply,
      concurrency: Number(opts.concurrency),
      batches: batchPolicy(opts),
      onHostDone,
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
    .option(
      '-l, --selector <labels>',
      'only hosts whose labels match: key=value, key!=value, key, !key; commas: all hold; repeated: any',
      (v: string, prev: string[]) => {
        try {
          parseSelector(v);
        } catch (e) {
          if (e instanceof SelectorError) throw new InvalidArgumentError(e.message);
          throw e;
        }
        return [...prev, v];
      },
      [] as string[],
    )
    .option('--ssh-key <path>', SSH_KEY_HELP)
    .option('--concurrency <n>', 'hosts handled at once', integerArg(concurrency.min, concurrency.max), 10)
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'));
}

const hostNames = (p: Prepared) => p.targets.map((t) => t.spec.name);

/** Observes and plans, printing each host's plan as it is ready (text) or all plans at the end (json). */
async function planned(
  opts: Common,
  verb: string,
  out: (l: string) => void,
  err: (l: string) => void,
  prepared?: Prepared,
): Promise<HostPlan[] | undefined> {
  const ready = prepared ?? (await prepare(opts, err));
  if (!ready) return undefined;
  const json = opts.output === 'json';
  const progress = json ? undefined : new Progress(verb, hostNames(ready), terminalOf(), out);
  const runs = await run(opts, ready, false, (r) => progress?.host(r.host, [formatPlan(r.plan!)])).finally(() =>
    progress?.stop(),
  );
  const plans = runs.map((r) => r.plan!);
  if (json) out(JSON.stringify(plans, null, 2));
  else {
    for (const r of distinctRollouts(runs)) out(formatRollout(r));
    const policy = batchPolicy(opts);
    // The standalone hosts whose change restarts (or that were not reached) go in batches, as apply does.
    const clustered = new Set(ready.targets.filter((x) => x.spec.cluster).map((x) => x.spec.name));
    const batched = runs.filter((r) => !clustered.has(r.host) && rollsInBatches(r.plan)).map((r) => r.host);
    if (policy && batched.length) out(formatBatches(standaloneBatches(batched, policy)));
    out(planSummary(plans));
  }
  return plans;
}

/** apply asks first only where someone can answer: a terminal on stdin, text output, no --yes. */
export const askFirst = (o: { stdinTty: boolean; yes?: boolean; output: string }) =>
  o.stdinTty && !o.yes && o.output === 'text';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(question)).trim().toLowerCase() === 'yes';
  } finally {
    rl.close();
  }
}

export function reconcileCommands(
  program: Command,
  out: (l: string) => void,
  setCode: (c: number) => void,
  err: (l: string) => void = out,
) {
  batchOptions(
    common(
      program
        .command('plan')
        .description('observe hosts and show what apply would change (exit 0: none, 2: changes, 1: error)'),
    ),
  ).action(async (opts: Common) => {
    const plans = await planned(opts, 'plan', out, err);
    if (!plans) return setCode(1);
    setCode(
      plans.some((p) => ['unknown', 'blocked'].includes(planVerdict(p)))
        ? 1
        : plans.some((p) => p.sync === 'OutOfSync')
          ? 2
          : 0,
    );
  });
  batchOptions(
    common(
      program
        .command('apply')
        .description(
          'apply the plan and verify (exit 0 when every host ends healthy and in sync); on a terminal it shows ' +
            'the plan and asks first',
        )
        .option('-y, --yes', 'do not ask for confirmation on a terminal'),
    ),
  ).action(async (opts: Common & { yes?: boolean }) => {
    const t = terminalOf();
    const all = await prepare(opts, err);
    if (!all) return setCode(1);
    // Suspended hosts (spec.policy.suspend) are not applied from the command line either.
    const split = splitSuspended(all.targets.map((t) => suspendItem(t)));
    for (const s of split.suspended)
      err(`${s.name}: suspended (spec.policy.suspend${s.suspend ? '' : ` of a member of ${s.cluster}`}): not applied`);
    const prepared = { ...all, targets: split.active.map((s) => s.t) };
    if (!prepared.targets.length) return setCode(split.suspended.length ? 0 : 1);
    if (askFirst({ stdinTty: Boolean(process.stdin.isTTY), yes: opts.yes, output: opts.output })) {
      const plans = await planned(opts, 'plan', out, err, prepared);
      if (!plans) return setCode(1);
      const work = plans.filter((p) => hasWork(p) && !p.blocked.length).length;
      if (work && !(await confirm(`Apply these changes to ${work} host(s)? Type "yes" to go on: `))) {
        err('apply cancelled: nothing was changed');
        return setCode(1);
      }
    }
    const json = opts.output === 'json';
    const progress = json ? undefined : new Progress('apply', hostNames(prepared), t, out);
    const runs = await run(opts, prepared, true, (r) =>
      progress?.host(r.host, [r.apply ? formatApply(r.apply) : `${r.host}: Unknown: ${r.error}`]),
    ).finally(() => progress?.stop());
    if (json)
      out(
        JSON.stringify(
          runs.map((r) => ({ plan: r.plan, result: r.apply, error: r.error })),
          null,
          2,
        ),
      );
    else for (const r of distinctRollouts(runs)) out(formatRollout(r));
    setCode(runs.every((r) => isSuccessful(r.apply)) ? 0 : 1);
  });
  const status = common(program.command('status').description('sync and health of every host')).option(
    '--controller <url>',
    `also show the hosts the running controller holds suspended (its token from $${API_TOKEN_ENV})`,
  );
  status.action(async (opts: Common & { controller?: string }) => {
    const prepared = await prepare(opts, err);
    if (!prepared) return setCode(1);
    // Suspended in Git, or (asked with --controller) through the running controller's API.
    const held = new Map(
      prepared.targets.flatMap((t) => (t.spec.policy.suspend ? [[t.spec.name, suspensionText(true, undefined)!]] : [])),
    );
    let remoteFailed = false;
    let replicas = new Map<string, string>();
    if (opts.controller)
      try {
        const view = await controllerView(opts);
        for (const [h, why] of view.suspended) held.set(h, why);
        replicas = view.replicas;
      } catch (e) {
        if (!(e instanceof RemoteError)) throw e;
        err(`error: ${e.message}`);
        remoteFailed = true;
      }
    const t = terminalOf();
    const progress = opts.output === 'json' ? undefined : new Progress('status', hostNames(prepared), t, () => {});
    const runs = await run(opts, prepared, false, (r) => progress?.host(r.host, [])).finally(() => progress?.stop());
    const rows = runs.map((r) => ({
      host: r.host,
      sync: r.plan!.sync,
      health: r.error ? 'Unknown' : r.plan!.health,
      version: r.plan!.natsVersion ?? '-',
      revision: r.plan!.applied ? shortRev(r.plan!.applied.revision) : '-',
      appliedAt: r.plan!.applied?.at ?? '-',
      // Which controller replica holds the host, when replicas share the work.
      ...(replicas.size ? { replica: replicas.get(r.host) ?? '-' } : {}),
      reason: [held.get(r.host), statusReason(r)].filter((x) => x && x !== '-').join('; ') || '-',
    }));
    if (opts.output === 'json') out(JSON.stringify(rows, null, 2));
    else {
      for (const l of formatTable(rows).split('\n')) out(paint(l, t));
      for (const r of distinctRollouts(runs)) for (const l of formatClusterHealth(r)) out(l);
    }
    setCode(!remoteFailed && rows.every((r) => r.sync === 'Synced' && r.health === 'Healthy') ? 0 : 1);
  });

  const hostkey = program.command('hostkey').description('host keys');
  hostkey
    .command('scan')
    .description('print the key HOST presents, to pin it in a manifest (verify it out of band!)')
    .argument('<host>', 'HOST or HOST:PORT')
    .option('--timeout <sec>', 'give up after this long', integerArg(1, 300), 10)
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .action(async (target: string, o: { timeout: number; output: string }) => {
      const at = parseTarget(target);
      if (!at) {
        err(`error: ${target}: expected HOST or HOST:PORT`);
        return setCode(1);
      }
      const { ScanError, scanHostKey } = await import('../transport/host-key-scan.js');
      try {
        const k = await scanHostKey(at.host, at.port, o.timeout * 1000);
        if (o.output === 'json') return out(JSON.stringify({ target, ...k }, null, 2));
        const algo = k.hostKey.split(' ')[0];
        const type = algo.startsWith('ecdsa') ? 'ecdsa' : algo === 'ssh-rsa' ? 'rsa' : algo.replace(/^ssh-/, '');
        out(`# ${target} presents ${algo} ${k.fingerprint}`);
        out(`# compare it on the host: ssh-keygen -lf /etc/ssh/ssh_host_${type}_key.pub`);
        out(`hostKey: ${k.hostKey}`);
      } catch (e) {
        if (!(e instanceof ScanError)) throw e;
        err(`error: ${e.message}`);
        setCode(1);
      }
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
    const pool = await sshPool(opts);
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
