// The CLI bundle (scripts/bundle.mjs) validates manifests with ajv's standalone code generated from the
// schemas at build time; everything else compiles them with ajv at run time (schema-validators.ts). Both
// must say the same thing: same verdict, same errors (with the schema parts messages are made of), same
// defaults filled in, on the example manifests and on thousands of broken variants of them.
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import standaloneCodeModule from 'ajv/dist/standalone/index.js';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { describe, expect, it } from 'vitest';
import { compileValidators, schemaAjv, type Validators } from '../../controller/manifest/schema-validators.js';
import { ROOT } from '../helpers/fixtures.js';

// CommonJS under NodeNext: the function arrives as the module's default or as the module itself.
const standaloneCode = ((standaloneCodeModule as unknown as { default?: unknown }).default ?? standaloneCodeModule) as (
  ajv: unknown,
  refs: Record<string, string>,
) => string;

/** The standalone validators as the bundle gets them (CommonJS here: the ES module form differs only in its exports). */
function standalone(): Validators {
  const { ajv, ids } = schemaAjv({ source: true });
  const module = { exports: {} as Validators };
  new Function('require', 'module', 'exports', standaloneCode(ajv, ids))(
    createRequire(join(ROOT, 'package.json')),
    module,
    module.exports,
  );
  return module.exports;
}

const docs = ['test/fixtures/hosts', 'test/fixtures/clusters', 'hosts'].flatMap((dir) =>
  readdirSync(join(ROOT, dir))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => loadAll(readFileSync(join(ROOT, dir, f), 'utf8')).filter(Boolean) as Record<string, unknown>[]),
);

/** Every document, then each with one field removed or replaced by a wrong value, at every depth. */
function variants(): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const at = (root: Record<string, unknown>, path: string[]) =>
    path.reduce<Record<string, unknown>>((o, k) => o[k] as Record<string, unknown>, root);
  const walk = (node: unknown, path: string[], doc: Record<string, unknown>) => {
    if (!node || typeof node !== 'object') return;
    for (const k of Object.keys(node)) {
      for (const bad of [undefined, 'x', 42, -1, 1.5, true, null, [], {}, '0.0.0.300', 'Bad Key!']) {
        const copy = structuredClone(doc);
        if (bad === undefined) delete at(copy, path)[k];
        else at(copy, path)[k] = bad;
        out.push(copy);
      }
      walk((node as Record<string, unknown>)[k], [...path, k], doc);
    }
    if (!Array.isArray(node)) {
      const copy = structuredClone(doc);
      Object.assign(at(copy, path), { unknownField: 1, 'bad key': 'v' });
      out.push(copy);
    }
  };
  for (const d of docs) {
    out.push(d);
    walk(d, [], d);
  }
  return out;
}

const verdict = (v: ValidateFunction, doc: unknown) => {
  const data = structuredClone(doc);
  const valid = v(data);
  const errors = (v.errors ?? []).map((e: ErrorObject) => JSON.stringify(e));
  return { valid, errors, data };
};

describe('precompiled schema validators (the bundle)', () => {
  it('agree with ajv compiling the schemas at run time', () => {
    const runtime = compileValidators();
    const precompiled = standalone();
    const all = variants();
    expect(all.length).toBeGreaterThan(1000);
    let invalid = 0;
    for (const doc of all) {
      const kind = doc.kind === 'NatsCluster' ? 'cluster' : 'host';
      const a = verdict(runtime[kind], doc);
      expect(verdict(precompiled[kind], doc)).toEqual(a);
      if (!a.valid) invalid++;
    }
    expect(invalid).toBeGreaterThan(all.length / 2);
  });
});
