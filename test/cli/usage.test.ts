// Usage errors of the natsfleet command: a bad flag value, an unknown flag, a missing argument or an
// invalid controller configuration exits 1 with a plain message on the error writer, nothing on the
// normal output and no stack trace. Nothing here reaches a host or starts the controller.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { ROOT } from '../helpers/fixtures.js';

/** Exit 1, the message on err, nothing on out, no stack trace. */
function expectUsageError(r: Awaited<ReturnType<typeof cli>>, message: string | RegExp) {
  expect(r.out).toBe('');
  if (typeof message === 'string') expect(r.err).toContain(message);
  else expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/^ {4}at /m);
  expect(r.code).toBe(1);
}

// Typed options are checked before any action runs: none of these reads a manifest or a key.
describe('typed options', () => {
  it.each(['plan', 'apply', 'status', 'controller'])('%s --concurrency abc', async (command) => {
    expectUsageError(
      await cli(command, '--concurrency', 'abc'),
      "error: option '--concurrency <n>' argument 'abc' is invalid. must be an integer from 1 to 1000",
    );
  });

  it.each([['0'], ['1001'], ['2.5'], ['-3'], ['']])('plan --concurrency %j', async (value) => {
    expectUsageError(await cli('plan', '--concurrency', value), /argument '.*' is invalid\. must be an integer/);
  });

  it('controller --poll-interval and --drift-interval are integers in range', async () => {
    expectUsageError(
      await cli('controller', '--poll-interval', '0'),
      "option '--poll-interval <sec>' argument '0' is invalid. must be an integer from 1 to 86400",
    );
    expectUsageError(
      await cli('controller', '--drift-interval', '5m'),
      "option '--drift-interval <sec>' argument '5m' is invalid. must be an integer from 1 to 604800",
    );
  });

  it('sandbox up --count is an integer from 1 to 50 (--hosts always means a directory)', async () => {
    expectUsageError(
      await cli('sandbox', 'up', '--count', '51'),
      "option '--count <n>' argument '51' is invalid. must be an integer from 1 to 50",
    );
    expectUsageError(await cli('sandbox', 'up', '--count', 'three'), 'must be an integer from 1 to 50');
  });

  it('--output is text or json', async () => {
    for (const command of ['plan', 'apply', 'status'])
      expectUsageError(
        await cli(command, '--output', 'yaml'),
        "error: option '-o, --output <format>' argument 'yaml' is invalid. Allowed choices are text, json.",
      );
  });

  it('demo --timeout is an integer', async () => {
    expectUsageError(await cli('demo', '--timeout', 'soon'), 'must be an integer from 1 to 86400');
  });
});

describe('unknown flags and missing arguments', () => {
  it('an unknown flag', async () => {
    expectUsageError(await cli('plan', '--hostz', 'x'), "error: unknown option '--hostz'");
    expectUsageError(await cli('controller', '--conf', 'x.yaml'), "error: unknown option '--conf'");
  });

  it('an unknown command', async () => {
    expectUsageError(await cli('deploy'), "error: unknown command 'deploy'");
  });

  it('a missing argument or option value', async () => {
    expectUsageError(await cli('hostkey', 'scan'), "error: missing required argument 'host'");
    expectUsageError(await cli('render', '--out', '/tmp/x'), "error: missing required argument 'target'");
    expectUsageError(await cli('render', 'h1'), "error: required option '--out <dir>' not specified");
    expectUsageError(await cli('plan', '--concurrency'), "error: option '--concurrency <n>' argument missing");
  });
});

describe('natsfleet controller with an invalid configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nf-usage-'));
  const shipped = readFileSync(join(ROOT, 'deploy/natsfleet.yaml'), 'utf8');
  const config = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  const lineOf = (text: string, start: string) => text.split('\n').findIndex((l) => l.startsWith(start)) + 1;

  it('an unknown key', async () => {
    const text = `${shipped}\nwebhook: s3cret\n`;
    const path = config('unknown.yaml', text);
    const r = await cli('controller', '--config', path);
    expectUsageError(r, `${path}:${lineOf(text, 'webhook:')}: webhook: unknown key`);
    expect(r.err).not.toContain('s3cret');
  });

  it('a mistyped nested key', async () => {
    const text = shipped.replace('  repository: acme/nats-hosts\n', '  repository: acme/nats-hosts\n  tokn: ghp_x\n');
    const path = config('nested.yaml', text);
    const r = await cli('controller', '--config', path);
    expectUsageError(r, `${path}:${lineOf(text, '  tokn:')}: github.tokn: unknown key`);
    expect(r.err.split('\n')).toHaveLength(1);
  });

  it('a wrong type', async () => {
    const text = shipped.replace('concurrency: 10', 'concurrency: "ten"');
    const path = config('type.yaml', text);
    expectUsageError(
      await cli('controller', '--config', path),
      `${path}:${lineOf(text, 'concurrency:')}: concurrency: must be an integer from 1 to 1000`,
    );
  });

  it('a missing file, a bad flag value, a missing required setting', async () => {
    expectUsageError(
      await cli('controller', '--config', join(dir, 'nope.yaml')),
      `${join(dir, 'nope.yaml')}: cannot read the config file: no such file`,
    );
    expectUsageError(
      await cli('controller', '--config', join(ROOT, 'deploy/natsfleet.yaml'), '--listen', 'everywhere'),
      '--listen: listen: must be HOST:PORT, e.g. 127.0.0.1:9420',
    );
    // Without an SSH key from the environment either (else this would start a controller).
    const key = process.env.NATSFLEET_SSH_KEY;
    delete process.env.NATSFLEET_SSH_KEY;
    try {
      expectUsageError(
        await cli('controller', '--repo', 'https://example.com/h.git'),
        'config: sshKey is required (flag --ssh-key, NATSFLEET_SSH_KEY or the config file)',
      );
    } finally {
      if (key !== undefined) process.env.NATSFLEET_SSH_KEY = key;
    }
  });
});

describe('help and version', () => {
  it('go to the normal output and exit 0', async () => {
    const help = await cli('plan', '--help');
    expect(help.code).toBe(0);
    expect(help.err).toBe('');
    expect(help.out).toContain('--output <format>');
    const version = await cli('--version');
    expect(version.code).toBe(0);
    expect(version.out).toMatch(/^\d+\.\d+\.\d+/);
  });
});
