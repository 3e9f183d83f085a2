// Owns turning a secret reference ({env}, {file}, {bcrypt}) into the value NATS needs, under the
// secret policy (policy.ts): secret files are read asynchronously, bounded (64 KiB), only when they
// are regular files inside the secrets directory (no link out of it, no device, no FIFO).
// Values are checked so they can sit inside a quoted NATS config string; they are never logged.
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import type { Secret } from '../manifest/natshost.gen.js';
import type { HostSpec } from '../manifest/host-spec.js';
import { MAX_SECRET_FILE_BYTES, secretRefProblem, secretRefs, type SecretPolicy } from '../manifest/secret-policy.js';

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

/** Why a secret file is refused, as an errno-like code for messages. */
export class SecretFileError extends Error {}

/**
 * Reads one secret file: a regular file (opened without following a final link, without blocking on
 * a FIFO) whose real path lies inside the secrets directory, at most 64 KiB, read with a bound.
 */
export async function readSecretFile(path: string, dir: string, read = true): Promise<string> {
  const realDir = await realpath(dir).catch(() => {
    throw new SecretFileError(`the secrets directory ${dir} does not exist`);
  });
  const real = await realpath(path).catch((e: NodeJS.ErrnoException) => {
    throw new SecretFileError(`cannot read secret file ${path}: ${e.code ?? 'error'}`);
  });
  if (!real.startsWith(`${realDir}/`)) throw new SecretFileError(`secret file ${path} leads out of ${dir}`);
  const fh = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(
    (e: NodeJS.ErrnoException) => {
      throw new SecretFileError(`cannot read secret file ${path}: ${e.code ?? 'error'}`);
    },
  );
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SecretFileError(`secret file ${path} is not a regular file`);
    if (st.size > MAX_SECRET_FILE_BYTES) {
      throw new SecretFileError(`secret file ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    }
    if (!read) return '';
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    if (bytesRead > MAX_SECRET_FILE_BYTES) {
      throw new SecretFileError(`secret file ${path} is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
    }
    return buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await fh.close();
  }
}

/**
 * The resolver natsfleet deploys with: every reference checked against the policy, every secret file
 * of `hosts` read up front (asynchronously, bounded), env values from `env`. A refused or missing
 * secret throws a SecretError naming its field when that host is rendered, so that other hosts go on.
 */
export async function policyResolver(
  hosts: readonly HostSpec[],
  policy: SecretPolicy,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<SecretResolver> {
  const files = new Map<string, { value?: string; error?: string }>();
  for (const { ref } of hosts.flatMap(secretRefs)) {
    if (ref.file === undefined || files.has(ref.file) || secretRefProblem(ref, policy)) continue;
    files.set(
      ref.file,
      await readSecretFile(ref.file, policy.dir).then(
        (value) => ({ value }),
        (e: Error) => ({ error: e instanceof SecretFileError ? e.message : `cannot read secret file ${ref.file}` }),
      ),
    );
  }
  const inner = secretResolver({
    env,
    readFile: (path) => {
      const f = files.get(path);
      if (f?.value === undefined) throw new SecretFileError(f?.error ?? `cannot read secret file ${path}`);
      return f.value;
    },
  });
  return (ref, field) => {
    const problem = secretRefProblem(ref, policy);
    if (problem) throw new SecretError(field, problem);
    return inner(ref, field);
  };
}

/**
 * For pull-request plans, which never resolve secrets: whether deploying would find each secret
 * (the variable is set, the file is a regular file of allowed size inside the secrets directory),
 * without reading any value. Returns the problems by field.
 */
export async function secretPresenceProblems(
  h: HostSpec,
  policy: SecretPolicy,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<{ path: string; message: string }[]> {
  const out: { path: string; message: string }[] = [];
  for (const { field, ref } of secretRefs(h)) {
    const problem = secretRefProblem(ref, policy);
    if (problem) out.push({ path: field, message: problem });
    else if (ref.env !== undefined && !env[ref.env]) {
      out.push({ path: field, message: `environment variable ${ref.env} is not set on the controller` });
    } else if (ref.file !== undefined) {
      const missing = await presence(ref.file, policy.dir);
      if (missing) out.push({ path: field, message: missing });
    }
  }
  return out;
}

/** Checks a secret file as deploying would, without reading it. */
const presence = (path: string, dir: string): Promise<string | undefined> =>
  readSecretFile(path, dir, false).then(
    () => undefined,
    (e: Error) => (e instanceof SecretFileError ? e.message : `cannot read secret file ${path}`),
  );

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
        if (e instanceof SecretFileError) throw new SecretError(field, e.message);
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
