#!/usr/bin/env node
// natsfleet command: runs the compiled CLI (dist/, built by `npm ci` through the prepare script).
import { main } from '../dist/controller/cli/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`natsfleet: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  },
);
