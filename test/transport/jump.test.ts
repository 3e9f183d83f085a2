// SSH as operators have it, in-process (no Docker): a jump host (ssh2 servers: a bastion that forwards
// TCP, a target behind it) with the pinned key honored at each hop and one jump connection shared by
// the pool; become through sudo -n on the wire; an ssh-agent's key; and a pull request that changes
// proxyJump being untrusted.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import ssh2, { type Connection } from 'ssh2';
import { listen, onClose, closeMisbehavingHosts } from '../helpers/misbehaving-hosts.js';
import { BecomeError, HostKeyError, SshError, SshSession, type SshTarget } from '../../controller/transport/ssh.js';
import { resolveSshAuth } from '../../controller/transport/auth.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import { untrustedReason } from '../../controller/gitops/decide.js';
import { loadManifests } from '../../controller/manifest/load.js';
import { generateKeyPairSync } from '../helpers/ssh-keys.js';

const { parseKey } = ssh2.utils;
const noop = () => {};
const pub = (k: { public: string }) => k.public.split(' ').slice(0, 2).join(' ');
const dir = mkdtempSync(join(tmpdir(), 'nf-jump-'));
const clientKeyFile = join(dir, 'id_ed25519');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', clientKeyFile]);
const auth = resolveSshAuth({ keyPath: clientKeyFile, env: {} });
const clientBlob = auth.privateKey!.getPublicSSH();

afterAll(closeMisbehavingHosts);

interface TestHost {
  port: number;
  hostKey: string;
  /** Connections accepted, and ended. */
  connections: number;
  ended: number;
  /** Exec commands received, and their users. */
  commands: string[];
  users: string[];
}

/**
 * An ssh2 server accepting only the client key. `jump`: forwards TCP (ssh -J's direct-tcpip).
 * `sudo: 'refuse'`: `sudo -n ...` answers as sudo does without NOPASSWD.
 */
async function sshHost(o: { jump?: boolean; sudo?: 'refuse' } = {}): Promise<TestHost> {
  const key = generateKeyPairSync('ed25519');
  const h: TestHost = { port: 0, hostKey: pub(key), connections: 0, ended: 0, commands: [], users: [] };
  const conns = new Set<Connection>();
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    h.connections++;
    conns.add(client);
    client.on('error', noop);
    client.on('close', () => h.ended++);
    client.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && Buffer.compare(ctx.key.data, clientBlob) === 0) {
        if (ctx.signature) h.users.push(ctx.username); // the signed attempt, after the key's query
        return ctx.accept();
      }
      ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, _reject, info) => {
          h.commands.push(info.command);
          const stream = acceptExec();
          stream.on('error', noop);
          stream.on('data', noop);
          if (o.sudo === 'refuse' && info.command.startsWith('sudo ')) {
            stream.stderr.write('sudo: a password is required\n');
            stream.exit(1);
          } else {
            stream.write('ok\n');
            stream.exit(0);
          }
          stream.end();
        });
      });
      client.on('tcpip', (accept, reject, info) => {
        if (!o.jump) return reject();
        const sock = tcpConnect(info.destPort, info.destIP);
        sock.on('error', () => reject());
        sock.once('connect', () => {
          const ch = accept();
          ch.on('error', noop);
          ch.pipe(sock).pipe(ch);
        });
      });
    });
  });
  server.on('error', noop);
  h.port = await listen(server);
  onClose(
    () =>
      new Promise<void>((r) => {
        for (const c of conns) c.end();
        server.close(() => r());
      }),
  );
  return h;
}

const target = (h: TestHost, jump?: TestHost, user = 'root'): SshTarget => ({
  host: '127.0.0.1',
  port: h.port,
  user,
  hostKey: h.hostKey,
  ...(jump ? { proxyJump: { host: '127.0.0.1', port: jump.port, hostKey: jump.hostKey } } : {}),
});
const spec = (t: SshTarget, name = 'h') => ({ name, ssh: t }) as unknown as HostSpec;
const otherKey = pub(generateKeyPairSync('ed25519'));

async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('resolved');
}

describe('a jump host (ssh -J), its pinned key and the target behind it', () => {
  it('runs scripts on the target through the jump host; closing the session closes its own jump connection', async () => {
    const bastion = await sshHost({ jump: true });
    const inner = await sshHost();
    const s = await SshSession.connect(target(inner, bastion), auth);
    expect(s.label).toBe(`root@127.0.0.1:${inner.port} via root@127.0.0.1:${bastion.port}`);
    expect((await s.runScript('echo hi')).stdout).toBe('ok\n');
    expect(inner.commands).toEqual(['sh -s']);
    expect(bastion.commands).toEqual([]); // the jump host runs nothing
    s.close();
    await new Promise((r) => setTimeout(r, 300));
    expect([bastion.connections, bastion.ended]).toEqual([1, 1]);
  });

  it("the jump host's pinned key is checked first: another key, nothing reaches the target", async () => {
    const bastion = await sshHost({ jump: true });
    const inner = await sshHost();
    const e = await rejected(
      SshSession.connect({ ...target(inner, bastion), proxyJump: { ...target(bastion), hostKey: otherKey } }, auth),
    );
    expect(e).toBeInstanceOf(HostKeyError);
    expect(e.message).toMatch(
      new RegExp(
        `^root@127\\.0\\.0\\.1:${bastion.port} \\(jump host of root@127\\.0\\.0\\.1:${inner.port}\\): host key mismatch`,
      ),
    );
    expect(inner.connections).toBe(0);
  });

  it("the target's pinned key is checked through the jump host as on a direct connection", async () => {
    const bastion = await sshHost({ jump: true });
    const inner = await sshHost();
    const e = await rejected(SshSession.connect({ ...target(inner, bastion), hostKey: otherKey }, auth));
    expect(e).toBeInstanceOf(HostKeyError);
    expect(e.message).toMatch(
      new RegExp(`^root@127\\.0\\.0\\.1:${inner.port} via root@127\\.0\\.0\\.1:${bastion.port}: host key mismatch`),
    );
    expect(inner.users).toEqual([]); // refused before authentication
    await new Promise((r) => setTimeout(r, 200));
    expect(bastion.ended).toBe(1); // the jump connection opened for it is closed
  });

  it('a target the jump host cannot reach: said so, with the target named', async () => {
    const bastion = await sshHost({ jump: true });
    const e = await rejected(
      SshSession.connect(
        {
          ...target(bastion),
          port: 1,
          proxyJump: target(bastion).proxyJump ?? { host: '127.0.0.1', port: bastion.port, hostKey: bastion.hostKey },
        },
        auth,
        { timeoutMs: 3_000 },
      ),
    );
    expect(e).toBeInstanceOf(SshError);
    expect(e.message).toMatch(
      new RegExp(
        `^root@127\\.0\\.0\\.1:1 via root@127\\.0\\.0\\.1:${bastion.port}: the jump host cannot reach 127\\.0\\.0\\.1:1: `,
      ),
    );
  });

  it('the pool shares one jump connection between the hosts behind it, and reopens it when it died', async () => {
    const bastion = await sshHost({ jump: true });
    const a = await sshHost();
    const b = await sshHost();
    const pool = new SessionPool(auth);
    try {
      const [sa, sb] = await Promise.all([
        pool.get(spec(target(a, bastion), 'a')),
        pool.get(spec(target(b, bastion), 'b')),
      ]);
      await Promise.all([sa.runScript('true'), sb.runScript('true')]);
      expect(bastion.connections).toBe(1);
      expect(await pool.get(spec(target(a, bastion), 'a'))).toBe(sa);
      // The jump connection dies: both sessions die with it; the next use reconnects through a new one.
      const jumpSessions = (pool as unknown as { jumps: Map<string, Promise<SshSession>> }).jumps;
      (await [...jumpSessions.values()][0]).destroy();
      await new Promise((r) => setTimeout(r, 200));
      expect([sa.isOpen, sb.isOpen]).toEqual([false, false]);
      const again = await pool.get(spec(target(a, bastion), 'a'));
      expect((await again.runScript('true')).code).toBe(0);
      expect(bastion.connections).toBe(2);
    } finally {
      await pool.closeAll();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(bastion.ended).toBe(2);
  });
});

describe('become on the wire', () => {
  it('a non-root user runs scripts through sudo -n; root as is; become: false as is', async () => {
    const h = await sshHost();
    const pool = new SessionPool(auth);
    try {
      await (await pool.get(spec(target(h, undefined, 'deploy')))).runScript('id -u');
      await (await pool.get(spec(target(h)))).runScript('id -u');
      await (await pool.get(spec({ ...target(h, undefined, 'deploy'), become: false }))).runScript('id -u');
    } finally {
      await pool.closeAll();
    }
    expect(h.commands).toEqual(['sudo -n -- sh -s', 'sh -s', 'sh -s']);
    expect(h.users).toEqual(['deploy', 'root', 'deploy']);
  });

  it('sudo refusing (a password is required): a BecomeError naming the user and the host', async () => {
    const h = await sshHost({ sudo: 'refuse' });
    const s = await SshSession.connect(target(h, undefined, 'guest'), auth);
    try {
      const e = await rejected(s.runScript('id -u'));
      expect(e).toBeInstanceOf(BecomeError);
      expect(e.message).toBe(
        `guest@127.0.0.1:${h.port}: user guest cannot sudo without a password (sudo said: a password is required): ` +
          'natsfleet runs every script as root through sudo -n; allow it NOPASSWD, or connect as root',
      );
    } finally {
      s.close();
    }
  });
});

describe('credentials on the wire', () => {
  const agents: { kill: () => void }[] = [];
  afterAll(() => agents.forEach((a) => a.kill()));

  it("an ssh-agent's key authenticates, also at the jump host", async () => {
    const sock = join(dir, 'agent.sock');
    agents.push(spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' }));
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    execFileSync('ssh-add', ['-q', clientKeyFile], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    const agent = resolveSshAuth({ env: { SSH_AUTH_SOCK: sock } });
    const bastion = await sshHost({ jump: true });
    const inner = await sshHost();
    const s = await SshSession.connect(target(inner, bastion, 'deploy'), agent);
    try {
      expect((await s.runScript('true')).code).toBe(0);
    } finally {
      s.close();
    }
    expect([bastion.users, inner.users]).toEqual([['deploy'], ['deploy']]);
  });

  it('a key the host does not accept: an authentication failure', async () => {
    const h = await sshHost();
    const stranger = generateKeyPairSync('ed25519');
    const parsed = parseKey(stranger.private);
    if (parsed instanceof Error) throw parsed;
    const e = await rejected(SshSession.connect(target(h), { privateKey: stranger.private }));
    expect(e.message).toMatch(/All configured authentication methods failed/);
  });
});

describe('pull requests', () => {
  const manifest = (ssh: string) => ({
    path: 'hosts/h.yaml',
    text: [
      'apiVersion: natsfleet/v1alpha1',
      'kind: NatsHost',
      'metadata: {name: h}',
      'spec:',
      `  ssh: {host: 10.0.0.5, hostKey: "${otherKey}"${ssh}}`,
      '  nats: {image: "nats:2.10.22", auth: {token: {env: NATS_T}}}',
      '',
    ].join('\n'),
  });
  const load = (ssh: string) => {
    const { hosts, problems } = loadManifests([manifest(ssh)]);
    return { host: hosts[0], problems: problems.map((p) => `${p.severity}: ${p.path}: ${p.message}`) };
  };

  it('adding or changing proxyJump (or the user) is untrusted, like a change of address or key', () => {
    const base = load('').host;
    const jumped = load(`, proxyJump: {host: bastion.example.com, hostKey: "${otherKey}"}`).host;
    expect(jumped.ssh.proxyJump).toEqual({ host: 'bastion.example.com', port: 22, hostKey: otherKey });
    expect(untrustedReason(false, [jumped], () => base)).toBe('it changes the SSH address or host key of h');
    const moved = load(`, proxyJump: {host: elsewhere.example.com, hostKey: "${otherKey}"}`).host;
    expect(untrustedReason(false, [moved], () => jumped)).toBe('it changes the SSH address or host key of h');
    expect(untrustedReason(false, [load(', user: deploy').host], () => base)).toBeDefined();
    expect(untrustedReason(false, [jumped], () => jumped)).toBeUndefined();
  });

  it("manifest rules: the jump host's key is checked like the host's; become: false for a non-root user warns", () => {
    expect(load(`, proxyJump: {host: b, hostKey: "ssh-ed25519 AAAA"}`).problems).toContainEqual(
      expect.stringMatching(/^error: spec\.ssh\.proxyJump\.hostKey: is not a valid ssh-ed25519 public key/),
    );
    expect(load(`, proxyJump: {host: 10.0.0.5, hostKey: "${otherKey}"}`).problems).toContain(
      'error: spec.ssh.proxyJump: is the host itself',
    );
    expect(load(', user: deploy, become: false').problems).toContain(
      'warning: spec.ssh.become: is false for user deploy: natsfleet needs root, so the plan is blocked unless that user is uid 0',
    );
    expect(load(', user: deploy').problems.filter((p) => p.includes('spec.ssh'))).toEqual([]);
  });
});
