// Owns compiling the NatsHost and NatsCluster JSON Schemas (schemas/) into validators, with ajv's options
// in one place. Sources, tests and the tsc output compile them with ajv on first use; the bundle
// (dist/natsfleet.mjs, scripts/bundle.mjs) loads ajv's standalone code generated from the same schemas and
// options at build time in place of this module, so that a command never spends start-up compiling them.
import { readFileSync } from 'node:fs';
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { packagePath } from '../package-root.js';
import type { NatsHost } from './natshost.gen.js';
import type { NatsCluster } from './natscluster.gen.js';

export interface Validators {
  host: ValidateFunction<NatsHost>;
  cluster: ValidateFunction<NatsCluster>;
}

// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ??
  addFormatsModule) as unknown as (ajv: Ajv, formats: string[]) => Ajv;

const readSchema = (file: string): Record<string, unknown> =>
  JSON.parse(readFileSync(packagePath('schemas', file), 'utf8'));

/** ajv holding both schemas, compiled; `code` for the standalone build (scripts/bundle.mjs). */
export function schemaAjv(code?: Options['code']): { ajv: Ajv; ids: Record<keyof Validators, string> } {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, useDefaults: true, verbose: true, code });
  addFormats(ajv, ['ipv4']);
  ajv.addKeyword({ keyword: 'x-hint', schemaType: 'string' });
  const host = ajv.compile(readSchema('natshost.schema.json'));
  // Refers to the NatsHost schema's definitions (by its $id), compiled above.
  const cluster = ajv.compile(readSchema('natscluster.schema.json'));
  const id = (v: ValidateFunction) => (v.schema as { $id: string }).$id;
  return { ajv, ids: { host: id(host), cluster: id(cluster) } };
}

/** The two validators, compiled with ajv now. */
export function compileValidators(): Validators {
  const { ajv, ids } = schemaAjv();
  return { host: ajv.getSchema<NatsHost>(ids.host)!, cluster: ajv.getSchema<NatsCluster>(ids.cluster)! };
}
