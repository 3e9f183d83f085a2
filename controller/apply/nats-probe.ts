// Owns checking NATS authentication for real: a NATS client connects through an SSH port forward
// (a loopback listener piped into ssh2's forwardOut, like `ssh -L`) with the configured
// credentials, and must be refused without them or with wrong ones. Also the one JetStream API call
// natsfleet makes: removing a former cluster member from the meta group.
import { createServer, type Server } from 'node:net';
import type { ConnectionOptions } from 'nats';
import { ForwardingRefusedError, type SshSession } from '../transport/ssh.js';
import { loadNats } from '../util/nats-client.js';

/** The NATS client, loaded only when a host is verified (a no-op run never needs it). */
const connect = async (opts: ConnectionOptions) => (await loadNats()).connect(opts);

export interface Tunnel {
  port: number;
  close(): Promise<void>;
}

/** A 127.0.0.1 listener whose connections are forwarded over SSH to remotePort on the host. */
export async function openTunnel(session: SshSession, remotePort: number): Promise<Tunnel> {
  const server: Server = createServer((socket) => {
    session.forwardOut(remotePort).then(
      (remote) => {
        socket.pipe(remote).pipe(socket);
        const end = () => {
          socket.destroy();
          remote.destroy();
        };
        socket.on('error', end).on('close', end);
        remote.on('error', end).on('close', end);
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Why the host's sshd would refuse the port forward natsfleet checks NATS through after a change;
 * undefined when it allows it (whether or not anything listens on the port yet: a refused connection
 * is not a refused forward). A host that refuses it would fail every verification: asked first.
 */
export async function forwardRefusal(session: SshSession, port: number): Promise<string | undefined> {
  try {
    (await session.forwardOut(port)).destroy();
  } catch (e) {
    if (e instanceof ForwardingRefusedError)
      return (
        `${e.detail}; natsfleet checks NATS authentication (and TLS) through it ` +
        'after each change, so nothing was changed: allow local forwarding for this login (AllowTcpForwarding ' +
        'local, in a Match User block if need be)'
      );
  }
  return undefined;
}

export type Credentials = { token: string } | { user: string; pass: string } | Record<string, never>;

/** Connects, round-trips one request, and says whether the server let the client in. */
export async function tryConnect(
  port: number,
  creds: Credentials,
  tls?: ConnectionOptions['tls'],
): Promise<{ ok: boolean; error?: string }> {
  const opts: ConnectionOptions = {
    servers: `127.0.0.1:${port}`,
    timeout: 5000,
    reconnect: false,
    ...creds,
    ...(tls ? { tls } : {}),
  };
  try {
    const nc = await connect(opts);
    try {
      await nc.flush();
      return { ok: true };
    } finally {
      await nc.close();
    }
  } catch (e) {
    return { ok: false, error: (e as { code?: string }).code ?? (e as Error).message };
  }
}

/**
 * Removes a former member's peer from the JetStream meta group (`$JS.API.SERVER.REMOVE`, asked as a user
 * of the system account through an SSH port forward to a member). Throws with the server's answer.
 */
export async function removeMetaPeer(
  session: SshSession,
  clientPort: number,
  system: { user: string; pass: string },
  peer: string,
): Promise<void> {
  const tunnel = await openTunnel(session, clientPort);
  try {
    const nc = await connect({ servers: `127.0.0.1:${tunnel.port}`, timeout: 5000, reconnect: false, ...system });
    try {
      const reply = await nc.request('$JS.API.SERVER.REMOVE', new TextEncoder().encode(JSON.stringify({ peer })), {
        timeout: 10_000,
      });
      const answer = JSON.parse(new TextDecoder().decode(reply.data)) as {
        success?: boolean;
        error?: { description?: string };
      };
      if (!answer.success) throw new Error(answer.error?.description ?? 'the meta leader did not confirm it');
    } finally {
      await nc.close();
    }
  } finally {
    await tunnel.close();
  }
}

/**
 * Asks each RAFT group this server leads to elect another leader (`$JS.API.STREAM.LEADER.STEPDOWN.<stream>`,
 * `$JS.API.CONSUMER.LEADER.STEPDOWN.<stream>.<consumer>`), as a client of the account that holds them,
 * through an SSH port forward: a server about to stop hands its streams over instead of leaving its
 * peers to notice and elect. Returns the subjects that were refused, with why.
 */
export async function stepDownLeaders(
  session: SshSession,
  clientPort: number,
  creds: Credentials,
  subjects: readonly string[],
): Promise<string[]> {
  const tunnel = await openTunnel(session, clientPort);
  try {
    const nc = await connect({ servers: `127.0.0.1:${tunnel.port}`, timeout: 5000, reconnect: false, ...creds });
    try {
      const refused: string[] = [];
      for (const subject of subjects) {
        try {
          const reply = await nc.request(subject, new Uint8Array(), { timeout: 5000 });
          const answer = JSON.parse(new TextDecoder().decode(reply.data)) as { error?: { description?: string } };
          if (answer.error) refused.push(`${subject}: ${answer.error.description ?? 'refused'}`);
        } catch (e) {
          refused.push(`${subject}: ${(e as Error).message}`);
        }
      }
      return refused;
    } finally {
      await nc.close();
    }
  } finally {
    await tunnel.close();
  }
}
