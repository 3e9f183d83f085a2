// Failure reasons of reaching a host, from the transport's typed errors (never from matching error text
// in the controller): a wrong host key and refused credentials are not network blips.
import { describe, expect, it } from 'vitest';
import { connectionFailure } from '../../controller/reconcile/reconcile.js';
import { HostKeyError, SshError } from '../../controller/transport/ssh.js';

describe('connectionFailure', () => {
  it.each<[string, unknown, string]>([
    ['a pinned key mismatch', new HostKeyError('root@h:22', 'SHA256:a', 'SHA256:b'), 'host-key-mismatch'],
    ['refused credentials', new SshError('root@h:22', 'All configured authentication methods failed'), 'auth-failed'],
    ['no banner', new SshError('root@h:22', 'no SSH banner within 15 s'), 'unreachable'],
    ['a timeout', new SshError('root@h:22', 'remote command timed out after 60000 ms'), 'unreachable'],
  ])('%s', (_t, e, want) => expect(connectionFailure(e)).toBe(want));
});
