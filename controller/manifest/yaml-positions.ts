// Owns the map from a field path in a YAML document to the line it stands on,
// built from js-yaml's event stream so that validation errors can name a line.
import { parseEvents, type Event } from 'js-yaml';

const EVENT = { DOCUMENT: 1, SEQUENCE: 2, MAPPING: 3, SCALAR: 4, ALIAS: 5, POP: 6 } as const;

interface Frame {
  kind: 'map' | 'seq' | 'doc';
  path: string;
  expectKey: boolean;
  key: string;
  index: number;
}

/** Path keys are dotted field paths ("spec.nats.clientPort", "metadata.labels.region"). */
export type LineMap = Map<string, number>;

export function lineOf(lines: LineMap, path: string): number | undefined {
  // Field paths name list items as `members.0`; the line map as `members[0]`.
  const start = path.replace(/\.(\d+)(?=\.|$)/g, '[$1]');
  // The nearest ancestor that exists: a missing field is reported on its parent's line.
  for (let p = start; ; p = /[.[]/.test(p) ? p.slice(0, Math.max(p.lastIndexOf('.'), p.lastIndexOf('['))) : '') {
    const line = lines.get(p);
    if (line !== undefined) return line;
    if (p === '') return undefined;
  }
}

/** The line map of `source`, from its events when the caller parsed it already. */
export function buildLineMap(source: string, events: Event[] = parseEvents(source, { maxDepth: 32 })): LineMap {
  const lineStarts = [0];
  for (let i = 0; i < source.length; i++) if (source[i] === '\n') lineStarts.push(i + 1);
  const lineAt = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
  const map: LineMap = new Map();
  const stack: Frame[] = [];
  const join = (parent: string, child: string) => (parent ? `${parent}.${child}` : child);

  for (const ev of events) {
    if (ev.type === EVENT.DOCUMENT) {
      stack.length = 0;
      stack.push({ kind: 'doc', path: '', expectKey: false, key: '', index: 0 });
      continue;
    }
    if (ev.type === EVENT.POP) {
      stack.pop();
      continue;
    }
    const top = stack[stack.length - 1];
    if (!top) continue;
    const offset = ev.type === EVENT.SCALAR ? ev.valueStart : ev.type === EVENT.ALIAS ? ev.anchorStart : ev.start;
    if (top.kind === 'map' && top.expectKey) {
      top.key = ev.type === EVENT.SCALAR ? source.slice(ev.valueStart, ev.valueEnd).replace(/^["']|["']$/g, '') : '?';
      top.expectKey = false;
      map.set(join(top.path, top.key), lineAt(offset));
      // A complex key (a mapping or sequence) opens a frame that is closed by its own POP.
      if (ev.type === EVENT.MAPPING || ev.type === EVENT.SEQUENCE) {
        stack.push({ kind: ev.type === EVENT.MAPPING ? 'map' : 'seq', path: '?', expectKey: true, key: '', index: 0 });
      }
      continue;
    }
    let path = top.path;
    if (top.kind === 'map') {
      path = join(top.path, top.key);
      top.expectKey = true;
    } else if (top.kind === 'seq') {
      path = `${top.path}[${top.index++}]`;
    }
    if (!map.has(path)) map.set(path, lineAt(offset));
    if (ev.type === EVENT.MAPPING) stack.push({ kind: 'map', path, expectKey: true, key: '', index: 0 });
    if (ev.type === EVENT.SEQUENCE) stack.push({ kind: 'seq', path, expectKey: false, key: '', index: 0 });
  }
  return map;
}
