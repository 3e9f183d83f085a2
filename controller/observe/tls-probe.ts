// Owns looking at the certificate NATS serves on its client port, as a client would: through an SSH
// port forward (nothing else reaches the host), read the INFO line (unless TLS comes first), upgrade to
// TLS and read the peer certificate. Trusts nothing and authenticates nothing: it only reports.
import { connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { SshSession } from '../transport/ssh.js';
import type { ServedTls } from './facts.js';
import { certFact } from './fact-table.js';

const PROBE_TIMEOUT_MS = 5000;

/** Reads NATS's first line (INFO {...}); resolves with its JSON. */
function readInfo(stream: Duplex): Promise<{ tls_required?: boolean; tls_available?: boolean }> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString('latin1');
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > 64 * 1024) done(new Error('no INFO line from the client port'));
        return;
      }
      const line = buf.slice(0, nl).trim();
      if (!line.startsWith('INFO ')) return done(new Error('the client port did not answer with INFO'));
      try {
        done(undefined, JSON.parse(line.slice(5)));
      } catch {
        done(new Error('the client port sent an INFO line that is not JSON'));
      }
    };
    const onEnd = () => done(new Error('the client port closed the connection'));
    const done = (err?: Error, info?: Record<string, unknown>) => {
      stream.off('data', onData).off('end', onEnd).off('error', done);
      stream.pause();
      if (err) reject(err);
      else resolve(info as { tls_required?: boolean });
    };
    stream.on('data', onData).on('end', onEnd).on('error', done);
  });
}

function handshake(stream: Duplex, servername: string | undefined): Promise<ServedTls> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ socket: stream, servername, rejectUnauthorized: false });
    const finish = (r: ServedTls) => {
      socket.destroy();
      resolve(r);
    };
    socket.once('secureConnect', () => {
      const peer = socket.getPeerCertificate();
      const cert = peer?.raw
        ? certFact(`-----BEGIN CERTIFICATE-----\n${peer.raw.toString('base64')}\n-----END CERTIFICATE-----\n`)
        : undefined;
      finish(cert ? { cert } : { error: 'the server presented no certificate' });
    });
    socket.once('error', (e) => finish({ error: `TLS handshake failed: ${e.message}` }));
  });
}

/** What the server on `port` serves: its certificate, plaintext only, or why it could not be told. */
export async function probeServedTls(
  session: SshSession,
  port: number,
  o: { servername?: string; handshakeFirst: boolean },
): Promise<ServedTls> {
  let stream: Duplex | undefined;
  const timeout = new Promise<ServedTls>((resolve) =>
    setTimeout(() => resolve({ error: `no TLS answer within ${PROBE_TIMEOUT_MS} ms` }), PROBE_TIMEOUT_MS).unref(),
  );
  let over = false;
  const probe = (async (): Promise<ServedTls> => {
    stream = await session.forwardOut(port);
    if (over) stream.destroy(); // opened after the deadline: nobody reads it
    if (!o.handshakeFirst) {
      const info = await readInfo(stream);
      if (!info.tls_required && !info.tls_available) return { plaintext: true };
    }
    return handshake(stream, o.servername);
  })().catch((e: Error) => ({ error: e.message }));
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    over = true;
    stream?.destroy();
  }
}

/**
 * What happens to a client that does not speak TLS: it answers the INFO with CONNECT and PING in
 * plaintext; a server that requires TLS must not answer PONG. `unknown` when no answer came in time.
 */
export async function plaintextClient(session: SshSession, port: number): Promise<'accepted' | 'refused' | 'unknown'> {
  let stream: Duplex | undefined;
  let over = false;
  const answer = (async (): Promise<'accepted' | 'refused' | 'unknown'> => {
    stream = await session.forwardOut(port);
    if (over) stream.destroy(); // opened after the deadline: nobody reads it
    await readInfo(stream);
    stream.resume();
    return new Promise((resolve) => {
      let buf = '';
      stream!.on('data', (c: Buffer) => {
        buf += c.toString('latin1');
        if (buf.includes('PONG')) resolve('accepted');
        else if (buf.includes('-ERR')) resolve('refused');
      });
      // NATS answers a plaintext CONNECT on a TLS port by closing the connection (its TLS handshake fails).
      stream!
        .on('end', () => resolve('refused'))
        .on('close', () => resolve('refused'))
        .on('error', () => resolve('refused'));
      stream!.write('CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n');
    });
  })().catch(() => 'unknown' as const);
  const timeout = new Promise<'unknown'>((resolve) => setTimeout(() => resolve('unknown'), PROBE_TIMEOUT_MS).unref());
  try {
    return await Promise.race([answer, timeout]);
  } finally {
    over = true;
    stream?.destroy();
  }
}
