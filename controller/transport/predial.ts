// Owns TCP connections opened to hosts ahead of their SSH session (the CLI's start-up): while the command
// still loads its SSH library, renders the manifests and reads the credentials, the network round trip and
// the host's sshd (it accepts, starts its session process and sends its banner) run at the same time. A
// predialled socket is only a TCP connection: nothing is sent until the SSH session takes it (SshSession's
// dial, which treats it as its own socket), so nothing runs on a host that is never used; an unused one is
// closed after PREDIAL_TTL_MS and never keeps the process alive. Only node:net here: this module loads
// before the SSH library does.
import { Socket } from 'node:net';

/** How long an unused predialled socket is kept (well inside sshd's LoginGraceTime, 120 s by default). */
export const PREDIAL_TTL_MS = 10_000;

interface Predialled {
  sock: Socket;
  failed: boolean;
  timer: NodeJS.Timeout;
}

const waiting = new Map<string, Predialled[]>();
const key = (host: string, port: number) => `${host}\u0000${port}`;

/** Opens a TCP connection to host:port for an SSH session made soon after (takePredialled). */
export function predial(host: string, port: number, ttlMs = PREDIAL_TTL_MS): void {
  const sock = new Socket();
  const p: Predialled = {
    sock,
    failed: false,
    timer: setTimeout(() => drop(host, port, p), ttlMs).unref(),
  };
  // A failure is the session's to report: it dials again and says what happened.
  sock.on('error', () => (p.failed = true));
  sock.on('close', () => (p.failed = true));
  sock.setNoDelay(true);
  sock.connect(port, host);
  sock.unref();
  const list = waiting.get(key(host, port)) ?? [];
  list.push(p);
  waiting.set(key(host, port), list);
}

function drop(host: string, port: number, p: Predialled): void {
  clearTimeout(p.timer);
  p.sock.destroy();
  const list = waiting.get(key(host, port));
  const i = list?.indexOf(p) ?? -1;
  if (list && i >= 0) list.splice(i, 1);
  if (list && !list.length) waiting.delete(key(host, port));
}

/**
 * A predialled socket to host:port that is connecting or connected (its listeners removed: the caller owns
 * it), or undefined: none, or it failed (then it is closed, and the caller dials).
 */
export function takePredialled(host: string, port: number): Socket | undefined {
  const list = waiting.get(key(host, port));
  while (list?.length) {
    const p = list.shift()!;
    clearTimeout(p.timer);
    if (p.failed || p.sock.destroyed) {
      p.sock.destroy();
      continue;
    }
    if (!list.length) waiting.delete(key(host, port));
    p.sock.removeAllListeners('error');
    p.sock.removeAllListeners('close');
    p.sock.ref();
    return p.sock;
  }
  waiting.delete(key(host, port));
  return undefined;
}

/** How many predialled sockets wait (tests). */
export const predialledCount = () => [...waiting.values()].reduce((n, l) => n + l.length, 0);
