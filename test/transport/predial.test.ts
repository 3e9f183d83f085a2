// Connections opened ahead of their SSH session (transport/predial.ts), against local servers (no Docker): the
// socket is open before the session takes it, with what the host sent meanwhile; each is used once; a failed
// or unused one is never handed out (the session dials as before), and never keeps the process alive; an SSH
// session made after a predial runs on that one connection. The CLI predials only once every secret resolved:
// a missing secret, or a suspended host, and the host sees no connection at all.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import ssh2 from 'ssh2';
import { dump, load } from 'js-yaml';
import { predial, predialledCount, takePredialled } from '../../controller/transport/predial.js';
import { SshSession } from '../../controller/transport/ssh.js';
import { closeMisbehavingHosts, listen, onClose } from '../helpers/misbehaving-hosts.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';
import { cli } from '../helpers/cli.js';
import { ROOT } from '../helpers/fixtures.js';
import type { NatsHost } from '../../controller/manifest/natshost.gen.js';

afterAll(closeMisbehavingHosts);
const noop = () => {};

/** A TCP server that greets each connection with `banner` and counts connections and closes. */
async function counting(banner = 'SSH-2.0-test\r\n') {
  const seen = { connections: 0, closed: 0 };
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    seen.connections++;
    sockets.add(s);
    s.on('error', noop);
    s.on('close', () => seen.closed++);
    s.write(banner);
  });
  const port = await listen(server);
  onClose(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port, seen };
}

const until = async (ok: () => boolean, ms = 2000) => {
  for (const end = Date.now() + ms; !ok() && Date.now() < end;) await sleep(10);
  return ok();
};

describe('a predialled connection', () => {
  it('is open before anyone takes it, and hands over what the host sent meanwhile, once', async () => {
    const { port, seen } = await counting('SSH-2.0-early\r\n');
    predial('127.0.0.1', port);
    expect(await until(() => seen.connections === 1)).toBe(true);
    await sleep(50);
    const sock = takePredialled('127.0.0.1', port)!;
    expect(sock).toBeDefined();
    expect(takePredialled('127.0.0.1', port)).toBeUndefined();
    const first = await new Promise<string>((r) => sock.once('data', (b: Buffer) => r(b.toString())));
    expect(first).toBe('SSH-2.0-early\r\n');
    sock.destroy();
    expect(seen.connections).toBe(1);
  });

  it('is not handed out when it failed (nothing listens): the session dials itself', async () => {
    const { port } = await counting();
    await closeMisbehavingHosts(); // the port is closed now
    predial('127.0.0.1', port);
    await sleep(100);
    expect(takePredialled('127.0.0.1', port)).toBeUndefined();
    expect(predialledCount()).toBe(0);
  });

  it('is closed when nobody takes it in time', async () => {
    const { port, seen } = await counting();
    predial('127.0.0.1', port, 100);
    expect(await until(() => seen.closed === 1)).toBe(true);
    expect(takePredialled('127.0.0.1', port)).toBeUndefined();
  });

  it('never keeps the process alive', async () => {
    const { port, seen } = await counting();
    const started = Date.now();
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `(await import(${JSON.stringify(join(ROOT, 'dist/controller/transport/predial.js'))})).predial('127.0.0.1', ${port});`,
      ],
      { encoding: 'utf8', timeout: 8000 },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await until(() => seen.connections === 1 && seen.closed === 1)).toBe(true);
  });

  it('carries the SSH session made after it: one connection, commands run', async () => {
    const key = generateKeyPairSync('ed25519');
    const client = generateKeyPairSync('ed25519');
    let connections = 0;
    const server = new ssh2.Server({ hostKeys: [key.private] }, (c) => {
      connections++;
      c.on('error', noop);
      c.on('authentication', (ctx) => (ctx.method === 'publickey' ? ctx.accept() : ctx.reject(['publickey'])));
      c.on('ready', () =>
        c.on('session', (accept) =>
          accept().on('exec', (acceptExec, _r, info) => {
            const s = acceptExec();
            s.on('error', noop);
            s.write(`ran ${info.command}\n`);
            s.exit(0);
            s.end();
          }),
        ),
      );
    });
    server.on('error', noop);
    const port = await listen(server);
    onClose(() => new Promise<void>((r) => server.close(() => r())));
    predial('127.0.0.1', port);
    await sleep(50);
    const hostKey = key.public.split(' ').slice(0, 2).join(' ');
    const s = await SshSession.connect(
      { host: '127.0.0.1', port, user: 'root', hostKey },
      { privateKey: client.private },
    );
    try {
      expect((await s.exec('true')).stdout).toBe('ran true\n');
      expect(connections).toBe(1);
      expect(predialledCount()).toBe(0);
    } finally {
      s.close();
    }
  });
});

describe('the CLI predials only hosts it will reach', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nf-predial-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const manifest = (port: number, edit: (doc: NatsHost) => void) => {
    const doc = load(readFileSync(join(ROOT, 'test/fixtures/observe/converged.manifest.yaml'), 'utf8')) as NatsHost;
    doc.spec.ssh.port = port;
    edit(doc);
    const hosts = mkdtempSync(join(dir, 'hosts-'));
    writeFileSync(join(hosts, 'nats-sb-1.yaml'), dump(doc));
    return hosts;
  };
  const secrets = join(dir, 'secrets');
  mkdirSync(secrets, { mode: 0o700 });
  const key = join(dir, 'id');
  writeFileSync(key, generateKeyPairSync('ed25519').private, { mode: 0o600 });

  it('a host whose secret is missing sees no connection', async () => {
    const { port, seen } = await counting();
    const hosts = manifest(
      port,
      (d) => (d.spec.nats = { ...d.spec.nats, auth: { token: { file: join(secrets, 'missing-token') } } }),
    );
    const r = await cli('apply', '--hosts', hosts, '--secrets-dir', secrets, '--ssh-key', key);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/missing-token/);
    await sleep(200);
    expect(seen.connections).toBe(0);
  });

  it('a suspended host sees no connection', async () => {
    const { port, seen } = await counting();
    const hosts = manifest(port, (d) => (d.spec.policy = { ...d.spec.policy, suspend: true }));
    const r = await cli('apply', '--hosts', hosts, '--secrets-dir', secrets, '--ssh-key', key);
    expect(r.err).toMatch(/suspended/);
    await sleep(200);
    expect(seen.connections).toBe(0);
  });
});
