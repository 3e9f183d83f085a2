#!/usr/bin/env node
// natsfleet command: runs the CLI bundle (dist/natsfleet.cjs: one file, built by `npm run build`, which
// `npm ci` runs through the prepare script) with V8's code cache (load-bundle.js), or the compiled modules
// it is made from (dist/controller/cli/main.js) when only `tsc` was run. CommonJS (bin/package.json): an ES
// module entry would start Node's ES module loader, a few milliseconds of every run.
'use strict';
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const bundle = join(__dirname, '..', 'dist', 'natsfleet.cjs');
const cli = existsSync(bundle)
  ? require('./load-bundle.js').loadBundle(bundle, process.argv)
  : {
      main: (argv) => import('../dist/controller/cli/main.js').then((m) => m.main(argv)),
      saveCache: () => undefined,
    };

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
