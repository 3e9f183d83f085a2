// SSH credentials (transport/auth.ts): the precedence (a key given, else the agent), every local key
// problem as one SshKeyError naming the file and what to do (never the passphrase), a passphrase from the
// environment or asked once per process, and the agent checks; become (sudo -n) as strings.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import {
  agentProblem,
  chooseAuth,
  forgetAskedPassphrases,
  resolveSshAuth,
  SshCredentials,
  SshKeyError,
} from '../../controller/transport/auth.js';
import {
  authMethods,
  becomeRefusal,
  becomes,
  BecomeError,
  jumpTarget,
  scriptCommand,
  targetLabel,
} from '../../controller/transport/ssh.js';

const dir = mkdtempSync(join(tmpdir(), 'nf-auth-'));
const keygen = (name: string, passphrase = '') => {
  const f = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-C', 'test', '-f', f]);
  return f;
};
const plain = keygen('plain');
const encrypted = keygen('encrypted', 'correct horse');
const noAgent = () => undefined;
const env = (e: Record<string, string> = {}) => e as NodeJS.ProcessEnv;

/** The SshKeyError message of `f`, or a failure when it does not throw one. */
function keyError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(SshKeyError);
    return (e as Error).message;
  }
  throw new Error('no SshKeyError');
}

beforeEach(forgetAskedPassphrases);

describe('precedence', () => {
  it.each([
    ['a key given wins over everything', 'k', { NATSFLEET_SSH_KEY: 'e', SSH_AUTH_SOCK: 's' }, 'key:k'],
    ['NATSFLEET_SSH_KEY wins over the agent', undefined, { NATSFLEET_SSH_KEY: 'e', SSH_AUTH_SOCK: 's' }, 'key:e'],
    ['without a key, the agent', undefined, { SSH_AUTH_SOCK: 's' }, 'agent:s'],
    ['an empty NATSFLEET_SSH_KEY is no key', undefined, { NATSFLEET_SSH_KEY: '', SSH_AUTH_SOCK: 's' }, 'agent:s'],
    ['nothing', undefined, {}, 'none'],
  ])('%s', (_, keyPath, e, want) => {
    const c = chooseAuth(keyPath, env(e));
    expect(c.kind === 'key' ? `key:${c.path}` : c.kind === 'agent' ? `agent:${c.socket}` : 'none').toBe(want);
  });

  it('a key given is used alone (the agent is not offered beside it); without one, the agent alone', () => {
    const key = resolveSshAuth({ keyPath: plain, env: env({ SSH_AUTH_SOCK: '/nope' }), agentProblem: noAgent });
    expect(key.agent).toBeUndefined();
    expect(key.privateKey?.type).toBe('ssh-ed25519');
    expect(key.source).toBe(`key ${plain}`);
    expect(authMethods(key, 'deploy').map((m) => m.type)).toEqual(['publickey']);
    const agent = resolveSshAuth({ env: env({ SSH_AUTH_SOCK: '/run/a.sock' }), agentProblem: noAgent });
    expect([agent.privateKey, agent.agent, agent.source]).toEqual([undefined, '/run/a.sock', 'ssh-agent /run/a.sock']);
    expect(authMethods(agent, 'deploy')).toEqual([{ type: 'agent', username: 'deploy', agent: '/run/a.sock' }]);
  });

  it('credentials work as the SshAuth and, for older callers, as its privateKey; raw key bytes still work', () => {
    const c = resolveSshAuth({ keyPath: plain, env: env() });
    expect(authMethods({ privateKey: c }, 'root')).toEqual(authMethods(c, 'root'));
    expect(authMethods({ privateKey: readFileSync(plain) }, 'root')[0]).toMatchObject({ type: 'publickey' });
    expect(() => authMethods({}, 'root')).toThrow('no SSH credentials');
  });

  it('nothing at all: one line saying every way to give credentials', () => {
    expect(keyError(() => resolveSshAuth({ env: env() }))).toBe(
      'no SSH credentials: pass --ssh-key PATH, set NATSFLEET_SSH_KEY, or run ssh-agent (SSH_AUTH_SOCK) with a key',
    );
  });
});

describe('local key problems: one error naming the file, nothing contacted', () => {
  it.each([
    ['a missing file', join(dir, 'nope'), `SSH key ${join(dir, 'nope')}: no such file`],
    ['a directory', dir, `SSH key ${dir}: is a directory, not a key file`],
    ['a public key', `${plain}.pub`, `SSH key ${plain}.pub is a public key: give the private key file (without .pub)`],
  ])('%s', (_, keyPath, message) => {
    expect(keyError(() => resolveSshAuth({ keyPath, env: env() }))).toBe(message);
  });

  it('an unreadable file', () => {
    if (process.getuid?.() === 0) return; // root reads anything
    const f = join(dir, 'unreadable');
    copyFileSync(plain, f);
    chmodSync(f, 0);
    expect(keyError(() => resolveSshAuth({ keyPath: f, env: env() }))).toBe(
      `SSH key ${f}: permission denied (it must be readable by this user)`,
    );
  });

  it('something that is not a key', () => {
    const f = join(dir, 'garbage');
    writeFileSync(f, 'not a key\n');
    expect(keyError(() => resolveSshAuth({ keyPath: f, env: env() }))).toBe(
      `SSH key ${f} is not a private key natsfleet can read (Unsupported key format)`,
    );
  });

  it('an encrypted key without a passphrase and no terminal: the one error, saying what to do', () => {
    expect(keyError(() => resolveSshAuth({ keyPath: encrypted, env: env(), interactive: false }))).toBe(
      `SSH key ${encrypted} is encrypted: set NATSFLEET_SSH_PASSPHRASE or run on a terminal to be asked for its passphrase`,
    );
  });

  it('a wrong passphrase from the environment: said so, the passphrase never in the message', () => {
    const message = keyError(() =>
      resolveSshAuth({ keyPath: encrypted, env: env({ NATSFLEET_SSH_PASSPHRASE: 'wrong-SECRET' }) }),
    );
    expect(message).toBe(`SSH key ${encrypted}: wrong passphrase (NATSFLEET_SSH_PASSPHRASE)`);
    expect(message).not.toContain('SECRET');
  });
});

describe('passphrases', () => {
  it('from NATSFLEET_SSH_PASSPHRASE: the key is decrypted once, here (not per connection)', () => {
    const c = resolveSshAuth({ keyPath: encrypted, env: env({ NATSFLEET_SSH_PASSPHRASE: 'correct horse' }) });
    expect(c.privateKey?.isPrivateKey()).toBe(true);
    const [m] = authMethods(c, 'root');
    expect(m).toMatchObject({ type: 'publickey', key: c.privateKey }); // the parsed key itself: no re-parse
  });

  it('on a terminal: asked once per process, with the question naming the key', () => {
    const questions: string[] = [];
    const ask = (q: string) => (questions.push(q), 'correct horse');
    for (let i = 0; i < 3; i++) resolveSshAuth({ keyPath: encrypted, env: env(), interactive: true, ask });
    expect(questions).toEqual([`Passphrase for SSH key ${encrypted}: `]);
  });

  it('a wrong passphrase typed: an error, and it is not remembered', () => {
    const ask = () => 'typo';
    expect(keyError(() => resolveSshAuth({ keyPath: encrypted, env: env(), interactive: true, ask }))).toBe(
      `SSH key ${encrypted}: wrong passphrase (as typed)`,
    );
    let asked = 0;
    resolveSshAuth({ keyPath: encrypted, env: env(), interactive: true, ask: () => (asked++, 'correct horse') });
    expect(asked).toBe(1);
  });

  it('a prompt cancelled (Ctrl-C, Ctrl-D): one error, nothing contacted', () => {
    expect(
      keyError(() => resolveSshAuth({ keyPath: encrypted, env: env(), interactive: true, ask: () => undefined })),
    ).toBe(`SSH key ${encrypted}: no passphrase given (cancelled)`);
  });

  it('an unencrypted key never asks', () => {
    const ask = () => {
      throw new Error('asked');
    };
    expect(resolveSshAuth({ keyPath: plain, env: env(), interactive: true, ask }).privateKey).toBeDefined();
  });

  it('credentials never print their key', () => {
    const c = resolveSshAuth({ keyPath: encrypted, env: env({ NATSFLEET_SSH_PASSPHRASE: 'correct horse' }) });
    expect(JSON.stringify({ c })).toBe(`{"c":{"source":"key ${encrypted}"}}`);
    expect(inspect(c)).toBe(`SshCredentials(key ${encrypted})`);
    expect(c).toBeInstanceOf(SshCredentials);
  });
});

describe('the agent', () => {
  const agents: { kill: () => void }[] = [];
  afterAll(() => agents.forEach((a) => a.kill()));

  it('a problem of the agent is one error naming its socket', () => {
    const e = env({ SSH_AUTH_SOCK: '/tmp/agent.sock' });
    expect(
      keyError(() => resolveSshAuth({ env: e, agentProblem: () => 'it holds no keys (add one with ssh-add)' })),
    ).toBe('ssh-agent at /tmp/agent.sock (SSH_AUTH_SOCK) cannot be used: it holds no keys (add one with ssh-add)');
    expect(agentProblem(join(dir, 'no-agent.sock'))).toBe('no such socket');
    expect(agentProblem(plain)).toBe('it is not a socket');
  });

  it('a real ssh-agent: empty, then holding the key', async () => {
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    agents.push(agent);
    for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    expect(agentProblem(sock)).toBe('it holds no keys (add one with ssh-add)');
    execFileSync('ssh-add', ['-q', plain], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
    expect(agentProblem(sock)).toBeUndefined();
    expect(resolveSshAuth({ env: env({ SSH_AUTH_SOCK: sock }) }).agent).toBe(sock);
  });
});

describe('become: every script as root through sudo -n', () => {
  it('the remote command', () => {
    expect(scriptCommand(true)).toBe('sudo -n -- sh -s');
    expect(scriptCommand(false)).toBe('sh -s');
  });

  it.each([
    [{ user: 'root' }, false],
    [{ user: 'deploy' }, true],
    [{ user: 'deploy', become: false }, false],
    [{ user: 'root', become: true }, true],
  ])('%o becomes root through sudo: %s', (t, want) => {
    expect(becomes(t)).toBe(want);
  });

  it.each([
    [{ code: 1, stdout: '', stderr: 'sudo: a password is required\n' }, 'sudo said: a password is required'],
    [
      { code: 1, stdout: '', stderr: 'guest is not in the sudoers file.\nsudo: a password is required\n' },
      'sudo said: a password is required',
    ],
    [{ code: 127, stdout: '', stderr: 'sh: 1: sudo: not found\n' }, 'sudo is not installed'],
    // Refusals of the sudoers policy carry no "sudo:" prefix; requiretty has its own words.
    [
      { code: 1, stdout: '', stderr: "Sorry, user deploy is not allowed to execute '/bin/sh -s' as root on h.\n" },
      "sudo said: Sorry, user deploy is not allowed to execute '/bin/sh -s' as root on h.",
    ],
    [
      { code: 1, stdout: '', stderr: 'sudo: unable to resolve host h\nSorry, user guest may not run sudo on h.\n' },
      'sudo said: Sorry, user guest may not run sudo on h.',
    ],
    [
      { code: 1, stdout: '', stderr: 'sudo: sorry, you must have a tty to run sudo\n' },
      'sudo said: sorry, you must have a tty to run sudo',
    ],
    [{ code: 1, stdout: '', stderr: 'mkdir: cannot create directory\n' }, undefined],
    [{ code: 0, stdout: '', stderr: 'sudo: unable to resolve host x\n' }, undefined],
    [{ code: 3, stdout: '@@uid\n0\n', stderr: 'sudo: a password is required\n' }, undefined],
  ])('sudo refused? %o', (r, want) => {
    expect(becomeRefusal(r)).toBe(want);
  });

  it('says which user on which host, and what to do', () => {
    expect(new BecomeError('guest@10.0.0.2:22', 'guest', 'sudo said: a password is required').message).toBe(
      'guest@10.0.0.2:22: user guest cannot sudo without a password (sudo said: a password is required): ' +
        'natsfleet runs every script as root through sudo -n; allow it NOPASSWD, or connect as root',
    );
  });
});

describe('jump host targets', () => {
  const key = 'ssh-ed25519 AAAA';
  it('the jump host defaults to port 22 and the target user, never becomes; labels say via', () => {
    const t = {
      host: '10.0.0.5',
      port: 22,
      user: 'deploy',
      hostKey: key,
      proxyJump: { host: 'bastion', hostKey: key },
    };
    expect(jumpTarget(t)).toEqual({ host: 'bastion', port: 22, user: 'deploy', hostKey: key, become: false });
    expect(targetLabel(t)).toBe('deploy@10.0.0.5:22 via deploy@bastion:22');
    expect(targetLabel({ ...t, proxyJump: undefined })).toBe('deploy@10.0.0.5:22');
    expect(jumpTarget({ ...t, proxyJump: { host: 'b', port: 2222, user: 'jump', hostKey: key } })).toMatchObject({
      port: 2222,
      user: 'jump',
    });
  });
});
