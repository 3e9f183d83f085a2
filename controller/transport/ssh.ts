// Owns SSH sessions to hosts (ssh2): the pinned host key (only its algorithm is offered, and any
// other key is refused before authentication, so nothing runs), one connection reused for every
// command to a host, one deadline per step from request to last byte (connect, exec, port forward),
// error listeners on every client and channel (a misbehaving host can never crash the process), and
// counting of remote commands (observe must be one round trip).
import { Socket } from 'node:net';
import ssh2, { type ClientChannel, type ConnectConfig, type ServerHostKeyAlgorithm } from 'ssh2';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;
import type { Duplex } from 'node:stream';
import {
  fingerprint,
  formatHostKey,
  hostKeyAlgorithms,
  hostKeyProblem,
  keyBlob,
  keyType,
  sameKey,
} from '../manifest/host-key.js';
import { remoteScript } from '../shell/quote.js';
import { socketErrorText } from './socket-errors.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The pinned key, "<type> <base64> [comment]". */
  hostKey: string;
}

export interface SshAuth {
  privateKey: Buffer | string;
}

export class HostKeyError extends Error {
  constructor(
    readonly target: string,
    readonly expected: string,
    readonly presented: string,
  ) {
    super(
      `${target}: host key mismatch: the host presented ${presented}, ` +
        `the manifest pins ${expected}; refusing to connect`,
    );
    this.name = 'HostKeyError';
  }
}

export class SshError extends Error {
  constructor(
    readonly target: string,
    message: string,
  ) {
    super(`${target}: ${message}`);
    this.name = 'SshError';
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  timeoutMs?: number;
}

export interface ConnectOptions {
  /** Deadline for TCP connect, SSH banner, key exchange and authentication together. */
  timeoutMs?: number;
  /** Upper bound on the deadline of every later step on this session (exec, port forward). */
  maxStepMs?: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
const DEFAULT_FORWARD_TIMEOUT_MS = 15_000;
/** After close(), how long the host has to finish the SSH disconnect before the socket is dropped. */
const CLOSE_GRACE_MS = 2_000;

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;
const ignore = () => {};

/** A channel's errors are reported through its close or our deadline: never as an unhandled event. */
function guardChannel(stream: ClientChannel): void {
  stream.on('error', ignore);
  stream.stderr?.on('error', ignore);
}

function closeChannel(stream: ClientChannel): void {
  try {
    stream.close();
  } catch {
    // the connection is gone already
  }
}

export class SshSession {
  /** Remote commands run on this session (observe's one-round-trip promise is tested with it). */
  execCount = 0;
  private closed = false;
  private lastError: Error | undefined;
  /** Fails every step in flight (the connection went away). */
  private readonly inFlight = new Set<(err: Error) => void>();

  private constructor(
    private readonly client: Client,
    readonly label: string,
    private readonly maxStepMs: number | undefined,
  ) {
    client.on('close', () => {
      this.closed = true;
      const cause = this.lastError ? `: ${this.lastError.message}` : '';
      for (const fail of [...this.inFlight]) fail(new SshError(label, `connection lost${cause}`));
    });
  }

  /** Errors after the handshake (keepalive timeout, reset, protocol error): the session is unusable. */
  private onError(err: Error): void {
    this.lastError ??= err;
    this.closed = true;
  }

  static connect(target: SshTarget, auth: SshAuth, opts: ConnectOptions = {}): Promise<SshSession> {
    const label = `${target.user}@${target.host}:${target.port}`;
    const problem = hostKeyProblem(target.hostKey);
    if (problem) return Promise.reject(new SshError(label, `the pinned host key ${problem}`));
    const pinned = keyBlob(target.hostKey);
    const pinnedType = keyType(pinned);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let presented: Buffer | undefined;
    return new Promise((resolve, reject) => {
      const client = new Client();
      let session: SshSession | undefined;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.destroy();
        reject(err);
      };
      // Permanent: before `ready` an error fails the connect; after it, it marks the session dead.
      client.on('error', (err: Error & { level?: string }) => {
        if (session) return session.onError(err);
        if (presented && !sameKey(presented, pinned)) {
          fail(
            new HostKeyError(
              label,
              fingerprint(pinned),
              `${fingerprint(presented)} (${formatHostKey(presented).slice(0, 24)}...)`,
            ),
          );
        } else if (err.level === 'handshake' && /host key/i.test(err.message)) {
          fail(
            new SshError(label, `the host offers no ${pinnedType} host key (the manifest pins one): ${err.message}`),
          );
        } else {
          fail(new SshError(label, socketErrorText(err, target.host, target.port)));
        }
      });
      client.on('close', () => fail(new SshError(label, 'connection closed before the SSH session was ready')));
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session = new SshSession(client, label, opts.maxStepMs);
        resolve(session);
      });
      // Our own socket, so a timeout can say how far the host got.
      const sock = new Socket();
      sock.on('error', ignore); // ssh2 reports socket errors on the client
      const timer = setTimeout(() => {
        const what = sock.connecting
          ? `TCP connection not established within ${seconds(timeoutMs)}`
          : sock.bytesRead === 0
            ? `no SSH banner within ${seconds(timeoutMs)}`
            : `SSH handshake not completed within ${seconds(timeoutMs)}`;
        fail(new SshError(label, what));
      }, timeoutMs);
      const config: ConnectConfig = {
        sock,
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: auth.privateKey,
        // ssh2's own guard stays as a backstop behind ours.
        readyTimeout: timeoutMs + 1_000,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
        algorithms: { serverHostKey: hostKeyAlgorithms(pinnedType) as ServerHostKeyAlgorithm[] },
        hostVerifier: (key: Buffer) => {
          presented = key;
          return sameKey(key, pinned);
        },
      };
      try {
        sock.connect(target.port, target.host);
        client.connect(config);
      } catch (e) {
        sock.destroy();
        fail(new SshError(label, (e as Error).message));
      }
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  private stepTimeout(ms: number): number {
    return this.maxStepMs === undefined ? ms : Math.min(ms, this.maxStepMs);
  }

  /**
   * Runs one step under a deadline armed before the request is sent. `start` sends it; `settle`
   * ends the step once (a late answer after the deadline or a failure does nothing).
   */
  private step<T>(
    timeoutMs: number,
    onTimeout: () => Error,
    start: (settle: (err: Error | undefined, value?: T) => boolean, isDone: () => boolean) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const settle = (err: Error | undefined, value?: T) => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        this.inFlight.delete(abort);
        if (err) reject(err);
        else resolve(value as T);
        return true;
      };
      const abort = (err: Error) => void settle(err);
      const timer = setTimeout(() => settle(onTimeout()), timeoutMs);
      this.inFlight.add(abort);
      if (this.closed) return void settle(new SshError(this.label, 'connection is closed'));
      try {
        start(settle, () => done);
      } catch (e) {
        settle(new SshError(this.label, (e as Error).message));
      }
    });
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.execCount++;
    const timeoutMs = this.stepTimeout(opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
    let stream: ClientChannel | undefined;
    return this.step<ExecResult>(
      timeoutMs,
      () => {
        // A running command's channel is closed; a request the host never answered leaves the
        // connection in an unknown state, so it is dropped (the pool reconnects).
        if (stream) closeChannel(stream);
        else this.destroy();
        return new SshError(this.label, `remote command timed out after ${timeoutMs} ms`);
      },
      (settle, isDone) => {
        this.client.exec(command, (err: Error | undefined, s: ClientChannel) => {
          if (s) guardChannel(s);
          if (isDone()) return void (s && closeChannel(s)); // answered after the deadline: dropped
          if (err || !s) return void settle(new SshError(this.label, `exec failed: ${err?.message ?? 'no channel'}`));
          stream = s;
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          s.on('data', (b: Buffer) => out.push(b));
          s.stderr.on('data', (b: Buffer) => errOut.push(b));
          s.on('close', (code: number | null | undefined) => {
            if (code == null && this.closed) {
              const cause = this.lastError ? `: ${this.lastError.message}` : '';
              return void settle(new SshError(this.label, `connection lost while the remote command ran${cause}`));
            }
            settle(undefined, {
              code: code ?? 255,
              stdout: Buffer.concat(out).toString(),
              stderr: Buffer.concat(errOut).toString(),
            });
          });
          if (opts.stdin !== undefined) s.end(opts.stdin);
          else s.end();
        });
      },
    );
  }

  /** Runs a POSIX shell script on the host (sent on stdin, so its length is not bounded by argv). */
  runScript(script: string, timeoutMs?: number): Promise<ExecResult> {
    return this.exec('sh -s', { stdin: remoteScript(script), timeoutMs });
  }

  /**
   * A TCP stream to host:port as seen from the remote host (ssh -L without a local listener). The
   * deadline covers opening it; the caller owns the stream afterwards.
   */
  forwardOut(port: number, host = '127.0.0.1', timeoutMs = DEFAULT_FORWARD_TIMEOUT_MS): Promise<Duplex> {
    const ms = this.stepTimeout(timeoutMs);
    return this.step<Duplex>(
      ms,
      () => new SshError(this.label, `port forward to ${host}:${port} timed out after ${ms} ms`),
      (settle) => {
        this.client.forwardOut('127.0.0.1', 0, host, port, (err: Error | undefined, stream: ClientChannel) => {
          if (stream) guardChannel(stream);
          if (err)
            return void settle(new SshError(this.label, `port forward to ${host}:${port} failed: ${err.message}`));
          // Too late: nobody will read it, so it is closed at once.
          if (!settle(undefined, stream)) closeChannel(stream);
        });
      },
    );
  }

  /** Ends the session; a host that does not finish the disconnect in time is dropped. */
  close(): void {
    this.closed = true;
    this.client.end();
    setTimeout(() => this.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Drops the TCP connection at once, as a network failure would (used by failure tests). */
  destroy(): void {
    this.closed = true;
    this.client.destroy();
  }
}

/** Connects without trusting anything and returns the key the host presents ("<type> <base64>"). */
export function scanHostKey(host: string, port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    let settled = false;
    const finish = (why?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      if (key) resolve(formatHostKey(key));
      else reject(new SshError(`${host}:${port}`, `no host key received${why ? ` (${why})` : ''}`));
    };
    const timer = setTimeout(() => finish(`no answer within ${seconds(timeoutMs)}`), timeoutMs);
    // Permanent: the refusal below ends in an error event, and so may anything after it.
    client.on('error', (err: Error) => finish(err.message));
    client.on('close', () => finish('connection closed'));
    client.on('ready', () => finish());
    try {
      client.connect({
        host,
        port,
        username: 'natsfleet-hostkey-scan',
        readyTimeout: timeoutMs + 1_000,
        hostVerifier: (k: Buffer) => {
          key = k;
          return false; // never authenticate: only the key is wanted
        },
      });
    } catch (e) {
      finish((e as Error).message);
    }
  });
}
