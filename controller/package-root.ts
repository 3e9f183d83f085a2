// Owns locating natsfleet's own package directory (schemas/, sandbox/ assets), the same from
// sources run by vitest/tsx and from the compiled dist/ tree; and its version.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'schemas'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the natsfleet package directory');
    dir = parent;
  }
  return dir;
}

export const PACKAGE_ROOT = findRoot();
export const packagePath = (...parts: string[]) => join(PACKAGE_ROOT, ...parts);

/** natsfleet's version (package.json). */
export const packageVersion = (): string =>
  (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;
