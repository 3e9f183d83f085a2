#!/usr/bin/env node
// natsfleet command: runs the CLI bundle (dist/natsfleet.cjs: one file, built by `npm run build`, which
// `npm ci` runs through the prepare script) with V8's code cache (load-bundle.js), or the compiled modules
// it is made from (dist/controller/cli/main.js) when only `tsc` was run.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = fileURLToPath(new URL('../dist/natsfleet.cjs', import.meta.url));
const cli = existsSync(bundle)
  ? (await import('./load-bundle.js')).loadBundle(bundle, process.argv)
  : { main: (await import('../dist/controller/cli/main.js')).main, saveCache: () => undefined };

cli.main(process.argv).then(
  (code) => {
    process.exitCode = code;
    cli.saveCache(code);
  },
  (err) => {
    console.error(`natsfleet: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
