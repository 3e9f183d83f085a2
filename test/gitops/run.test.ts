// The controller loop: a webhook (or any trigger) that arrives while a tick runs is not lost.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { expect, it } from 'vitest';
import { startController } from '../../controller/gitops/run.js';
import { DEFAULT_LOAD_POLICY } from '../../controller/manifest/load.js';
import { DEFAULTS } from '../../controller/gitops/config.js';

it('a trigger during a tick starts the next tick at once instead of waiting for the poll interval', async () => {
  const d = mkdtempSync(join(tmpdir(), 'nf-loop-'));
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', join(d, 'origin.git')]);
  execFileSync('git', ['init', '-q', '-b', 'main', join(d, 'work')]);
  mkdirSync(join(d, 'work/hosts'));
  writeFileSync(join(d, 'work/hosts/README'), 'no hosts yet\n');
  execFileSync(
    'sh',
    [
      '-c',
      'git add -A && git -c user.name=t -c user.email=t@example.com commit -qm init && git push -q ../origin.git main',
    ],
    { cwd: join(d, 'work') },
  );
  // A real key (the controller checks it at start), for no host: nothing is reached.
  execFileSync('ssh-keygen', ['-q', '-t', 'ecdsa', '-b', '256', '-N', '', '-f', join(d, 'key')]);
  const running = await startController(
    {
      ...DEFAULTS,
      repo: join(d, 'origin.git'),
      stateDir: join(d, 'state'),
      sshKey: join(d, 'key'),
      pollIntervalSec: 60,
      driftIntervalSec: 3600,
      policy: DEFAULT_LOAD_POLICY,
    },
    pino({ level: 'silent' }),
  );
  try {
    running.trigger(); // while the first tick runs
    const t = Date.now();
    await running.nextTick();
    await running.nextTick();
    expect(Date.now() - t).toBeLessThan(10_000);
    expect(running.controller.metrics.ticks).toBe(2);
  } finally {
    await running.stop();
  }
});
