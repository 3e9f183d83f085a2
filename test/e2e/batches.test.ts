// Standalone hosts in batches, end to end on the sandbox: an image bump over six hosts in batches of 2.
// `plan` shows the batches; `apply` applies the first batch, and when a host of it fails, the rollout
// stops there: the later batches are planned but nothing is applied to them (they keep running the old
// image), and each says where the rollout stopped.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { cli } from '../helpers/cli.js';

const fleet = inject('fleet');
const hosts = fleet.hosts.slice(0, 6);
const dir = mkdtempSync(join(tmpdir(), 'nf-e2e-batches-'));
const scenarios = hosts.map((h) => new Scenario(fleet, h));
const flags = ['--hosts', dir, '--ssh-key', fleet.privateKeyPath, '--secrets-dir', fleet.secretsDir];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest, edited freely
type Doc = any;
function write(edit: (doc: Doc, i: number) => void) {
  for (const [i, h] of hosts.entries()) {
    const doc = load(readFileSync(join(fleet.hostsDir, `${h.name}.yaml`), 'utf8')) as Doc;
    edit(doc, i);
    writeFileSync(join(dir, `${h.name}.yaml`), dump(doc));
  }
}
const version = (s: Scenario) => s.sh('curl -s 127.0.0.1:8222/varz | grep -o \'"version": *"[^"]*"\'');

beforeAll(async () => {
  for (const s of scenarios) await s.wipe();
  // Six hosts running the old image, deployed all at once.
  write((doc) => (doc.spec.nats.image = fleet.natsImages.old));
  const first = await cli('apply', ...flags, '--yes');
  expect(first.code, first.out).toBe(0);
  // The image bump. The first host of the first batch fails: it pins another host's key (refused before
  // anything runs on it).
  write((doc, i) => {
    doc.spec.nats.image = fleet.natsImages.next;
    if (i === 0) doc.spec.ssh.hostKey = hosts[1].hostKey;
  });
}, 180_000);
afterAll(async () => {
  for (const s of scenarios) {
    await s.wipe();
    await s.close();
  }
}, 120_000);

describe('six standalone hosts in batches of 2', () => {
  it('plan shows the batches', async () => {
    const r = await cli('plan', ...flags, '--batch-size', '2');
    expect(r.out).toContain(
      `batches: [${hosts[0].name}, ${hosts[1].name}] -> [${hosts[2].name}, ${hosts[3].name}] -> ` +
        `[${hosts[4].name}, ${hosts[5].name}]`,
    );
  });

  it('a failure in the first batch stops the rollout: the second and third batches are not touched', async () => {
    const before = await Promise.all(scenarios.map(version));
    const r = await cli('apply', ...flags, '--batch-size', '2', '--yes');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(new RegExp(`^${hosts[0].name}: Unknown: .*host key mismatch`, 'm'));
    expect(r.out).toMatch(new RegExp(`^${hosts[1].name}: applied \\(.*restart.*\\), Healthy`, 'm'));
    for (const h of hosts.slice(2)) {
      expect(r.out).toContain(
        `${h.name}: blocked, Healthy, 0.0 s\n  error: not applied: the rollout stopped after batch 1 of 3: 1 host(s) failed`,
      );
    }
    const after = await Promise.all(scenarios.map(version));
    expect(after[1]).not.toBe(before[1]);
    expect(after[1]).toContain(fleet.natsImages.next.split(':')[1]);
    // The hosts of batches 2 and 3 still run the old image, untouched.
    expect(after.slice(2)).toEqual(before.slice(2));
    for (const v of after.slice(2)) expect(v).toContain(fleet.natsImages.old.split(':')[1]);
  });
});
