// Owns parsing the observe script's output into HostFacts: the output cut at its markers
// (protocol.ts), then every fact of the table read back by its own parser. Pure: text in, facts out.
import type { DesiredHost } from '../render/artifact.js';
import type { HostFacts } from './facts.js';
import { FACTS } from './fact-table.js';
import { END, Marked, OBSERVE } from './protocol.js';

export class ObserveError extends Error {}

export function parseFacts(output: string, d: DesiredHost): HostFacts {
  const m = new Marked(output, OBSERVE);
  if (!m.has(END)) throw new ObserveError('observe output is incomplete (no end marker)');
  return Object.assign({}, ...FACTS.map((f) => f.parse(m, d))) as HostFacts;
}
