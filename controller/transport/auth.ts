// Owns the SSH credentials of a natsfleet process, resolved once before any host is contacted: which
// credential (precedence: a key file given — --ssh-key, else NATSFLEET_SSH_KEY, else the controller
// config's sshKey — is used alone; without one, the keys of the ssh-agent at SSH_AUTH_SOCK), the key's
// passphrase (NATSFLEET_SSH_PASSPHRASE, else asked once per process on a terminal with echo off), and
// every local problem (a missing or unreadable file, not a private key, encrypted without a passphrase,
// a wrong passphrase, an agent that cannot be reached or holds no key) as ONE SshKeyError, never as N
// unreachable hosts. The key is decrypted here once (a bcrypt KDF: about 0.4 s of CPU per decryption),
// never per connection. No passphrase or key material ever reaches an error, a log line or a plan.
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { inspect } from 'node:util';
import ssh2, { type ParsedKey } from 'ssh2';

const { parseKey } = ssh2.utils;

/** A local credential problem (the key file, its passphrase, the agent): reported once, nothing contacted. */
export class SshKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshKeyError';
  }
}

/** Where the credentials come from: the pure precedence, before any file or socket is touched. */
export type AuthChoice =
  { kind: 'key'; path: string; from: string } | { kind: 'agent'; socket: string } | { kind: 'none' };

export const PASSPHRASE_ENV = 'NATSFLEET_SSH_PASSPHRASE';

/**
 * The precedence: a key file given (`keyPath`: the flag or the config's value, already merged by the
 * caller; else NATSFLEET_SSH_KEY) is used alone, like OpenSSH's IdentitiesOnly (an agent never decides
 * which identity reaches the fleet); without one, the agent of SSH_AUTH_SOCK.
 */
export function chooseAuth(keyPath: string | undefined, env: NodeJS.ProcessEnv): AuthChoice {
  if (keyPath) return { kind: 'key', path: keyPath, from: 'given' };
  if (env.NATSFLEET_SSH_KEY) return { kind: 'key', path: env.NATSFLEET_SSH_KEY, from: 'NATSFLEET_SSH_KEY' };
  if (env.SSH_AUTH_SOCK) return { kind: 'agent', socket: env.SSH_AUTH_SOCK };
  return { kind: 'none' };
}

/**
 * Resolved credentials: a decrypted private key, or the agent's socket. Pass it to SessionPool or
 * SshSession.connect as the SshAuth. It never prints its key (util.inspect, JSON).
 */
export class SshCredentials {
  readonly privateKey?: ParsedKey;
  readonly agent?: string;
  /** What is used, for messages: "key /path/id_ed25519" or "ssh-agent /tmp/agent.sock". */
  readonly source: string;

  constructor(c: { privateKey?: ParsedKey; agent?: string; source: string }) {
    this.privateKey = c.privateKey;
    this.agent = c.agent;
    this.source = c.source;
  }

  toJSON() {
    return { source: this.source };
  }

  [inspect.custom]() {
    return `SshCredentials(${this.source})`;
  }
}

export interface AuthInput {
  /** The key file given explicitly (flag, or the controller config's merged sshKey). */
  keyPath?: string;
  /** NATSFLEET_SSH_KEY, NATSFLEET_SSH_PASSPHRASE, SSH_AUTH_SOCK (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Someone can be asked for a passphrase (default: process.stdin.isTTY). */
  interactive?: boolean;
  /** Asks with echo off; undefined when nothing was typed (default: on the terminal). */
  ask?: (question: string) => string | undefined;
  /** Why the agent cannot authenticate, or undefined when it holds a key (default: ssh-add -l). */
  agentProblem?: (socket: string) => string | undefined;
}

/** Passphrases asked on the terminal, by key path: asked once per process. */
const asked = new Map<string, string>();

const ERRNO: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied (it must be readable by this user)',
  EISDIR: 'is a directory, not a key file',
  ENOTDIR: 'no such file',
};

function readKey(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new SshKeyError(`SSH key ${path}: ${ERRNO[code] ?? 'cannot be read'}`);
  }
}

const needsPassphrase = (e: Error) => /no passphrase given/i.test(e.message);

/** The first private key of `bytes` (decrypted with `passphrase`), or why not. Pure. */
export function parsePrivateKey(
  path: string,
  bytes: Buffer,
  passphrase?: string,
  passphraseFrom = PASSPHRASE_ENV,
): ParsedKey | SshKeyError | 'needs-passphrase' {
  const parsed = parseKey(bytes, passphrase);
  if (parsed instanceof Error) {
    if (needsPassphrase(parsed)) return 'needs-passphrase';
    if (passphrase !== undefined && /passphrase/i.test(parsed.message))
      return new SshKeyError(`SSH key ${path}: wrong passphrase (${passphraseFrom})`);
    return new SshKeyError(`SSH key ${path} is not a private key natsfleet can read (${parsed.message})`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey())
    return new SshKeyError(`SSH key ${path} is a public key: give the private key file (without .pub)`);
  return key;
}

/**
 * The passphrase prompt, on the controlling terminal: echo off and the terminal's own line editing and
 * signals off while it reads (Ctrl-C cancels, erasing works), its settings restored afterwards in any
 * case. The answer is never echoed or kept anywhere else. Undefined when cancelled or no terminal.
 */
export function askOnTerminal(question: string): string | undefined {
  let fd: number;
  try {
    fd = openSync('/dev/tty', 'r+');
  } catch {
    return undefined;
  }
  const stty = (...args: string[]) =>
    spawnSync('stty', args, { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8' }).stdout?.trim();
  const saved = stty('-g');
  try {
    // From the start of a clean line (a progress line may be drawn on the terminal).
    writeSync(fd, `\r\x1b[2K${question}`);
    stty('-echo', '-icanon', '-isig', 'min', '1', 'time', '0');
    const bytes: number[] = [];
    const one = Buffer.alloc(1);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, one, 0, 1, null);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
        throw e;
      }
      const c = one[0];
      if (n === 0 || c === 0x03 || (c === 0x04 && !bytes.length)) return undefined; // EOF, Ctrl-C, Ctrl-D
      if (c === 0x0a || c === 0x0d) return Buffer.from(bytes).toString('utf8');
      if (c === 0x7f || c === 0x08) bytes.pop();
      else if (c === 0x15)
        bytes.length = 0; // Ctrl-U
      else bytes.push(c);
    }
  } finally {
    if (saved) stty(saved);
    else stty('sane');
    writeSync(fd, '\n');
    closeSync(fd);
  }
}

/** Why the agent at `socket` cannot authenticate, or undefined (asks `ssh-add -l`, when it is installed). */
export function agentProblem(socket: string): string | undefined {
  try {
    if (!statSync(socket).isSocket()) return 'it is not a socket';
  } catch {
    return 'no such socket';
  }
  const r = spawnSync('ssh-add', ['-l'], {
    env: { ...process.env, SSH_AUTH_SOCK: socket },
    stdio: ['ignore', 'ignore', 'ignore'],
    timeout: 5_000,
  });
  if (r.error) return undefined; // no ssh-add here: the socket exists, ssh2 will tell
  if (r.status === 1) return 'it holds no keys (add one with ssh-add)';
  if (r.status !== 0) return 'it does not answer';
  return undefined;
}

/**
 * The process's SSH credentials, checked up front (see the header): throws SshKeyError, with a message
 * that names the key file or the agent and what to do, never the passphrase.
 */
export function resolveSshAuth(input: AuthInput = {}): SshCredentials {
  const env = input.env ?? process.env;
  const choice = chooseAuth(input.keyPath, env);
  if (choice.kind === 'none')
    throw new SshKeyError(
      'no SSH credentials: pass --ssh-key PATH, set NATSFLEET_SSH_KEY, or run ssh-agent (SSH_AUTH_SOCK) with a key',
    );
  if (choice.kind === 'agent') {
    const problem = (input.agentProblem ?? agentProblem)(choice.socket);
    if (problem) throw new SshKeyError(`ssh-agent at ${choice.socket} (SSH_AUTH_SOCK) cannot be used: ${problem}`);
    return new SshCredentials({ agent: choice.socket, source: `ssh-agent ${choice.socket}` });
  }
  const { path } = choice;
  const bytes = readKey(path);
  let key = parsePrivateKey(path, bytes);
  if (key === 'needs-passphrase') {
    const fromEnv = env[PASSPHRASE_ENV];
    const interactive = input.interactive ?? Boolean(process.stdin.isTTY);
    let passphrase = fromEnv || asked.get(path);
    let from = fromEnv ? PASSPHRASE_ENV : 'as typed';
    if (passphrase === undefined && interactive) {
      passphrase = (input.ask ?? askOnTerminal)(`Passphrase for SSH key ${path}: `);
      if (passphrase === undefined) throw new SshKeyError(`SSH key ${path}: no passphrase given (cancelled)`);
      from = 'as typed';
    }
    if (passphrase === undefined)
      throw new SshKeyError(
        `SSH key ${path} is encrypted: set ${PASSPHRASE_ENV} or run on a terminal to be asked for its passphrase`,
      );
    key = parsePrivateKey(path, bytes, passphrase, from);
    if (!(key instanceof Error) && key !== 'needs-passphrase' && from === 'as typed') asked.set(path, passphrase);
  }
  if (key instanceof Error) throw key;
  if (key === 'needs-passphrase') throw new SshKeyError(`SSH key ${path}: wrong passphrase`);
  return new SshCredentials({ privateKey: key, source: `key ${path}` });
}

/** Forgets the passphrases asked on the terminal (tests). */
export function forgetAskedPassphrases(): void {
  asked.clear();
}
