// Owns the controller's authenticated API (served under /api/v1/ by http.ts): suspend and resume a host,
// sync now, and the hosts with their suspensions. Every request carries `Authorization: Bearer <token>`
// (the controller's apiToken, compared in constant time); without a configured token the API is off.
// A request gets one JSON answer: never a stack trace, never a secret.
import { createHash, timingSafeEqual } from 'node:crypto';
import { InvalidRevisionError, NotReadyError, UnknownHostError, type SyncOutcome } from './controller.js';
import type { Suspension } from './state.js';
import { oneLine } from './decide.js';
import { redactUrl } from '../source/git-source.js';

/** What the API does, as the running controller provides it (run.ts serialises sync with the loop). */
export interface ApiActions {
  token: string;
  suspend(host: string, reason?: string): Promise<Suspension>;
  resume(host: string): Promise<boolean>;
  sync(hosts: readonly string[]): Promise<SyncOutcome>;
  hosts(): Promise<unknown[]>;
}

export interface ApiAnswer {
  code: number;
  body: Record<string, unknown>;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries the token (constant time, whatever the lengths). */
export function authorized(header: string | undefined, token: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return Boolean(m) && timingSafeEqual(digest(m![1]), digest(token));
}

/** A host name as manifests allow them (metadata.name): anything else is refused before any lookup. */
const HOST_NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const MAX_REASON = 200;

function parseBody(body: Buffer): Record<string, unknown> | undefined {
  if (body.length === 0) return {};
  try {
    const v: unknown = JSON.parse(body.toString('utf8'));
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A path segment decoded, or undefined when its percent-encoding is malformed (a 400, not a 500). */
function decoded(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

const bad = (message: string): ApiAnswer => ({ code: 400, body: { error: message } });

/** Answers one request under /api/v1/ (`path` without its query). */
export async function handleApi(
  method: string,
  path: string,
  authorization: string | undefined,
  body: Buffer,
  api: ApiActions | undefined,
): Promise<ApiAnswer> {
  if (!api) return { code: 404, body: { error: 'the API is off: the controller has no apiToken' } };
  if (!authorized(authorization, api.token)) return { code: 401, body: { error: 'missing or wrong bearer token' } };
  const json = parseBody(body);
  if (!json) return bad('the body is not a JSON object');
  try {
    if (method === 'GET' && path === '/api/v1/hosts') return { code: 200, body: { hosts: await api.hosts() } };
    const host = /^\/api\/v1\/hosts\/([^/]+)\/(suspend|resume)$/.exec(path);
    if (method === 'POST' && host) {
      const name = decoded(host[1]);
      if (name === undefined || !HOST_NAME.test(name)) return bad(`${oneLine(name ?? host[1], 80)} is not a host name`);
      if (host[2] === 'resume') {
        const was = await api.resume(name);
        return { code: 200, body: { host: name, suspended: false, wasSuspended: was } };
      }
      const reason = json.reason;
      if (reason !== undefined && (typeof reason !== 'string' || reason.length > MAX_REASON))
        return bad(`reason must be a string of at most ${MAX_REASON} characters`);
      const s = await api.suspend(name, reason ? oneLine(reason, MAX_REASON) : undefined);
      return { code: 200, body: { host: name, suspended: true, ...s } };
    }
    if (method === 'POST' && path === '/api/v1/sync') {
      const hosts = json.hosts ?? [];
      if (!Array.isArray(hosts) || !hosts.every((h) => typeof h === 'string' && HOST_NAME.test(h)))
        return bad('hosts must be a list of host names');
      const o = await api.sync(hosts as string[]);
      return {
        code: 200,
        body: {
          revision: o.revision,
          // durationMs: the host's whole run (observe, apply, verify).
          hosts: o.runs.map((r) => ({ host: r.host, durationMs: r.durationMs, result: r.apply, error: r.error })),
          suspended: o.suspended,
          ...(o.elsewhere?.length ? { elsewhere: o.elsewhere } : {}),
        },
      };
    }
    return { code: 404, body: { error: `no ${method} ${oneLine(path, 100)} in the API` } };
  } catch (e) {
    if (e instanceof UnknownHostError) return { code: 404, body: { error: e.message } };
    if (e instanceof NotReadyError) return { code: 503, body: { error: e.message } };
    if (e instanceof InvalidRevisionError) return { code: 409, body: { error: e.message, errors: e.errors } };
    // A git error may quote the repository URL: never its credentials.
    return { code: 500, body: { error: oneLine(redactUrl((e as Error).message), 300) } };
  }
}
