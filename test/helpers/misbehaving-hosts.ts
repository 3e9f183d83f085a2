// Test helpers: hosts that misbehave, in-process (no Docker): a TCP port that never sends an SSH
// banner (or sends one and stalls), and an ssh2 server that authenticates any key but never answers
// exec requests (or answers late, or starts the command and never ends it). Listen on 127.0.0.1 only.
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import ssh2, { type Connection } from 'ssh2';

const noop = () => {};
const closers: (() => Promise<void>)[] = [];

/** Runs `close` with the other closers (closeMisbehavingHosts). */
export const onClose = (close: () => Promise<void>) => closers.push(close);

export function listen(server: NetServer | InstanceType<typeof ssh2.Server>): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

/** A TCP port that accepts and never writes (the connection is held open). */
export async function silentPort(banner?: string): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('error', noop);
    if (banner) s.write(banner);
  });
  const port = await listen(server);
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return port;
}

export type ExecBehaviour = 'never' | 'hang' | 'late' | 'answer';
export interface FakeHost {
  port: number;
  /** Server-side channels that were closed (the client closed them). */
  closedChannels: number;
}

/**
 * An ssh2 server accepting any public key. Exec: `never` leaves the request unanswered, `hang`
 * starts the command and never ends it, `late` answers after 600 ms, `answer` replies at once;
 * the command `echo` is always answered. Port forwards are left unanswered, accepted late, or refused by
 * configuration (administratively prohibited).
 */
export async function fakeHost(o: {
  hostKeys: string[];
  exec?: ExecBehaviour;
  forward?: 'never' | 'late' | 'refused';
}): Promise<FakeHost> {
  const conns = new Set<Connection>();
  const host: FakeHost = { port: 0, closedChannels: 0 };
  const server = new ssh2.Server({ hostKeys: o.hostKeys }, (client) => {
    conns.add(client);
    client.on('error', noop);
    client.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
    client.on('ready', () => {
      client.on('session', (accept) => {
        const session = accept();
        session.on('exec', (acceptExec, _reject, info) => {
          const answer = () => {
            const stream = acceptExec();
            stream.on('error', noop);
            stream.on('close', () => host.closedChannels++);
            stream.on('data', noop);
            if (mode === 'hang') return;
            stream.write('ok\n');
            stream.exit(0);
            stream.end();
          };
          const mode = info.command === 'echo' ? 'answer' : (o.exec ?? 'answer');
          if (mode === 'never') return;
          if (mode === 'late') setTimeout(answer, 600);
          else answer();
        });
      });
      // Without a listener, ssh2 refuses a forward as "administratively prohibited" (as AllowTcpForwarding no).
      if (o.forward !== 'refused')
        client.on('tcpip', (accept) => {
          if (o.forward !== 'late') return;
          setTimeout(() => {
            try {
              const ch = accept();
              ch.on('error', noop);
              ch.on('data', noop);
              ch.on('close', () => host.closedChannels++);
            } catch {
              // the client is gone
            }
          }, 600);
        });
    });
  });
  server.on('error', noop);
  host.port = await listen(server);
  closers.push(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.end();
        server.close(() => r());
      }),
  );
  return host;
}

/** Closes every misbehaving host started so far. */
export async function closeMisbehavingHosts(): Promise<void> {
  for (const c of closers.splice(0).reverse()) await c();
}
