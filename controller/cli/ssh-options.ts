// Owns how the CLI reaches hosts: the SSH flags every command that reaches a host shares (--ssh-key,
// else $NATSFLEET_SSH_KEY, else the ssh-agent), resolved once by the transport (transport/auth.ts)
// before any host is contacted, so a local key problem is one error, not N hosts; and the HOST[:PORT]
// argument of the commands that name a host directly (hostkey scan, import).
import { resolveSshAuth, type SshCredentials } from '../transport/auth.js';

export interface SshFlags {
  sshKey?: string;
}

export const SSH_KEY_HELP = 'SSH private key (default: $NATSFLEET_SSH_KEY, else the ssh-agent of $SSH_AUTH_SOCK)';

export function sshAuth(flags: SshFlags): SshCredentials {
  return resolveSshAuth({ keyPath: flags.sshKey });
}

/** HOST, HOST:PORT or [IPv6]:PORT (port 22 by default); undefined when it is none of them. */
export function parseTarget(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s[\]]+)(?::(\d{1,5}))?$/.exec(text);
  return m ? { host: m[1].replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 22 } : undefined;
}
