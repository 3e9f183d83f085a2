// A PATH holding this machine's programs but perl: a host script run with it takes its curl branch
// (natsfleet's scripts use perl where the host has it, curl otherwise).
import { existsSync, mkdtempSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let dir: string | undefined;

/** The directory (made once per test file), to use as PATH. */
export function pathWithoutPerl(): string {
  if (dir) return dir;
  dir = mkdtempSync(join(tmpdir(), 'nf-noperl-'));
  for (const bin of ['/usr/bin', '/bin'])
    for (const p of readdirSync(bin))
      if (!p.startsWith('perl') && !existsSync(join(dir, p))) symlinkSync(join(bin, p), join(dir, p));
  return dir;
}
