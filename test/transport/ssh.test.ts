// SSH transport against misbehaving hosts, all in-process (no Docker): a TCP port that never sends an
// SSH banner, an ssh2 server that authenticates but never answers exec or port-forward requests (or
// answers too late), garbage injected after the handshake, and the host-key algorithm pin.
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { failOnUncaught } from '../helpers/fail-on-uncaught.js';
import { closeMisbehavingHosts, fakeHost, listen, onClose, silentPort } from '../helpers/misbehaving-hosts.js';
import {
  ForwardingRefusedError,
  HostKeyError,
  ignoreHostKeyAnnouncements,
  scanHostKey,
  SshError,
  SshSession,
  type SshTarget,
} from '../../controller/transport/ssh.js';
import { forwardRefusal } from '../../controller/apply/nats-probe.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { prepareTargets, reconcileAll } from '../../controller/reconcile/reconcile.js';
import { loadManifests } from '../../controller/manifest/load.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import { fixtureSecrets, readDir } from '../helpers/fixtures.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';
import ssh2 from 'ssh2';

const clientKey = generateKeyPairSync('ed25519');
const ed25519 = generateKeyPairSync('ed25519');
const ecdsa = generateKeyPairSync('ecdsa', { bits: 256 });
const otherEd25519 = generateKeyPairSync('ed25519');
const auth = { privateKey: clientKey.private };
const pub = (k: { public: string }) => k.public.split(' ').slice(0, 2).join(' ');
const noop = () => {};

afterAll(closeMisbehavingHosts);

const target = (port: number, hostKey: string): SshTarget => ({ host: '127.0.0.1', port, user: 'root', hostKey });

failOnUncaught(100);

async function elapsed<T>(p: Promise<T>): Promise<{ ms: number; result?: T; error?: Error }> {
  const t = Date.now();
  try {
    return { ms: Date.now() - t, result: await p };
  } catch (e) {
    return { ms: Date.now() - t, error: e as Error };
  }
}

describe('connect deadline', () => {
  it('a host that accepts TCP but never sends a banner is refused within the deadline, without a crash', async () => {
    const port = await silentPort();
    const r = await elapsed(SshSession.connect(target(port, pub(ed25519)), auth, { timeoutMs: 500 }));
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toBe(`root@127.0.0.1:${port}: no SSH banner within 0.5 s`);
    expect(r.ms).toBeGreaterThanOrEqual(450);
    expect(r.ms).toBeLessThan(1_500);
  });

  it('a host that sends a banner and then stalls: the handshake deadline says so', async () => {
    const port = await silentPort('SSH-2.0-OpenSSH_9.2\r\n');
    const r = await elapsed(SshSession.connect(target(port, pub(ed25519)), auth, { timeoutMs: 500 }));
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toMatch(/SSH handshake not completed within 0\.5 s/);
    expect(r.ms).toBeLessThan(1_500);
  });

  it('garbage instead of SSH, and a refused port, are clean SshErrors', async () => {
    const garbage = await silentPort('HTTP/1.1 400 Bad Request\r\n\r\n'.repeat(20));
    const r = await elapsed(SshSession.connect(target(garbage, pub(ed25519)), auth, { timeoutMs: 1_000 }));
    expect(r.error).toBeInstanceOf(SshError);
    const refused = await elapsed(SshSession.connect(target(1, pub(ed25519)), auth, { timeoutMs: 1_000 }));
    expect(refused.error).toBeInstanceOf(SshError);
    expect(refused.error!.message).toBe('root@127.0.0.1:1: connection refused: no SSH server listens on port 1');
  });

  it('an invalid pinned key is refused before connecting', async () => {
    const truncated = pub(ed25519).slice(0, -8);
    await expect(SshSession.connect(target(1, truncated), auth)).rejects.toThrow(
      /: the pinned host key is not a valid ssh-ed25519 public key: the key/,
    );
  });

  it('scanHostKey returns the key, and a silent port is a clean error within its deadline', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private] });
    expect(await scanHostKey('127.0.0.1', host.port)).toBe(pub(ed25519));
    const port = await silentPort();
    const r = await elapsed(scanHostKey('127.0.0.1', port, 400));
    expect(r.error!.message).toMatch(/no host key received \(no answer within 0\.4 s\)/);
    expect(r.ms).toBeLessThan(1_500);
  });
});

describe('step deadlines', () => {
  it('exec on a host that never answers the request rejects within its timeout and drops the session', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], exec: 'never' });
    const s = await SshSession.connect(target(host.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    const r = await elapsed(s.exec('true', { timeoutMs: 400 }));
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toBe(`root@127.0.0.1:${host.port}: remote command timed out after 400 ms`);
    expect(r.ms).toBeLessThan(1_500);
    expect(s.isOpen).toBe(false);
  });

  it('an answer that arrives after the deadline does nothing', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], exec: 'late' });
    const s = await SshSession.connect(target(host.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    await expect(s.exec('true', { timeoutMs: 200 })).rejects.toThrow(/timed out after 200 ms/);
    await new Promise((r) => setTimeout(r, 700)); // the late answer (to a dropped connection)
  });

  it('a command that runs past its deadline is closed; the session stays usable', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], exec: 'hang' });
    const s = await SshSession.connect(target(host.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    await expect(s.exec('sleep 100', { timeoutMs: 300 })).rejects.toThrow(/timed out after 300 ms/);
    expect(s.isOpen).toBe(true);
    expect(await s.exec('echo')).toEqual({ code: 0, stdout: 'ok\n', stderr: '' });
    await expect.poll(() => host.closedChannels).toBeGreaterThanOrEqual(2);
    s.close();
  });

  it('a session-wide step cap bounds longer timeouts (runScript included)', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], exec: 'never' });
    const s = await SshSession.connect(target(host.port, pub(ed25519)), auth, { timeoutMs: 10_000, maxStepMs: 300 });
    const r = await elapsed(s.runScript('true', 60_000));
    expect(r.error!.message).toMatch(/remote command timed out after 300 ms/);
    expect(r.ms).toBeLessThan(1_500);
  });

  it('forwardOut that is never answered rejects within its timeout; a late channel is closed', async () => {
    const never = await fakeHost({ hostKeys: [ed25519.private], forward: 'never' });
    const s1 = await SshSession.connect(target(never.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    const r = await elapsed(s1.forwardOut(4222, '127.0.0.1', 300));
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toMatch(/port forward to 127\.0\.0\.1:4222 timed out after 300 ms/);
    expect(r.ms).toBeLessThan(1_500);
    s1.close();

    const late = await fakeHost({ hostKeys: [ed25519.private], forward: 'late' });
    const s2 = await SshSession.connect(target(late.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    await expect(s2.forwardOut(4222, '127.0.0.1', 200)).rejects.toThrow(/timed out after 200 ms/);
    await expect.poll(() => late.closedChannels, { timeout: 3_000 }).toBe(1);
    expect(await s2.exec('echo')).toMatchObject({ code: 0 });
    s2.close();
  });

  it('a forward sshd refuses by its configuration is named so, not taken for a port nothing listens on', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], forward: 'refused' });
    const s = await SshSession.connect(target(host.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    const e = await s.forwardOut(4222).catch((x: Error) => x);
    expect(e).toBeInstanceOf(ForwardingRefusedError);
    expect((e as Error).message).toMatch(/sshd refuses port forwarding to 127\.0\.0\.1:4222 .*AllowTcpForwarding/);
    expect(await forwardRefusal(s, 4222)).toMatch(/nothing was changed: allow local forwarding for this login/);
    // Refused, the session stays usable; a host that allows forwards (answered late here) is not refused.
    expect(await s.exec('echo')).toMatchObject({ code: 0 });
    s.close();
    const late = await fakeHost({ hostKeys: [ed25519.private], forward: 'late' });
    const s2 = await SshSession.connect(target(late.port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    expect(await forwardRefusal(s2, 4222)).toBeUndefined();
    s2.close();
  });

  it('garbage after the handshake: the session dies cleanly and its pending command fails', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private], exec: 'never' });
    const toClient = new Set<Socket>();
    const proxy = createServer((c) => {
      const up = tcpConnect(host.port, '127.0.0.1');
      c.on('error', noop);
      up.on('error', noop);
      c.pipe(up).pipe(c);
      toClient.add(c);
    });
    const port = await listen(proxy);
    onClose(
      () =>
        new Promise<void>((r) => {
          for (const c of toClient) c.destroy();
          proxy.close(() => r());
        }),
    );
    const s = await SshSession.connect(target(port, pub(ed25519)), auth, { timeoutMs: 10_000 });
    const pending = elapsed(s.exec('true', { timeoutMs: 5_000 }));
    await new Promise((r) => setTimeout(r, 50));
    for (const c of toClient) c.write(Buffer.alloc(256, 0x41));
    const r = await pending;
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toMatch(/connection lost/);
    expect(r.ms).toBeLessThan(3_000);
    expect(s.isOpen).toBe(false);
  });
});

describe("OpenSSH's announcement of its other host keys", () => {
  // OpenSSH sends hostkeys-00@openssh.com after the login; ssh2 would ask it to sign with every key
  // (hostkeys-prove-00@openssh.com). The announcement is delivered here as ssh2's protocol would deliver it.
  async function readyClient(wrap: boolean) {
    const host = await fakeHost({ hostKeys: [ed25519.private] });
    const client = new ssh2.Client();
    const ready = new Promise<void>((ok, fail) => client.on('ready', ok).on('error', fail));
    client.connect({ host: '127.0.0.1', port: host.port, username: 'root', privateKey: clientKey.private });
    const wrapped = wrap && ignoreHostKeyAnnouncements(client);
    await ready;
    const internals = client as unknown as {
      _protocol: { _handlers: { GLOBAL_REQUEST(p: unknown, n: string, w: boolean, d: unknown): void } } & {
        openssh_hostKeysProve(keys: unknown): void;
      };
    };
    const proto = internals._protocol;
    const proved: unknown[] = [];
    proto.openssh_hostKeysProve = (keys: unknown) => void proved.push(keys);
    const announce = (name = 'hostkeys-00@openssh.com', wantReply = false) =>
      proto._handlers.GLOBAL_REQUEST(proto, name, wantReply, [ssh2.utils.parseKey(ecdsa.public)]);
    return { client, wrapped, proved, announce };
  }

  it('is let go: no host key is asked to be proved (ssh2 alone asks for each)', async () => {
    const plain = await readyClient(false);
    plain.announce();
    expect(plain.proved).toHaveLength(1);
    plain.client.end();
    const ours = await readyClient(true);
    expect(ours.wrapped).toBe(true);
    ours.announce();
    expect(ours.proved).toEqual([]);
    // A request that wants an answer, and any other request, go to ssh2 as before.
    ours.announce('hostkeys-00@openssh.com', true);
    expect(ours.proved).toHaveLength(1);
    ours.client.end();
  });
});

describe('host-key algorithm pin', () => {
  it('a host with ed25519 and ecdsa keys presents the pinned ecdsa key', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private, ecdsa.private] });
    const s = await SshSession.connect(target(host.port, pub(ecdsa)), auth, { timeoutMs: 10_000 });
    expect(await s.exec('echo')).toMatchObject({ code: 0, stdout: 'ok\n' });
    s.close();
    // with a .pub-style comment too
    const t = await SshSession.connect(target(host.port, `${pub(ed25519)} root@host`), auth, { timeoutMs: 10_000 });
    t.close();
  });

  it('a wrong key of the pinned type is a HostKeyError; a type the host lacks is a clear SshError', async () => {
    const host = await fakeHost({ hostKeys: [ed25519.private, ecdsa.private] });
    const wrong = await elapsed(SshSession.connect(target(host.port, pub(otherEd25519)), auth, { timeoutMs: 10_000 }));
    expect(wrong.error).toBeInstanceOf(HostKeyError);
    expect(wrong.error!.message).toMatch(/host key mismatch: the host presented SHA256:\S+ .*refusing to connect/);

    const onlyEd = await fakeHost({ hostKeys: [ed25519.private] });
    const r = await elapsed(SshSession.connect(target(onlyEd.port, pub(ecdsa)), auth, { timeoutMs: 10_000 }));
    expect(r.error).toBeInstanceOf(SshError);
    expect(r.error!.message).toMatch(/the host offers no ecdsa-sha2-nistp256 host key/);
  });

  it('an RSA pin negotiates an RSA host key', async () => {
    const rsa = generateKeyPairSync('rsa', { bits: 2048 });
    const host = await fakeHost({ hostKeys: [ed25519.private, rsa.private] });
    const s = await SshSession.connect(target(host.port, pub(rsa)), auth, { timeoutMs: 10_000 });
    s.close();
  });
});

describe('reconcile against hosts that never answer', () => {
  function spec(name: string, port: number): HostSpec {
    const { hosts } = loadManifests(readDir('test/fixtures/hosts'));
    const h = hosts.find((x) => x.name === 'minimal')!;
    return { ...h, name, ssh: { ...h.ssh, host: '127.0.0.1', port, user: 'root', hostKey: pub(ed25519) } };
  }

  it('gives every host an error and an Unknown plan within the deadline', async () => {
    const a = await fakeHost({ hostKeys: [ed25519.private], exec: 'never' });
    const b = await fakeHost({ hostKeys: [ed25519.private], exec: 'never' });
    const silent = await silentPort();
    const targets = prepareTargets([spec('a', a.port), spec('b', b.port), spec('c', silent)], fixtureSecrets);
    const pool = new SessionPool(auth, 600, 400);
    const t = Date.now();
    const runs = await reconcileAll(targets, { pool, revision: 'r1', apply: false, concurrency: 3 });
    // observe, then one retry on a fresh connection: 2 x 400 ms at most, plus the handshakes
    expect(Date.now() - t).toBeLessThan(4_000);
    expect(runs.map((r) => r.host)).toEqual(['a', 'b', 'c']);
    for (const r of runs) expect(r.plan!.sync).toBe('Unknown');
    expect(runs[0].error).toMatch(/remote command timed out after 400 ms/);
    expect(runs[1].error).toMatch(/remote command timed out after 400 ms/);
    expect(runs[2].error).toMatch(/no SSH banner within 0\.6 s/);
    await pool.closeAll();
  });
});
