// Owns `natsfleet import HOST[:PORT] --name NAME --host-key KEY`: reads a host that runs NATS without
// natsfleet (the seed's Ansible role, or by hand) in three SSH round trips and writes the NatsHost
// manifest that reproduces it (printed, or written with --out), checked by the same validation as every
// manifest. Only what the host runs is read; secret values in its config are never printed: the manifest
// names environment variables to fill in.
import { existsSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Option, type Command } from 'commander';
import type { HostSpec } from '../manifest/host-spec.js';
import { loadManifests } from '../manifest/load.js';
import { formatProblem, hasErrors } from '../manifest/problems.js';
import { hostKeyProblem } from '../manifest/host-key.js';
import {
  detailsScript,
  findNatsContainer,
  findProxyContainer,
  inspectScript,
  inventoryScript,
  parseDetails,
  parseInspect,
  parseInventory,
} from '../adopt/import-facts.js';
import { importManifest, manifestYaml } from '../adopt/manifest.js';
import { policyFrom, policyOptions, type PolicyFlags } from './policy-options.js';
import { parseTarget, SSH_KEY_HELP, sshPool, type SshFlags } from './ssh-options.js';

interface ImportFlags extends PolicyFlags, SshFlags {
  name: string;
  hostKey: string;
  user: string;
  unit: string;
  container?: string;
  out?: string;
  force?: boolean;
  output: 'yaml' | 'json';
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const UNIT = /^[A-Za-z0-9@._-]+\.service$/;

export function importCommand(
  program: Command,
  out: (l: string) => void,
  err: (l: string) => void,
  setCode: (c: number) => void,
): void {
  policyOptions(
    program
      .command('import')
      .description('read a host that runs NATS without natsfleet and write the NatsHost manifest that reproduces it')
      .argument('<target>', 'HOST or HOST:PORT (SSH)')
      .requiredOption('--name <name>', 'the host name in natsfleet (metadata.name, the file name)')
      .requiredOption('--host-key <key>', 'the pinned host key, "<type> <base64>" (natsfleet hostkey scan HOST)')
      .option('--user <user>', 'SSH user', 'root')
      .option('--ssh-key <path>', SSH_KEY_HELP)
      .option('--unit <unit>', 'the systemd unit running NATS', 'nats.service')
      .option('--container <name>', 'the NATS container (default: the one serving port 4222)')
      .option('--out <file>', 'write the manifest here (default: print it)')
      .addOption(
        new Option('-o, --output <format>', 'yaml (the manifest) or json (manifest, secrets, notes)')
          .choices(['yaml', 'json'])
          .default('yaml'),
      )
      .option('--force', 'overwrite --out when it exists'),
  ).action(async (target: string, o: ImportFlags) => {
    const at = parseTarget(target);
    const problems = [
      ...(!at ? [`${target}: expected HOST or HOST:PORT`] : []),
      ...(!DNS_LABEL.test(o.name) ? [`--name ${o.name}: must be a DNS label (a-z, 0-9, -)`] : []),
      ...(hostKeyProblem(o.hostKey) ? [`--host-key: ${hostKeyProblem(o.hostKey)}`] : []),
      ...(!UNIT.test(o.unit) ? [`--unit ${o.unit}: expected a unit name such as nats.service`] : []),
      ...(o.out && existsSync(o.out) && !o.force ? [`--out ${o.out}: exists (pass --force to overwrite)`] : []),
      ...(o.out && basename(o.out) !== `${o.name}.yaml` ? [`--out: the file must be named ${o.name}.yaml`] : []),
    ];
    if (problems.length) {
      for (const p of problems) err(`error: ${p}`);
      return setCode(1);
    }
    const policy = policyFrom(o);
    const ssh = { ...at!, user: o.user, hostKey: o.hostKey };
    const pool = await sshPool(o);
    try {
      const session = await pool.get({ name: o.name, ssh } as HostSpec);
      const run = async (script: string) => (await session.runScript(script, 30_000)).stdout;
      const inventory = parseInventory(await run(inventoryScript(o.unit)), o.unit);
      if (!inventory.dockerRunning) {
        err(`error: ${target}: the Docker engine does not answer: nothing to import`);
        return setCode(1);
      }
      const summary = findNatsContainer(inventory, o.container);
      if (!summary) {
        const names = inventory.containers.map((c) => c.name).join(', ') || 'none';
        err(
          o.container
            ? `error: ${target}: no running container named ${o.container} (running: ${names})`
            : `error: ${target}: no running container serves NATS on port 4222 (running: ${names}); ` +
                'pass --container NAME',
        );
        return setCode(1);
      }
      const proxySummary = findProxyContainer(inventory);
      const inspected = parseInspect(await run(inspectScript(summary.id, proxySummary?.id)));
      if (!inspected.nats) {
        err(`error: ${target}: container ${summary.name} went away while it was read`);
        return setCode(1);
      }
      const facts = parseDetails(
        await run(detailsScript(inspected.nats, inspected.proxy)),
        inspected.nats,
        inventory,
        inspected.proxy,
      );
      const result = importManifest(facts, { name: o.name, ssh, paths: policy.paths });
      const text = manifestYaml(result, target, new Date().toISOString());
      // The manifest passes the same checks as any other, before it is shown.
      const file = o.out ?? join('hosts', `${o.name}.yaml`);
      const { problems: invalid } = loadManifests([{ path: file, text }], policy);
      for (const p of invalid) err(formatProblem(p));
      if (hasErrors(invalid)) {
        err('error: the imported manifest does not validate (see above): nothing written');
        return setCode(1);
      }
      if (o.out) {
        if (!existsSync(dirname(o.out))) {
          err(`error: --out ${o.out}: directory ${dirname(o.out)} does not exist`);
          return setCode(1);
        }
        writeFileSync(o.out, text, { flag: o.force ? 'w' : 'wx' });
        err(`wrote ${o.out}`);
      } else if (o.output === 'json') out(JSON.stringify(result, null, 2));
      else out(text.trimEnd());
      if (inventory.unit.fragmentPath)
        err(`takeover: ${o.unit} (${inventory.unit.activeState}) and container ${summary.name} become natsfleet's`);
      for (const s of result.secrets) err(`secret: set ${s.env} to ${s.what}`);
      const roots = result.rootsToAllow;
      if (roots.length)
        err(
          `allow: natsfleet writes in ${roots.join(', ')}, which it did not create: add them to the ` +
            `controller's paths.allowedRoots (or pass ${roots.map((r) => `--allowed-root ${r}`).join(' ')})`,
        );
      for (const n of result.notes) err(`note: ${n}`);
      setCode(0);
    } finally {
      await pool.closeAll();
    }
  });
}
