// The architecture of controller/ as a test. Imports follow the data flow (Git -> manifests -> desired
// state (render) -> observed facts -> plan -> apply -> verify -> report): no file imports itself through
// others, each folder imports only what comes before it, and nothing but the CLI imports the CLI. Type
// imports count too. Every module also opens with its header comment and fits in 120 columns.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const CONTROLLER = join(ROOT, 'controller');

/** Every TypeScript file under controller/, as a path relative to it ('plan/plan.ts'). */
function sources(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
    );
  return walk(CONTROLLER)
    .map((p) => relative(CONTROLLER, p))
    .sort();
}

const IMPORT_PATTERNS = [
  // import ... from '...', import type ... from '...', export ... from '...' (also over several lines)
  /^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]/gm,
  // import '...' (for its side effects)
  /^\s*import\s*['"]([^'"]+)['"]/gm,
  // import('...')
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

/** The module specifiers a file imports or re-exports, type-only ones included. */
export function specifiers(text: string): string[] {
  return IMPORT_PATTERNS.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

/** The files a file imports (relative specifiers only: packages and node: modules are not ours). */
function importsOf(file: string): { spec: string; target: string }[] {
  const text = readFileSync(join(CONTROLLER, file), 'utf8');
  return specifiers(text)
    .filter((s) => s.startsWith('.'))
    .map((spec) => ({
      spec,
      target: relative(CONTROLLER, resolve(dirname(join(CONTROLLER, file)), spec)).replace(/\.js$/, '.ts'),
    }));
}

/** The folder a file belongs to ('plan'); files at controller/'s top level are '(top)'. */
const folder = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '(top)');

/** The import cycles of a graph (one per strongly connected component, as a path back to its start). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's strongly connected components.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        c.push(w);
      } while (w !== v);
      if (c.length > 1 || (graph.get(v) ?? []).includes(v)) components.push(c);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  // Each component as one readable cycle: the shortest way from its first file back to it.
  return components.map((c) => {
    const inside = new Set(c);
    const start = [...c].sort()[0];
    const from = new Map<string, string>();
    const queue = [start];
    while (queue.length) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (w === start) {
          const path = [v];
          while (path[0] !== start) path.unshift(from.get(path[0])!);
          return [...path, start];
        }
        if (inside.has(w) && !from.has(w)) {
          from.set(w, v);
          queue.push(w);
        }
      }
    }
    return [...c, start];
  });
}

/** What each folder must not import (the later stages of the flow, and the edges). */
const MUST_NOT: Record<string, readonly string[]> = {
  render: ['observe', 'plan', 'apply', 'transport', 'reconcile', 'source', 'report', 'gitops', 'cli', 'sandbox'],
  observe: ['plan', 'apply', 'reconcile', 'source', 'report', 'gitops', 'cli'],
  plan: ['apply', 'transport', 'reconcile', 'source', 'report', 'gitops', 'cli'],
  apply: ['manifest', 'reconcile', 'source', 'report', 'gitops', 'cli'],
  transport: ['render', 'observe', 'plan', 'apply', 'reconcile', 'gitops', 'cli'],
  report: ['gitops', 'cli', 'reconcile', 'transport'],
  // Host -> manifest (import): reads facts, writes a manifest; plans and applies nothing.
  adopt: ['render', 'plan', 'apply', 'transport', 'reconcile', 'source', 'report', 'gitops', 'cli'],
};
/**
 * The folders that may import only a few others: the manifest is the start of the flow, util/ and
 * shell/ are the leaves everyone uses. Top-level files (package-root.ts: where natsfleet's own files
 * are) are leaves too: any folder may import them, and they import nothing of controller/.
 */
const ONLY: Record<string, readonly string[]> = {
  manifest: ['manifest', 'util', 'shell', '(top)'],
  util: ['util'],
  shell: ['shell', 'util'],
  '(top)': [],
};

/**
 * The modules allowed lines over 120 columns: generated from the schemas' descriptions by
 * scripts/gen-types.mjs, so their long lines are fixed in the schemas, not here.
 */
const isGenerated = (file: string) => /^manifest\/[a-z]+\.gen\.ts$/.test(file);

const FILES = sources();
const GRAPH = new Map(FILES.map((f) => [f, importsOf(f)]));

describe('the import graph of controller/', () => {
  it('is read from every file: imports, type imports and re-exports over one or several lines', () => {
    const sample = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      'import {',
      '  c,',
      '  type D,',
      "} from './c.js';",
      "export { e } from './e.js';",
      "export * from './f.js';",
      "import './g.js';",
      "const h = await import('./h.js');",
      "export const i = 'not an import';",
      "import { j } from 'node:fs';",
    ].join('\n');
    expect(specifiers(sample).sort()).toEqual(
      ['./a.js', '../b/b.js', './c.js', './e.js', './f.js', './g.js', './h.js', 'node:fs'].sort(),
    );
    const edges = [...GRAPH.values()].flat();
    expect(edges.length).toBeGreaterThan(100);
    expect(GRAPH.get('plan/plan.ts')!.map((i) => i.target)).toContain('observe/facts.ts');
  });

  it('resolves every relative import to a file of controller/', () => {
    const dangling = [...GRAPH].flatMap(([file, imports]) =>
      imports
        .filter((i) => i.target.startsWith('..') || !existsSync(join(CONTROLLER, i.target)))
        .map((i) => `${file} imports ${i.spec}`),
    );
    expect(dangling).toEqual([]);
  });

  it('has no cycle', () => {
    const graph = new Map([...GRAPH].map(([f, imports]) => [f, imports.map((i) => i.target)]));
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('imports along the flow: each folder only from the stages before it', () => {
    const violations: string[] = [];
    for (const [file, imports] of GRAPH) {
      const from = folder(file);
      for (const { target } of imports) {
        const to = folder(target);
        if (to === from) continue;
        if (MUST_NOT[from]?.includes(to)) violations.push(`${file} -> ${target}: ${from}/ must not import ${to}/`);
        if (ONLY[from] && !ONLY[from].includes(to))
          violations.push(`${file} -> ${target}: ${from}/ imports only ${ONLY[from].join(', ') || 'nothing'}`);
        if (to === 'cli') violations.push(`${file} -> ${target}: only cli/ (and bin/) import cli/`);
      }
    }
    expect(violations).toEqual([]);
  });
});

describe('the cycle finder', () => {
  it('finds a cycle through several files, a file importing itself, and nothing in a tree', () => {
    const g = new Map([
      ['a', ['b']],
      ['b', ['c', 'd']],
      ['c', ['a']],
      ['d', []],
      ['e', ['e', 'a']],
    ]);
    expect(
      cycles(g)
        .map((c) => c.join(' -> '))
        .sort(),
    ).toEqual(['a -> b -> c -> a', 'e -> e']);
    expect(
      cycles(
        new Map([
          ['a', ['b', 'c']],
          ['b', ['c']],
          ['c', []],
        ]),
      ),
    ).toEqual([]);
  });
});

describe('every module under controller/', () => {
  it('opens with a // header comment saying what it owns', () => {
    const bare = FILES.filter((f) => !readFileSync(join(CONTROLLER, f), 'utf8').startsWith('//'));
    expect(bare).toEqual([]);
  });

  it('has no line over 120 columns (template literals included)', () => {
    const over: string[] = [];
    for (const f of FILES) {
      if (isGenerated(f)) continue;
      const long = readFileSync(join(CONTROLLER, f), 'utf8')
        .split('\n')
        .map((line, i) => ({ line: i + 1, width: [...line].length }))
        .filter((l) => l.width > 120);
      if (long.length) over.push(`${f}: ${long.map((l) => `line ${l.line} (${l.width})`).join(', ')}`);
    }
    expect(over).toEqual([]);
  });
});
