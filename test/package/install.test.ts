// natsfleet installs from its npm tarball and runs outside this repository, as a new user gets it: `npm pack`
// (whose prepare script builds dist/) then `npm install -g` of the tarball into an empty prefix, and
// `npm install` into an empty project for `npx natsfleet`; then --version, init, validate and render run
// from a directory outside the repository. Only `dependencies` are installed, so a runtime import of a
// devDependency fails here. The pack runs on a staged copy of the package sources (node_modules linked),
// so that its build never rewrites the dist/ that other tests are running. Needs the npm registry.
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  files: string[];
  dependencies: Record<string, string>;
};
const TMP = mkdtempSync(join(tmpdir(), 'nf-install-'));
const GLOBAL = join(TMP, 'global');
const PROJECT = join(TMP, 'project');
const WORK = join(TMP, 'work');
const NATSFLEET = join(GLOBAL, 'bin', 'natsfleet');

/** The environment without what `npm test` sets for its own run (npm_config_prefix and the like). */
const env = (extra: Record<string, string> = {}) => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
  NO_COLOR: '1',
  ...extra,
});

const npm = (args: string[], cwd: string) =>
  execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd,
    env: env(),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 240_000,
  });

const run = (cmd: string, args: string[], extra: Record<string, string> = {}): SpawnSyncReturns<string> =>
  spawnSync(cmd, args, { cwd: WORK, env: env(extra), encoding: 'utf8', timeout: 60_000 });

let tarball = '';

beforeAll(() => {
  // The package's sources as `npm pack` sees them in a checkout: what `files` names, plus what the build reads.
  const stage = join(TMP, 'stage');
  mkdirSync(stage);
  for (const p of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'bin', 'controller', 'schemas'])
    cpSync(join(ROOT, p), join(stage, p), { recursive: true });
  cpSync(join(ROOT, 'deploy'), join(stage, 'deploy'), { recursive: true });
  cpSync(join(ROOT, 'scripts/bundle.mjs'), join(stage, 'scripts/bundle.mjs'));
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'));
  const [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', TMP], stage)) as { filename: string }[];
  tarball = join(TMP, packed.filename);
  mkdirSync(PROJECT);
  mkdirSync(WORK);
  npm(['install', '--global', '--prefix', GLOBAL, tarball], TMP);
  npm(['install', '--prefix', PROJECT, tarball], TMP);
}, 300_000);

// Two installs are about 100 MB: not left behind.
afterAll(() => rmSync(TMP, { recursive: true, force: true }));

describe('the packed tarball', () => {
  it('is named after the version and holds the built CLI', () => {
    expect(tarball).toMatch(new RegExp(`natsfleet-${pkg.version.replace(/\./g, '\\.')}\\.tgz$`));
    const listing = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' });
    expect(listing).toContain('package/dist/controller/cli/main.js');
    expect(listing).toContain('package/dist/controller/cli/init.js');
    expect(listing).toContain('package/bin/natsfleet.js');
    // What bin/natsfleet.js runs: the bundle (scripts/bundle.mjs), through its loader, and no code cache.
    expect(listing).toContain('package/dist/natsfleet.cjs');
    expect(listing).toContain('package/bin/load-bundle.js');
    expect(listing).not.toContain('code-cache');
  });
});

describe('natsfleet installed globally from the tarball, run outside the repository', () => {
  it('is on the prefix bin path and prints its version', () => {
    expect(existsSync(NATSFLEET)).toBe(true);
    const r = run(NATSFLEET, ['--version']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(r.status).toBe(0);
  });

  it('lists every command in its help', () => {
    const r = run(NATSFLEET, ['--help']);
    expect(r.status).toBe(0);
    for (const c of ['validate', 'render', 'init', 'plan', 'apply', 'status', 'controller', 'hostkey'])
      expect(r.stdout).toMatch(new RegExp(`^\\s+${c}\\b`, 'm'));
  });

  it('scaffolds a hosts repository with init, which validate accepts in both formats', () => {
    const init = run(NATSFLEET, ['init', 'site']);
    expect(init.stderr).toBe('');
    expect(init.stdout).toContain('wrote site/hosts/example.yaml');
    expect(init.status).toBe(0);
    // The schemas come from the installed package (package-root.ts finds it from dist/).
    expect(readFileSync(join(WORK, 'site/schemas/natshost.schema.json'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'schemas/natshost.schema.json'), 'utf8'),
    );
    expect(readFileSync(join(WORK, 'site/.github/workflows/validate.yml'), 'utf8')).toContain(
      `natsfleet@${pkg.version} validate hosts --format github`,
    );
    const text = run(NATSFLEET, ['validate', 'site/hosts']);
    expect(text.stdout).toContain('1 manifest(s) valid (1 host(s), 0 cluster(s))');
    expect(text.status).toBe(0);
    const github = run(NATSFLEET, ['validate', 'site/hosts', '--format', 'github']);
    expect(github.stdout).not.toContain('::error');
    expect(github.status).toBe(0);
  });

  it('renders a host of that repository', () => {
    if (!existsSync(join(WORK, 'site'))) run(NATSFLEET, ['init', 'site']);
    const r = run(NATSFLEET, ['render', 'example', '--out', 'rendered', '--hosts', 'site/hosts'], {
      NATS_EXAMPLE_TOKEN: 'install-test-token',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(WORK, 'rendered/etc/nats/nats-server.conf'), 'utf8')).toContain('install-test-token');
    expect(existsSync(join(WORK, 'rendered/etc/systemd/system/nats.service'))).toBe(true);
  });

  it('fails on a missing directory with one plain line, no stack trace', () => {
    const r = run(NATSFLEET, ['validate', 'nowhere']);
    expect(r.status).toBe(1);
    expect(r.stderr).not.toMatch(/\n\s+at |node:internal|ERR_/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('installed only its runtime dependencies, and nothing of this repository but the shipped files', () => {
    const root = join(GLOBAL, 'lib', 'node_modules', 'natsfleet');
    const shipped = readdirSync(root).sort();
    expect(shipped.filter((f) => !['node_modules', 'package.json', 'README.md'].includes(f))).toEqual(
      pkg.files
        .filter((f) => !f.startsWith('!')) // exclusions, as !dist/code-cache/
        .map((f) => f.replace(/\/.*$/, ''))
        .filter((f) => f !== 'README.md')
        .filter((f, i, all) => all.indexOf(f) === i)
        .sort(),
    );
    expect(existsSync(join(root, 'test'))).toBe(false);
    // A devDependency at run time would have failed the commands above; none is installed.
    for (const dev of ['vitest', 'typescript', 'tsx', 'eslint'])
      expect(existsSync(join(root, 'node_modules', dev))).toBe(false);
  });
});

describe('natsfleet installed into a project, through npx', () => {
  it('runs with npx from the project', () => {
    const r = spawnSync('npx', ['--no-install', 'natsfleet', '--version'], {
      cwd: PROJECT,
      env: env(),
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stdout.trim()).toBe(pkg.version);
    expect(r.status).toBe(0);
  });
});
