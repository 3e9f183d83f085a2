// Owns the observe command: ONE POSIX shell script, built from the desired state, that prints every
// fact of a host in marked sections: the fragments of the fact table (fact-table.ts) in order, then
// the end marker. One script, one round trip.
import type { DesiredHost } from '../render/artifact.js';
import { FACTS } from './fact-table.js';
import { echoMarker, END, OBSERVE } from './protocol.js';

/** The script of a desired state without extra paths, built once (a sweep observes every host again). */
const built = new WeakMap<DesiredHost, string>();

export function observeScript(d: DesiredHost, extraPaths: readonly string[] = []): string {
  if (!extraPaths.length) {
    let script = built.get(d);
    if (script === undefined) built.set(d, (script = buildScript(d, [])));
    return script;
  }
  return buildScript(d, extraPaths);
}

function buildScript(d: DesiredHost, extraPaths: readonly string[]): string {
  const paths = [...new Set([...d.files.map((f) => f.path), ...extraPaths])];
  return [
    'export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ...FACTS.flatMap((f) => f.shell({ d, paths })),
    echoMarker(OBSERVE, END),
  ].join('\n');
}
