// Owns SSH sessions to hosts (ssh2): the pinned host key (any other key is refused before
// authentication, so nothing runs), one connection reused for every command to a host, a timeout
// on every step, and counting of remote commands (observe must be one round trip).
import ssh2, { type ClientChannel, type ConnectConfig } from 'ssh2';

const { Client } = ssh2;
type Client = InstanceType<typeof Client>;
import type { Duplex } from 'node:stream';
import { fingerprint, formatHostKey, keyBlob, sameKey } from './host-key.js';
import { remoteScript } from '../shell/quote.js';

export interface SshTarget {
  host: string;
  port: number;
  user: string;
  /** The pinned key, "<type> <base64>". */
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
      `${target}: host key mismatch: the host presented ${presented}, the manifest pins ${expected}; refusing to connect`,
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

const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
const DEFAULT_EXEC_TIMEOUT_MS = 120_000;

export class SshSession {
  /** Remote commands run on this session (observe's one-round-trip promise is tested with it). */
  execCount = 0;
  private closed = false;

  private constructor(
    private readonly client: Client,
    readonly label: string,
  ) {
    client.on('close', () => {
      this.closed = true;
    });
  }

  static connect(target: SshTarget, auth: SshAuth, opts: { timeoutMs?: number } = {}): Promise<SshSession> {
    const label = `${target.user}@${target.host}:${target.port}`;
    const pinned = keyBlob(target.hostKey);
    let presented: Buffer | undefined;
    return new Promise((resolve, reject) => {
      const client = new Client();
      const config: ConnectConfig = {
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: auth.privateKey,
        readyTimeout: opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        keepaliveInterval: 10_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          presented = key;
          return sameKey(key, pinned);
        },
      };
      client.once('ready', () => resolve(new SshSession(client, label)));
      client.once('error', (err: Error) => {
        client.end();
        if (presented && !sameKey(presented, pinned)) {
          reject(
            new HostKeyError(
              label,
              fingerprint(pinned),
              `${fingerprint(presented)} (${formatHostKey(presented).slice(0, 24)}...)`,
            ),
          );
        } else {
          reject(new SshError(label, err.message));
        }
      });
      client.connect(config);
    });
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.execCount++;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err: Error | undefined, stream: ClientChannel) => {
        if (err) return reject(new SshError(this.label, `exec failed: ${err.message}`));
        const out: Buffer[] = [];
        const errOut: Buffer[] = [];
        const timer = setTimeout(() => {
          stream.close();
          reject(new SshError(this.label, `remote command timed out after ${timeoutMs} ms`));
        }, timeoutMs);
        stream.on('data', (b: Buffer) => out.push(b));
        stream.stderr.on('data', (b: Buffer) => errOut.push(b));
        stream.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({
            code: code ?? 255,
            stdout: Buffer.concat(out).toString(),
            stderr: Buffer.concat(errOut).toString(),
          });
        });
        if (opts.stdin !== undefined) stream.end(opts.stdin);
        else stream.end();
      });
    });
  }

  /** Runs a POSIX shell script on the host (sent on stdin, so its length is not bounded by argv). */
  runScript(script: string, timeoutMs?: number): Promise<ExecResult> {
    return this.exec('sh -s', { stdin: remoteScript(script), timeoutMs });
  }

  /** A TCP stream to host:port as seen from the remote host (ssh -L without a local listener). */
  forwardOut(port: number, host = '127.0.0.1'): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, stream) =>
        err
          ? reject(new SshError(this.label, `port forward to ${host}:${port} failed: ${err.message}`))
          : resolve(stream),
      );
    });
  }

  close(): void {
    this.client.end();
  }

  /** Drops the TCP connection at once, as a network failure would (used by failure tests). */
  destroy(): void {
    this.client.destroy();
  }
}

/** Connects without trusting anything and returns the key the host presents ("<type> <base64>"). */
export function scanHostKey(host: string, port: number, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    client.on('error', () => {
      client.end();
      if (key) resolve(formatHostKey(key));
      else reject(new SshError(`${host}:${port}`, 'no host key received'));
    });
    client.connect({
      host,
      port,
      username: 'natsfleet-hostkey-scan',
      readyTimeout: timeoutMs,
      hostVerifier: (k: Buffer) => {
        key = k;
        return false; // never authenticate: only the key is wanted
      },
    });
  });
}
