// Owns the observe command: ONE POSIX shell script, built from the desired state, that prints every
// fact of a host in marked sections: the fragments of the fact table (fact-table.ts) in order, then
// the end marker. One script, one round trip.
import type { DesiredHost } from '../render/artifact.js';
import { FACTS } from './fact-table.js';
import { echoMarker, END, OBSERVE } from './protocol.js';

export function observeScript(d: DesiredHost, extraPaths: readonly string[] = []): string {
  const paths = [...new Set([...d.files.map((f) => f.path), ...extraPaths])];
  return [
    'export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ...FACTS.flatMap((f) => f.shell({ d, paths })),
    echoMarker(OBSERVE, END),
  ].join('\n');
}
