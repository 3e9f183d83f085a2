// Owns how the CLI authenticates to hosts: the SSH flags every command that reaches a host shares
// (--ssh-key, else $NATSFLEET_SSH_KEY, else the ssh-agent), resolved once by the transport
// (transport/auth.ts) before any host is contacted: a local key problem is one error, not N hosts.
import { resolveSshAuth, type SshCredentials } from '../transport/auth.js';

export interface SshFlags {
  sshKey?: string;
}

export const SSH_KEY_HELP = 'SSH private key (default: $NATSFLEET_SSH_KEY, else the ssh-agent of $SSH_AUTH_SOCK)';

export function sshAuth(flags: SshFlags): SshCredentials {
  return resolveSshAuth({ keyPath: flags.sshKey });
}
