// Owns deciding whether a NATS config change can be applied by a reload (SIGHUP) or needs a
// restart, the way an operator would: NATS reloads all-or-nothing, so one non-reloadable key
// anywhere means restart. Knows the reloadable set of nats-server (server/reload.go, diffOptions) for
// the version running; an unknown version gets the most conservative table.
import { sizeInBytes } from '../manifest/rules.js';
import { acceptsKeysAddedIn210, jetStreamLimitIncreaseReloads, type NatsVersion } from './nats-versions.js';

/** The line without its comment (`#` or `//` at the line start or after a blank, outside quotes). */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if ((c === '#' || (c === '/' && line[i + 1] === '/')) && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i);
    }
  }
  return line;
}

/** A plain value: a quoted string's content, or an unquoted token; undefined for anything structured. */
function scalar(v: string): string | undefined {
  const q = /^"([^"\\]*)"$/.exec(v) ?? /^'([^'\\]*)'$/.exec(v);
  if (q) return q[1];
  return /["'{}[\]]/.test(v) ? undefined : v;
}

/** The items of an array's line(s): `"a" "b"`, `"a", "b"`; undefined when one is not a plain value. */
function arrayItems(text: string): string[] | undefined {
  const items: string[] = [];
  for (const token of text.match(/"[^"]*"|'[^']*'|[^,\s]+/g) ?? []) {
    const item = scalar(token);
    if (item === undefined) return undefined;
    items.push(item);
  }
  return items;
}

/**
 * Flattens the config subset natsfleet writes (and simple hand edits) to "block.key" -> value. An array
 * of plain values (`routes: [` with one string a line, up to `]`, or on one line) is one value: its items
 * sorted and joined by newlines, since NATS compares routes as a set; a one-line list of blocks
 * (`users: [ { user: "a", password: "b" } ]`) is one opaque value. Undefined for anything else
 * (includes, multi-line arrays of blocks, unbalanced braces): the caller then restarts.
 */
export function flattenNatsConf(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const stack: string[] = [];
  let array: { key: string; items: string[] } | undefined;
  for (const raw of text.split('\n')) {
    const line = stripComment(raw).trim();
    if (!line) continue;
    if (array) {
      const end = /^(.*?)\s*\][,;]?$/.exec(line);
      const items = arrayItems(end ? end[1] : line);
      if (!items) return undefined;
      array.items.push(...items);
      if (end) {
        out.set(array.key, array.items.sort().join('\n'));
        array = undefined;
      }
      continue;
    }
    if (line === '}') {
      if (!stack.pop()) return undefined;
      continue;
    }
    // A block, its name quoted or not (an account named "$SYS").
    const block = /^(?:([A-Za-z_][\w-]*)|"(\$?[A-Za-z_][\w-]*)")\s*[:=]?\s*\{$/.exec(line);
    if (block) {
      stack.push(block[1] ?? block[2]);
      out.set([...stack].join('.'), '{}');
      continue;
    }
    const kv = /^([A-Za-z_][\w-]*)\s*(?:[:=]\s*|\s+)(.+?)[,;]?$/.exec(line);
    if (!kv || kv[1] === 'include') return undefined;
    const key = [...stack, kv[1]].join('.');
    // A one-line list of blocks (the users natsfleet writes beside an accounts block) is one opaque value.
    const blocks = /^\[\s*(\{[^[\]]*\})\s*\]$/.exec(kv[2]);
    if (blocks) {
      out.set(key, blocks[1].replace(/\s+/g, ' '));
      continue;
    }
    const list = /^\[(.*?)(\])?$/.exec(kv[2]);
    if (list) {
      const items = arrayItems(list[1]);
      if (!items) return undefined;
      if (list[2]) out.set(key, items.sort().join('\n'));
      else array = { key, items };
      continue;
    }
    const value = scalar(kv[2]);
    if (value === undefined) return undefined;
    out.set(key, value);
  }
  return stack.length === 0 && !array ? out : undefined;
}

/** Spellings nats-server reads as the same option (server/opts.go parseJetStream, parseCluster). */
const ALIASES: Record<string, string> = {
  'jetstream.max_mem_store': 'jetstream.max_memory_store',
  'jetstream.max_mem': 'jetstream.max_memory_store',
  'jetstream.max_file': 'jetstream.max_file_store',
  'jetstream.store': 'jetstream.store_dir',
  'jetstream.storedir': 'jetstream.store_dir',
  'cluster.cluster_advertise': 'cluster.advertise',
  max_conn: 'max_connections',
  log_file: 'logfile',
};
const canonical = (m: Map<string, string>) => new Map([...m].map(([k, val]) => [ALIASES[k] ?? k, val]));

/**
 * Keys every nats-server from 2.9.10 to 2.15 reloads (server/reload.go diffOptions: v2.9.10:963,
 * v2.10.27:1182, v2.14.5:1583; confirmed by SIGHUP against 2.9.10, 2.10.27 and 2.15.1). The cluster
 * block reloads as a whole (`case "cluster"`: clusterOption, v2.14.5:1688) except its listen host and
 * port (validateClusterOpts, v2.14.5:2781): name, advertise, no_advertise and authorization (a new route
 * password closes the inbound routes that no longer authorize, reloadAuthorization); `routes` (a
 * top-level option, `case "routes"`, v2.14.5:1716) adds and removes routes. Not reloadable, though
 * natsfleet once listed them: max_subscriptions (MaxSubs) and logfile_size_limit (LogSizeLimit) have no
 * case in diffOptions; server_name, port, http_port, lame_duck_duration and lame_duck_grace_period
 * neither (the default case refuses the reload). TLS: the client `tls {}` block reloads as a whole
 * (`case "tlsconfig"` and `"tlstimeout"`, v2.9.10:1025; tlsOption sets INFO's tls_required, so a reload
 * turns the port TLS-only) and so does the route one (inside clusterOption); `verify_and_map` (TLSMap)
 * and pinned certificates are left to a restart.
 */
const RELOADABLE = [
  /^(debug|trace|trace_verbose|logtime|logfile|syslog|remote_syslog|max_traced_msg_len)$/,
  /^(max_connections|max_control_line|max_payload|ping_interval|ping_max|write_deadline)$/,
  /^(connect_error_reports|reconnect_error_reports)$/,
  /^authorization(\..*)?$/,
  /^accounts(\..*)?$/,
  /^cluster\.(name|advertise|no_advertise|routes|authorization(\..*)?|permissions(\..*)?)$/,
  /^(cluster\.)?tls(\.(cert_file|key_file|ca_file|verify|timeout))?$/,
];
/** Keys 2.10 added and reloads (`case "logtimeutc"`, the cluster's pool and compression); 2.9 rejects them. */
const RELOADABLE_SINCE_210 = [
  /^logtime_utc$/,
  /^cluster\.(pool_size|accounts|compression(\..*)?)$/,
  /^tls\.handshake_first$/, // `case "tlshandshakefirst"`, v2.10.27:1252
];
const JS_LIMITS = ['jetstream.max_memory_store', 'jetstream.max_file_store'];

export interface ConfigChangeClass {
  action: 'none' | 'reload' | 'restart';
  /** The keys that changed, and for a restart the ones that force it. */
  changed: string[];
  restartKeys: string[];
}

const bytes = (val: string) => {
  try {
    return sizeInBytes(/^\d+$/.test(val) ? Number(val) : val);
  } catch {
    return NaN;
  }
};

/**
 * Whether a changed key needs a restart on `version`. JetStream limits: a reload can only raise a limit
 * set before and after, from 2.12.7 (jetStreamLimitIncreaseReloads); setting, unsetting or lowering one
 * restarts (reload.go `case "jetstreammaxmemory", "jetstreammaxstore"`). Adding or removing the cluster
 * block restarts (its host changes to or from empty, validateClusterOpts). Turning JetStream on or off
 * restarts too: reload.go could do it (jetStreamOption), but natsfleet keeps that to the tested path.
 */
function needsRestart(key: string, a: Map<string, string>, b: Map<string, string>, version?: NatsVersion) {
  if (JS_LIMITS.includes(key)) {
    const [before, after] = [a.get(key), b.get(key)];
    if (before === undefined || after === undefined) return true;
    const [x, y] = [bytes(before), bytes(after)];
    if (x === y) return false; // the same limit written another way
    return !(y > x && jetStreamLimitIncreaseReloads(version));
  }
  if (RELOADABLE.some((r) => r.test(key))) return false;
  return !(acceptsKeysAddedIn210(version) && RELOADABLE_SINCE_210.some((r) => r.test(key)));
}

/**
 * Reload or restart for a change of the config from `before` to `after`, on the nats-server `version`
 * running (undefined: unknown, the most conservative table).
 */
export function classifyConfigChange(
  before: string | undefined,
  after: string,
  version?: NatsVersion,
): ConfigChangeClass {
  if (before === after) return { action: 'none', changed: [], restartKeys: [] };
  const fa = before === undefined ? undefined : flattenNatsConf(before);
  const fb = flattenNatsConf(after);
  if (!fa || !fb) return { action: 'restart', changed: ['(unparsed config)'], restartKeys: ['(unparsed config)'] };
  const [a, b] = [canonical(fa), canonical(fb)];
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const changed = keys.filter((k) => a.get(k) !== b.get(k));
  if (changed.length === 0) return { action: 'none', changed: [], restartKeys: [] }; // comments or spacing only
  const restartKeys = changed.filter((k) => needsRestart(k, a, b, version));
  return { action: restartKeys.length ? 'restart' : 'reload', changed, restartKeys };
}
