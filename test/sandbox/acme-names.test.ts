// The names the sandbox's ACME setup rests on: each host's manifest asks for a certificate for the
// domain that is the host's alias on the fleet network (where pebble validates it), and certbot's files
// are found on the host under the volume's directory.
import { load } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { sandboxDomain, sandboxManifest, sandboxVolumePath } from '../../controller/sandbox/fleet.js';
import { ACME_DIRECTORY } from '../../controller/sandbox/images.js';

describe('sandbox ACME names', () => {
  it("a host's manifest uses its sandbox domain for the proxy", () => {
    const host = {
      name: 'nats-sb-2',
      container: 'natsfleet-sb-x-1',
      volume: 'natsfleet-sb-x-1-docker',
      sshPort: 40022,
      hostKey: 'ssh-ed25519 AAAA',
      compose: 'v1+plugin' as const,
      clusterAddress: '172.18.0.3',
    };
    const doc = load(sandboxManifest(host, '/fleet/secrets/nats-token', 'nats:2.9.10')) as {
      spec: { proxy: { domain: string } };
    };
    expect(doc.spec.proxy.domain).toBe('nats-sb-2.sandbox.test');
    expect(sandboxDomain('nats-sb-2')).toBe('nats-sb-2.sandbox.test');
  });

  it("certbot's files on the host, and the ACME directory on the fleet's network", () => {
    expect(sandboxVolumePath('nginx_secrets')).toBe('/var/lib/docker/volumes/nginx_secrets/_data');
    expect(ACME_DIRECTORY).toBe('https://pebble:14000/dir');
  });
});
