// Owns SSH sessions to hosts (ssh2): the pinned host key (only its algorithm is offered, and any
// other key is refused before authentication, so nothing runs), at every hop when the host is reached
// through a jump host (ssh -J: the jump host's own pinned key, then a port forward carrying the SSH
// session to the target), one connection reused for every command to a host, one deadline per step
// from request to last byte (connect, exec, port forward), error listeners on every client and channel
// (a misbehaving host can never crash the process), counting of remote commands (observe must be one
// round trip), and becoming root: a non-root user's scripts run under `sudo -n` (never a prompt).
import { Socket } from 'node:net';
import ssh2, {
  type AgentAuthMethod,
  type PublicKeyAuthMethod,
  type ClientChannel,
  type ConnectConfig,
  type ParsedKey,
  type ServerHostKeyAlgorithm,
} from 'ssh2';

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
import { SshCredentials } from './auth.js';

/** A jump host (ssh -J): reached directly, with its own pinned key; the target is reached through it. */
export interface JumpHost {
  host: string;
  /** Default: 22. */
  port?: number;
  /** Default: the target's user. */
  user?: string;
  /** The jump host's pinned key, "<type> <base64> [comment]" (the same rules as the target's). */
  hostKey: string;
}

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The pinned key, "<type> <base64> [comment]". */
  hostKey: string;
  /** Run every script as root through `sudo -n` (default: when the user is not root). */
  become?: boolean;
  /** Reach the host through this jump host (its address and port as the jump host sees them). */
  proxyJump?: JumpHost;
}

/**
 * How to authenticate: a private key (its bytes, decrypted with `passphrase` when it is encrypted, or
 * parsed and decrypted already), an ssh-agent's socket, or credentials from resolveSshAuth
 * (controller/transport/auth.ts), as the whole value or, for older callers, as `privateKey`.
 */
export interface SshAuth {
  privateKey?: Buffer | string | ParsedKey | SshCredentials;
  passphrase?: string;
  /** An ssh-agent's socket: its keys are tried after `privateKey`, when both are given. */
  agent?: string;
}

/** The ssh2 authentication methods of `auth`, in order: the key (parsed once, here), then the agent. */
export function authMethods(auth: SshAuth, username: string): (PublicKeyAuthMethod | AgentAuthMethod)[] {
  const a: SshAuth = auth.privateKey instanceof SshCredentials ? auth.privateKey : auth;
  const out: (PublicKeyAuthMethod | AgentAuthMethod)[] = [];
  if (a.privateKey !== undefined && !(a.privateKey instanceof SshCredentials)) {
    const parsed = ssh2.utils.parseKey(a.privateKey, a.passphrase);
    if (parsed instanceof Error) throw new Error(`the SSH private key cannot be used: ${parsed.message}`);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    out.push({ type: 'publickey', username, key });
  }
  if (a.agent) out.push({ type: 'agent', username, agent: a.agent });
  if (!out.length) throw new Error('no SSH credentials: neither a private key nor an ssh-agent');
  return out;
}

/** Whether scripts on `t` run through sudo: as asked, else whenever the user is not root. */
export const becomes = (t: Pick<SshTarget, 'user' | 'become'>) => t.become ?? t.user !== 'root';

/** The remote command that runs a script sent on stdin: `sh -s`, under `sudo -n` when becoming root. */
export const scriptCommand = (become: boolean) => (become ? 'sudo -n -- sh -s' : 'sh -s');

/**
 * Why sudo refused to run a script (from the result of scriptCommand(true)), or undefined when it ran:
 * sudo itself failed (it prints "sudo: ..." and runs nothing) or is not installed.
 */
export function becomeRefusal(r: ExecResult): string | undefined {
  if (r.code === 0 || r.stdout !== '') return undefined;
  if (r.code === 127 && /sudo: (command )?not found|sudo: No such file/i.test(r.stderr)) return 'sudo is not installed';
  // sudo's own lines: "sudo: ...", and its policy's refusals, which have no prefix ("Sorry, user deploy is
  // not allowed to execute '/bin/sh -s' as root on h.", "Sorry, user guest may not run sudo on h.").
  const lines = r.stderr.split('\n').map((l) => l.trim());
  const said = [
    ...lines.flatMap((l) => (l.startsWith('sudo: ') ? [l.slice(6)] : [])),
    ...lines.filter((l) => l.startsWith('Sorry, user ')),
  ].find((l) =>
    /password is required|not in the sudoers|not allowed to|may not run sudo|no tty present|must have a tty/i.test(l),
  );
  return said ? `sudo said: ${said}` : undefined;
}

/** A non-root user whom sudo refused: nothing ran. */
export class BecomeError extends Error {
  constructor(
    readonly target: string,
    readonly user: string,
    reason: string,
  ) {
    super(
      reason === 'sudo is not installed'
        ? `${target}: sudo is not installed, and user ${user} is not root ` +
            '(natsfleet needs root: install sudo or connect as root)'
        : `${target}: user ${user} cannot sudo without a password (${reason}): natsfleet runs every script as root ` +
            'through sudo -n; allow it NOPASSWD, or connect as root',
    );
    this.name = 'BecomeError';
  }
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
  /** Deadline for TCP connect, SSH banner, key exchange and authentication together (per hop). */
  timeoutMs?: number;
  /** Upper bound on the deadline of every later step on this session (exec, port forward). */
  maxStepMs?: number;
  /**
   * An open session to the target's proxyJump, shared by its caller (the pool); without one, connect
   * opens its own and closes it with the target's session.
   */
  jump?: SshSession;
  /** What the host is to the caller, in messages: "jump host" gives "root@bastion:22 (jump host): ...". */
  role?: string;
}

/** The jump host of `t` as a target of its own (its user defaults to the target's). */
export function jumpTarget(t: SshTarget): SshTarget | undefined {
  const j = t.proxyJump;
  return j && { host: j.host, port: j.port ?? 22, user: j.user ?? t.user, hostKey: j.hostKey, become: false };
}

const labelOf = (t: Pick<SshTarget, 'user' | 'host' | 'port'>) => `${t.user}@${t.host}:${t.port}`;

/** How a target is named in messages: "deploy@10.0.0.5:22 via root@bastion:22" through a jump host. */
export function targetLabel(t: SshTarget): string {
  const j = jumpTarget(t);
  return j ? `${labelOf(t)} via ${labelOf(j)}` : labelOf(t);
}

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;
const DEFAULT_FORWARD_TIMEOUT_MS = 15_000;
/** After close(), how long the host has to finish the SSH disconnect before the socket is dropped. */
const CLOSE_GRACE_MS = 2_000;

/** An SshError's message without its target label (it is re-labelled by the caller). */
const reasonOf = (e: Error) => (e instanceof SshError ? e.message.slice(e.target.length + 2) : e.message);
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

  /** Runs when the session closes (a jump session opened for this one alone is closed with it). */
  private readonly onClosed: (() => void)[] = [];

  private constructor(
    private readonly client: Client,
    readonly label: string,
    private readonly maxStepMs: number | undefined,
    /** The SSH user, and whether scripts run as root through sudo (see scriptCommand). */
    readonly user: string,
    readonly become: boolean,
  ) {
    client.on('close', () => {
      this.closed = true;
      const cause = this.lastError ? `: ${this.lastError.message}` : '';
      for (const fail of [...this.inFlight]) fail(new SshError(label, `connection lost${cause}`));
      for (const f of this.onClosed.splice(0)) f();
    });
  }

  /** Errors after the handshake (keepalive timeout, reset, protocol error): the session is unusable. */
  private onError(err: Error): void {
    this.lastError ??= err;
    this.closed = true;
  }

  /**
   * Connects to the target with its pinned key; through its proxyJump when it has one: the jump host
   * with its own pinned key (opts.jump, or a session opened here), then a port forward from there to
   * the target carrying the target's SSH session (its key checked as on a direct connection).
   */
  static async connect(target: SshTarget, auth: SshAuth, opts: ConnectOptions = {}): Promise<SshSession> {
    const hop = jumpTarget(target);
    if (!hop) return SshSession.open(target, auth, opts);
    const label = targetLabel(target);
    const jump = opts.jump ?? (await SshSession.open(hop, auth, { ...opts, role: `jump host of ${labelOf(target)}` }));
    try {
      const stream = await jump
        .forwardOut(target.port, target.host, opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
        .catch((e: Error) => {
          throw new SshError(label, `the jump host cannot reach ${target.host}:${target.port}: ${reasonOf(e)}`);
        });
      const session = await SshSession.open(target, auth, opts, stream as ClientChannel);
      if (!opts.jump) session.onClosed.push(() => jump.close());
      return session;
    } catch (e) {
      if (!opts.jump) jump.close();
      throw e;
    }
  }

  /** One SSH connection: over TCP, or over `stream` (a port forward through a jump host). */
  private static open(
    target: SshTarget,
    auth: SshAuth,
    opts: ConnectOptions,
    stream?: ClientChannel,
  ): Promise<SshSession> {
    const label = stream ? targetLabel(target) : `${labelOf(target)}${opts.role ? ` (${opts.role})` : ''}`;
    const problem = hostKeyProblem(target.hostKey);
    if (problem) return Promise.reject(new SshError(label, `the pinned host key ${problem}`));
    const pinned = keyBlob(target.hostKey);
    const pinnedType = keyType(pinned);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let presented: Buffer | undefined;
    let methods: (PublicKeyAuthMethod | AgentAuthMethod)[];
    try {
      methods = authMethods(auth, target.user);
    } catch (e) {
      return Promise.reject(new SshError(label, (e as Error).message));
    }
    return new Promise((resolve, reject) => {
      const client = new Client();
      let session: SshSession | undefined;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.destroy();
        if (stream) closeChannel(stream);
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
        } else if (stream) {
          fail(new SshError(label, err.message));
        } else {
          fail(new SshError(label, socketErrorText(err, target.host, target.port)));
        }
      });
      client.on('close', () => fail(new SshError(label, 'connection closed before the SSH session was ready')));
      client.once('ready', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session = new SshSession(client, label, opts.maxStepMs, target.user, becomes(target));
        resolve(session);
      });
      // Our own socket, so a timeout can say how far the host got.
      const sock = stream ? undefined : new Socket();
      sock?.on('error', ignore); // ssh2 reports socket errors on the client
      const timer = setTimeout(() => {
        const what = !sock
          ? `SSH handshake through the jump host not completed within ${seconds(timeoutMs)}`
          : sock.connecting
            ? `TCP connection not established within ${seconds(timeoutMs)}`
            : sock.bytesRead === 0
              ? `no SSH banner within ${seconds(timeoutMs)}`
              : `SSH handshake not completed within ${seconds(timeoutMs)}`;
        fail(new SshError(label, what));
      }, timeoutMs);
      const config: ConnectConfig = {
        sock: stream ?? sock,
        host: target.host,
        port: target.port,
        username: target.user,
        authHandler: methods,
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
        sock?.connect(target.port, target.host);
        client.connect(config);
      } catch (e) {
        sock?.destroy();
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

  /**
   * Runs a POSIX shell script on the host as root (sent on stdin, so its length is not bounded by
   * argv): a non-root user's through `sudo -n` (a BecomeError when sudo refuses: nothing ran).
   */
  async runScript(script: string, timeoutMs?: number): Promise<ExecResult> {
    const r = await this.exec(scriptCommand(this.become), { stdin: remoteScript(script), timeoutMs });
    const refused = this.become ? becomeRefusal(r) : undefined;
    if (refused) throw new BecomeError(this.label, this.user, refused);
    return r;
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
