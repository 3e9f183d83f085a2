// Commands are data: the exact shell natsfleet sends, with every argument quoted.
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  installScript,
  lockAcquire,
  lockRelease,
  remoteScript,
  stepCommand,
  testConfigScript,
  verifyScript,
  writeAtomic,
} from '../../controller/apply/commands.js';
import { sh, shQuote } from '../../controller/shell/quote.js';
import { desiredFrom } from '../helpers/observed.js';

const d = desiredFrom();

describe('quoting', () => {
  it('quotes anything that is not a plain word', () => {
    expect(sh('echo', 'a b', "it's", '$(id)', '')).toBe(`echo 'a b' 'it'\\''s' '$(id)' ''`);
    expect(shQuote('/etc/nats/nats-server.conf')).toBe('/etc/nats/nats-server.conf');
  });
});

describe('writeAtomic', () => {
  it('writes beside the target and renames: the target is never half-written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-atomic-'));
    const target = join(dir, 'f.conf');
    const me = execFileSync('id', ['-un'], { encoding: 'utf8' }).trim();
    execFileSync('sh', ['-c', writeAtomic(target, "content with 'quotes' and $(x)\n", '0600', me, me)]);
    expect(readFileSync(target, 'utf8')).toBe("content with 'quotes' and $(x)\n");
    expect(statSync(target).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['f.conf']);
  });
});

describe('service steps', () => {
  it('are plain systemctl/docker lines', () => {
    expect(stepCommand('reload', d, 'standalone')).toBe('systemctl reload nats.service');
    expect(stepCommand('restart', d, 'standalone')).toBe('systemctl restart nats.service');
    expect(stepCommand('daemon-reload', d, 'standalone')).toBe('systemctl daemon-reload');
    expect(stepCommand('proxy-up', d, 'plugin')).toBe('cd /root/nginx && docker compose up -d --remove-orphans 2>&1');
    expect(stepCommand('proxy-up', d, 'standalone')).toBe(
      'cd /root/nginx && docker-compose up -d --remove-orphans 2>&1',
    );
    expect(stepCommand('proxy-reload', d, 'plugin')).toBe(
      'docker exec nginx-certbot nginx -t 2>&1 && docker kill --signal=HUP nginx-certbot >/dev/null',
    );
  });

  it('tests the staged config with the target image, offline, config directory read-only', () => {
    expect(testConfigScript(d)).toBe(
      'docker run --rm --network none -v /etc/nats:/etc/nats:ro nats:2.9.10 -t -c /etc/nats/nats-server.conf.natsfleet-new 2>&1',
    );
  });

  it('install backs up, records pending actions, renames staged files, then runs steps', () => {
    const script = installScript(d, {
      install: ['/etc/nats/nats-server.conf'],
      remove: [],
      steps: ['test-config', 'reload'],
      composeKind: 'standalone',
      pending: { revision: 'r', since: 't', actions: ['reload'] },
    });
    const lines = script.split('\n');
    const at = (needle: string) => lines.findIndex((l) => l.includes(needle));
    expect(at('cp -p /etc/nats/nats-server.conf /var/lib/natsfleet/backup/etc/nats/nats-server.conf')).toBeGreaterThan(
      0,
    );
    expect(at('/var/lib/natsfleet/pending.json')).toBeGreaterThan(at('cp -p'));
    expect(at('mv -f /etc/nats/nats-server.conf.natsfleet-new /etc/nats/nats-server.conf')).toBeGreaterThan(
      at('pending.json'),
    );
    expect(at('systemctl reload nats.service')).toBeGreaterThan(at('mv -f /etc/nats/nats-server.conf.natsfleet-new'));
    expect(script).not.toContain('test-config');
  });

  it('the lock is an atomic mkdir, released only with its own token', () => {
    expect(lockAcquire({ owner: 'o', host: 'h', pid: 1, token: 'tk', since: 's' })).toContain(
      'if ! mkdir /var/lib/natsfleet/lock 2>/dev/null; then cat /var/lib/natsfleet/lock/info 2>/dev/null; exit 75; fi',
    );
    expect(lockRelease('tk')).toBe(
      `grep -q '"token":"tk"' /var/lib/natsfleet/lock/info 2>/dev/null && rm -rf /var/lib/natsfleet/lock; true`,
    );
  });

  it('after a reload, verify waits for a new config_load_time, not for the start time (the same value until then)', () => {
    const script = verifyScript('127.0.0.1:8222', 60, '2026-01-01T00:00:00.1Z');
    expect(script).toContain(`grep -qF '"config_load_time": "2026-01-01T00:00:00.1Z"'`);
    expect(verifyScript('127.0.0.1:8222', 60)).not.toContain('config_load_time');
  });

  it('remote scripts run with stdin closed, so no command can eat the rest of the script', () => {
    const out = execFileSync('sh', ['-s'], { input: remoteScript('cat; echo after'), encoding: 'utf8' });
    expect(out).toBe('after\n');
  });
});
