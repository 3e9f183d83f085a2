// Owns how the CLI authenticates to hosts: the SSH flags every command that reaches a host shares
// (--ssh-key, or $NATSFLEET_SSH_KEY), turned into the transport's SshAuth.
import { readFileSync } from 'node:fs';
import type { SshAuth } from '../transport/ssh.js';

export interface SshFlags {
  sshKey?: string;
}

export async function sshAuth(flags: SshFlags, env: NodeJS.ProcessEnv = process.env): Promise<SshAuth> {
  const path = flags.sshKey ?? env.NATSFLEET_SSH_KEY;
  if (!path) throw new Error('no SSH private key: pass --ssh-key PATH or set NATSFLEET_SSH_KEY');
  return { privateKey: readFileSync(path) };
}
