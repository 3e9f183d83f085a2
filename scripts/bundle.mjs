// Build step after tsc (`npm run build`): bundles the compiled CLI (dist/controller/cli/main.js) and its
// dependencies into one CommonJS file, dist/natsfleet.cjs, which bin/natsfleet.js runs through
// bin/load-bundle.js with V8's code cache: Node reads two files to start instead of nearly five hundred,
// and compiles almost nothing once a command has run once. The JSON Schema validators are ajv's standalone
// code generated here from schemas/ (it replaces the module controller/manifest/schema-validators.js), so
// that no command compiles them.
// The tsc output stays in dist/controller beside it: the tests and the bench's unbundled runs use it.
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { CODE_CACHE_DIR } from '../bin/load-bundle.js';

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

// ssh2 is bundled, its optional native parts are not: the bundle requires them by package path
// (node_modules/ssh2/... and cpu-features, resolved from dist/ at run time, skipped when they were not built),
// where ssh2's own relative require would look for them beside the bundle.
const nativeParts = {
  name: 'native-parts',
  setup(b) {
    b.onResolve({ filter: /[\\/]sshcrypto\.node$/ }, () => ({
      path: 'ssh2/lib/protocol/crypto/build/Release/sshcrypto.node',
      external: true,
    }));
    b.onResolve({ filter: /^cpu-features$/ }, () => ({ path: 'cpu-features', external: true }));
  },
};

for (const old of ['natsfleet-chunks', 'natsfleet.mjs', 'natsfleet.cjs', 'natsfleet.cjs.sha256', CODE_CACHE_DIR])
  rmSync(join(DIST, old), { recursive: true, force: true });
const outfile = join(DIST, 'natsfleet.cjs');
const result = await build({
  entryPoints: [join(DIST, 'controller/cli/main.js')],
  // One CommonJS file: Node 20 keeps V8's code cache only for scripts (bin/load-bundle.js), not for ES
  // modules. What only some commands need (the modules the CLI loads with import(): SSH, the apply engine,
  // the controller, octokit...) is still evaluated only when one of them runs: esbuild turns each import()
  // into a module initialised at that call.
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  define: { 'import.meta.url': '__natsfleetBundleUrl' },
  banner: {
    js: "// natsfleet CLI bundle, built by scripts/bundle.mjs from dist/controller; do not edit.\nvar __natsfleetBundleUrl = require('node:url').pathToFileURL(__filename).href;",
  },
  plugins: [precompiled, nativeParts],
  // ASCII only: esbuild escapes every other character in the code; what remains is in comments (replaced
  // below). The loader then reads the file as Latin-1, several times faster than decoding UTF-8.
  charset: 'ascii',
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});
// A few comments of the dependencies keep a non-ASCII character (an ellipsis, a dash): it becomes "?" (only
// comments can hold one; the code's were escaped).
const bundled = readFileSync(outfile, 'latin1').replace(/[^\x00-\x7f]+/g, '?');
writeFileSync(outfile, bundled, 'latin1');
// The bundle's identity for its code caches (bin/load-bundle.js): a cache made from another build is never read.
writeFileSync(`${outfile}.sha256`, `${createHash('sha256').update(bundled, 'latin1').digest('hex')}\n`);
if (process.env.NATSFLEET_BUNDLE_META)
  writeFileSync(process.env.NATSFLEET_BUNDLE_META, JSON.stringify(result.metafile));
