// Owns deciding whether a NATS config change can be applied by a reload (SIGHUP) or needs a
// restart, the way an operator would: NATS reloads all-or-nothing, so one non-reloadable key
// anywhere means restart. Knows the reloadable set of nats-server (server/reload.go).
import { sizeInBytes } from '../manifest/rules.js';

/** Flattens the config subset natsfleet writes (and simple hand edits) to "block.key" -> value. */
export function flattenNatsConf(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  const stack: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/(^|\s)(#|\/\/).*$/, '').trim();
    if (!line) continue;
    if (line === '}') {
      if (!stack.pop()) return undefined;
      continue;
    }
    const block = /^([A-Za-z_][\w-]*)\s*[:=]?\s*\{$/.exec(line);
    if (block) {
      stack.push(block[1]);
      out.set([...stack].join('.'), '{}');
      continue;
    }
    const kv = /^([A-Za-z_][\w-]*)\s*(?:[:=]\s*|\s+)(.+?)[,;]?$/.exec(line);
    if (!kv || kv[2].includes('{') || kv[2].includes('[') || kv[1] === 'include') return undefined;
    out.set([...stack, kv[1]].join('.'), kv[2].replace(/^"(.*)"$/, '$1'));
  }
  return stack.length === 0 ? out : undefined;
}

/** Keys nats-server reloads without a restart (logging, auth, limits); JetStream limits only upward. */
const RELOADABLE = [
  /^(debug|trace|logtime|log_file|logfile_size_limit|syslog|remote_syslog|trace_verbose)$/,
  /^(max_connections|max_control_line|max_payload|ping_interval|ping_max|write_deadline|max_subscriptions)$/,
  /^authorization(\..*)?$/,
  /^accounts(\..*)?$/,
  /^jetstream$/,
];
const JS_LIMITS = ['jetstream.max_memory_store', 'jetstream.max_file_store', 'jetstream.max_mem', 'jetstream.max_file'];

export interface ConfigChangeClass {
  action: 'none' | 'reload' | 'restart';
  /** The keys that changed, and for a restart the ones that force it. */
  changed: string[];
  restartKeys: string[];
}

const bytes = (v: string | undefined) => {
  if (v === undefined) return Infinity; // no limit set: NATS uses all available
  try {
    return sizeInBytes(/^\d+$/.test(v) ? Number(v) : v);
  } catch {
    return NaN;
  }
};

export function classifyConfigChange(before: string | undefined, after: string): ConfigChangeClass {
  if (before === after) return { action: 'none', changed: [], restartKeys: [] };
  const a = before === undefined ? undefined : flattenNatsConf(before);
  const b = flattenNatsConf(after);
  if (!a || !b) return { action: 'restart', changed: ['(unparsed config)'], restartKeys: ['(unparsed config)'] };
  const keys = [...new Set([...a.keys(), ...b.keys()])].sort();
  const changed = keys.filter((k) => a.get(k) !== b.get(k));
  if (changed.length === 0) return { action: 'none', changed: [], restartKeys: [] }; // comments or spacing only
  const restartKeys = changed.filter((k) => {
    // Decreasing (or unparsable) limits restart.
    if (JS_LIMITS.includes(k)) return !(bytes(b.get(k)) >= bytes(a.get(k)));
    return !RELOADABLE.some((r) => r.test(k));
  });
  return { action: restartKeys.length ? 'restart' : 'reload', changed, restartKeys };
}
