// Build step after tsc (`npm run build`): bundles the compiled CLI (dist/controller/cli/main.js) into
// dist/natsfleet.mjs, which bin/natsfleet.js runs, and dist/natsfleet-chunks/ (what only some commands
// load): Node reads about fifteen files to start instead of nearly five hundred, and the JSON Schema
// validators are ajv's standalone code generated here from schemas/ (it replaces the module
// controller/manifest/schema-validators.js), so that no command compiles them.
// Left outside the bundle, loaded from node_modules at run time: ssh2 (its optional native parts,
// cpu-features and sshcrypto.node, are found relative to its own files, or skipped when absent), and
// through require() at its first use, not by an import at the bundle's top, so that the commands that
// reach no host do not load it.
// The tsc output stays in dist/controller beside it: the tests and the bench's unbundled runs use it.
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const VALIDATORS = join(DIST, 'controller/manifest/schema-validators.js');

const { schemaAjv } = await import(VALIDATORS);
const { default: standaloneCode } = await import('ajv/dist/standalone/index.js');
const { ajv, ids } = schemaAjv({ source: true, esm: true });
const standalone = `${standaloneCode(ajv, ids)}
export function compileValidators() {
  return { host, cluster };
}
`;

const precompiled = {
  name: 'precompiled-schema-validators',
  setup(b) {
    b.onLoad({ filter: /[\\/]controller[\\/]manifest[\\/]schema-validators\.js$/ }, () => ({
      contents: standalone,
      loader: 'js',
      resolveDir: ROOT, // where its require("ajv/dist/runtime/...") is found
    }));
  },
};

// `import x from 'ssh2'` becomes a CommonJS module `module.exports = require('ssh2')` inside the bundle:
// evaluated when the module importing it is, where an external import would be hoisted to the top of
// its chunk (whichever chunk holds that shim: possibly one every command loads).
const LAZY_EXTERNAL = /^ssh2$/;
const lazyExternal = {
  name: 'lazy-external',
  setup(b) {
    b.onResolve({ filter: LAZY_EXTERNAL }, (args) =>
      args.namespace === 'lazy-external'
        ? { path: args.path, external: true }
        : { path: args.path, namespace: 'lazy-external' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-external' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)});`,
      loader: 'js',
    }));
  },
};

rmSync(join(DIST, 'natsfleet-chunks'), { recursive: true, force: true });
const result = await build({
  entryPoints: [join(DIST, 'controller/cli/main.js')],
  // The entry, dist/natsfleet.mjs, holds what every command runs; what only some commands need (the
  // modules the CLI loads with import(): SSH, the apply engine, the controller, octokit...) is in chunks
  // beside it, read only when one of them runs: Node parses about a third of the code to start.
  outdir: DIST,
  entryNames: 'natsfleet',
  chunkNames: 'natsfleet-chunks/[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS dependencies inside an ES module bundle still call require() (node: builtins, ssh2).
  banner: {
    js: "// natsfleet CLI bundle, built by scripts/bundle.mjs from dist/controller; do not edit.\nimport { createRequire as __natsfleetCreateRequire } from 'node:module';\nconst require = __natsfleetCreateRequire(import.meta.url);",
  },
  plugins: [precompiled, lazyExternal],
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
if (process.env.NATSFLEET_BUNDLE_META)
  writeFileSync(process.env.NATSFLEET_BUNDLE_META, JSON.stringify(result.metafile));
