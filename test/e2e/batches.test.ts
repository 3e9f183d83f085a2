// Standalone hosts in batches, end to end on the sandbox: `plan` shows the batches; `apply` applies the
// first batch, and when a host of it fails, the rollout stops there: the later batches are planned but
// nothing is applied to them, and each says where the rollout stopped.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';

const fleet = inject('fleet');
const hosts = fleet.hosts.slice(0, 4);
const dir = mkdtempSync(join(tmpdir(), 'nf-e2e-batches-'));
const scenarios = hosts.map((h) => new Scenario(fleet, h));
const flags = ['--hosts', dir, '--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir];

beforeAll(async () => {
  for (const s of scenarios) await s.wipe();
  for (const [i, h] of hosts.entries()) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest, edited freely
    const doc = load(readFileSync(join(fleet.hostsDir, `${h.name}.yaml`), 'utf8')) as any;
    // The first host of the first batch fails: it pins another host's key (refused before anything runs).
    if (i === 0) doc.spec.ssh.hostKey = hosts[1].hostKey;
    writeFileSync(join(dir, `${h.name}.yaml`), dump(doc));
  }
}, 120_000);
afterAll(async () => {
  for (const s of scenarios) {
    await s.wipe();
    await s.close();
  }
}, 120_000);

describe('standalone hosts in batches of 2', () => {
  it('plan shows the batches', async () => {
    const r = await cli('plan', ...flags, '--batch-size', '2');
    expect(r.out).toContain(`batches: [${hosts[0].name}, ${hosts[1].name}] -> [${hosts[2].name}, ${hosts[3].name}]`);
  });

  it('a failure in the first batch stops the rollout: the second batch is not touched', async () => {
    const r = await cli('apply', ...flags, '--batch-size', '2', '--yes');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^${hosts[0].name}: Unknown: .*host key mismatch`, 'm'));
    expect(r.out).toMatch(new RegExp(`^${hosts[1].name}: applied \\(.*\\), Healthy`, 'm'));
    for (const h of hosts.slice(2)) {
      expect(r.out).toContain(
        `${h.name}: blocked, Missing, 0.0 s\n  error: not applied: the rollout stopped after batch 1 of 2: 1 host(s) failed`,
      );
    }
    expect(await scenarios[1].sh('systemctl is-active nats.service')).toBe('active');
    for (const s of scenarios.slice(2))
      expect(await s.sh('systemctl is-active nats.service || true')).not.toBe('active');
  });
});
