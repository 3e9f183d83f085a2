// The session pool against in-process ssh2 servers (no Docker): connections kept between uses, the bound
// on open connections (least recently used idle ones closed, reopened on their next use), the reconnect
// of a connection found dead (once, and only when the command's channel never opened: a command that may
// have run is never run again), the pinned key as strict on a reconnect, keepalive finding a silent
// connection dead, output bounded, signatures the server verifies, and retain.
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import ssh2, { type Connection, type ParsedKey } from 'ssh2';
import { failOnUncaught } from '../helpers/fail-on-uncaught.js';
import { closeMisbehavingHosts, listen, onClose } from '../helpers/misbehaving-hosts.js';
import { ConnectionDeadError, HostKeyError, SshError } from '../../controller/transport/ssh.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';

const { parseKey } = ssh2.utils;
const noop = () => {};
const pub = (k: { public: string }) => k.public.split(' ').slice(0, 2).join(' ');
const clientKey = generateKeyPairSync('ed25519');
const auth = { privateKey: clientKey.private };

afterAll(closeMisbehavingHosts);

failOnUncaught(50);

/** What the server does when a channel is asked for: answer, or drop the connection before or after the command starts. */
type Mode = 'answer' | 'drop-at-open' | 'drop-after-exec';

interface Host {
  port: number;
  hostKey: string;
  /** Connections accepted (authenticated with a verified signature), and closed. */
  connections: number;
  closed: number;
  /** Commands the server received (each one "ran"). */
  commands: string[];
  mode: Mode;
  /** Closes every connection from the server's side (a restarted sshd). */
  kill(): void;
  /** Stops listening and closes its connections (and lets another server take the port). */
  stop(): Promise<void>;
}

/**
 * An ssh2 server that accepts the client key only with a valid signature. Commands: `echo X` prints X;
 * `sleep MS` answers after MS ms; `big N` prints N bytes.
 */
async function host(o: { port?: number; clients?: { public: string }[] } = {}): Promise<Host> {
  const key = generateKeyPairSync('ed25519');
  const allowed = (o.clients ?? [clientKey]).map((k) => (parseKey(k.public) as ParsedKey).getPublicSSH());
  const conns = new Set<Connection>();
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    conns.add(client);
    client.on('error', noop);
    client.on('close', () => {
      conns.delete(client);
      h.closed++;
    });
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || !allowed.some((b) => Buffer.compare(ctx.key.data, b) === 0))
        return ctx.reject(['publickey']);
      if (!ctx.signature) return ctx.accept(); // the key's query
      const k = parseKey(ctx.key.data);
      if (k instanceof Error || k.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject();
      h.connections++;
      ctx.accept();
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        if (h.mode === 'drop-at-open') return void client.end();
        accept().on('exec', (acceptExec, _reject, info) => {
          h.commands.push(info.command);
          const stream = acceptExec();
          stream.on('error', noop);
          stream.on('data', noop);
          if (h.mode === 'drop-after-exec') return void client.end();
          const [cmd, arg] = info.command.split(' ');
          const answer = (text: string) => {
            stream.write(text);
            stream.exit(0);
            stream.end();
          };
          if (cmd === 'sleep') setTimeout(() => answer('slept\n'), Number(arg));
          else if (cmd === 'big') answer('x'.repeat(Number(arg)));
          else answer(`${arg ?? ''}\n`);
        });
      });
    });
  });
  server.on('error', noop);
  const stop = () =>
    new Promise<void>((r) => {
      for (const c of conns) c.end();
      server.close(() => r());
    });
  const h: Host = {
    port: 0,
    hostKey: pub(key),
    connections: 0,
    closed: 0,
    commands: [],
    mode: 'answer',
    kill: () => conns.forEach((c) => c.end()),
    stop,
  };
  h.port = await new Promise((resolve) =>
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  onClose(stop);
  return h;
}

const spec = (h: Pick<Host, 'port' | 'hostKey'>, name = `h${h.port}`) =>
  ({ name, ssh: { host: '127.0.0.1', port: h.port, user: 'root', hostKey: h.hostKey } }) as HostSpec;

const rejected = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('resolved');
    },
    (e: Error) => e,
  );

describe('kept between uses', () => {
  it('one connection per host, reused by every use, until closeAll', async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    const s = await pool.get(spec(h));
    expect((await s.exec('echo a')).stdout).toBe('a\n');
    expect(await pool.get(spec(h))).toBe(s);
    expect((await (await pool.get(spec(h))).exec('echo b')).stdout).toBe('b\n');
    expect(h.connections).toBe(1);
    expect(pool.stats()).toMatchObject({ open: 1, sessions: 1, connects: 1, reconnects: 0 });
    await pool.closeAll();
    await expect.poll(() => h.closed).toBe(1);
  });
});

describe('the bound on open connections', () => {
  it('past it, the least recently used idle connection is closed, and reopened in place on its next use', async () => {
    const [a, b, c] = await Promise.all([host(), host(), host()]);
    const pool = new SessionPool(auth, { maxOpen: 2 });
    try {
      const sa = await pool.get(spec(a));
      const sb = await pool.get(spec(b));
      await pool.get(spec(a)); // a is now more recent than b
      const sc = await pool.get(spec(c));
      expect([sa.isOpen, sb.isOpen, sc.isOpen]).toEqual([true, false, true]);
      expect(pool.stats()).toMatchObject({ open: 2, evictions: 1 });
      await expect.poll(() => b.closed).toBe(1);
      // b's session is used again as it was: it reconnects (and a, now the least recent, is closed).
      expect((await sb.exec('echo again')).stdout).toBe('again\n');
      expect(b.connections).toBe(2);
      expect(b.commands).toEqual(['echo again']);
      expect(sa.isOpen).toBe(false);
      expect(pool.stats()).toMatchObject({ open: 2, connects: 3, reconnects: 1, evictions: 2 });
      expect(await pool.get(spec(a))).toBe(sa);
      expect(sa.isOpen).toBe(true);
    } finally {
      await pool.closeAll();
    }
  });

  it('a connection running a command is never closed for the bound', async () => {
    const [a, b] = await Promise.all([host(), host()]);
    const pool = new SessionPool(auth, { maxOpen: 1 });
    try {
      const sa = await pool.get(spec(a));
      const running = sa.exec('sleep 300');
      await new Promise((r) => setTimeout(r, 50));
      const sb = await pool.get(spec(b));
      expect((await sb.exec('echo b')).stdout).toBe('b\n');
      expect(sa.isOpen).toBe(true); // busy: the bound is exceeded meanwhile
      expect((await running).stdout).toBe('slept\n');
      expect(a.closed).toBe(0);
    } finally {
      await pool.closeAll();
    }
  });
});

describe('a connection found dead', () => {
  it('closed by the host between uses: the next command reconnects first, and runs once', async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    try {
      const s = await pool.get(spec(h));
      await s.exec('echo 1');
      h.kill();
      await expect.poll(() => s.isOpen).toBe(false);
      expect((await s.exec('echo 2')).stdout).toBe('2\n');
      expect(h.commands).toEqual(['echo 1', 'echo 2']);
      expect(h.connections).toBe(2);
      expect(s.reconnects).toBe(1);
    } finally {
      await pool.closeAll();
    }
  });

  it("lost before the command's channel opened: reconnected once, and the command runs once", async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    try {
      const s = await pool.get(spec(h));
      h.mode = 'drop-at-open';
      const pending = s.exec('echo once');
      await new Promise((r) => setTimeout(r, 20));
      h.mode = 'answer';
      expect((await pending).stdout).toBe('once\n');
      expect(h.commands).toEqual(['echo once']);
      expect(h.connections).toBe(2);
    } finally {
      await pool.closeAll();
    }
  });

  it('only once: a host that drops every channel request fails the command after one reconnect', async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    try {
      const s = await pool.get(spec(h));
      h.mode = 'drop-at-open';
      const e = await rejected(s.exec('echo never'));
      expect(e).toBeInstanceOf(ConnectionDeadError);
      expect(e.message).toMatch(/connection lost before the channel opened/);
      expect(h.connections).toBe(2);
      expect(h.commands).toEqual([]);
    } finally {
      await pool.closeAll();
    }
  });

  it('lost after the command started: never run again, the error says so; the next command reconnects', async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    try {
      const s = await pool.get(spec(h));
      h.mode = 'drop-after-exec';
      const e = await rejected(s.exec('echo maybe-ran'));
      expect(e).toBeInstanceOf(SshError);
      expect(e).not.toBeInstanceOf(ConnectionDeadError);
      expect(e.message).toMatch(/connection lost/);
      expect(h.commands).toEqual(['echo maybe-ran']);
      expect(h.connections).toBe(1);
      h.mode = 'answer';
      expect((await s.exec('echo next')).stdout).toBe('next\n');
      expect(h.commands).toEqual(['echo maybe-ran', 'echo next']);
      expect(h.connections).toBe(2);
    } finally {
      await pool.closeAll();
    }
  });

  it('the pinned key is checked on a reconnect as on the first connection (a new key: refused, nothing runs)', async () => {
    const h = await host();
    const pool = new SessionPool(auth);
    try {
      const s = await pool.get(spec(h));
      await h.stop();
      const impostor = await host({ port: h.port }); // another key on the same address
      const e = await rejected(s.exec('echo secret'));
      expect(e).toBeInstanceOf(HostKeyError);
      expect(impostor.connections).toBe(0);
      expect(impostor.commands).toEqual([]);
      await expect(pool.get(spec(h))).rejects.toBeInstanceOf(HostKeyError);
    } finally {
      await pool.closeAll();
    }
  });

  it('a host that goes silent is found dead by keepalive, and the next use reconnects', async () => {
    const h = await host();
    // A relay that can stop forwarding (a network that drops packets without a reset).
    let frozen = false;
    const relay = createServer((inbound: Socket) => {
      const outbound = tcpConnect(h.port, '127.0.0.1');
      for (const [from, to] of [
        [inbound, outbound],
        [outbound, inbound],
      ]) {
        from.on('error', noop);
        from.on('data', (b) => frozen || to.write(b));
        from.on('close', () => to.destroy());
      }
    });
    const port = await listen(relay);
    onClose(() => new Promise((r) => relay.close(() => r())));
    const pool = new SessionPool(auth, { keepaliveIntervalMs: 100, keepaliveCountMax: 2 });
    try {
      const s = await pool.get(spec({ port, hostKey: h.hostKey }));
      await s.exec('echo 1');
      frozen = true;
      const t = Date.now();
      await expect.poll(() => s.isOpen, { timeout: 2_000, interval: 20 }).toBe(false);
      expect(Date.now() - t).toBeLessThan(1_000);
      frozen = false;
      expect((await s.exec('echo 2')).stdout).toBe('2\n');
      expect(h.connections).toBe(2);
    } finally {
      await pool.closeAll();
    }
  });
});

describe('memory per connection', () => {
  it("a command's output is bounded: past it the command fails, and the session stays usable", async () => {
    const h = await host();
    const pool = new SessionPool(auth, { maxOutputBytes: 100_000 });
    try {
      const s = await pool.get(spec(h));
      expect((await s.exec('big 100000')).stdout.length).toBe(100_000);
      const e = await rejected(s.exec('big 3000000'));
      expect(e.message).toMatch(/output exceeds 100000 bytes/);
      expect((await s.exec('echo still')).stdout).toBe('still\n');
      expect(h.connections).toBe(1);
    } finally {
      await pool.closeAll();
    }
  });
});

describe('retain and drop', () => {
  it('retain closes the sessions of hosts no longer managed; drop closes for good', async () => {
    const [a, b] = await Promise.all([host(), host()]);
    const pool = new SessionPool(auth);
    try {
      const sa = await pool.get(spec(a));
      const sb = await pool.get(spec(b));
      await pool.retain([spec(a)]);
      expect([sa.isOpen, sb.isOpen]).toEqual([true, false]);
      expect(pool.stats()).toMatchObject({ open: 1, sessions: 1 });
      await expect(sb.exec('echo x')).rejects.toThrow(/connection is closed/);
      await pool.drop(spec(a));
      await expect(sa.exec('echo x')).rejects.toThrow(/connection is closed/);
      const again = await pool.get(spec(a));
      expect(again).not.toBe(sa);
      expect((await again.exec('echo y')).stdout).toBe('y\n');
      expect(a.connections).toBe(2);
    } finally {
      await pool.closeAll();
    }
  });
});

describe('signatures', () => {
  it.each([
    ['ed25519', generateKeyPairSync('ed25519')],
    ['ecdsa', generateKeyPairSync('ecdsa', { bits: 256 })],
    ['rsa', generateKeyPairSync('rsa', { bits: 2048 })],
  ])('a %s client key signs what the server verifies, connection after connection', async (_, key) => {
    const h = await host({ clients: [key] });
    for (let i = 0; i < 2; i++) {
      const pool = new SessionPool({ privateKey: key.private });
      expect((await (await pool.get(spec(h))).exec('echo signed')).stdout).toBe('signed\n');
      await pool.closeAll();
    }
    expect(h.connections).toBe(2);
  });
});
