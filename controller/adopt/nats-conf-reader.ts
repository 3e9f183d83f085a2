// Owns reading an existing NATS server config (one natsfleet did not write) into plain values, for
// `natsfleet import`: maps, arrays, strings, numbers with size suffixes, booleans. The subset of the
// format that hand-written and Ansible-templated configs use; `include` and `$variables` are kept as
// text and reported by the importer. Pure; the values (tokens, passwords) never leave the importer.
export type ConfValue = string | number | boolean | ConfValue[] | ConfMap;
export interface ConfMap {
  [key: string]: ConfValue;
}

export class ConfSyntaxError extends Error {}

/** Reads a NATS config. Keys are kept as written (NATS matches them case-insensitively). */
export function readNatsConf(text: string): ConfMap {
  let i = 0;
  const n = text.length;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new ConfSyntaxError(`line ${line}: ${what}`);
  };
  const skip = () => {
    for (;;) {
      while (i < n && /[\s,;]/.test(text[i])) i++;
      if (text[i] === '#' || (text[i] === '/' && text[i + 1] === '/')) {
        while (i < n && text[i] !== '\n') i++;
        continue;
      }
      return;
    }
  };
  const quoted = (): string => {
    const q = text[i++];
    let out = '';
    while (i < n && text[i] !== q) {
      if (text[i] === '\\' && q === '"') {
        i++;
        out += { n: '\n', t: '\t', r: '\r' }[text[i]] ?? text[i];
      } else out += text[i];
      i++;
    }
    if (i >= n) fail('unterminated string');
    i++;
    return out;
  };
  const word = (stop: RegExp): string => {
    const start = i;
    // A comment after a blank ends a bare value (`8222 // the port`); `nats://a` inside it does not.
    const comment = () => /\s/.test(text[i]) && (text.startsWith('//', i + 1) || text[i + 1] === '#');
    while (i < n && !stop.test(text[i]) && !comment()) i++;
    return text.slice(start, i).trim();
  };
  const scalar = (raw: string): ConfValue => {
    if (/^(true|yes|on)$/i.test(raw)) return true;
    if (/^(false|no|off)$/i.test(raw)) return false;
    if (/^-?\d+$/.test(raw)) return Number(raw);
    return raw; // sizes (1GB), durations (30s), variables ($X), bare strings
  };
  const value = (): ConfValue => {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      return map('}');
    }
    if (c === '[') {
      i++;
      const arr: ConfValue[] = [];
      for (;;) {
        skip();
        if (i >= n) fail('unterminated array');
        if (text[i] === ']') {
          i++;
          return arr;
        }
        arr.push(value());
      }
    }
    if (c === '"' || c === "'") return quoted();
    return scalar(word(/[\n,;}\]#]/));
  };
  const map = (end: string | undefined): ConfMap => {
    const out: ConfMap = {};
    for (;;) {
      skip();
      if (i >= n) {
        if (end) fail(`missing "${end}"`);
        return out;
      }
      if (end && text[i] === end) {
        i++;
        return out;
      }
      const key = text[i] === '"' || text[i] === "'" ? quoted() : word(/[\s:={]/);
      if (!key) fail('expected a key');
      while (i < n && /[ \t]/.test(text[i])) i++;
      if (text[i] === ':' || text[i] === '=') i++;
      if (key === 'include') {
        out.include = [...((out.include as ConfValue[]) ?? []), value()];
        continue;
      }
      out[key] = value();
    }
  };
  return map(undefined);
}

/** A key of a map, matched as NATS does (case-insensitively), among its aliases. */
export function pick(m: ConfMap | undefined, ...names: string[]): ConfValue | undefined {
  if (!m) return undefined;
  for (const name of names) {
    const k = Object.keys(m).find((x) => x.toLowerCase() === name.toLowerCase());
    if (k !== undefined) return m[k];
  }
  return undefined;
}

export const isMap = (v: ConfValue | undefined): v is ConfMap =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
