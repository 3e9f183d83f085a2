// Issue 11's proof 2, end to end: `natsfleet apply` killed with SIGKILL at ten moments of an apply that
// changes httpPort with the proxy on (unit, config-free restart, server block, proxy reload). Each time
// one more `natsfleet apply` converges with no human step: the proxy answers over HTTPS, plan exits 0,
// no lock remains, and NATS was restarted at most once more than the change needs.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Scenario } from './helpers.js';
import { ROOT } from '../helpers/fixtures.js';

const fleet = inject('fleet');
const h2 = fleet.hosts[1];
const s = new Scenario(fleet, h2);

/** Runs the real CLI (a new process, as an operator would); `killAfterMs` sends it SIGKILL then. */
function cli(
  args: string[],
  killAfterMs?: number,
): Promise<{ code: number | null; signal: string | null; out: string }> {
  const child = spawn('node', [join(ROOT, 'bin/natsfleet.js'), ...args, ...s.cliFlags()], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = killAfterMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    }),
  );
}

const https = () =>
  s.sh(
    `curl -sk -m 3 -o /dev/null -w '%{http_code}' --resolve ${h2.name}.sandbox.test:443:127.0.0.1 https://${h2.name}.sandbox.test/varz`,
  );

beforeAll(async () => {
  s.write((d) => (d.spec.nats.httpPort = 8222));
  const r = await cli(['apply']);
  expect(r.code, r.out).toBe(0);
});
afterAll(() => s.close());

describe('kill -9 of an apply', () => {
  it('2. at ten moments of an httpPort change with the proxy on: one more apply converges each time', async () => {
    // How long the whole change takes here, uninterrupted (the kills are spread over it).
    s.write((d) => (d.spec.nats.httpPort = 8223));
    const started = Date.now();
    const whole = await cli(['apply']);
    expect(whole.code, whole.out).toBe(0);
    const duration = Date.now() - started;
    const report: string[] = [];
    for (let k = 0; k < 10; k++) {
      const port = k % 2 === 0 ? 8222 : 8223;
      s.write((d) => (d.spec.nats.httpPort = port));
      let since = await s.sh('date +%s');
      // Ten moments spread over the apply (5% to 77% of it); an apply that finished before its kill
      // (they vary) is undone and tried again earlier, so that every one of the ten is a real kill.
      let killAt = Math.round(duration * (0.05 + 0.08 * k));
      let killed = await cli(['apply'], killAt);
      for (let tries = 0; killed.signal !== 'SIGKILL' && tries < 4; tries++) {
        s.write((d) => (d.spec.nats.httpPort = port === 8222 ? 8223 : 8222));
        expect((await cli(['apply'])).code).toBe(0);
        s.write((d) => (d.spec.nats.httpPort = port));
        killAt = Math.round(killAt * 0.6);
        since = await s.sh('date +%s');
        killed = await cli(['apply'], killAt);
      }
      expect(killed.signal, `kill at ${killAt} ms`).toBe('SIGKILL');
      await new Promise((r) => setTimeout(r, 300));
      const again = await cli(['apply']);
      expect(again.code, `kill at ${killAt} ms: ${killed.signal ?? killed.code}\n${again.out}`).toBe(0);
      const plan = await cli(['plan']);
      expect(plan.code, `kill at ${killAt} ms:\n${plan.out}`).toBe(0);
      expect(await s.sh('ls -a /var/lib/natsfleet | grep -c "^lock" || true')).toBe('0');
      expect(await https()).toBe('200');
      expect(JSON.parse(await s.sh(`curl -s 127.0.0.1:${port}/varz`)).server_name).toBe(h2.name);
      const starts = Number(
        await s.sh(
          `docker events --since ${since} --until "$(date +%s)" --filter container=nats --filter event=start --format x | wc -l`,
        ),
      );
      // The change needs one restart; an interrupted apply may cost at most one more.
      expect(starts, `kill at ${killAt} ms`).toBeLessThanOrEqual(2);
      report.push(`${killAt} ms: ${starts} start(s)`);
    }
    console.log(`kill -9 moments (whole apply ${duration} ms): ${report.join('; ')}`);
  });
});
