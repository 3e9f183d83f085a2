// Owns how the CLI reaches hosts: the SSH flags every command that reaches a host shares (--ssh-key,
// else $NATSFLEET_SSH_KEY, else the ssh-agent), resolved once by the transport (transport/auth.ts)
// before any host is contacted, so a local key problem is one error, not N hosts; and the HOST[:PORT]
// argument of the commands that name a host directly (hostkey scan, import). The SSH transport (ssh2)
// is loaded on first use: the commands that reach no host start without it.
import type { SshCredentials } from '../transport/auth.js';
import type { SessionPool } from '../reconcile/pool.js';

export interface SshFlags {
  sshKey?: string;
}

export const SSH_KEY_HELP = 'SSH private key (default: $NATSFLEET_SSH_KEY, else the ssh-agent of $SSH_AUTH_SOCK)';

export async function sshAuth(flags: SshFlags): Promise<SshCredentials> {
  const { resolveSshAuth } = await import('../transport/auth.js');
  return resolveSshAuth({ keyPath: flags.sshKey });
}

/** A pool of SSH sessions with those credentials. */
export async function sshPool(flags: SshFlags): Promise<SessionPool> {
  const auth = await sshAuth(flags);
  const { SessionPool } = await import('../reconcile/pool.js');
  return new SessionPool(auth);
}

/** HOST, HOST:PORT or [IPv6]:PORT (port 22 by default); undefined when it is none of them. */
export function parseTarget(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s[\]]+)(?::(\d{1,5}))?$/.exec(text);
  return m ? { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 22 } : undefined;
}
