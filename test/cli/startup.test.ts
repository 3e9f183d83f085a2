// The installed command (bin/natsfleet.js, CommonJS) runs the bundle (dist/natsfleet.cjs, scripts/bundle.mjs)
// through bin/load-bundle.js, with V8's code cache, and evaluates what a command needs only: `--version`, `--help`
// and `validate` evaluate none of the modules of SSH, the apply engine, the controller or GitHub (ssh2,
// nats, octokit, prom-client, simple-git, pino), which are most of natsfleet's start-up, nor ajv's schema
// compiler (the manifest validators are precompiled; the controller's configuration, which ajv checks, is
// only the controller command's); a command that reaches a host evaluates ssh2.
// The code cache: written after a command's first successful run, read by the next ones, never read when it
// was made from another build, was damaged, or sits where someone else could have written it.
// Needs `npm run build` (npm test's setup runs it).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const BIN = join(ROOT, 'bin/natsfleet.js');
const BUNDLE = join(ROOT, 'dist/natsfleet.cjs');
const HEAVY = ['ssh2', 'nats', 'octokit', 'prom-client', 'simple-git', 'pino'];
const work = mkdtempSync(join(tmpdir(), 'nf-startup-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Every ES module file Node loads (a loader hook, in its own thread) and every CommonJS one (the require
// cache at exit), one `LOADED path` line each on stderr.
writeFileSync(
  join(work, 'hooks.mjs'),
  `export async function load(url, context, next) {
  if (url.startsWith('file:')) process.stderr.write(\`LOADED \${url}\\n\`);
  return next(url, context);
}
`,
);
writeFileSync(
  join(work, 'register.mjs'),
  `import { createRequire, register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(work, 'hooks.mjs')).href)});
const require = createRequire(import.meta.url);
process.on('exit', () => {
  for (const f of Object.keys(require.cache)) process.stderr.write(\`LOADED \${f}\\n\`);
});
`,
);

// The bundle evaluated with esbuild's two helpers that initialise a module at its first use (__esm for an
// ES module, __commonJS for a CommonJS one) wrapped: one `EVALUATED path` line per module they initialised.
writeFileSync(
  join(work, 'trace.cjs'),
  `const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { Script } = require('node:vm');
const [bundle, ...args] = process.argv.slice(2);
const seen = new Set();
globalThis.__nfTrace = (helper) => (fn, res) => {
  const key = Object.keys(fn)[0];
  const init = helper()(fn, res);
  return function () { seen.add(key); return init.apply(this, arguments); };
};
let source = readFileSync(bundle, 'latin1');
for (const name of ['__esm', '__commonJS']) {
  if (!source.includes(\`var \${name} = \`)) throw new Error(\`no \${name} helper in the bundle\`);
  source = source.replace(\`var \${name} = \`, \`var \${name} = globalThis.__nfTrace(() => \${name}0);\\nvar \${name}0 = \`);
}
const module_ = { exports: {} };
new Script(Module.wrap(source), { filename: bundle }).runInThisContext()(
  module_.exports, Module.createRequire(bundle), module_, bundle, require('node:path').dirname(bundle));
module_.exports.main(['node', 'natsfleet', ...args]).then((code) => {
  for (const k of seen) process.stderr.write(\`EVALUATED \${k}\\n\`);
  process.exitCode = code;
});
`,
);

// Runs a command line through bin/load-bundle.js as bin/natsfleet.js does, and says what became of the cache.
writeFileSync(
  join(work, 'cached.mjs'),
  `import { loadBundle } from ${JSON.stringify(pathToFileURL(join(ROOT, 'bin/load-bundle.js')).href)};
const [bundle, ...args] = process.argv.slice(2);
const argv = ['node', 'natsfleet', ...args];
const cli = loadBundle(bundle, argv);
const code = await cli.main(argv);
cli.saveCache(code);
process.stderr.write(\`CACHE \${cli.cache}\\n\`);
process.exitCode = code;
`,
);

/** The bundle's modules: each begins with a `// path` line; the lazily initialised ones are keys of a helper. */
function bundleModules() {
  const text = readFileSync(BUNDLE, 'latin1');
  const all = new Set([...text.matchAll(/^\/\/ ((?:node_modules|dist)\/\S+)$/gm)].map((m) => m[1]));
  const lazy = new Set([...text.matchAll(/(?:__esm|__commonJS)\(\{\n\s+"([^"]+)"/g)].map((m) => m[1]));
  return { all, lazy, eager: [...all].filter((m) => !lazy.has(m)) };
}

const packageOf = (path: string) => /^node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1];

/** What `natsfleet ARGS` evaluates: the modules at the bundle's top, and those a command initialised. */
function evaluates(args: string[]) {
  const r = spawnSync(process.execPath, [join(work, 'trace.cjs'), BUNDLE, ...args], { cwd: ROOT, encoding: 'utf8' });
  const { all, eager } = bundleModules();
  const modules = [...eager, ...[...r.stderr.matchAll(/^EVALUATED (.+)$/gm)].map((m) => m[1])];
  return {
    status: r.status,
    stdout: r.stdout,
    modules,
    total: all.size,
    packages: new Set(modules.flatMap((m) => packageOf(m) ?? [])),
    // ajv's compiler (ajv/dist/compile/...), as opposed to the runtime helpers the precompiled validators use.
    ajvCompiler: modules.some((m) => m.startsWith('node_modules/ajv/dist/compile/')),
  };
}

describe('start-up of the bundled CLI', () => {
  it('is what bin/natsfleet.js runs: the bundle, through load-bundle.js, and no compiled module', () => {
    expect(existsSync(BUNDLE), 'run npm run build').toBe(true);
    const r = spawnSync(process.execPath, ['--import', join(work, 'register.mjs'), BIN, '--version'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const files = [...r.stderr.matchAll(/^LOADED (.+)$/gm)].map((m) =>
      m[1].startsWith('file:') ? fileURLToPath(m[1]) : m[1],
    );
    expect(files).toContain(join(ROOT, 'bin/load-bundle.js'));
    expect(files.filter((f) => f.startsWith(join(ROOT, 'dist/controller')))).toEqual([]);
  });

  it('holds the dependencies of SSH, the controller and GitHub only as modules initialised at first use', () => {
    const { eager } = bundleModules();
    expect(eager.length).toBeGreaterThan(0);
    expect(eager.filter((m) => HEAVY.includes(packageOf(m) ?? ''))).toEqual([]);
  });

  it.each([['--version'], ['--help'], ['validate', 'hosts']])(
    'natsfleet %s evaluates no SSH, controller or GitHub module',
    (...args) => {
      const r = evaluates(args);
      expect(r.status).toBe(0);
      expect(HEAVY.filter((p) => r.packages.has(p))).toEqual([]);
      expect(r.ajvCompiler).toBe(false);
      // Only a part of the bundle: the rest is initialised by the commands that need it.
      expect(r.modules.length).toBeLessThan(r.total / 2);
    },
  );

  it('evaluates ssh2 for a command that reaches a host', () => {
    const r = evaluates(['hostkey', 'scan', '127.0.0.1:1', '--timeout', '2']); // a closed port: refused at once
    expect(r.status).toBe(1);
    expect(r.packages.has('ssh2')).toBe(true);
    expect(r.ajvCompiler).toBe(false);
  });

  it("evaluates ajv's compiler for the controller command, which checks its configuration", () => {
    const r = evaluates(['controller', '--repo', '/nonexistent', '--log-level', 'loud']); // refused by the schema
    expect(r.status).not.toBe(0);
    expect(r.ajvCompiler).toBe(true);
  });
});

describe("the bundle's code cache", () => {
  /** A copy of the bundle in a package of its own (what it finds by its path: package.json, schemas/). */
  function copy() {
    const pkg = mkdtempSync(join(work, 'package-'));
    const dir = join(pkg, 'dist');
    mkdirSync(dir);
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(ROOT, 'schemas'), join(pkg, 'schemas'));
    for (const f of ['natsfleet.cjs', 'natsfleet.cjs.sha256']) copyFileSync(join(ROOT, 'dist', f), join(dir, f));
    return { dir, bundle: join(dir, 'natsfleet.cjs'), caches: join(dir, 'code-cache') };
  }
  const run = (bundle: string, ...args: string[]) => runWith({}, bundle, ...args);
  const runWith = (env: Record<string, string>, bundle: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [join(work, 'cached.mjs'), bundle, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    return { status: r.status, stdout: r.stdout, cache: /^CACHE (\w+)$/m.exec(r.stderr)?.[1] };
  };
  const files = (dir: string) => (existsSync(dir) ? readdirSync(dir).sort() : []);

  it('is written by the first successful run of a command, and read by the next ones: same output', () => {
    const { bundle, caches } = copy();
    const first = run(bundle, 'validate', 'hosts');
    expect(first).toMatchObject({ status: 0, cache: 'missing' });
    expect(files(caches)).toEqual([
      expect.stringMatching(/^validate-[0-9a-f]{16}-\d+-\d+-v[\d.]+-\w+-[0-9a-f]{8}\.bin$/),
    ]);
    const second = run(bundle, 'validate', 'hosts');
    expect(second).toEqual({ ...first, cache: 'used' });
    // Another command has its own; a failed run writes none.
    expect(run(bundle, '--version')).toMatchObject({ status: 0, cache: 'missing' });
    expect(run(bundle, 'render', 'no-such-host', '--out', join(work, 'out'), '--hosts', 'hosts').status).toBe(1);
    expect(files(caches).map((f) => f.split('-')[0])).toEqual(['default', 'validate']);
  });

  it('a damaged cache is rejected by V8, the command runs as without one, and the cache is written again', () => {
    const { bundle, caches } = copy();
    run(bundle, '--version');
    const [name] = files(caches);
    writeFileSync(join(caches, name), Buffer.alloc(4096, 7));
    const r = run(bundle, '--version');
    expect(r).toMatchObject({ status: 0, cache: 'rejected' });
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(readFileSync(join(caches, name)).equals(Buffer.alloc(4096, 7))).toBe(false);
    expect(run(bundle, '--version').cache).toBe('used');
  });

  it('a cache made from another build, or from the same file changed since, is never read', () => {
    const { bundle, dir, caches } = copy();
    run(bundle, '--version');
    writeFileSync(join(dir, 'natsfleet.cjs.sha256'), `${'0'.repeat(64)}\n`);
    expect(run(bundle, '--version').cache).toBe('missing');
    utimesSync(bundle, new Date(), new Date(Date.now() + 5000)); // edited in place: same size, another time
    expect(run(bundle, '--version').cache).toBe('missing');
    expect(files(caches)).toHaveLength(3);
    rmSync(join(dir, 'natsfleet.cjs.sha256'));
    expect(run(bundle, '--version').cache).toBe('none'); // no build identity: no cache at all
    expect(files(caches)).toHaveLength(3);
  });

  it('runs under other V8 flags keep a cache of their own (V8 would reject the other one, and it would be rewritten)', () => {
    const { bundle, caches } = copy();
    const flagged = { NODE_OPTIONS: '--max-old-space-size=4000' };
    expect(run(bundle, '--version').cache).toBe('missing');
    expect(runWith(flagged, bundle, '--version').cache).toBe('missing');
    expect(files(caches)).toHaveLength(2);
    expect(run(bundle, '--version').cache).toBe('used');
    expect(runWith(flagged, bundle, '--version').cache).toBe('used');
  });

  it('is neither read nor written where others can write', () => {
    const { bundle, caches } = copy();
    run(bundle, '--version');
    chmodSync(caches, 0o777);
    expect(run(bundle, '--version').cache).toBe('missing');
    expect(files(caches)).toHaveLength(1);
    chmodSync(caches, 0o755);
    const [name] = files(caches);
    chmodSync(join(caches, name), 0o666);
    expect(run(bundle, '--version').cache).toBe('missing');
    // Written again, as this user's and writable by nobody else: read from then on.
    expect(run(bundle, '--version').cache).toBe('used');
  });
});
