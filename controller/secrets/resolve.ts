// Owns turning a secret reference ({env}, {file}, {bcrypt}) into the value NATS needs.
// Values are checked so they can sit inside a quoted NATS config string; they are never logged.
import { readFileSync } from 'node:fs';
import type { Secret } from '../manifest/natshost.gen.js';

export class SecretError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'SecretError';
  }
}

export interface SecretSource {
  env: Readonly<Record<string, string | undefined>>;
  readFile(path: string): string;
}

export const processSecrets: SecretSource = {
  env: process.env,
  readFile: (path) => readFileSync(path, 'utf8'),
};

/** Printable ASCII without quote, backslash or whitespace: safe inside a quoted NATS string. */
const SAFE_VALUE = /^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/;

export type SecretResolver = (ref: Secret, field: string) => string;

export function secretResolver(source: SecretSource): SecretResolver {
  return (ref, field) => {
    let value: string;
    if (ref.bcrypt !== undefined) return ref.bcrypt;
    if (ref.env !== undefined) {
      const v = source.env[ref.env];
      if (v === undefined || v === '') throw new SecretError(field, `environment variable ${ref.env} is not set`);
      value = v;
    } else if (ref.file !== undefined) {
      try {
        value = source.readFile(ref.file).replace(/\r?\n$/, '');
      } catch (e) {
        throw new SecretError(
          field,
          `cannot read secret file ${ref.file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
        );
      }
    } else {
      throw new SecretError(field, 'empty secret reference');
    }
    if (!SAFE_VALUE.test(value)) {
      throw new SecretError(
        field,
        'secret value must be 1-512 printable ASCII characters without quotes, backslashes or spaces',
      );
    }
    return value;
  };
}

/** True when the secret ends up in plaintext on the host (so the file holding it is not world-readable). */
export const isPlaintext = (ref: Secret | undefined) => ref !== undefined && ref.bcrypt === undefined;
