// deploy/natsfleet.service: `systemd-analyze security` rates it OK or better (it was 8.5 EXPOSED), it passes
// `systemd-analyze verify` without a warning (the same offline check the rendered NATS units get), and the
// hardening leaves the controller what it needs: outbound TCP and local sockets, its state directory,
// no capability at all, the Node JIT (no MemoryDenyWriteExecute), and the secrets file.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const UNIT = join(ROOT, 'deploy/natsfleet.service');

/** The unit copied alone into an empty directory, as the render tests check theirs. */
function staged(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nf-controller-unit-'));
  copyFileSync(UNIT, join(dir, 'natsfleet.service'));
  return join(dir, 'natsfleet.service');
}

const run = (args: string[]) => {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0' } });
  if (r.error) throw r.error;
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

/** The [Service] settings of the unit: key -> every value it is given, in order. */
function settings(): Map<string, string[]> {
  const map = new Map<string, string[]>();
  let section = '';
  for (const line of readFileSync(UNIT, 'utf8').split('\n')) {
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) section = s[1];
    const kv = /^(\w+)=(.*)$/.exec(line);
    if (kv && section === 'Service') map.set(kv[1], [...(map.get(kv[1]) ?? []), kv[2]]);
  }
  return map;
}

describe('deploy/natsfleet.service', () => {
  it('is rated OK or better by systemd-analyze security', () => {
    const r = run(['security', '--offline=true', '--no-pager', staged()]);
    const m = /Overall exposure level for natsfleet\.service: (\d+\.\d) (\w+)/.exec(r.out);
    expect(m, r.out.slice(-500)).not.toBeNull();
    expect(['OK', 'SAFE', 'PERFECT']).toContain(m![2]);
    expect(Number(m![1])).toBeLessThan(2);
  });

  it('passes systemd-analyze verify without a warning', () => {
    const r = run(['verify', staged()]);
    expect(r.out.trim()).toBe('');
    expect(r.code).toBe(0);
  });

  it('leaves the controller what it needs, and only that', () => {
    const s = settings();
    const one = (k: string) => s.get(k)?.at(-1);
    expect(one('User')).toBe('natsfleet');
    expect(one('ExecStart')).toMatch(/ natsfleet controller --config \/etc\/natsfleet\/natsfleet\.yaml$/);
    expect(one('EnvironmentFile')).toBe('/etc/natsfleet/natsfleet.env');
    // The young generation the sweep benchmark runs with (bench/sweep-bench.ts).
    expect(one('Environment')).toBe('NODE_OPTIONS=--max-semi-space-size=32');
    // The state directory (the controller's default stateDir), created 0700 by systemd.
    expect(one('StateDirectory')).toBe('natsfleet-controller');
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(one('ProtectSystem')).toBe('strict');
    // Outbound SSH, HTTPS and git over IPv4/IPv6; local sockets for child pipes and ssh-agent.
    expect(one('RestrictAddressFamilies')!.split(/\s+/).sort()).toEqual(['AF_INET', 'AF_INET6', 'AF_UNIX']);
    expect(s.has('PrivateNetwork')).toBe(false);
    expect(s.has('IPAddressDeny')).toBe(false);
    // No capability, none to gain.
    expect(one('CapabilityBoundingSet')).toBe('');
    expect(one('NoNewPrivileges')).toBe('yes');
    // V8 compiles to writable executable memory: MemoryDenyWriteExecute would kill Node.
    expect(s.has('MemoryDenyWriteExecute')).toBe(false);
    expect(s.get('SystemCallFilter')).toContain('@system-service');
    // A filtered call fails with EPERM instead of killing the process.
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
  });
});
