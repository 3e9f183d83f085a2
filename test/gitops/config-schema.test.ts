// The controller's config file is validated like the manifests: schemas/controller-config.schema.json,
// unknown keys refused at every level, each problem naming the file, the line and the key path.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, controllerConfigSchema, integerRange, resolveConfig } from '../../controller/gitops/config.js';
import { ROOT } from '../helpers/fixtures.js';

const SHIPPED = join(ROOT, 'deploy/natsfleet.yaml');
const shipped = readFileSync(SHIPPED, 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'nf-config-'));
let n = 0;

/** Writes `text` as a config file and returns its path. */
function file(text: string): string {
  const path = join(dir, `natsfleet-${n++}.yaml`);
  writeFileSync(path, text);
  return path;
}

/** The problems resolveConfig reports for a config file (with the environment empty). */
function problems(path: string, flags: Record<string, string> = {}, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    resolveConfig(flags, env, path);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
}

/** The 1-based line of the first line of `text` that starts with `start`. */
const lineOf = (text: string, start: string) => text.split('\n').findIndex((l) => l.startsWith(start)) + 1;

describe('the config file schema', () => {
  it('has additionalProperties: false on every object, and is draft-07', () => {
    expect((controllerConfigSchema as { $schema: string }).$schema).toBe('http://json-schema.org/draft-07/schema#');
    const objects: string[] = [];
    const walk = (node: Record<string, unknown>, path: string) => {
      if (node.type === 'object') {
        objects.push(path);
        expect(node.additionalProperties, path).toBe(false);
      }
      for (const [k, child] of Object.entries((node.properties ?? {}) as Record<string, Record<string, unknown>>))
        walk(child, path ? `${path}.${k}` : k);
    };
    walk(controllerConfigSchema as Record<string, unknown>, '');
    expect(objects).toEqual(['', 'rollout', 'paths', 'secrets', 'state', 'state.nats', 'github']);
  });

  it('gives the CLI the integer ranges', () => {
    expect(integerRange('concurrency')).toEqual({ min: 1, max: 1000 });
    expect(integerRange('pollIntervalSec')).toEqual({ min: 1, max: 86400 });
    expect(() => integerRange('repo')).toThrow(/not an integer/);
  });
});

describe('a valid config file', () => {
  it('the shipped deploy/natsfleet.yaml validates', () => {
    expect(problems(SHIPPED)).toEqual([]);
    expect(resolveConfig({}, {}, SHIPPED)).toMatchObject({
      repo: 'git@github.com:acme/nats-hosts.git',
      sshKey: '/etc/natsfleet/ssh/id_ed25519',
      concurrency: 10,
      listen: '127.0.0.1:9420',
      github: { repository: 'acme/nats-hosts' },
    });
  });

  it('so does the shipped file with every commented-out key turned on (GitHub App, paths, secrets)', () => {
    const keys = 'paths|allowedRoots|secrets|dir|envPattern|apiUrl|appId|appPrivateKeyFile|installationId';
    const all = shipped.replace(new RegExp(`^(\\s*)# ((${keys}):.*)$`, 'gm'), '$1$2');
    expect(all).toMatch(/^ {2}installationId: 7890123$/m);
    expect(all).toMatch(/^paths:$/m);
    const cfg = resolveConfig({}, {}, file(all));
    expect(cfg.github).toEqual({
      repository: 'acme/nats-hosts',
      apiUrl: 'https://github.example.com/api/v3',
      appId: 123456,
      appPrivateKeyFile: '/etc/natsfleet/github-app.pem',
      installationId: 7890123,
    });
    expect(cfg.policy.paths.allowedRoots).toEqual(['/etc/nats', '/var/lib/nats', '/root/nginx', '/data/nginx']);
    expect(cfg.policy.secrets).toEqual({ dir: '/etc/natsfleet/secrets', envPattern: '^NATS_[A-Z0-9_]+$' });
  });

  it('a file of comments only, or an empty section, sets nothing', () => {
    const flags = { repo: 'https://example.com/h.git', sshKey: 'k' };
    expect(resolveConfig(flags, {}, file('# nothing here\n')).concurrency).toBe(10);
    const cfg = resolveConfig(flags, {}, file('github:\n  # repository: acme/x\npaths:\n'));
    expect(cfg.github).toBeUndefined();
  });
});

describe('an invalid config file', () => {
  it('an unknown top-level key: FILE:LINE: key: unknown key', () => {
    const path = file(`${shipped}\nconcurency: 4\n`);
    expect(problems(path)).toEqual([
      `${path}:${lineOf(readFileSync(path, 'utf8'), 'concurency')}: concurency: unknown key`,
    ]);
  });

  it('a mistyped nested key (github.tokn) names the full key path and its line', () => {
    const text = shipped.replace('  repository: acme/nats-hosts\n', '  repository: acme/nats-hosts\n  tokn: ghp_x\n');
    const path = file(text);
    expect(problems(path)).toEqual([`${path}:${lineOf(text, '  tokn:')}: github.tokn: unknown key`]);
    const other = file('repo: r\nsshKey: k\npaths:\n  allowedRoot: [/etc/nats]\nsecrets:\n  envpattern: x\n');
    expect(problems(other)).toEqual([
      `${other}:4: paths.allowedRoot: unknown key`,
      `${other}:6: secrets.envpattern: unknown key`,
    ]);
  });

  it.each([
    ['concurrency: "ten"', 'concurrency: must be an integer from 1 to 1000'],
    ['concurrency: 0', 'concurrency: must be an integer from 1 to 1000'],
    ['concurrency: 1001', 'concurrency: must be an integer from 1 to 1000'],
    ['concurrency: 2.5', 'concurrency: must be an integer from 1 to 1000'],
    ['concurrency:', 'concurrency: must be an integer from 1 to 1000'],
    ['planUntrustedLive: "maybe"', 'planUntrustedLive: must be true or false'],
    ['planUntrustedLive: yes', 'planUntrustedLive: must be true or false'],
    ['pollIntervalSec: -5', 'pollIntervalSec: must be an integer from 1 to 86400 (seconds)'],
    ['listen: 9420', 'listen: must be HOST:PORT, e.g. 127.0.0.1:9420'],
    ['listen: "127.0.0.1:99999"', 'listen: must be HOST:PORT, e.g. 127.0.0.1:9420'],
    ['branch: ""', 'branch: must be a non-empty string (a branch name)'],
    ['github: acme/nats-hosts', 'github: must be a mapping with repository, apiUrl, token, appId, appPrivateKeyFile'],
    ['paths: { allowedRoots: /etc/nats }', 'paths.allowedRoots: must be a non-empty list of absolute directories'],
  ])('a wrong type or value: %s', (yaml, message) => {
    const path = file(`repo: r\nsshKey: k\n${yaml}\n`);
    const [p, ...rest] = problems(path);
    expect(p.startsWith(`${path}:3: ${message}`), p).toBe(true);
    expect(rest).toEqual([]);
  });

  it('reports every problem at once, in line order', () => {
    const path = file('bogus: 1\nconcurrency: 0\ngithub:\n  repository: a/b\n  tokn: x\nplanUntrustedLive: maybe\n');
    expect(problems(path, { repo: 'r', sshKey: 'k' })).toEqual([
      `${path}:1: bogus: unknown key`,
      `${path}:2: concurrency: must be an integer from 1 to 1000`,
      `${path}:5: github.tokn: unknown key`,
      `${path}:6: planUntrustedLive: must be true or false`,
    ]);
  });

  it('a list item names its index', () => {
    const path = file('paths:\n  allowedRoots:\n    - /etc/nats\n    - 3\n');
    expect(problems(path, { repo: 'r', sshKey: 'k' })).toEqual([
      `${path}:4: paths.allowedRoots[1]: must be an absolute directory`,
    ]);
  });

  it('invalid YAML, a file that is not a mapping, a file that cannot be read', () => {
    const bad = file('repo: r\nrepo: s\n');
    expect(problems(bad)).toEqual([`${bad}:2: invalid YAML: duplicated mapping key`]);
    const list = file('- repo: r\n');
    expect(problems(list)).toEqual([`${list}: must be a YAML mapping of settings (see deploy/natsfleet.yaml)`]);
    expect(problems(join(dir, 'missing.yaml'))).toEqual([
      `${join(dir, 'missing.yaml')}: cannot read the config file: no such file`,
    ]);
  });

  it('rules between keys: a GitHub App needs its key file and installation; GitHub settings need a repository', () => {
    const app = file('repo: r\nsshKey: k\ngithub:\n  repository: a/b\n  appId: 12\n');
    expect(problems(app)).toEqual([
      `${app}:5: github.appId: needs github.appPrivateKeyFile and github.installationId too`,
    ]);
    // The key file from the environment completes the file's App.
    expect(
      problems(app, {}, { NATSFLEET_GITHUB_APP_PRIVATE_KEY_FILE: '/k.pem', NATSFLEET_GITHUB_INSTALLATION_ID: '34' }),
    ).toEqual([]);
    const norepo = file('repo: r\nsshKey: k\ngithub:\n  repositry: a/b\n');
    expect(problems(norepo)).toEqual([`${norepo}:4: github.repositry: unknown key`]);
    const tokenOnly = file('repo: r\nsshKey: k\ngithub:\n  token: t\n');
    expect(problems(tokenOnly)).toEqual([
      `${tokenOnly}:4: github.repository: is required to report on GitHub (github.token is set)`,
    ]);
    // GITHUB_TOKEN alone in the environment is not a GitHub setting: reporting is simply off.
    expect(resolveConfig({ repo: 'r', sshKey: 'k' }, { GITHUB_TOKEN: 't' }).github).toBeUndefined();
  });

  it('a policy natsfleet refuses is reported on the line of the key', () => {
    const path = file('repo: r\nsshKey: k\npaths:\n  allowedRoots: [/etc]\n');
    const [p] = problems(path);
    expect(p).toMatch(new RegExp(`^${path}:4: paths\\.allowedRoots: .*/etc`));
  });
});
