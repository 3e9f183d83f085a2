// The installed command (bin/natsfleet.js) runs the bundle (dist/natsfleet.mjs, scripts/bundle.mjs) and
// loads what a command needs only: `--version`, `--help` and `validate` load none of the modules of SSH,
// the apply engine, the controller or GitHub (ssh2, nats, octokit, prom-client, simple-git, pino), which
// are most of natsfleet's start-up, nor ajv's schema compiler (the manifest validators are precompiled; the
// controller's configuration, which ajv checks, is only the controller command's); a command that reaches a
// host loads ssh2 (and its native parts when they were built). Needs `npm run build` (npm test's setup runs it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const BIN = join(ROOT, 'bin/natsfleet.js');
const BUNDLE = join(ROOT, 'dist/natsfleet.mjs');
const CHUNKS = join(ROOT, 'dist/natsfleet-chunks');
const HEAVY = ['ssh2', 'nats', 'octokit', 'prom-client', 'simple-git', 'pino'];

// Every ES module file Node loads (a loader hook, in its own thread) and every CommonJS one (the require
// cache at exit), one `LOADED path` line each on stderr.
const hooks = mkdtempSync(join(tmpdir(), 'nf-startup-'));
writeFileSync(
  join(hooks, 'hooks.mjs'),
  `export async function load(url, context, next) {
  if (url.startsWith('file:')) process.stderr.write(\`LOADED \${url}\\n\`);
  return next(url, context);
}
`,
);
writeFileSync(
  join(hooks, 'register.mjs'),
  `import { createRequire, register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(hooks, 'hooks.mjs')).href)});
const require = createRequire(import.meta.url);
process.on('exit', () => {
  for (const f of Object.keys(require.cache)) process.stderr.write(\`LOADED \${f}\\n\`);
});
`,
);
afterAll(() => rmSync(hooks, { recursive: true, force: true }));
const HOOK = join(hooks, 'register.mjs');

/** What `natsfleet ARGS` loads: files, and the packages bundled into the loaded chunks. */
function loads(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', HOOK, BIN, ...args], { cwd: ROOT, encoding: 'utf8' });
  const files = [...r.stderr.matchAll(/^LOADED (.+)$/gm)].map((m) =>
    m[1].startsWith('file:') ? fileURLToPath(m[1]) : m[1],
  );
  // esbuild marks each module it bundled with a `// node_modules/<package>/<path>` line; loaded files name theirs.
  const modulePaths = [
    ...files
      .filter((f) => f === BUNDLE || f.startsWith(CHUNKS))
      .flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/^\/\/ node_modules\/(\S+)/gm)].map((m) => m[1])),
    ...files.flatMap((f) => /\/node_modules\/(.+)$/.exec(f)?.[1] ?? []),
  ];
  const packages = new Set(modulePaths.flatMap((p) => /^((?:@[^/]+\/)?[^/]+)\//.exec(p)?.[1] ?? []));
  // ajv's compiler (ajv/dist/compile/...), as opposed to the runtime helpers the precompiled validators use.
  const ajvCompiler = modulePaths.some((p) => p.startsWith('ajv/dist/compile/'));
  return {
    status: r.status,
    stdout: r.stdout,
    files,
    packages,
    ajvCompiler,
  };
}

describe('start-up of the bundled CLI', () => {
  it('is what bin/natsfleet.js runs', () => {
    expect(existsSync(BUNDLE), 'run npm run build').toBe(true);
    const r = loads(['--version']);
    expect(r.status).toBe(0);
    expect(r.files).toContain(BUNDLE);
    expect(r.files.filter((f) => f.startsWith(join(ROOT, 'dist/controller')))).toEqual([]);
  });

  it.each([['--version'], ['--help'], ['validate', 'hosts']])(
    'natsfleet %s loads no SSH, controller or GitHub module',
    (...args) => {
      const r = loads(args);
      expect(r.status).toBe(0);
      expect(HEAVY.filter((p) => r.packages.has(p))).toEqual([]);
      expect(r.ajvCompiler).toBe(false);
      // Only a part of the chunks: the others are read by the commands that need them.
      expect(r.files.filter((f) => f.startsWith(CHUNKS)).length).toBeLessThan(readdirSync(CHUNKS).length / 2);
    },
  );

  it('loads ssh2 for a command that reaches a host', () => {
    const r = loads(['hostkey', 'scan', '127.0.0.1:1', '--timeout', '2']); // a closed port: refused at once
    expect(r.status).toBe(1);
    expect(r.packages.has('ssh2')).toBe(true);
    expect(r.ajvCompiler).toBe(false);
  });

  it("loads ajv's compiler for the controller command, which checks its configuration", () => {
    const r = loads(['controller', '--repo', '/nonexistent', '--log-level', 'loud']); // refused by the schema
    expect(r.status).not.toBe(0);
    expect(r.ajvCompiler).toBe(true);
  });
});
