// Lock take-over rules as a table: whose lock may be taken over, and what is said of a held one.
import { describe, expect, it } from 'vitest';
import { hostname } from 'node:os';
import { describeLock, LEASE_MS, leaseEnd, takeOverReason } from '../../controller/apply/lock.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const info = (o: { host?: string; pid?: number; since?: string; expiresAt?: string }) => ({
  owner: `natsfleet@${o.host ?? 'other-machine'}`,
  host: o.host ?? 'other-machine',
  pid: o.pid ?? 4242,
  token: 't',
  since: o.since ?? '2026-11-26T11:59:00Z',
  expiresAt: o.expiresAt,
});

describe('takeOverReason', () => {
  it.each<[string, Parameters<typeof takeOverReason>[0], RegExp | undefined]>([
    [
      'a live apply on another machine, within its lease',
      { info: info({ expiresAt: '2026-11-26T12:29:00Z' }), ageSec: 60 },
      undefined,
    ],
    [
      'another machine, lease over',
      { info: info({ expiresAt: '2026-11-26T11:59:59Z' }), ageSec: 1800 },
      /its lease ended at 2026-11-26T11:59:59/,
    ],
    [
      'an older owner file without a lease: since + 30 min',
      { info: info({ since: '2026-11-26T11:00:00Z' }), ageSec: 3600 },
      /its lease ended at 2026-11-26T11:30:00/,
    ],
    [
      'a dead process on this machine',
      { info: info({ host: hostname(), pid: 2 ** 22 + 7 }), ageSec: 5 },
      /on this machine is gone/,
    ],
    [
      'this very process (alive)',
      { info: info({ host: hostname(), pid: process.pid, expiresAt: '2026-11-26T12:29:00Z' }), ageSec: 5 },
      undefined,
    ],
    ['no owner data, young', { ageSec: 60 }, undefined],
    ['no owner data, past the lease', { ageSec: LEASE_MS / 1000 + 1 }, /no owner data and is 1801 s old/],
  ])('%s', (_t, held, want) => {
    const r = takeOverReason(held, NOW);
    if (want) expect(r).toMatch(want);
    else expect(r).toBeUndefined();
  });

  // `gone` as the coordinator answers it: replica/session pairs no longer alive.
  it.each<[string, string | undefined, string | undefined, string[], RegExp | undefined]>([
    [
      'its replica is gone: the lease holder takes it over at once',
      'r1',
      's1',
      ['r1/s1'],
      /controller replica r1 is gone/,
    ],
    ['its replica is alive: respected, whatever the lease says', 'r1', 's1', [], undefined],
    ['this very process: never gone to itself', 'r2', 's', [], undefined],
    ['an earlier process of this replica (restarted under its name)', 'r2', 'old', ['r2/old'], /replica r2 is gone/],
    ['a lock without a replica (the CLI): the lease does not apply', undefined, undefined, ['r1/s1'], undefined],
  ])('with a controller replica lease: %s', (_t, holder, session, gone, want) => {
    const held = {
      info: { ...info({ expiresAt: '2026-11-26T12:29:00Z' }), ...(holder ? { replica: holder, session } : {}) },
      ageSec: 5,
    };
    const r = takeOverReason(held, NOW, { replica: 'r2', session: 's', gone: (x, s) => gone.includes(`${x}/${s}`) });
    if (want) expect(r).toMatch(want);
    else expect(r).toBeUndefined();
  });

  it('describes a held lock with who, since when and until when', () => {
    expect(describeLock({ info: info({ expiresAt: '2026-11-26T12:29:00Z' }), ageSec: 60 }, NOW)).toBe(
      'locked by natsfleet@other-machine (pid 4242) since 2026-11-26T11:59:00Z, lease until 2026-11-26T12:29:00.000Z',
    );
    expect(describeLock({ ageSec: 60 }, NOW)).toBe(
      'a lock without owner data, 60 s old, lease until 2026-11-26T12:29:00.000Z',
    );
    expect(leaseEnd({ ageSec: 0 }, NOW)).toBe(NOW + LEASE_MS);
  });
});
