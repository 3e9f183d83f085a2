// Owns the commands that talk to a running controller through its API: `natsfleet suspend HOST`,
// `resume HOST` and `sync [HOST...]`. The controller's URL comes from --controller or
// NATSFLEET_CONTROLLER_URL, its token only from NATSFLEET_API_TOKEN (a flag would show in `ps`).
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Option, type Command } from 'commander';
import type { ApplyResult } from '../apply/result.js';
import { isSuccessful } from '../apply/result.js';
import { formatApply } from '../report/terminal.js';
import { shortRev } from '../util/rev.js';
import { integerArg } from './policy-options.js';

export const CONTROLLER_URL_ENV = 'NATSFLEET_CONTROLLER_URL';
export const API_TOKEN_ENV = 'NATSFLEET_API_TOKEN';

/** A request the controller refused or could not be sent: one line for the user. */
export class RemoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RemoteError';
  }
}

interface RemoteOptions {
  controller?: string;
  timeout: number;
  output: string;
}

/** One JSON request to the controller's API; the answer's body, or a RemoteError naming what went wrong. */
export async function callController(
  base: string,
  token: string,
  method: 'GET' | 'POST',
  path: string,
  body: unknown,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  let url: URL;
  try {
    url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  } catch {
    throw new RemoteError(`${base} is not a URL (expected e.g. http://127.0.0.1:9420)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new RemoteError(`${base}: the controller's URL must be http:// or https://`);
  const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          ...(data ? { 'content-length': data.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', () => reject(new RemoteError(`the controller at ${url.origin} closed the connection`)));
        res.on('end', () => {
          let parsed: Record<string, unknown>;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return reject(new RemoteError(`${url.origin} answered ${res.statusCode} without JSON: is it natsfleet?`));
          }
          if (res.statusCode === 200) return resolve(parsed);
          const why = typeof parsed.error === 'string' ? parsed.error : `HTTP ${res.statusCode}`;
          reject(new RemoteError(`the controller refused: ${why}`));
        });
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      reject(new RemoteError(`no answer from the controller at ${url.origin} within ${timeoutMs / 1000} s`));
    });
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new RemoteError(
          e.code === 'ECONNREFUSED'
            ? `no controller listens at ${url.origin} (connection refused)`
            : `cannot reach the controller at ${url.origin}: ${e.code ?? e.message}`,
        ),
      ),
    );
    req.end(data);
  });
}

function target(o: { controller?: string }, env: NodeJS.ProcessEnv): { base: string; token: string } {
  const base = o.controller ?? env[CONTROLLER_URL_ENV];
  if (!base) throw new RemoteError(`which controller? give --controller URL or set ${CONTROLLER_URL_ENV}`);
  const token = env[API_TOKEN_ENV];
  if (!token) throw new RemoteError(`set ${API_TOKEN_ENV} to the controller's apiToken`);
  return { base, token };
}

/**
 * What the running controller says of its hosts (`natsfleet status --controller`): host -> why it holds
 * it suspended, and host -> the replica that holds its lease (when replicas share the work).
 */
export async function controllerView(
  o: { controller?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ suspended: Map<string, string>; replicas: Map<string, string> }> {
  const t = target(o, env);
  const r = await callController(t.base, t.token, 'GET', 'api/v1/hosts', undefined, 30_000);
  const hosts = (Array.isArray(r.hosts) ? r.hosts : []) as { host?: unknown; suspended?: unknown; replica?: unknown }[];
  const pairs = (field: 'suspended' | 'replica') =>
    new Map(
      hosts.flatMap((h) => (typeof h.host === 'string' && typeof h[field] === 'string' ? [[h.host, h[field]]] : [])),
    );
  return { suspended: pairs('suspended'), replicas: pairs('replica') };
}

function remote(cmd: Command, timeoutSec = 30): Command {
  return cmd
    .option('--controller <url>', `the controller's URL (default: $${CONTROLLER_URL_ENV})`)
    .option('--timeout <sec>', 'give up waiting after this long', integerArg(1, 86400), timeoutSec)
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'));
}

export function remoteCommands(
  program: Command,
  out: (l: string) => void,
  err: (l: string) => void,
  setCode: (c: number) => void,
  env: NodeJS.ProcessEnv = process.env,
) {
  const ask = (o: RemoteOptions, method: 'GET' | 'POST', path: string, body: unknown) => {
    const t = target(o, env);
    return callController(t.base, t.token, method, path, body, o.timeout * 1000);
  };
  const guarded = async (fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof RemoteError)) throw e;
      err(`error: ${e.message}`);
      setCode(1);
    }
  };

  remote(
    program
      .command('suspend')
      .description(
        "stop the running controller's deploys and self-heal of HOST until resumed (drift is still reported)",
      )
      .argument('<host>', 'host name')
      .option('--reason <text>', 'why, shown in status and comments'),
  ).action((host: string, o: RemoteOptions & { reason?: string }) =>
    guarded(async () => {
      const r = await ask(o, 'POST', `api/v1/hosts/${encodeURIComponent(host)}/suspend`, {
        ...(o.reason ? { reason: o.reason } : {}),
      });
      if (o.output === 'json') return out(JSON.stringify(r, null, 2));
      out(`${host}: suspended since ${String(r.since)}${r.reason ? ` (${String(r.reason)})` : ''}`);
      out(`  no deploy or self-heal until \`natsfleet resume ${host}\`; drift is still reported`);
    }),
  );

  remote(
    program.command('resume').description('end a suspension: the controller deploys HOST again').argument('<host>'),
  ).action((host: string, o: RemoteOptions) =>
    guarded(async () => {
      const r = await ask(o, 'POST', `api/v1/hosts/${encodeURIComponent(host)}/resume`, {});
      if (o.output === 'json') return out(JSON.stringify(r, null, 2));
      out(r.wasSuspended ? `${host}: resumed; the controller deploys it now` : `${host}: was not suspended`);
    }),
  );

  const sync = remote(
    program
      .command('sync')
      .description(
        'ask the running controller to reconcile HOSTs (all without one) at the branch head now; ' +
          'wait for the result',
      )
      .argument('[hosts...]', 'host names'),
    600,
  );
  sync.action((hosts: string[], o: RemoteOptions) =>
    guarded(async () => {
      const r = await ask(o, 'POST', 'api/v1/sync', { hosts });
      if (o.output === 'json') return out(JSON.stringify(r, null, 2));
      const runs = (r.hosts ?? []) as { host: string; result?: ApplyResult; error?: string }[];
      out(`synced ${shortRev(String(r.revision))}: ${runs.length} host(s)`);
      for (const x of runs) out(x.result ? formatApply(x.result) : `${x.host}: Unknown: ${x.error ?? 'no result'}`);
      for (const h of (r.suspended ?? []) as string[]) err(`${h}: suspended: not synced`);
      const elsewhere = (r.elsewhere ?? []) as { host: string; replica: string }[];
      for (const x of elsewhere) err(`${x.host}: held by controller replica ${x.replica}: not synced (ask that one)`);
      // A host asked for and not synced (suspended, or held by another replica) is not a success either.
      setCode(
        runs.every((x) => isSuccessful(x.result)) && !(r.suspended as string[]).length && !elsewhere.length ? 0 : 1,
      );
    }),
  );
}
