// Owns observing one host: the observe script sent in ONE remote command, its output parsed.
import type { DesiredHost } from '../render/artifact.js';
import type { SshSession } from '../transport/ssh.js';
import type { HostFacts } from './facts.js';
import { ObserveError, parseFacts } from './parse.js';
import { END, markerLine, OBSERVE } from './protocol.js';
import { observeScript } from './script.js';

export async function observeHost(session: SshSession, d: DesiredHost): Promise<HostFacts> {
  const r = await session.runScript(observeScript(d), 60_000);
  if (r.code !== 0 && !r.stdout.includes(markerLine(OBSERVE, END))) {
    throw new ObserveError(`observe failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  }
  return parseFacts(r.stdout, d);
}
