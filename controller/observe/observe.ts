// Owns observing one host: the observe script sent in ONE remote command, its output parsed; with TLS
// on the client port, what the server serves is looked at through a port forward at the same time.
import type { DesiredHost } from '../render/artifact.js';
import type { SshSession } from '../transport/ssh.js';
import type { HostFacts } from './facts.js';
import { ObserveError, parseFacts } from './parse.js';
import { END, markerLine, OBSERVE } from './protocol.js';
import { observeScript } from './script.js';
import { probeServedTls } from './tls-probe.js';

export async function observeHost(session: SshSession, d: DesiredHost): Promise<HostFacts> {
  const served = d.tls
    ? probeServedTls(session, d.nats.clientPort, { servername: d.tls.serverName, handshakeFirst: d.tls.handshakeFirst })
    : undefined;
  const r = await session.runScript(observeScript(d), 60_000);
  if (r.code !== 0 && !r.stdout.includes(markerLine(OBSERVE, END))) {
    await served;
    throw new ObserveError(`observe failed (exit ${r.code}): ${r.stderr.trim().slice(0, 300)}`);
  }
  const facts = parseFacts(r.stdout, d);
  const answer = await served;
  if (facts.tls && facts.container.running) facts.tls.served = answer;
  return facts;
}
