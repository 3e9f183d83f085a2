#!/usr/bin/env node
// natsfleet command: runs the CLI bundle (dist/natsfleet.mjs: one file, built by `npm run build`, which
// `npm ci` runs through the prepare script), or the compiled modules it is made from
// (dist/controller/cli/main.js) when only `tsc` was run.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist/natsfleet.mjs', import.meta.url);
const { main } = await import(existsSync(bundle) ? bundle.href : '../dist/controller/cli/main.js');

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`natsfleet: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
