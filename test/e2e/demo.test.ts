// The README's main job works on this machine: `natsfleet demo` brings up its own fleet, deploys the
// example hosts (a three-member JetStream cluster among them) through the controller and prints every
// host Synced and Healthy, and the cluster whole.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { demoCommand } from '../../controller/cli/demo.js';
import { main } from '../../controller/cli/main.js';
import { fleetDown } from '../../controller/sandbox/fleet.js';
import { ROOT } from '../helpers/fixtures.js';

afterAll(() => fleetDown('e2e-demo'));

it('natsfleet demo deploys the example hosts and cluster and prints them Synced and Healthy', async () => {
  const lines: string[] = [];
  const code = await demoCommand(
    { hosts: join(ROOT, 'hosts'), out: mkdtempSync(join(tmpdir(), 'nf-demo-')), timeoutSec: 150, fleetId: 'e2e-demo' },
    (l) => lines.push(l),
    main,
  );
  const out = lines.join('\n');
  expect(out).toMatch(/deployed [0-9a-f]{12} to every host/);
  for (const host of ['nats-eu-1', 'nats-us-1', 'nats-core-1', 'nats-core-2', 'nats-core-3'])
    expect(out).toMatch(new RegExp(`^${host}\\s+Synced\\s+Healthy\\s+2\\.9\\.10`, 'm'));
  expect(out).toMatch(/^cluster core: 3 of 3 members healthy, JetStream meta leader nats-core-\d, every route up/m);
  expect(out).toContain('Next: upgrade the cluster core and watch natsfleet roll it, one member at a time.');
  expect(code).toBe(0);
});
