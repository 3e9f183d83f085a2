// Owns SSH sessions to hosts (ssh2): the pinned host key (only its algorithm is offered, and any
// other key is refused before authentication, so nothing runs), at every hop when the host is reached
// through a jump host (ssh -J: the jump host's own pinned key, then a port forward carrying the SSH
// session to the target), one connection reused for every command to a host, one deadline per step
// from request to last byte (connect, exec, port forward), error listeners on every client and channel
// (a misbehaving host can never crash the process), counting of remote commands (observe must be one
// round trip), and becoming root: a non-root user's scripts run under `sudo -n` (never a prompt).
import { createPrivateKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
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

/** Parsed private keys, by the object or text they were parsed from (a pool connects with the same one). */
const parsedKeys = new WeakMap<object, ParsedKey>();
const parsedTexts = new Map<string, ParsedKey>();

/**
 * `key` signing with a key object made once: ssh2 signs with the key's PEM text, which OpenSSL parses
 * again on every signature (most of a handshake's signing time). The same algorithm and bytes.
 */
function fastSigning(key: ParsedKey): ParsedKey {
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key.getPrivatePEM());
  } catch {
    return key;
  }
  const slow = key.sign.bind(key);
  // ed25519 takes no hash; the others are signed with the hash ssh2 names (else ssh2's own default).
  key.sign = (data: Buffer | string, algo?: string) => {
    if (!algo && key.type !== 'ssh-ed25519') return slow(data, algo);
    try {
      return cryptoSign(algo || null, typeof data === 'string' ? Buffer.from(data) : data, keyObject);
    } catch (e) {
      return e as Buffer; // ssh2 checks for an Error, as its own sign returns one
    }
  };
  return key;
}

function parsedKey(privateKey: Buffer | string | ParsedKey, passphrase: string | undefined): ParsedKey {
  const cached = typeof privateKey === 'string' ? parsedTexts.get(privateKey) : parsedKeys.get(privateKey);
  if (cached) return cached;
  const parsed = ssh2.utils.parseKey(privateKey, passphrase);
  if (parsed instanceof Error) throw new Error(`the SSH private key cannot be used: ${parsed.message}`);
  const key = fastSigning(Array.isArray(parsed) ? parsed[0] : parsed);
  if (typeof privateKey !== 'string') parsedKeys.set(privateKey, key);
  else if (parsedTexts.size < 16) parsedTexts.set(privateKey, key);
  return key;
}

/** The ssh2 authentication methods of `auth`, in order: the key (parsed once per key), then the agent. */
export function authMethods(auth: SshAuth, username: string): (PublicKeyAuthMethod | AgentAuthMethod)[] {
  const a: SshAuth = auth.privateKey instanceof SshCredentials ? auth.privateKey : auth;
  const out: (PublicKeyAuthMethod | AgentAuthMethod)[] = [];
  if (a.privateKey !== undefined && !(a.privateKey instanceof SshCredentials)) {
    out.push({ type: 'publickey', username, key: parsedKey(a.privateKey, a.passphrase) });
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
    /** The message without the target it names. */
    readonly detail: string,
  ) {
    super(`${target}: ${detail}`);
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
  /** The most stdout and stderr may hold together (default: the session's, 16 MiB): past it, the command fails. */
  maxOutputBytes?: number;
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
  /** SSH keepalive: a probe after this long without traffic (default 10 s)... */
  keepaliveIntervalMs?: number;
  /** ...and the connection is dropped after this many unanswered probes (default 3). */
  keepaliveCountMax?: number;
  /** The most a command's stdout and stderr may hold together (default 16 MiB); see ExecOptions. */
  maxOutputBytes?: number;
  /**
   * Open the connection again (same target, pinned key and credentials; through opts.jump when given)
   * when a step finds it dead: before the step starts, or when the step's channel could not be opened
   * because the connection closed (nothing ran). Never for a step whose channel opened. Not with a jump
   * session of its own.
   */
  reconnect?: boolean;
  /** Told when the connection opens and closes (the pool counts open connections with it). */
  hooks?: ConnectionHooks;
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
const DEFAULT_KEEPALIVE_INTERVAL_MS = 10_000;
const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
/** What a command may print (stdout and stderr together): natsfleet's own scripts print far less. */
const DEFAULT_MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** An SshError's message without its target label (it is re-labelled by the caller). */
const reasonOf = (e: Error) => (e instanceof SshError ? e.detail : e.message);
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;
const ignore = () => {};

/**
 * Writes made in one tick leave in one system call: ssh2 writes every SSH packet on its own (a command is
 * several: channel open, request, data, EOF), and a sweep's thousands of connections pay for each call.
 */
function batchWrites(sock: Socket): void {
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = () => {
    corked = false;
    sock.uncork();
  };
  sock.write = ((...args: unknown[]) => {
    if (!corked) {
      corked = true;
      sock.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  }) as Socket['write'];
}

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

/** A step failed before its channel opened because the connection was gone: nothing ran on the host. */
export class ConnectionDeadError extends SshError {
  constructor(target: string, message: string) {
    super(target, message);
    this.name = 'ConnectionDeadError';
  }
}

/** OpenSSH's announcement of all its host keys after a login (its client's UpdateHostKeys). */
const HOST_KEYS_ANNOUNCEMENT = 'hostkeys-00@openssh.com';

interface Ssh2Internals {
  _protocol?: {
    _handlers?: { GLOBAL_REQUEST?: (p: unknown, name: string, wantReply: boolean, data: unknown) => void };
  };
}

/**
 * OpenSSH announces every host key it has after the login, and ssh2 asks it at once to prove each one
 * (hostkeys-prove-00@openssh.com): the host signs with all of them, RSA included, about 2 ms of its CPU per
 * connection (and 0.5 ms of ours), for nothing: natsfleet pins one key, checked in the key exchange, and uses
 * no other. So the announcement is let go, as OpenSSH's own client does without UpdateHostKeys (it needs
 * no reply). ssh2 has no option for it: its handler of global requests, read at each request, is wrapped; any
 * other request goes to it. Returns false, changing nothing, if ssh2's internals are not as expected.
 */
export function ignoreHostKeyAnnouncements(client: Client): boolean {
  const handlers = (client as unknown as Ssh2Internals)._protocol?._handlers;
  const original = handlers?.GLOBAL_REQUEST;
  if (!handlers || typeof original !== 'function') return false;
  handlers.GLOBAL_REQUEST = (p, name, wantReply, data) => {
    if (name !== HOST_KEYS_ANNOUNCEMENT || wantReply) original(p, name, wantReply, data);
  };
  return true;
}

/** SSH's channel-open failure code for "administratively prohibited" (RFC 4254, 5.1). */
const ADMINISTRATIVELY_PROHIBITED = 1;

/**
 * The host's sshd refused a port forward by its configuration (AllowTcpForwarding no, DisableForwarding,
 * PermitOpen, or no-port-forwarding in authorized_keys), not because nothing listens there.
 */
export class ForwardingRefusedError extends SshError {
  constructor(target: string, host: string, port: number) {
    super(
      target,
      `sshd refuses port forwarding to ${host}:${port} (administratively prohibited: AllowTcpForwarding, ` +
        'DisableForwarding or PermitOpen in sshd_config, or no-port-forwarding in authorized_keys)',
    );
    this.name = 'ForwardingRefusedError';
  }
}

/** One SSH connection of a session (a session that reconnects has several over its life, one at a time). */
interface Conn {
  client: Client;
  /** False from the first error or close (or once the session let it go): no new step starts on it. */
  alive: boolean;
  lastError?: Error;
  /** Fails every step in flight on this connection (it went away). */
  inFlight: Set<(err: Error) => void>;
}

/** A connection made by dial, ready; errors after the handshake go to the sink its session sets. */
interface Dialed {
  client: Client;
  sink(onError: (err: Error) => void): void;
}

/** The pool's view of a session's connection: told when it opens and when it closes. */
export interface ConnectionHooks {
  opened(s: SshSession): void;
  closed(s: SshSession): void;
}

export class SshSession {
  /** Remote commands run on this session (observe's one-round-trip promise is tested with it). */
  execCount = 0;
  /** Times the connection was opened again after it was found dead (reconnect). */
  reconnects = 0;
  private conn: Conn | undefined;
  /** close() was called: the session never reconnects. */
  private ended = false;
  private redialing: Promise<void> | undefined;
  /** When the last step started or ended (the pool closes the least recently used idle connections). */
  lastUsed = Date.now();

  /** Runs when the session closes (a jump session opened for this one alone is closed with it). */
  private readonly onClosed: (() => void)[] = [];

  private constructor(
    readonly label: string,
    private readonly maxStepMs: number | undefined,
    /** The SSH user, and whether scripts run as root through sudo (see scriptCommand). */
    readonly user: string,
    readonly become: boolean,
    private readonly maxOutputBytes: number,
    /** Opens a new connection to the same target with the same pins (undefined: a dead session stays dead). */
    private readonly redial: (() => Promise<Dialed>) | undefined,
    private readonly hooks: ConnectionHooks | undefined,
  ) {}

  private attach(d: Dialed): void {
    const conn: Conn = { client: d.client, alive: true, inFlight: new Set() };
    this.conn = conn;
    // Errors after the handshake (keepalive timeout, reset, protocol error): the connection is unusable.
    d.sink((err) => {
      conn.lastError ??= err;
      conn.alive = false;
    });
    d.client.on('close', () => {
      conn.alive = false;
      if (this.conn === conn) {
        this.conn = undefined; // its client and buffers are not kept
        this.hooks?.closed(this);
      }
      const cause = conn.lastError ? `: ${conn.lastError.message}` : '';
      // After ssh2 has failed the requests it still held: a channel that never opened says so (nothing ran),
      // which is what allows a reconnect; anything still in flight then lost its connection.
      const failing = [...conn.inFlight];
      setImmediate(() => {
        for (const fail of failing) fail(new SshError(this.label, `connection lost${cause}`));
      });
      if (!this.redial || this.ended) for (const f of this.onClosed.splice(0)) f();
    });
    this.hooks?.opened(this);
  }

  /**
   * Connects to the target with its pinned key; through its proxyJump when it has one: the jump host
   * with its own pinned key (opts.jump, or a session opened here), then a port forward from there to
   * the target carrying the target's SSH session (its key checked as on a direct connection). With
   * opts.reconnect, a connection found dead later is opened again the same way (see exec).
   */
  static async connect(target: SshTarget, auth: SshAuth, opts: ConnectOptions = {}): Promise<SshSession> {
    const hop = jumpTarget(target);
    const label = hop ? targetLabel(target) : `${labelOf(target)}${opts.role ? ` (${opts.role})` : ''}`;
    const make = (redial: (() => Promise<Dialed>) | undefined) =>
      new SshSession(
        label,
        opts.maxStepMs,
        target.user,
        becomes(target),
        opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES,
        redial,
        opts.hooks,
      );
    if (!hop) {
      const dial = () => SshSession.dial(target, auth, opts, label);
      const d = await dial();
      const session = make(opts.reconnect ? dial : undefined);
      session.attach(d);
      return session;
    }
    const through = async (jump: SshSession) => {
      const stream = await jump
        .forwardOut(target.port, target.host, opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)
        .catch((e: Error) => {
          throw new SshError(label, `the jump host cannot reach ${target.host}:${target.port}: ${reasonOf(e)}`);
        });
      return SshSession.dial(target, auth, opts, label, stream as ClientChannel);
    };
    if (opts.jump) {
      const jump = opts.jump;
      const dial = () => through(jump);
      const session = make(opts.reconnect ? dial : undefined);
      session.attach(await dial());
      return session;
    }
    // A jump session of its own, closed with the target's session (neither reconnects).
    const { hooks: _, reconnect: __, ...own } = opts;
    const jump = await SshSession.connect(hop, auth, { ...own, role: `jump host of ${labelOf(target)}` });
    try {
      const d = await through(jump);
      const session = make(undefined);
      session.attach(d);
      session.onClosed.push(() => jump.close());
      return session;
    } catch (e) {
      jump.close();
      throw e;
    }
  }

  /** One SSH connection: over TCP, or over `stream` (a port forward through a jump host). */
  private static dial(
    target: SshTarget,
    auth: SshAuth,
    opts: ConnectOptions,
    label: string,
    stream?: ClientChannel,
  ): Promise<Dialed> {
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
      if (stream) closeChannel(stream);
      return Promise.reject(new SshError(label, (e as Error).message));
    }
    return new Promise((resolve, reject) => {
      const client = new Client();
      let ready = false;
      let settled = false;
      let lateSink: ((err: Error) => void) | undefined;
      let lateError: Error | undefined;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.destroy();
        if (stream) closeChannel(stream);
        reject(err);
      };
      // Permanent: before `ready` an error fails the connect; after it, it marks the connection dead.
      client.on('error', (err: Error & { level?: string }) => {
        if (ready) {
          if (lateSink) lateSink(err);
          else lateError ??= err;
          return;
        }
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
        ready = true;
        clearTimeout(timer);
        resolve({
          client,
          sink: (f) => {
            lateSink = f;
            if (lateError) f(lateError);
          },
        });
      });
      // Our own socket, so a timeout can say how far the host got.
      const sock = stream ? undefined : new Socket();
      sock?.on('error', ignore); // ssh2 reports socket errors on the client
      if (sock) batchWrites(sock);
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
        keepaliveInterval: opts.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: opts.keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX,
        algorithms: { serverHostKey: hostKeyAlgorithms(pinnedType) as ServerHostKeyAlgorithm[] },
        hostVerifier: (key: Buffer) => {
          presented = key;
          return sameKey(key, pinned);
        },
      };
      try {
        sock?.setNoDelay(true);
        sock?.connect(target.port, target.host);
        client.connect(config);
        ignoreHostKeyAnnouncements(client);
      } catch (e) {
        sock?.destroy();
        fail(new SshError(label, (e as Error).message));
      }
    });
  }

  /** Whether the connection is open now (a pooled session that is not reconnects on its next step). */
  get isOpen(): boolean {
    return !this.ended && this.conn?.alive === true;
  }

  /** Whether a step is running on the connection (the pool never closes a busy one). */
  get busy(): boolean {
    return (this.conn?.inFlight.size ?? 0) > 0;
  }

  /**
   * Opens the connection again (same target, pinned key and credentials) when it is not open: one
   * attempt, shared by every caller waiting on it. Only for a session connected with `reconnect`.
   */
  reconnect(): Promise<void> {
    if (this.isOpen) return Promise.resolve();
    if (this.ended || !this.redial) return Promise.reject(new SshError(this.label, 'connection is closed'));
    this.redialing ??= (async () => {
      try {
        this.conn?.client.destroy();
        const d = await this.redial!();
        if (this.ended) {
          d.client.destroy();
          throw new SshError(this.label, 'connection is closed');
        }
        this.attach(d);
        this.reconnects++;
      } finally {
        this.redialing = undefined;
      }
    })();
    return this.redialing;
  }

  /**
   * Runs `fn` on the connection: a dead one is opened again first; or, when `fn` finds it died before its
   * channel opened (ConnectionDeadError: nothing ran), once then. Never after a channel opened: a command
   * that may have run is not run again. At most one reconnect per call.
   */
  private async onConnection<T>(fn: (conn: Conn) => Promise<T>): Promise<T> {
    const canReconnect = this.redial !== undefined && !this.ended;
    let reopened = false;
    if (canReconnect && !this.isOpen) {
      await this.reconnect();
      reopened = true;
    }
    const conn = this.conn;
    if (!conn || this.ended) throw new ConnectionDeadError(this.label, 'connection is closed');
    try {
      return await fn(conn);
    } catch (e) {
      if (!(e instanceof ConnectionDeadError) || reopened || !canReconnect || this.ended) throw e;
      await this.reconnect();
      return fn(this.conn!);
    }
  }

  private stepTimeout(ms: number): number {
    return this.maxStepMs === undefined ? ms : Math.min(ms, this.maxStepMs);
  }

  /**
   * Runs one step under a deadline armed before the request is sent. `start` sends it; `settle`
   * ends the step once (a late answer after the deadline or a failure does nothing).
   */
  private step<T>(
    conn: Conn,
    timeoutMs: number,
    onTimeout: () => Error,
    start: (settle: (err: Error | undefined, value?: T) => boolean, isDone: () => boolean) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      this.lastUsed = Date.now();
      const settle = (err: Error | undefined, value?: T) => {
        if (done) return false;
        done = true;
        clearTimeout(timer);
        conn.inFlight.delete(abort);
        this.lastUsed = Date.now();
        if (err) reject(err);
        else resolve(value as T);
        return true;
      };
      const abort = (err: Error) => void settle(err);
      const timer = setTimeout(() => settle(onTimeout()), timeoutMs);
      conn.inFlight.add(abort);
      if (!conn.alive) return void settle(new ConnectionDeadError(this.label, 'connection is closed'));
      try {
        start(settle, () => done);
      } catch (e) {
        // ssh2 refuses to send on a connection whose socket is gone ("Not connected"): nothing was sent.
        const message = (e as Error).message;
        if (message === 'Not connected') conn.alive = false;
        settle(
          message === 'Not connected'
            ? new ConnectionDeadError(this.label, message)
            : new SshError(this.label, message),
        );
      }
    });
  }

  /**
   * Why a channel request failed: the connection closed before the channel opened (ssh2 answers every
   * channel still opening with "No response from server"), so nothing ran; else a plain failure.
   */
  private channelFailure(conn: Conn, what: string, err: Error | undefined): SshError {
    if (conn.alive) return new SshError(this.label, `${what}: ${err?.message ?? 'no channel'}`);
    const cause = conn.lastError ? `: ${conn.lastError.message}` : '';
    return err?.message === 'No response from server'
      ? new ConnectionDeadError(this.label, `connection lost before the channel opened${cause}`)
      : new SshError(this.label, `connection lost${cause}`);
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.execCount++;
    return this.onConnection((conn) => this.execOn(conn, command, opts));
  }

  private execOn(conn: Conn, command: string, opts: ExecOptions): Promise<ExecResult> {
    const timeoutMs = this.stepTimeout(opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS);
    const maxBytes = opts.maxOutputBytes ?? this.maxOutputBytes;
    let stream: ClientChannel | undefined;
    return this.step<ExecResult>(
      conn,
      timeoutMs,
      () => {
        // A running command's channel is closed; a request the host never answered leaves the
        // connection in an unknown state, so it is dropped (a pooled session reconnects on its next step).
        if (stream) closeChannel(stream);
        else this.dropConnection(conn);
        return new SshError(this.label, `remote command timed out after ${timeoutMs} ms`);
      },
      (settle, isDone) => {
        conn.client.exec(command, (err: Error | undefined, s: ClientChannel) => {
          if (s) guardChannel(s);
          if (isDone()) return void (s && closeChannel(s)); // answered after the deadline: dropped
          if (err || !s) return void settle(this.channelFailure(conn, 'exec failed', err));
          stream = s;
          // Output is kept up to a bound (a host cannot fill the controller's memory): past it, the command fails.
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let bytes = 0;
          const keep = (into: Buffer[]) => (b: Buffer) => {
            bytes += b.length;
            if (bytes <= maxBytes) return void into.push(b);
            out.length = errOut.length = 0;
            closeChannel(s);
            settle(new SshError(this.label, `the remote command's output exceeds ${maxBytes} bytes: stopped`));
          };
          s.on('data', keep(out));
          s.stderr.on('data', keep(errOut));
          s.on('close', (code: number | null | undefined) => {
            if (code == null && !conn.alive) {
              const cause = conn.lastError ? `: ${conn.lastError.message}` : '';
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
    return this.onConnection((conn) =>
      this.step<Duplex>(
        conn,
        ms,
        () => new SshError(this.label, `port forward to ${host}:${port} timed out after ${ms} ms`),
        (settle) => {
          conn.client.forwardOut('127.0.0.1', 0, host, port, (err: Error | undefined, stream: ClientChannel) => {
            if (stream) guardChannel(stream);
            if (err && conn.alive && (err as { reason?: unknown }).reason === ADMINISTRATIVELY_PROHIBITED)
              return void settle(new ForwardingRefusedError(this.label, host, port));
            if (err) return void settle(this.channelFailure(conn, `port forward to ${host}:${port} failed`, err));
            // Too late: nobody will read it, so it is closed at once.
            if (!settle(undefined, stream)) closeChannel(stream);
          });
        },
      ),
    );
  }

  /** Ends the session for good; a host that does not finish the disconnect in time is dropped. */
  close(): void {
    this.ended = true;
    const conn = this.conn;
    if (!conn) return void this.onClosed.splice(0).forEach((f) => f());
    this.disconnect();
  }

  /**
   * Closes the connection (the SSH disconnect, then the socket after a grace period) and keeps the
   * session: a session that reconnects opens a new one on its next step. The pool's bound uses it.
   */
  disconnect(): void {
    const conn = this.conn;
    if (!conn) return;
    conn.alive = false;
    conn.client.end();
    setTimeout(() => conn.client.destroy(), CLOSE_GRACE_MS).unref();
  }

  /** Drops the TCP connection at once, as a network failure would (used by failure tests). */
  destroy(): void {
    if (this.conn) this.dropConnection(this.conn);
  }

  private dropConnection(conn: Conn): void {
    conn.alive = false;
    conn.client.destroy();
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
