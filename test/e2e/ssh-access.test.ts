// Issue 14's SSH proof, end to end with the real CLI (bin/natsfleet.js, a new process as an operator
// runs it): each of these deploys a host from nothing (apply exits 0, status says Synced/Healthy): a
// non-root user with passwordless sudo, a key held by a real ssh-agent (no --ssh-key), a passphrase key
// (NATSFLEET_SSH_PASSPHRASE), and a jump host (one sandbox host as the bastion of another, reached on
// the fleet's network). A passphrase key without a passphrase off a terminal is one error line, exit 1,
// and no host contacted; a user sudo refuses, and become: false, say why in status and plan; an sshd
// that refuses port forwarding (natsfleet verifies NATS through one) blocks the apply before any change.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SANDBOX_USERS } from '../../controller/sandbox/images.js';
import { sandboxDomain } from '../../controller/sandbox/fleet.js';
import { SessionPool } from '../../controller/reconcile/pool.js';
import { resolveSshAuth } from '../../controller/transport/auth.js';
import type { HostSpec } from '../../controller/manifest/host-spec.js';
import { Scenario } from './helpers.js';
import { ROOT } from '../helpers/fixtures.js';

const fleet = inject('fleet');
const [hostA, hostB] = fleet.hosts;
const a = new Scenario(fleet, hostA);
const b = new Scenario(fleet, hostB);
const tmp = mkdtempSync(join(tmpdir(), 'nf-ssh-access-'));
const PASSPHRASE = 'correct horse battery';
const encryptedKey = join(tmp, 'id_ed25519_encrypted');
const agentSocket = join(tmp, 'agent.sock');
let agent: ChildProcess | undefined;

/** No SSH settings of the machine running the tests leak in: each run says what it uses. */
const cleanEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  for (const k of ['NATSFLEET_SSH_KEY', 'NATSFLEET_SSH_PASSPHRASE', 'SSH_AUTH_SOCK']) delete env[k];
  return env;
};

/** Runs the real CLI, stdin not a terminal. */
function natsfleet(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn('node', [join(ROOT, 'bin/natsfleet.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out: out.trim(), err: err.trim() })));
}

const common = (s: Scenario) => ['--hosts', s.dir, '--secrets-dir', fleet.secretsDir];

/** Writes `s`'s manifest (proxy off: this file is about SSH), applies it from nothing, and reads its status. */
async function deploy(s: Scenario, ssh: Record<string, unknown>, credentials: string[], env: NodeJS.ProcessEnv) {
  await s.wipe();
  s.write((d) => {
    d.spec.ssh = { ...d.spec.ssh, ...ssh };
    d.spec.proxy = { enabled: false };
  });
  const apply = await natsfleet(['apply', '-y', ...common(s), ...credentials], env);
  const status = await natsfleet(['status', '-o', 'json', ...common(s), ...credentials], env);
  return { apply, status: status.code === 0 || status.out ? JSON.parse(status.out)[0] : status };
}

beforeAll(async () => {
  copyFileSync(fleet.privateKeyPath, encryptedKey);
  execFileSync('ssh-keygen', ['-q', '-p', '-N', PASSPHRASE, '-f', encryptedKey]);
  agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(agentSocket); i++) await new Promise((r) => setTimeout(r, 50));
  execFileSync('ssh-add', ['-q', fleet.privateKeyPath], {
    env: { ...process.env, SSH_AUTH_SOCK: agentSocket },
    stdio: 'ignore',
  });
});

afterAll(async () => {
  agent?.kill();
  await a.wipe().catch(() => {});
  await b.wipe().catch(() => {});
  await a.close();
  await b.close();
});

describe('each way operators reach hosts deploys a host', () => {
  it('(a) a non-root user with passwordless sudo: every script runs through sudo -n', async () => {
    const r = await deploy(a, { user: SANDBOX_USERS.sudo }, ['--ssh-key', fleet.privateKeyPath], cleanEnv());
    expect(r.apply.code, r.apply.out + r.apply.err).toBe(0);
    expect(r.status).toMatchObject({ host: hostA.name, sync: 'Synced', health: 'Healthy' });
    // Deployed as root (through sudo), not as the user.
    expect(await a.sh("stat -c '%U' /etc/nats/nats-server.conf /etc/systemd/system/nats.service")).toBe('root\nroot');
  });

  it('(b) a key held by ssh-agent, no --ssh-key', async () => {
    const env = { ...cleanEnv(), SSH_AUTH_SOCK: agentSocket };
    const r = await deploy(b, {}, [], env);
    expect(r.apply.code, r.apply.out + r.apply.err).toBe(0);
    expect(r.status).toMatchObject({ host: hostB.name, sync: 'Synced', health: 'Healthy' });
  });

  it('(c) a passphrase-protected key, the passphrase from NATSFLEET_SSH_PASSPHRASE', async () => {
    const env = { ...cleanEnv(), NATSFLEET_SSH_PASSPHRASE: PASSPHRASE };
    const r = await deploy(a, { user: 'root' }, ['--ssh-key', encryptedKey], env);
    expect(r.apply.code, r.apply.out + r.apply.err).toBe(0);
    expect(r.status).toMatchObject({ host: hostA.name, sync: 'Synced', health: 'Healthy' });
    expect(r.apply.out + r.apply.err).not.toContain(PASSPHRASE);
  });

  it('(d) a jump host: B reached only through A (as the non-root guest: forwarding needs no root), both keys pinned', async () => {
    const jump = { host: '127.0.0.1', port: hostA.sshPort, user: SANDBOX_USERS.plain, hostKey: hostA.hostKey };
    // B's address on the fleet's internal network: only the other hosts reach it.
    const ssh = { host: sandboxDomain(hostB.name), port: 22, user: 'root', hostKey: hostB.hostKey, proxyJump: jump };
    const r = await deploy(b, ssh, ['--ssh-key', fleet.privateKeyPath], cleanEnv());
    expect(r.apply.code, r.apply.out + r.apply.err).toBe(0);
    expect(r.status).toMatchObject({ host: hostB.name, sync: 'Synced', health: 'Healthy' });

    // The jump host's pinned key is honored: another key there, and B is never reached.
    b.write((d) => (d.spec.ssh.proxyJump = { ...jump, hostKey: hostB.hostKey }));
    const wrong = await natsfleet(['plan', ...common(b), '--ssh-key', fleet.privateKeyPath], cleanEnv());
    expect(wrong.code).toBe(1);
    expect(wrong.out).toContain(
      `${hostB.name}: Unknown: ${SANDBOX_USERS.plain}@127.0.0.1:${hostA.sshPort} (jump host): host key mismatch`,
    );

    // Measured: connecting directly vs through the jump host (median of 5, a fresh pool each time).
    const auth = resolveSshAuth({ keyPath: fleet.privateKeyPath, env: {} });
    const direct = { name: 'x', ssh: { host: '127.0.0.1', port: hostB.sshPort, user: 'root', hostKey: hostB.hostKey } };
    const jumped = { name: 'x', ssh };
    const median = async (h: unknown) => {
      const ms: number[] = [];
      for (let i = 0; i < 5; i++) {
        const pool = new SessionPool(auth);
        const t = performance.now();
        await (await pool.get(h as HostSpec)).runScript('true');
        ms.push(performance.now() - t);
        await pool.closeAll();
      }
      return Math.round(ms.sort((x, y) => x - y)[2]);
    };
    console.log(
      `[ssh-access] connect + one script: direct ${await median(direct)} ms, via jump host ${await median(jumped)} ms`,
    );
  });
});

describe('what goes wrong is said once, plainly', () => {
  it('(e) an sshd that refuses port forwarding: apply names the setting and changes nothing; allowed, it deploys', async () => {
    const conf = '/etc/ssh/sshd_config.d/00-no-forwarding.conf';
    await a.sh(`echo 'AllowTcpForwarding no' > ${conf} && systemctl reload ssh`);
    const key = ['--ssh-key', fleet.privateKeyPath];
    try {
      const refused = await deploy(a, { user: 'root' }, key, cleanEnv());
      expect(refused.apply.code).toBe(1);
      expect(refused.apply.out + refused.apply.err).toMatch(
        new RegExp(
          `${hostA.name}: blocked.*sshd refuses port forwarding to 127\\.0\\.0\\.1:4222 .*AllowTcpForwarding.*nothing was changed`,
          's',
        ),
      );
      expect(await a.sh('ls /etc/nats /etc/systemd/system/nats.service 2>&1 | head -n1')).toMatch(/No such file/);
      expect(refused.status).toMatchObject({ host: hostA.name, sync: 'OutOfSync' });
    } finally {
      await a.sh(`rm -f ${conf} && systemctl reload ssh`);
    }
    const r = await deploy(a, { user: 'root' }, key, cleanEnv());
    expect(r.apply.code, r.apply.out + r.apply.err).toBe(0);
    expect(r.status).toMatchObject({ host: hostA.name, sync: 'Synced', health: 'Healthy' });
  });

  it('a passphrase key without a passphrase, off a terminal: one line, exit 1, no host contacted', async () => {
    let contacted = 0;
    const listener = createServer((c) => (contacted++, c.destroy()));
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const port = (listener.address() as { port: number }).port;
    try {
      // Two hosts: one listening port that counts connections, and the real host A.
      a.write((d) => (d.spec.ssh = { host: '127.0.0.1', port: hostA.sshPort, user: 'root', hostKey: hostA.hostKey }));
      const c = new Scenario(fleet, hostB);
      c.write((d) => (d.spec.ssh = { host: '127.0.0.1', port, user: 'root', hostKey: hostB.hostKey }));
      for (const s of [a, c]) {
        const r = await natsfleet(['plan', ...common(s), '--ssh-key', encryptedKey], cleanEnv());
        expect(r).toEqual({
          code: 1,
          out: '',
          err:
            `error: SSH key ${encryptedKey} is encrypted: set NATSFLEET_SSH_PASSPHRASE or run on a terminal ` +
            'to be asked for its passphrase',
        });
      }
      expect(contacted).toBe(0);
    } finally {
      listener.close();
    }
  });

  it('a user sudo refuses is named in status; become: false blocks the plan on the uid', async () => {
    a.write(
      (d) =>
        (d.spec.ssh = { host: '127.0.0.1', port: hostA.sshPort, user: SANDBOX_USERS.plain, hostKey: hostA.hostKey }),
    );
    const refused = await natsfleet(
      ['status', '-o', 'json', ...common(a), '--ssh-key', fleet.privateKeyPath],
      cleanEnv(),
    );
    expect(refused.code).toBe(1);
    expect(JSON.parse(refused.out)[0]).toMatchObject({
      health: 'Unknown',
      reason:
        `unreachable: ${SANDBOX_USERS.plain}@127.0.0.1:${hostA.sshPort}: user ${SANDBOX_USERS.plain} cannot sudo ` +
        'without a password (sudo said: a password is required): natsfleet runs every script as root through ' +
        'sudo -n; allow it NOPASSWD, or connect as root',
    });
    a.write((d) => (d.spec.ssh.become = false));
    const blocked = await natsfleet(['plan', ...common(a), '--ssh-key', fleet.privateKeyPath], cleanEnv());
    expect(blocked.code).toBe(1);
    expect(blocked.out).toMatch(/the SSH user is not root \(uid 1001\)/);
  });
});
