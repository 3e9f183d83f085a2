// Owns `natsfleet hostkey scan`: connect without trusting anything, take the key the host presents and
// never authenticate. A failure says how far it got, so that an operator knows what to fix: the name
// does not resolve, nothing listens (refused), nothing answers (timed out), the host is unreachable,
// something answers but is not an SSH server, or the SSH server closed the connection.
import { lookup } from 'node:dns/promises';
import { Socket } from 'node:net';
import ssh2 from 'ssh2';
import { fingerprint, formatHostKey } from '../manifest/host-key.js';
import { socketErrorText } from './socket-errors.js';

const { Client } = ssh2;

export type ScanFailure = 'dns' | 'refused' | 'timeout' | 'unreachable' | 'not-ssh' | 'closed';

export class ScanError extends Error {
  constructor(
    readonly target: string,
    readonly kind: ScanFailure,
    message: string,
  ) {
    super(`${target}: ${message}`);
    this.name = 'ScanError';
  }
}

export interface ScannedKey {
  /** "<type> <base64>", ready for a manifest's spec.ssh.hostKey. */
  hostKey: string;
  /** "SHA256:…", as `ssh-keygen -lf` prints it. */
  fingerprint: string;
}

const seconds = (ms: number) => `${Number((ms / 1000).toFixed(3))} s`;

/** The key `host:port` presents; a ScanError naming the stage otherwise. */
export async function scanHostKey(host: string, port: number, timeoutMs = 10_000): Promise<ScannedKey> {
  const target = `${host}:${port}`;
  const deadline = Date.now() + timeoutMs;
  let address: string;
  try {
    address = (await lookup(host)).address;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScanError(target, 'dns', `cannot resolve ${host} (${code === 'ENOTFOUND' ? 'no such name' : code})`);
  }
  return new Promise((resolve, reject) => {
    const client = new Client();
    const sock = new Socket();
    let key: Buffer | undefined;
    let settled = false;
    /** The first bytes the server sent: an SSH server greets with "SSH-". */
    let greeting: string | undefined;
    const notSsh = () =>
      greeting !== undefined && !greeting.startsWith('SSH-')
        ? new ScanError(target, 'not-ssh', `something answers on port ${port}, but not an SSH server`)
        : undefined;
    const finish = (err?: ScanError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      sock.destroy();
      if (key) {
        const hostKey = formatHostKey(key);
        resolve({ hostKey, fingerprint: fingerprint(key) });
      } else
        reject(
          notSsh() ?? err ?? new ScanError(target, 'closed', 'the SSH server closed the connection before its key'),
        );
    };
    const timer = setTimeout(
      () =>
        finish(
          sock.connecting
            ? new ScanError(
                target,
                'timeout',
                `no answer within ${seconds(timeoutMs)} (a firewall, or a wrong address)`,
              )
            : new ScanError(target, 'not-ssh', `connected, but no SSH greeting within ${seconds(timeoutMs)}`),
        ),
      Math.max(1, deadline - Date.now()),
    );
    sock.on('data', (d: Buffer) => (greeting ??= d.subarray(0, 8).toString('latin1')));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const kind: ScanFailure =
        e.code === 'ECONNREFUSED'
          ? 'refused'
          : e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH'
            ? 'unreachable'
            : e.code === 'ETIMEDOUT'
              ? 'timeout'
              : 'closed';
      finish(new ScanError(target, kind, socketErrorText(e, host, port)));
    });
    client.on('error', (e: Error) => {
      if (key) return finish();
      // A socket error of the same moment says more (refused, unreachable): it goes first.
      setImmediate(() => finish(new ScanError(target, 'closed', `the SSH handshake failed (${e.message})`)));
    });
    client.on('close', () => finish());
    client.on('ready', () => finish());
    sock.connect(port, address);
    client.connect({
      sock,
      username: 'natsfleet-hostkey-scan',
      readyTimeout: timeoutMs + 1_000,
      hostVerifier: (k: Buffer) => {
        key = k;
        setImmediate(() => finish());
        return false; // never authenticate: only the key is wanted
      },
    });
  });
}
