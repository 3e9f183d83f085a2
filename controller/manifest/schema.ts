// Owns JSON Schema validation of NatsHost and NatsCluster documents: the compiled schemas from schemas/,
// defaults filled in from them, and ajv's errors turned into messages a person can act on.
import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { packagePath } from '../package-root.js';
import { compileValidators, type Validators } from './schema-validators.js';

/**
 * The modeline yaml-language-server reads (VS Code's YAML extension, Neovim, Helix...) in a hosts
 * repository: the schema copy `natsfleet init` writes, relative to the manifest.
 */
export const SCHEMA_MODELINE = '# yaml-language-server: $schema=../schemas/natshost.schema.json';

export const natsHostSchema: Record<string, unknown> = JSON.parse(
  readFileSync(packagePath('schemas', 'natshost.schema.json'), 'utf8'),
);

// Compiled on first use (schema-validators.ts): most commands validate nothing, or only later.
let validators: Validators | undefined;

export interface SchemaError {
  path: string;
  message: string;
}

const pointerToPath = (pointer: string): string =>
  pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .join('.');

const join = (a: string, b: string) => (a ? `${a}.${b}` : b);

function describe(e: ErrorObject): SchemaError {
  const path = pointerToPath(e.instancePath);
  const hint = (e.parentSchema as { 'x-hint'?: string } | undefined)?.['x-hint'];
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = (e.params as { additionalProperty: string }).additionalProperty;
      return { path: join(path, field), message: `unknown field "${field}"${hint ? `; ${hint}` : ''}` };
    }
    case 'required': {
      const field = (e.params as { missingProperty: string }).missingProperty;
      return { path: join(path, field), message: 'is required' };
    }
    case 'propertyNames':
      return { path, message: `has an invalid key "${(e.params as { propertyName: string }).propertyName}"` };
    case 'type':
      if (hint) return { path, message: hint };
      return { path, message: `must be ${(e.params as { type: string }).type}` };
    default:
      return { path, message: hint ?? e.message ?? e.keyword };
  }
}

/**
 * Validates `doc` in place (schema defaults are filled in) and returns one error per problem.
 * A value that is wrong in several ways is reported once: the first, most specific reason wins.
 */
export function validateSchema(doc: unknown, kind: 'NatsHost' | 'NatsCluster' = 'NatsHost'): SchemaError[] {
  validators ??= compileValidators();
  const validate = kind === 'NatsCluster' ? validators.cluster : validators.host;
  if (validate(doc)) return [];
  const seen = new Set<string>();
  const out: SchemaError[] = [];
  for (const e of validate.errors ?? []) {
    // A bad label key yields a pattern error and a propertyNames error: keep the latter, which names the key.
    if (e.schemaPath.includes('/propertyNames/')) continue;
    const d = describe(e);
    const key = `${d.path}\u0000${d.message}`;
    if (seen.has(key)) continue;
    // type + pattern on the same value (e.g. a size given as a float) say the same thing once.
    if (out.some((o) => o.path === d.path && e.keyword !== 'additionalProperties' && e.keyword !== 'required'))
      continue;
    seen.add(key);
    out.push(d);
  }
  return out;
}
