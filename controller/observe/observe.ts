// Owns observing one host: the observe script sent in ONE remote command, its output parsed; with TLS
// on the client port, what the server serves is looked at through a port forward at the same time. Only
// when the running container publishes monitoring elsewhere than the desired address (a port change not in
// effect yet) is monitoring asked again there, in a second command.
import type { DesiredHost } from '../render/artifact.js';
import type { SshSession } from '../transport/ssh.js';
import type { HostFacts } from './facts.js';
import { ObserveError, parseFacts } from './parse.js';
import { END, Marked, markerLine, OBSERVE } from './protocol.js';
import { monitor, monitorElsewhere, monitorScript } from './fact-table.js';
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
  const elsewhere = monitorElsewhere(facts.container, d);
  if (elsewhere) {
    const again = await session.runScript(monitorScript(d, elsewhere), 60_000);
    Object.assign(facts, monitor.parse(new Marked(`${r.stdout}\n${again.stdout}`, OBSERVE), d));
  }
  const answer = await served;
  if (facts.tls && facts.container.running) facts.tls.served = answer;
  return facts;
}
